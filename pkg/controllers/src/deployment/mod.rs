//! The Deployment controller: rolls a Deployment's pod template out through
//! ReplicaSets, keeps their history, and reports progress in the status `kubectl rollout
//! status` reads.
//!
//! Primary objects: Deployments. ReplicaSets wake their controlling Deployment (`owns`),
//! orphan ReplicaSets the Deployments whose selector matches them (adoption), and, for
//! Recreate Deployments, pods of their ReplicaSets (a new ReplicaSet waits for the old
//! pods to be gone). One reconcile (Kubernetes' `syncDeployment`):
//!
//! 1. claims ReplicaSets ([`crate::ownership`]);
//! 2. being deleted: only the status is brought up to date;
//! 3. `Progressing` shows pause and resume ([`progress::paused_conditions`]);
//! 4. paused, or `spec.replicas` changed ([`sync::is_scaling_event`]): the ReplicaSets
//!    are scaled in proportion ([`sync::scale_plan`]), no rollout step is taken (a
//!    paused Deployment's history is pruned too);
//! 5. otherwise one step of its strategy: [`rolling`] or [`recreate`], each ending with
//!    the status and the progress conditions, and history pruned
//!    (`revisionHistoryLimit`) once complete.
//!
//! Rollback is not the controller's: kubectl 1.32 rolls back client-side (`rollout
//! undo` copies an old ReplicaSet's template into the Deployment), and the old
//! ReplicaSet then becomes the new one with the next revision ([`revision`]).
//! `spec.rollbackTo` belonged to extensions/v1beta1 and apps/v1beta1, which rkube does
//! not serve.
//!
//! Events (as Kubernetes words them): ScalingReplicaSet ("Scaled up replica set web-5d9c
//! from 0 to 3"), ReplicaSetCreateError, on the Deployment. Never: create or delete pods
//! (the ReplicaSet controller does), or write a Deployment's spec.

pub mod progress;
pub mod recreate;
pub mod replicas;
pub mod revision;
pub mod rolling;
pub mod sync;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use rkube_api::selectors::LabelSelector;
use rkube_client::Client;
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::object::controller_of;
use rkube_runtime::store::INDEX_NAMESPACE;
use rkube_runtime::{Action, Controller, ObjectKey, Recorder, Selection, Store};

use crate::ownership::{self, index_orphans, INDEX_ORPHANS};
use crate::Context;
use sync::Rollout;

