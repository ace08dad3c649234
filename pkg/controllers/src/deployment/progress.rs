//! A Deployment's status and conditions, as Kubernetes' `sync.go` and `progress.go`
//! compute them: replica counts summed over its ReplicaSets; `Available`
//! (MinimumReplicasAvailable / MinimumReplicasUnavailable); `Progressing` with
//! NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated (every step of progress
//! renews its lastUpdateTime), NewReplicaSetAvailable (complete),
//! ProgressDeadlineExceeded (no progress for `progressDeadlineSeconds`),
//! DeploymentPaused/DeploymentResumed, ReplicaSetCreateError; and a ReplicaSet's
//! `ReplicaFailure` carried up.
//!
//! These are exactly the fields `kubectl rollout status` reads.
//!
//! Pure: every function takes the time it should consider "now".

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::replicas::{self, desired};

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const RS_CREATE_ERROR: &str = "ReplicaSetCreateError";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// `now` to the second: what a `Time` keeps once stored, so a condition read back
/// compares equal to the one written.
pub fn seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Go's `%q` of a name (names have nothing to escape).
pub fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> DeploymentCondition {
    let t = Some(Time(seconds(now)));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: t.clone(),
        last_transition_time: t,
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets `c` (Kubernetes' `SetDeploymentCondition`): nothing changes when a condition of
/// its type has its status and reason already; a status that stays keeps its
/// lastTransitionTime.
pub fn set(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(status, &c.type_);
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

/// A `progressDeadlineSeconds` is set (and is not "never", MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|p| p != i32::MAX)
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The status from the ReplicaSets (Kubernetes' `calculateStatus`): counts summed,
/// `observedGeneration` the Deployment's generation, the conditions of `current` with
/// `Available` brought up to date.
pub fn calculate(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    current: &DeploymentStatus,
    now: Timestamp,
) -> DeploymentStatus {
    let available = replicas::sum_available(all.iter().copied());
    let total = replicas::sum_spec(all.iter().copied());
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(replicas::sum_status(all.iter().copied())),
        updated_replicas: nonzero(new.map_or(0, replicas::status_replicas)),
        ready_replicas: nonzero(replicas::sum_ready(all.iter().copied())),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero((total - available).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    let c = if available >= desired(d) - replicas::max_unavailable(d) {
        condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set(&mut status, c);
    status
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Every replica updated and available, none old, this generation observed.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = desired(d);
    n(s.updated_replicas) == want
        && n(s.replicas) == want
        && n(s.available_replicas) == want
        && s.observed_generation >= d.metadata.generation
}

/// More updated, fewer old, more ready or more available than before.
pub fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

fn deadline_seconds(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(0),
    )
}

/// No progress since the Progressing condition was last updated, for longer than the
/// deadline (Kubernetes' `DeploymentTimedOut`).
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get(s, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| {
            (t.0.as_millisecond() + deadline_seconds(d) * 1000) < now.as_millisecond()
        }),
    }
}

/// The status a rolling or recreating sync leaves (Kubernetes' `syncRolloutStatus`):
/// [`calculate`], then Progressing moved on (complete, progressing, or timed out), and
/// the ReplicaSets' ReplicaFailure carried up. `current`: the status as this sync has it.
pub fn rollout_status(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    current: &DeploymentStatus,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(all, new, d, current, now);
    if !has_progress_deadline(d) {
        remove(&mut status, PROGRESSING);
    }
    let cur = get(current, PROGRESSING);
    let is_complete = n(status.replicas) == n(status.updated_replicas)
        && cur.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if has_progress_deadline(d) && !is_complete {
        let rs_name = new.and_then(|rs| rs.metadata.name.clone());
        let d_name = d.metadata.name.clone().unwrap_or_default();
        if complete(d, &status) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet {} has successfully progressed.", quoted(n)),
                None => format!(
                    "Deployment {} has successfully progressed.",
                    quoted(&d_name)
                ),
            };
            set(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &msg, now),
            );
        } else if progressing(current, &status) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet {} is progressing.", quoted(n)),
                None => format!("Deployment {} is progressing.", quoted(&d_name)),
            };
            let mut c = condition(PROGRESSING, "True", RS_UPDATED, &msg, now);
            // Progress renews lastUpdateTime even when the reason stays; a status that
            // stays True keeps its transition time.
            if let Some(cur) = cur {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove(&mut status, PROGRESSING);
            }
            set(&mut status, c);
        } else if timed_out(d, &status, now) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet {} has timed out progressing.", quoted(n)),
                None => format!("Deployment {} has timed out progressing.", quoted(&d_name)),
            };
            set(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, &msg, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(c) => set(&mut status, c),
        None => remove(&mut status, REPLICA_FAILURE),
    }
    status
}

/// The new ReplicaSet's ReplicaFailure condition, else an old one's, as a Deployment
/// condition.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let of = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new.and_then(of)
        .or_else(|| all.iter().find_map(|rs| of(rs)))
}

/// When to look again for a deadline that may pass without any other change (Kubernetes'
/// `requeueStuckDeployment`), in milliseconds from `now`: None when there is no deadline
/// to watch (none set, complete, or already exceeded).
pub fn recheck_in_ms(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<i64> {
    let c = get(status, PROGRESSING)?;
    if !has_progress_deadline(d) || complete(d, status) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    // A Progressing condition without a time cannot time out.
    let last = c.last_update_time.as_ref()?.0.as_millisecond();
    let after = last + deadline_seconds(d) * 1000 - now.as_millisecond();
    // A second more, so the deadline has certainly passed when we look.
    Some(after.max(0) + 1000)
}

/// Paused and resumed as the Progressing condition tells them (Kubernetes'
/// `checkPausedConditions`): a paused Deployment does not time out, and a resumed one
/// starts its deadline afresh. A deadline already exceeded stays reported.
pub fn paused_conditions(d: &Deployment, status: &mut DeploymentStatus, now: Timestamp) {
    if !has_progress_deadline(d) {
        return;
    }
    let reason = get(status, PROGRESSING).and_then(|c| c.reason.clone());
    if reason.as_deref() == Some(TIMED_OUT) {
        return;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let paused_shown = reason.as_deref() == Some(PAUSED);
    if paused && !paused_shown {
        set(
            status,
            condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now),
        );
    } else if !paused && paused_shown {
        set(
            status,
            condition(
                PROGRESSING,
                "Unknown",
                RESUMED,
                "Deployment is resumed",
                now,
            ),
        );
    }
}

#[cfg(test)]
mod tests;
