//! One sync of a Deployment: the [`Rollout`] every strategy works on (the Deployment,
//! its claimed ReplicaSets and the status being built), and the steps all of them share
//! (Kubernetes' `sync.go`): finding or creating the new ReplicaSet and keeping revisions
//! in step, scaling one ReplicaSet (with the ScalingReplicaSet event), spreading a
//! scaling event over the ReplicaSets in proportion ([`scale_plan`]), pruning history,
//! and writing the status.
//!
//! Writes are conditional: a ReplicaSet is replaced with the resourceVersion its copy
//! came with, the Deployment's revision annotation is patched with its resourceVersion as
//! a precondition, the status is replaced likewise. A write refused because the object
//! moved ends the sync with an error and the Deployment is synced again from fresh
//! caches; this is what keeps maxSurge and maxUnavailable true when caches lag.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use rkube_client::{Api, DeleteParams, PatchType, WriteParams};
use rkube_runtime::object::{controller_of, now};
use rkube_runtime::{EventType, ObjectKey};
use serde_json::json;

use super::progress::{self, has_progress_deadline, quoted};
use super::replicas::{self, desired, is_active, max_surge, spec_replicas};
use super::revision::{self, by_creation};
use super::template::{self, equal_ignore_hash};
use super::{Error, State};

/// A Deployment being synced: what it is, what it owns, and the status so far.
pub(super) struct Rollout<'a> {
    pub st: &'a State,
    pub key: ObjectKey,
    /// The Deployment; its metadata follows this sync's own writes.
    pub d: Deployment,
    /// The status as stored when the sync began.
    pub stored: DeploymentStatus,
    /// The status as this sync has it so far (conditions it set, the collision count).
    pub status: DeploymentStatus,
    /// Its ReplicaSets; each follows this sync's writes to it.
    pub rss: Vec<ReplicaSet>,
    /// Which of them is the new one (its template is the Deployment's).
    pub new: Option<usize>,
    pub now: Timestamp,
}

impl<'a> Rollout<'a> {
    pub fn new(st: &'a State, key: ObjectKey, d: Deployment, rss: Vec<ReplicaSet>) -> Self {
        let stored = d.status.clone().unwrap_or_default();
        let new = template::find_new(&d, &rss);
        Rollout {
            st,
            key,
            status: stored.clone(),
            stored,
            d,
            rss,
            new,
            now: now(),
        }
    }

    pub fn new_rs(&self) -> Option<&ReplicaSet> {
        self.new.map(|i| &self.rss[i])
    }