/// The controller's name (`--controllers`, metrics, spans).
pub const NAME: &str = "deployment";
/// Who reports its events.
pub const COMPONENT: &str = "deployment-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming the ReplicaSets of Deployment {key} failed")]
    Claim {
        key: ObjectKey,
        #[source]
        source: ownership::Error,
    },
    #[error("creating the new ReplicaSet of Deployment {key} failed")]
    CreateReplicaSet {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
    #[error("the new ReplicaSet {name} of Deployment {key} collides with another; the next sync hashes anew")]
    HashCollision {
        key: ObjectKey,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("reading a ReplicaSet of Deployment {key} failed")]
    ReadReplicaSet {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
    #[error("updating ReplicaSet {name} of Deployment {key} failed")]
    UpdateReplicaSet {
        key: ObjectKey,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("deleting old ReplicaSet {name} of Deployment {key} failed")]
    DeleteReplicaSet {
        key: ObjectKey,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("updating the revision of Deployment {key} failed")]
    UpdateDeployment {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
    #[error("writing the status of Deployment {key} failed")]
    UpdateStatus {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
}

pub(crate) struct State {
    client: Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// Runs the controller until the context's shutdown.
pub async fn run(ctx: Context) {
    let deployments = ctx.factory.informer::<Deployment>(Selection::all());
    let replicasets = ctx.factory.informer::<ReplicaSet>(Selection::all());
    let pods = ctx.factory.informer::<Pod>(Selection::all());
    replicasets.add_index(INDEX_ORPHANS, index_orphans());
    let (ds, rss) = (deployments.store(), replicasets.store());
    let orphans = {
        let ds = ds.clone();
        move |rs: &ReplicaSet| matching_deployments(&ds, rs)
    };
    let controller = Controller::new(NAME, &deployments)
        .owns(&replicasets)
        .watches(&replicasets, orphans)
        .watches(&pods, move |p: &Pod| recreating_owner(&ds, &rss, p))
        .workers(ctx.config.concurrent_deployment_syncs);
    let state = Arc::new(State {
        client: ctx.client.clone(),
        deployments: deployments.store(),
        replicasets: replicasets.store(),
        pods: pods.store(),
        recorder: ctx.recorder(COMPONENT),
    });
    controller
        .run(reconcile, retry_with_backoff, state, ctx.shutdown().clone())
        .await;
}

fn selector_of(d: &Deployment) -> Option<LabelSelector> {
    let spec = d.spec.as_ref()?;
    LabelSelector::from_metav1(Some(&spec.selector))
        .ok()
        .filter(|s| !s.is_empty())
}

/// For an orphan ReplicaSet: the Deployments of its namespace that select it.
fn matching_deployments(ds: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectKey> {
    if controller_of(&rs.metadata).is_some() {
        return vec![];
    }
    let labels = rs.metadata.labels.clone().unwrap_or_default();
    ds.by_index(
        INDEX_NAMESPACE,
        rs.metadata.namespace.as_deref().unwrap_or(""),
    )
    .iter()
    .filter(|d| selector_of(d).is_some_and(|s| s.matches(&labels)))
    .map(|d| ObjectKey::of(d.as_ref()))
    .collect()
}

/// For a pod of a ReplicaSet of a Recreate Deployment: that Deployment (it waits for
/// old pods to be gone).
fn recreating_owner(ds: &Store<Deployment>, rss: &Store<ReplicaSet>, pod: &Pod) -> Vec<ObjectKey> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let owner = controller_of(&pod.metadata)
        .filter(|r| r.kind == "ReplicaSet")
        .and_then(|r| rss.get(&ObjectKey::new(&ns, &r.name)))
        .and_then(|rs| controller_of(&rs.metadata).cloned())
        .filter(|r| r.kind == "Deployment")
        .map(|r| ObjectKey::new(&ns, r.name));
    owner
        .filter(|k| ds.get(k).is_some_and(|d| !replicas::is_rolling(&d)))
        .into_iter()
        .collect()
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let Some(d) = st.deployments.get(&key) else {
        return Ok(Action::await_change());
    };
    let Some(selector) = selector_of(&d) else {
        // Validation keeps such Deployments out; one that got in would select every pod.
        tracing::warn!(%key, "the Deployment's selector is missing, empty or invalid");
        return Ok(Action::await_change());
    };
    let candidates = ownership::candidates(d.as_ref(), &st.replicasets.snapshot());
    let claimed = ownership::claim(&st.client, d.as_ref(), &selector, candidates)
        .await
        .map_err(|source| Error::Claim {
            key: key.clone(),
            source,
        })?;
    let rss = claimed.iter().map(|rs| (**rs).clone()).collect();
    let mut r = Rollout::new(&st, key, (*d).clone(), rss);
    let recheck = if r.d.metadata.deletion_timestamp.is_some() {
        r.sync_revision(false).await?;
        r.sync_status().await?;
        None
    } else {
        progress::paused_conditions(&r.d, &mut r.status, r.now);
        let paused = r.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || sync::is_scaling_event(&r.d, &r.rss) {
            r.sync_revision(false).await?;
            r.scale().await?;
            if paused {
                r.cleanup().await?;
            }
            r.sync_status().await?;
            None
        } else if replicas::is_rolling(&r.d) {
            r.rolling().await?
        } else {
            r.recreate().await?
        }
    };
    Ok(match recheck {
        Some(ms) => Action::requeue(Duration::from_millis(ms.max(0) as u64)),
        None => Action::await_change(),
    })
}

#[cfg(test)]
mod tests;
