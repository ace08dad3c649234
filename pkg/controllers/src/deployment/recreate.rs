//! The Recreate strategy (Kubernetes' `recreate.go`): every old ReplicaSet to 0 first,
//! then, once no old pod is left running (terminal pods aside), the new ReplicaSet
//! created and scaled to `replicas` at once. Old and new pods never run together.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use rkube_runtime::object::controller_of;
use rkube_runtime::store::INDEX_OWNER;

use super::replicas::{self, desired, is_active, spec_replicas};
use super::sync::{rs_name, Rollout};
use super::Error;
use crate::pods;

/// Whether an old pod may still be running: an old ReplicaSet still counts pods, or a
/// pod controlled by one that is not the new ReplicaSet is in any phase but Succeeded or
/// Failed (Unknown included: it may be running where we cannot see).
pub fn old_pods_running(
    new: Option<&ReplicaSet>,
    old: &[&ReplicaSet],
    pods_by_rs: &HashMap<String, Vec<Arc<Pod>>>,
) -> bool {
    if replicas::sum_status(old.iter().copied()) > 0 {
        return true;
    }
    let new_uid = new.and_then(|rs| rs.metadata.uid.as_deref());
    pods_by_rs
        .iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, pods)| pods)
        .any(|p| !matches!(pods::phase(p), "Succeeded" | "Failed"))
}

impl Rollout<'_> {
    /// The pods of each of the Deployment's ReplicaSets, by ReplicaSet UID, from the
    /// cache (terminating ones included: they may still run).
    fn pods_by_rs(&self) -> HashMap<String, Vec<Arc<Pod>>> {
        let cache = self.st.pods.snapshot();
        self.rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|uid| {
                let pods = cache
                    .by_index(INDEX_OWNER, &uid)
                    .into_iter()
                    .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
                    .collect();
                (uid, pods)
            })
            .collect()
    }

    /// One sync of a Recreate rollout (Kubernetes' `rolloutRecreate`). Returns when to
    /// look again for a progress deadline.
    pub async fn recreate(&mut self) -> Result<Option<i64>, Error> {
        self.sync_revision(false).await?;
        let old: Vec<String> = self
            .old_rss()
            .into_iter()
            .filter(|rs| is_active(rs))
            .map(rs_name)
            .collect();
        let mut scaled_down = false;
        for name in old {
            scaled_down |= self.scale_rs(&name, 0).await?;
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        if old_pods_running(self.new_rs(), &self.old_rss(), &self.pods_by_rs()) {
            return self.sync_rollout_status().await;
        }
        if self.new.is_none() {
            self.sync_revision(true).await?;
        }
        if let Some(new) = self.new_rs() {
            if spec_replicas(new) != desired(&self.d) {
                let name = rs_name(new);
                self.scale_rs(&name, desired(&self.d)).await?;
            }
        }
        if super::progress::complete(&self.d, &self.status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }
}

#[cfg(test)]
mod tests;
