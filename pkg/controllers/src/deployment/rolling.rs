//! The RollingUpdate strategy (Kubernetes' `rolling.go`): grow the new ReplicaSet as far
//! as maxSurge allows ([`new_rs_target`]), shrink old ones as far as maxUnavailable allows
//! ([`old_rs_plan`]: first old pods that are not available anyway, oldest ReplicaSets
//! first, then available ones), one step per sync, each sync waking the next through the
//! ReplicaSets' status changes.
//!
//! The bounds hold on the sums of `spec.replicas` and of the ReplicaSets' available
//! counts: at most `replicas + maxSurge` pods are wanted at any time, and no step takes
//! the available count below `replicas - maxUnavailable`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicas::{self, available, desired, is_active, max_unavailable, spec_replicas};
use super::revision::by_creation;
use super::sync::{rs_name, Rollout};
use super::Error;

/// The new ReplicaSet's next size, when it should change (Kubernetes'
/// `reconcileNewReplicaSet`): down to `replicas` if above, else as far as the surge
/// allows.
pub fn new_rs_target(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> Option<i32> {
    let (current, want) = (spec_replicas(new), desired(d));
    let target = if current > want {
        want
    } else {
        replicas::new_rs_new_replicas(d, all, new)
    };
    (target != current).then_some(target)
}

/// The old ReplicaSets' next sizes (Kubernetes' `reconcileOldReplicaSets`), as
/// (name, size), at most one per ReplicaSet.
pub fn old_rs_plan(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> Vec<(String, i32)> {
    let new_name = rs_name(new);
    let old: Vec<&ReplicaSet> = all
        .iter()
        .copied()
        .filter(|rs| rs_name(rs) != new_name)
        .collect();
    if replicas::sum_spec(old.iter().copied()) == 0 {
        return vec![];
    }
    let all_pods = replicas::sum_spec(all.iter().copied());
    let min_available = desired(d) - max_unavailable(d);
    let new_unavailable = spec_replicas(new) - counted(new);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return vec![];
    }
    let mut active: Vec<(&ReplicaSet, i32)> = old
        .iter()
        .copied()
        .filter(|rs| is_active(rs))
        .map(|rs| (rs, spec_replicas(rs)))
        .collect();
    active.sort_by(|a, b| by_creation(a.0, b.0));

    // Unavailable old pods first: removing them costs no availability.
    let mut cleaned = 0;
    for (rs, size) in active.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *size - available(rs);
        if *size == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(unhealthy);
        *size -= n;
        cleaned += n;
    }

    // Then available ones, down to the minimum availability.
    let available_now: i32 = active.iter().map(|(rs, _)| counted(rs)).sum::<i32>() + counted(new);
    if available_now > min_available {
        let total = available_now - min_available;
        let mut scaled = 0;
        for (_, size) in active.iter_mut() {
            if scaled >= total {
                break;
            }
            if *size == 0 {
                continue;
            }
            let n = (*size).min(total - scaled);
            *size -= n;
            scaled += n;
        }
    }
    active
        .into_iter()
        .filter(|(rs, size)| spec_replicas(rs) != *size)
        .map(|(rs, size)| (rs_name(rs), size))
        .collect()
}

/// A ReplicaSet's available pods that will stay: at most its spec. Its status can count
/// more for a moment (the spec was just lowered, the surplus pods are not deleted yet);
/// those are about to go and must not pay for more scale-down elsewhere.
fn counted(rs: &ReplicaSet) -> i32 {
    available(rs).min(spec_replicas(rs))
}

impl Rollout<'_> {
    /// One sync of a rolling update (Kubernetes' `rolloutRolling`). Returns when to look
    /// again for a progress deadline.
    pub async fn rolling(&mut self) -> Result<Option<i64>, Error> {
        self.sync_revision(true).await?;
        let Some(new) = self.new_rs().cloned() else {
            return self.sync_rollout_status().await;
        };
        if let Some(to) = new_rs_target(&self.d, &self.all(), &new) {
            if self.scale_rs(&rs_name(&new), to).await? {
                return self.sync_rollout_status().await;
            }
        }
        let new = self.new_rs().cloned().unwrap_or(new);
        let mut scaled_down = false;
        for (name, to) in old_rs_plan(&self.d, &self.all(), &new) {
            scaled_down |= self.scale_rs(&name, to).await?;
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        if super::progress::complete(&self.d, &self.status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }
}

#[cfg(test)]
mod tests;
