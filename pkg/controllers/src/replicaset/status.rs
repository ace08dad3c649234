//! A ReplicaSet's status from its pods (Kubernetes' `calculateStatus`): how many it has,
//! how many carry every label of the template, how many are ready and available, and the
//! `ReplicaFailure` condition while creating or deleting pods fails.
//!
//! Pure: computes and compares; the controller writes the result through
//! `replicasets/status`, only when [`needs_update`] says so.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Why managing replicas failed this round, for the `ReplicaFailure` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// The status `rs` should have with `pods` (its active, claimed pods) at `now`.
/// `failure`: this round's create/delete failure, if any.
pub fn calculate(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    failure: Option<&Failure>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let (mut labeled, mut ready, mut available) = (0, 0, 0);
    for p in pods {
        let labels = p.metadata.labels.as_ref();
        if template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            labeled += 1;
        }
        if pods::is_ready(p) {
            ready += 1;
            if pods::is_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let mut status = rs.status.clone().unwrap_or_default();
    let mut conditions = status.conditions.take().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(seconds(now))),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    status.conditions = Some(conditions).filter(|c| !c.is_empty());
    status.replicas = pods.len() as i32;
    status.fully_labeled_replicas = nonzero(labeled);
    status.ready_replicas = nonzero(ready);
    status.available_replicas = nonzero(available);
    status
}

/// Kubernetes omits zero counts; so do we, so a status read back compares equal.
fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `now` to the second: what a `Time` keeps once stored.
pub fn seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Whether `new` differs from what `rs` has, or `rs`'s generation was not observed yet
/// (Kubernetes' `updateReplicaSetStatus` short-cut).
pub fn needs_update(rs: &ReplicaSet, new: &ReplicaSetStatus) -> bool {
    let old = rs.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    old.replicas != new.replicas
        || n(old.fully_labeled_replicas) != n(new.fully_labeled_replicas)
        || n(old.ready_replicas) != n(new.ready_replicas)
        || n(old.available_replicas) != n(new.available_replicas)
        || old.conditions.unwrap_or_default() != new.conditions.clone().unwrap_or_default()
        || rs.metadata.generation != old.observed_generation
}

/// When to look again so ready pods are counted available once `minReadySeconds` passed:
/// the earliest moment one of `pods` becomes available, in milliseconds from `now`.
pub fn next_availability_check(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp) -> Option<i64> {
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    pods.iter()
        .filter_map(|p| pods::available_in_ms(p, min_ready, now))
        .min()
}

#[cfg(test)]
mod tests;
