//! Which surplus pods a ReplicaSet deletes first: Kubernetes' `ActivePodsWithRanks`
//! order, so scaling down removes the pods that serve least.
//!
//! Earlier in the order (deleted first):
//! 1. unscheduled before scheduled;
//! 2. Pending, then Unknown, then Running (any other phase ranks as Pending);
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. on a node crowded with more pods of the same workload first (the rank);
//! 6. both ready: ready for less time first;
//! 7. more container restarts first;
//! 8. created more recently first.
//!
//! Times (6, 8) are compared on a log2 scale of their age at `now` (Kubernetes'
//! LogarithmicScaleDown), and pods alike in every rank are ordered by UID, so pods of
//! similar age are picked pseudo-randomly rather than always the very newest. Every key is
//! compared in turn, so the order is total (sorting with anything less panics).
//!
//! Pure: sorts what it is given.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// The annotation that tells a ReplicaSet which of its pods cost less to delete.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `count` pods of `pods` to delete first. `related` are the active pods of the
/// workload (this ReplicaSet's and its siblings' under one Deployment), whose spread
/// over nodes ranks crowded nodes first.
pub fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if count >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(pods::node_name(p)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> = pods
        .iter()
        .map(|p| (on_node.get(pods::node_name(p)).copied().unwrap_or(0), p))
        .collect();
    ranked.sort_by(|a, b| compare(a.1, a.0, b.1, b.0, now));
    ranked
        .into_iter()
        .take(count)
        .map(|(_, p)| p.clone())
        .collect()
}

fn phase_ordinal(p: &Pod) -> u8 {
    match pods::phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// The pod's deletion cost (0 when absent or not an int32, as Kubernetes reads it).
pub fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Less = delete first. `ra`/`rb`: pods of the workload on the pod's node.
pub fn compare(a: &Pod, ra: usize, b: &Pod, rb: usize, now: Timestamp) -> Ordering {
    let (na, nb) = (pods::node_name(a), pods::node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return nb.is_empty().cmp(&na.is_empty());
    }
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ready_a, ready_b) = (pods::is_ready(a), pods::is_ready(b));
    if ready_a != ready_b {
        return ready_a.cmp(&ready_b);
    }
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if ra != rb {
        return rb.cmp(&ra);
    }
    if ready_a && ready_b {
        let by_ready_time = newer_first(pods::ready_since(a), pods::ready_since(b), now);
        if by_ready_time != Ordering::Equal {
            return by_ready_time;
        }
    }
    let by_restarts = pods::max_restarts(b).cmp(&pods::max_restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let by_created = newer_first(created(a), created(b), now);
    if by_created != Ordering::Equal {
        return by_created;
    }
    // Last, the UID: pods alike in every other way are picked pseudo-randomly.
    uid(a).cmp(uid(b))
}

fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or("")
}

fn created(p: &Pod) -> Option<Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Unknown times first, then the more recent, compared in log2 buckets of age at `now`
/// (equal buckets are equal: the caller breaks the tie, so the order stays total).
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, now: Timestamp) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => log_age(a, now).cmp(&log_age(b, now)),
    }
}

/// floor(log2(age in nanoseconds)), -1 for no age: Kubernetes' logarithmic rank.
pub fn log_age(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos <= 0 {
        return -1;
    }
    i64::from(127 - (nanos as u128).leading_zeros() as i32)
}

#[cfg(test)]
mod tests;