    /// Every ReplicaSet but the new one.
    pub fn old_rss(&self) -> Vec<&ReplicaSet> {
        self.rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.new)
            .map(|(_, rs)| rs)
            .collect()
    }

    pub fn all(&self) -> Vec<&ReplicaSet> {
        self.rss.iter().collect()
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.rss
            .iter()
            .position(|rs| rs.metadata.name.as_deref() == Some(name))
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(&self.st.client, &self.key.namespace)
    }

    fn name(&self) -> String {
        self.d.metadata.name.clone().unwrap_or_default()
    }

    /// Finds the new ReplicaSet (creating it when `create` and there is none) and brings
    /// revisions in step (Kubernetes' `getAllReplicaSetsAndSyncRevision`).
    pub async fn sync_revision(&mut self, create: bool) -> Result<(), Error> {
        let new_revision = revision::max_revision(self.old_rss()) + 1;
        match self.new {
            Some(i) => {
                let mut copy = self.rss[i].clone();
                let annotated =
                    revision::set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
                let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
                let spec = copy.spec.get_or_insert_with(Default::default);
                let min_ready_changed = spec.min_ready_seconds != min_ready;
                spec.min_ready_seconds = min_ready;
                if annotated || min_ready_changed {
                    self.rss[i] = self.update_rs(&copy).await?;
                }
                let rev = revision::revision(&self.rss[i]).to_string();
                self.set_deployment_revision(&rev).await?;
                if has_progress_deadline(&self.d)
                    && progress::get(&self.status, progress::PROGRESSING).is_none()
                {
                    let msg = format!("Found new replica set {}", quoted(&rs_name(&self.rss[i])));
                    progress::set(
                        &mut self.status,
                        progress::condition(
                            progress::PROGRESSING,
                            "True",
                            progress::FOUND_NEW_RS,
                            &msg,
                            self.now,
                        ),
                    );
                }
                Ok(())
            }
            None if create => self.create_new_rs(new_revision).await,
            None => Ok(()),
        }
    }

    async fn create_new_rs(&mut self, new_revision: i64) -> Result<(), Error> {
        let hash = template::template_hash(
            &self.d.spec.clone().unwrap_or_default().template,
            self.status.collision_count,
        );
        let mut rs = template::new_replica_set(&self.d, &hash, 0);
        let replicas = {
            let mut all = self.all();
            all.push(&rs);
            replicas::new_rs_new_replicas(&self.d, &all, &rs)
        };
        rs.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        revision::set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        // The trace goes on from the Deployment (copied with its annotations above), or
        // from this sync when the Deployment carries none.
        rkube_runtime::trace::annotate(&mut rs.metadata);
        let name = rs_name(&rs);
        match self.rs_api().create(&rs, &WriteParams::default()).await {
            Ok(created) => {
                if replicas > 0 {
                    self.event(
                        EventType::Normal,
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {name} from 0 to {replicas}"),
                    );
                }
                self.rss.push(created);
                self.new = Some(self.rss.len() - 1);
                self.set_deployment_revision(&new_revision.to_string())
                    .await?;
                if has_progress_deadline(&self.d) {
                    let msg = format!("Created new replica set {}", quoted(&name));
                    progress::set(
                        &mut self.status,
                        progress::condition(
                            progress::PROGRESSING,
                            "True",
                            progress::NEW_RS_CREATED,
                            &msg,
                            self.now,
                        ),
                    );
                }
                Ok(())
            }
            Err(e) if e.is_already_exists() => self.adopt_existing(&name, e).await,
            Err(e) if is_namespace_terminating(&e) => Err(Error::CreateReplicaSet {
                key: self.key.clone(),
                source: e,
            }),
            Err(e) => {
                let msg = format!("Failed to create new replica set {}: {e}", quoted(&name));
                if has_progress_deadline(&self.d) {
                    progress::set(
                        &mut self.status,
                        progress::condition(
                            progress::PROGRESSING,
                            "False",
                            progress::RS_CREATE_ERROR,
                            &msg,
                            self.now,
                        ),
                    );
                    // Best effort: the failure to create is what gets reported.
                    let _ = self.write_status(self.status.clone()).await;
                }
                self.event(EventType::Warning, progress::RS_CREATE_ERROR, &msg);
                Err(Error::CreateReplicaSet {
                    key: self.key.clone(),
                    source: e,
                })
            }
        }
    }

    /// A ReplicaSet of the new one's name exists: ours if we control it and its template
    /// is the Deployment's (the cache had not seen it yet), else a hash collision: count
    /// it, so the next sync hashes to another name.
    async fn adopt_existing(&mut self, name: &str, err: rkube_client::Error) -> Result<(), Error> {
        let existing = self
            .rs_api()
            .get(name)
            .await
            .map_err(|source| Error::ReadReplicaSet {
                key: self.key.clone(),
                source,
            })?;
        let ours = controller_of(&existing.metadata)
            .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
        let same = existing
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .zip(self.d.spec.as_ref().map(|s| &s.template))
            .is_some_and(|(a, b)| equal_ignore_hash(a, b));
        if ours && same {
            self.rss.push(existing);
            self.new = Some(self.rss.len() - 1);
            return Ok(());
        }
        self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
        self.write_status(self.status.clone()).await?;
        Err(Error::HashCollision {
            key: self.key.clone(),
            name: name.to_string(),
            source: err,
        })
    }

    /// Sets the Deployment's revision annotation (a patch conditional on its
    /// resourceVersion).
    async fn set_deployment_revision(&mut self, rev: &str) -> Result<(), Error> {
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(revision::REVISION));
        if current.map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let patch = json!({"metadata": {
            "resourceVersion": self.d.metadata.resource_version,
            "annotations": {revision::REVISION: rev},
        }});
        let updated = Api::<Deployment>::namespaced(&self.st.client, &self.key.namespace)
            .patch(
                &self.name(),
                PatchType::Merge,
                &patch,
                &WriteParams::default(),
            )
            .await
            .map_err(|source| Error::UpdateDeployment {
                key: self.key.clone(),
                source,
            })?;
        self.d.metadata = updated.metadata;
        Ok(())
    }

    async fn update_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet, Error> {
        self.rs_api()
            .update(rs, &WriteParams::default())
            .await
            .map_err(|source| Error::UpdateReplicaSet {
                key: self.key.clone(),
                name: rs_name(rs),
                source,
            })
    }

    fn event(&self, kind: EventType, reason: &str, message: &str) {
        self.st.recorder.publish_for(&self.d, kind, reason, message);
    }

    /// Scales the ReplicaSet named `name` to `to` when that changes its size (Kubernetes'
    /// `scaleReplicaSetAndRecordEvent`). Returns whether it did.
    pub async fn scale_rs(&mut self, name: &str, to: i32) -> Result<bool, Error> {
        match self.index_of(name) {
            Some(i) if spec_replicas(&self.rss[i]) != to => self.resize(i, to).await,
            _ => Ok(false),
        }
    }

    /// Writes size `to` and the replica annotations of ReplicaSet `i` when either
    /// differs (Kubernetes' `scaleReplicaSet`); a ScalingReplicaSet event when the size
    /// changed. Returns whether the size changed.
    async fn resize(&mut self, i: usize, to: i32) -> Result<bool, Error> {
        let from = spec_replicas(&self.rss[i]);
        let (want, max) = (desired(&self.d), desired(&self.d) + max_surge(&self.d));
        if from == to && !revision::replicas_annotations_need_update(&self.rss[i], want, max) {
            return Ok(false);
        }
        let mut copy = self.rss[i].clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(to);
        revision::set_replicas_annotations(&mut copy, want, max);
        self.rss[i] = self.update_rs(&copy).await?;
        if from != to {
            let op = if from < to { "up" } else { "down" };
            self.event(
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled {op} replica set {} from {from} to {to}",
                    rs_name(&copy)
                ),
            );
        }
        Ok(from != to)
    }

    /// A scaling event, or a paused Deployment's new size (Kubernetes' `scale`).
    pub async fn scale(&mut self) -> Result<(), Error> {
        let plan = scale_plan(&self.d, self.new_rs(), &self.old_rss());
        for step in plan {
            match step {
                Step::Scale(name, to) => {
                    self.scale_rs(&name, to).await?;
                }
                Step::Resize(name, to) => {
                    if let Some(i) = self.index_of(&name) {
                        self.resize(i, to).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes old ReplicaSets beyond `revisionHistoryLimit` (Kubernetes'
    /// `cleanupDeployment`).
    pub async fn cleanup(&mut self) -> Result<(), Error> {
        let limit = self.d.spec.as_ref().and_then(|s| s.revision_history_limit);
        let doomed: Vec<(String, Option<String>)> =
            revision::history_to_delete(&self.old_rss(), limit)
                .into_iter()
                .map(|rs| (rs_name(rs), rs.metadata.uid.clone()))
                .collect();
        for (name, uid) in doomed {
            let params = DeleteParams {
                precondition_uid: uid,
                ..Default::default()
            };
            match self.rs_api().delete(&name, &params).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(source) => {
                    return Err(Error::DeleteReplicaSet {
                        key: self.key.clone(),
                        name,
                        source,
                    })
                }
            }
            self.rss
                .retain(|rs| rs.metadata.name.as_deref() != Some(name.as_str()));
            self.new = template::find_new(&self.d, &self.rss);
        }
        Ok(())
    }

    /// Writes the status counts and Available when they changed (Kubernetes'
    /// `syncDeploymentStatus`: paused Deployments and scaling events).
    pub async fn sync_status(&mut self) -> Result<(), Error> {
        let status =
            progress::calculate(&self.all(), self.new_rs(), &self.d, &self.status, self.now);
        self.write_status_if_changed(status).await.map(|_| ())
    }

    /// Writes the status with Progressing moved on (Kubernetes' `syncRolloutStatus`).
    /// Returns when to look again for a progress deadline, if one may pass unnoticed.
    pub async fn sync_rollout_status(&mut self) -> Result<Option<i64>, Error> {
        let status =
            progress::rollout_status(&self.all(), self.new_rs(), &self.d, &self.status, self.now);
        if self.write_status_if_changed(status.clone()).await? {
            // The write wakes the Deployment again; that sync decides about deadlines.
            return Ok(None);
        }
        Ok(progress::recheck_in_ms(&self.d, &status, self.now))
    }

    async fn write_status_if_changed(&mut self, status: DeploymentStatus) -> Result<bool, Error> {
        self.status = status.clone();
        if status == self.stored {
            return Ok(false);
        }
        self.write_status(status).await?;
        Ok(true)
    }

    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        let mut obj = self.d.clone();
        obj.status = Some(status.clone());
        let written = Api::<Deployment>::namespaced(&self.st.client, &self.key.namespace)
            .update_status(&obj, &WriteParams::default())
            .await
            .map_err(|source| Error::UpdateStatus {
                key: self.key.clone(),
                source,
            })?;
        self.d.metadata = written.metadata;
        self.stored = status;
        Ok(())
    }
}

pub(super) fn rs_name(rs: &ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap_or_default()
}

fn is_namespace_terminating(e: &rkube_client::Error) -> bool {
    e.status().is_some_and(|s| {
        s.causes()
            .iter()
            .any(|c| c.reason == "NamespaceTerminating")
    })
}

/// One write of a scaling plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Scale to this size if that changes it.
    Scale(String, i32),
    /// Set this size and the replica annotations (a proportional share).
    Resize(String, i32),
}

/// How a scaling event changes the ReplicaSets (Kubernetes' `scale`): the one active
/// ReplicaSet (or the newest, when none is active) takes the new size whole; when the
/// new one is saturated the old ones go to 0; otherwise, in a rolling update, the
/// difference is spread in proportion to their sizes, larger ones first (newer first
/// when growing, older first when shrinking), the rounding leftover to the first.
pub fn scale_plan(d: &Deployment, new: Option<&ReplicaSet>, old: &[&ReplicaSet]) -> Vec<Step> {
    let want = desired(d);
    if let Some(rs) = active_or_latest(new, old) {
        if spec_replicas(rs) == want {
            return vec![];
        }
        return vec![Step::Scale(rs_name(rs), want)];
    }
    if new.is_some_and(|n| is_saturated(d, n)) {
        return old
            .iter()
            .filter(|rs| is_active(rs))
            .map(|rs| Step::Scale(rs_name(rs), 0))
            .collect();
    }
    if !replicas::is_rolling(d) {
        return vec![];
    }
    let mut all: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .chain(new)
        .filter(|rs| is_active(rs))
        .collect();
    let allowed = if want > 0 { want + max_surge(d) } else { 0 };
    let to_add = allowed - replicas::sum_spec(all.iter().copied());
    all.sort_by(|a, b| {
        spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| {
            if to_add > 0 {
                by_creation(b, a)
            } else {
                by_creation(a, b)
            }
        })
    });
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = all
        .iter()
        .map(|rs| {
            let size = spec_replicas(rs);
            if to_add == 0 {
                return (rs_name(rs), size);
            }
            let p = replicas::proportion(size, revision::max_replicas(rs), d, to_add, added);
            added += p;
            (rs_name(rs), size + p)
        })
        .collect();
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes.into_iter().map(|(n, s)| Step::Resize(n, s)).collect()
}

/// The only active ReplicaSet; with none active, the new one or else the newest old
/// one; with several active, none (Kubernetes' `FindActiveOrLatest`).
fn active_or_latest<'r>(
    new: Option<&'r ReplicaSet>,
    old: &[&'r ReplicaSet],
) -> Option<&'r ReplicaSet> {
    if new.is_none() && old.is_empty() {
        return None;
    }
    let mut sorted: Vec<&ReplicaSet> = old.to_vec();
    sorted.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = sorted
        .iter()
        .copied()
        .chain(new)
        .filter(|rs| is_active(rs))
        .collect();
    match active.len() {
        0 => new.or_else(|| sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// The new ReplicaSet has every replica, all available, for the current size.
fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let want = desired(d);
    revision::desired_replicas(rs) == Some(want)
        && spec_replicas(rs) == want
        && replicas::available(rs) == want
}

/// Is a change of `spec.replicas` what this sync is about: an active ReplicaSet was
/// sized for another count (Kubernetes' `isScalingEvent`).
pub fn is_scaling_event(d: &Deployment, rss: &[ReplicaSet]) -> bool {
    rss.iter()
        .filter(|rs| is_active(rs))
        .filter_map(revision::desired_replicas)
        .any(|want| want != desired(d))
}

#[cfg(test)]
mod tests;
