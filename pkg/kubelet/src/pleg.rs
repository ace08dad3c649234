//! The pod lifecycle event generator: relists the runtime's sandboxes and containers of
//! this node every period, and queues a sync of each pod whose containers changed state
//! (so a crash, an exit or an OOM kill is noticed without being asked). Every few relists
//! it also removes what runs for pods that no longer exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkube_runtime::{ObjectKey, WorkQueue};
use tokio_util::sync::CancellationToken;

use crate::cri::{self, pb};
use crate::metrics::Metrics;
use crate::pods::Kubelet;

/// A pod's runtime state as a comparable value: its sandboxes' and containers' ids and
/// states.
type Fingerprint = Vec<(String, i32)>;

/// The pods (uid → key and fingerprint) in one relist. Pure.
pub fn fingerprints(
    sandboxes: &[pb::PodSandbox],
    containers: &[pb::Container],
) -> BTreeMap<String, (ObjectKey, Fingerprint)> {
    let mut out: BTreeMap<String, (ObjectKey, Fingerprint)> = BTreeMap::new();
    let label = |labels: &std::collections::HashMap<String, String>, k: &str| {
        labels.get(k).cloned().unwrap_or_default()
    };
    for s in sandboxes {
        let uid = label(&s.labels, cri::LABEL_POD_UID);
        let key = ObjectKey::new(
            label(&s.labels, cri::LABEL_POD_NAMESPACE),
            label(&s.labels, cri::LABEL_POD_NAME),
        );
        out.entry(uid)
            .or_insert_with(|| (key, Vec::new()))
            .1
            .push((s.id.clone(), s.state));
    }
    for c in containers {
        let uid = label(&c.labels, cri::LABEL_POD_UID);
        let key = ObjectKey::new(
            label(&c.labels, cri::LABEL_POD_NAMESPACE),
            label(&c.labels, cri::LABEL_POD_NAME),
        );
        out.entry(uid)
            .or_insert_with(|| (key, Vec::new()))
            .1
            .push((c.id.clone(), 100 + c.state));
    }
    for (_, f) in out.values_mut() {
        f.sort();
    }
    out
}

/// Relists until `shutdown`; see the module documentation.
pub async fn run(
    kubelet: Arc<Kubelet>,
    queue: WorkQueue<ObjectKey>,
    period: Duration,
    shutdown: CancellationToken,
) {
    let metrics = Metrics::get();
    let node = kubelet.config.node_name.clone();
    let filter = [(cri::LABEL_NODE, node.as_str())];
    let mut last: BTreeMap<String, (ObjectKey, Fingerprint)> = BTreeMap::new();
    let mut tick = tokio::time::interval(period);
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        round += 1;
        let started = Instant::now();
        let listed = futures::future::try_join(
            kubelet.cri.list_pod_sandbox(&filter),
            kubelet.cri.list_containers(&filter),
        )
        .await;
        metrics.pleg_relist.observe(started.elapsed().as_secs_f64());
        let (sandboxes, containers) = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %rkube_component::error_chain(&e), "PLEG relist failed");
                continue;
            }
        };
        metrics.running_pods.set(
            sandboxes
                .iter()
                .filter(|s| s.state == pb::PodSandboxState::SandboxReady as i32)
                .count() as i64,
        );
        metrics.running_containers.set(
            containers
                .iter()
                .filter(|c| c.state == pb::ContainerState::ContainerRunning as i32)
                .count() as i64,
        );
        let now = fingerprints(&sandboxes, &containers);
        for (uid, (key, f)) in &now {
            if last.get(uid).map(|(_, g)| g) != Some(f) {
                queue.add(key.clone());
            }
        }
        for (uid, (key, _)) in &last {
            if !now.contains_key(uid) {
                queue.add(key.clone());
            }
        }
        if round.is_multiple_of(2) && kubelet.pods.has_synced() {
            let uids = now
                .iter()
                .map(|(uid, (k, _))| (uid.clone(), (k.namespace.clone(), k.name.clone())))
                .collect();
            kubelet.cleanup_orphans(&uids).await;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(uid: &str) -> std::collections::HashMap<String, String> {
        [
            (cri::LABEL_POD_UID, uid),
            (cri::LABEL_POD_NAMESPACE, "ns"),
            (cri::LABEL_POD_NAME, "p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn a_container_changing_state_changes_its_pods_fingerprint_only() {
        let sandbox = |uid: &str| pb::PodSandbox {
            id: format!("s-{uid}"),
            labels: labels(uid),
            ..Default::default()
        };
        let container = |uid: &str, state: pb::ContainerState| pb::Container {
            id: format!("c-{uid}"),
            state: state as i32,
            labels: labels(uid),
            ..Default::default()
        };
        let before = fingerprints(
            &[sandbox("a"), sandbox("b")],
            &[
                container("a", pb::ContainerState::ContainerRunning),
                container("b", pb::ContainerState::ContainerRunning),
            ],
        );
        let after = fingerprints(
            &[sandbox("a"), sandbox("b")],
            &[
                container("a", pb::ContainerState::ContainerExited),
                container("b", pb::ContainerState::ContainerRunning),
            ],
        );
        assert_ne!(before["a"], after["a"]);
        assert_eq!(before["b"], after["b"]);
        assert_eq!(before["a"].0, ObjectKey::new("ns", "p"));
    }
}
