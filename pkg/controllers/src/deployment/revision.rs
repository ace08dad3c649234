//! Revision bookkeeping, in the annotations `kubectl rollout history` and `rollout undo`
//! read: each ReplicaSet's `deployment.kubernetes.io/revision` (the new one always the
//! highest), the revisions a ReplicaSet had before it became new again
//! (`revision-history`), the Deployment annotations copied onto its new ReplicaSet
//! (`kubernetes.io/change-cause` among them), the `desired-replicas`/`max-replicas` a
//! scaling event measures proportions by, and which old ReplicaSets
//! `revisionHistoryLimit` lets go.
//!
//! Pure: reads and edits objects in memory.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicas::{self, spec_replicas};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The old `spec.rollbackTo` carried as an annotation (extensions/v1beta1); never copied.
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The longest `revision-history` kept, in characters (Kubernetes' default).
pub const MAX_HISTORY_CHARS: usize = 2000;

/// Deployment annotations that are not copied onto its ReplicaSets.
pub fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The ReplicaSet's revision (0 when it has none or an unreadable one).
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `rss` (0 for none).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(revision).max().unwrap_or(0)
}

pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

fn set(rs: &mut ReplicaSet, key: &str, value: String) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    if a.get(key) == Some(&value) {
        return false;
    }
    a.insert(key.to_string(), value);
    true
}

/// Copies the Deployment's annotations (but [`skip_copy`] ones) onto `rs`; never removes
/// any. Returns whether anything changed.
pub fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !skip_copy(k) {
            changed |= set(rs, k, v.clone());
        }
    }
    changed
}

/// Sets `desired-replicas` and `max-replicas`. Returns whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = set(rs, DESIRED_REPLICAS, desired.to_string());
    let b = set(rs, MAX_REPLICAS, max.to_string());
    a || b
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    desired_replicas(rs) != Some(desired) || max_replicas(rs) != Some(max)
}

/// Readies the new ReplicaSet's annotations (Kubernetes' `SetNewReplicaSetAnnotations`):
/// the Deployment's annotations, `new_revision` unless it already has a higher one (and,
/// when it had a revision before, that one appended to its `revision-history`), and for
/// one about to be created the replica annotations. Returns whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let old = annotation(rs, REVISION).map(str::to_string);
    let old_revision = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(r)) => r,
        // Not ours to fix: leave it as it is.
        Some(Err(_)) => return changed,
    };
    if old_revision < new_revision {
        set(rs, REVISION, new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            // It was an old ReplicaSet and is new again (a rollback): remember what it was.
            let history = annotation(rs, REVISION_HISTORY).unwrap_or("").to_string();
            let joined = append_history(&history, &old, MAX_HISTORY_CHARS);
            set(rs, REVISION_HISTORY, joined);
        }
    }
    if !exists {
        let desired = replicas::desired(d);
        changed |= set_replicas_annotations(rs, desired, desired + replicas::max_surge(d));
    }
    changed
}

/// `history` with `revision` appended, dropping the oldest entries to stay within
/// `max_chars`.
pub fn append_history(history: &str, revision: &str, max_chars: usize) -> String {
    if history.is_empty() {
        return revision.to_string();
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + revision.len() + 1;
    let mut start = 0;
    while total > max_chars && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > max_chars {
        // Not even the new entry alone fits; keep what was there.
        return history.to_string();
    }
    entries.drain(..start);
    entries.push(revision);
    entries.join(",")
}

/// Oldest first; ties by name (Kubernetes' `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Lowest revision first; ties oldest first (Kubernetes' `ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// The old ReplicaSets `revisionHistoryLimit` lets go, lowest revision first: beyond
/// the limit, those already scaled to 0, with no pods left and their generation
/// observed (Kubernetes' `cleanupDeployment`). No limit: none.
pub fn history_to_delete<'a>(old: &[&'a ReplicaSet], limit: Option<i32>) -> Vec<&'a ReplicaSet> {
    let Some(limit) = limit else {
        return vec![];
    };
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let surplus = alive.len() as i64 - i64::from(limit.max(0));
    if surplus <= 0 {
        return vec![];
    }
    alive.sort_by(|a, b| by_revision(a, b));
    alive
        .into_iter()
        .take(surplus as usize)
        .filter(|rs| {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            replicas::status_replicas(rs) == 0
                && spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed.unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests;
