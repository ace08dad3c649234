//! NoExecute evictions, without I/O: when a pod on a tainted node must go (Kubernetes'
//! taint manager). A NoExecute taint the pod does not tolerate evicts it at once; one it
//! tolerates with `tolerationSeconds` evicts it that long after the taint was added (the
//! shortest such toleration wins); a toleration without seconds keeps it.

use k8s_openapi::api::core::v1::{Pod, Taint};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rkube_api::taints::{tolerating, NO_EXECUTE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No NoExecute taint applies, or the pod tolerates them all for ever.
    Keep,
    /// Evict at this time (in the past: now).
    EvictAt(Timestamp),
}

/// What to do with `pod` on a node with `taints`; `fallback_added` stands in for a taint's
/// missing `timeAdded`.
pub fn decide(pod: &Pod, taints: &[Taint], fallback_added: Timestamp) -> Decision {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut at: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let matching = tolerating(&tolerations, taint);
        if matching.is_empty() {
            return Decision::EvictAt(Timestamp::UNIX_EPOCH);
        }
        // Tolerated for ever by any toleration without seconds.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint.time_added.as_ref().map_or(fallback_added, |t| t.0);
        let deadline = added
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(Timestamp::MAX);
        at = Some(at.map_or(deadline, |a| a.min(deadline)));
    }
    at.map_or(Decision::Keep, Decision::EvictAt)
}
