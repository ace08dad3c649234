//! What controllers read off a pod, as Kubernetes' `podutil` and `controller_utils`
//! define it: whether it is active (counts towards a workload), ready, and available
//! (ready for at least `minReadySeconds`).
//!
//! Pure functions of the pod and the time given; never reads a clock or the API.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// Not finished (Succeeded/Failed) and not being deleted: the pods a ReplicaSet counts.
pub fn is_active(pod: &Pod) -> bool {
    let phase = phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// `status.phase` ("" when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// When the pod last turned ready (`Ready=True`'s lastTransitionTime), if it is ready
/// and the time is known.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` at `now` (any ready pod when it is 0).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(since) => {
            since.as_millisecond() + i64::from(min_ready_seconds) * 1000 < now.as_millisecond()
        }
        None => false,
    }
}

/// When a ready pod that is not yet available becomes available, in milliseconds from
/// `now` (None when it already is, or never will without a change).
pub fn available_in_ms(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<i64> {
    if min_ready_seconds <= 0 || is_available(pod, min_ready_seconds, now) {
        return None;
    }
    let since = ready_since(pod)?;
    // Availability needs the deadline strictly passed: one millisecond beyond it.
    Some(
        (since.as_millisecond() + i64::from(min_ready_seconds) * 1000 + 1 - now.as_millisecond())
            .max(0),
    )
}

/// The highest restart count of the pod's containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// `spec.nodeName` ("" when unscheduled).
pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

#[cfg(test)]
mod tests;
