//! Node health, without I/O: when a node counts as silent, what its conditions become
//! then, and which taints its Ready condition calls for.
//!
//! A node is heard from when its Lease in `kube-node-lease` is renewed or its Ready
//! condition's heartbeat moves; the controller notes the *local* time it saw either change
//! (so the kubelet's clock does not matter). Silent for longer than the grace period:
//! Ready, MemoryPressure, DiskPressure and PIDPressure become Unknown ("Kubelet stopped
//! posting node status.", or "...never posted..." for a node that never reported).

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rkube_api::taints::{NOT_READY, NO_EXECUTE, NO_SCHEDULE, UNREACHABLE, UNSCHEDULABLE};

/// The conditions the controller turns Unknown for a silent node.
pub const WATCHED_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The node's Ready condition status ("True", "False", "Unknown"), if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// What the kubelet last said: the Ready heartbeat, as text (changes are what matter).
pub fn heartbeat(node: &Node) -> Option<String> {
    condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string())
}

/// The conditions of a node that went silent: every watched condition Unknown, keeping
/// the others. `None` when they already are (nothing to write).
pub fn silent_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for kind in WATCHED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: kind.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

fn is_ours(t: &Taint) -> bool {
    matches!(t.key.as_str(), NOT_READY | UNREACHABLE | UNSCHEDULABLE)
        && (t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE)
}

/// The node's taints as its Ready condition and `spec.unschedulable` call for: Ready
/// False → `not-ready` NoSchedule and NoExecute, Unknown (or none) → `unreachable`
/// NoSchedule and NoExecute, True → neither; cordoned → `unschedulable` NoSchedule.
/// Taints of other keys are kept, and a taint the node already has keeps its `timeAdded`
/// (eviction deadlines count from it). `None` when nothing changes.
pub fn desired_taints(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let key = match ready_status(node) {
        Some("True") => None,
        Some("False") => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    };
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if let Some(k) = key {
        wanted.push((k, NO_SCHEDULE));
        wanted.push((k, NO_EXECUTE));
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    let mut next: Vec<Taint> = current.iter().filter(|t| !is_ours(t)).cloned().collect();
    for (k, effect) in wanted {
        let existing = current.iter().find(|t| t.key == k && t.effect == effect);
        next.push(existing.cloned().unwrap_or_else(|| Taint {
            key: k.to_string(),
            value: None,
            effect: effect.to_string(),
            time_added: (effect == NO_EXECUTE).then_some(Time(now)),
        }));
    }
    let same = next.len() == current.len() && next.iter().all(|t| current.contains(t));
    (!same).then_some(next)
}
