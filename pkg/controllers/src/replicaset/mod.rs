//! The ReplicaSet controller: every ReplicaSet has `spec.replicas` active pods made from
//! its template, and a status that counts them.
//!
//! Primary objects: ReplicaSets. Pods wake their controlling ReplicaSet (`owns`), and
//! orphan pods wake every ReplicaSet of their namespace whose selector matches them (it
//! may adopt them). One reconcile:
//!
//! 1. claims pods ([`crate::ownership`]): adopts matching orphans, releases owned pods
//!    that stopped matching;
//! 2. when its expectations are met (every create and delete of the previous round seen
//!    in the cache, [`rkube_runtime::Expectations`]) and it is not being deleted, creates
//!    ([`manage::slow_start`] batches) or deletes ([`ranking`] order) at most
//!    [`manage::BURST_REPLICAS`] pods;
//! 3. writes the status ([`status::calculate`]) through `replicasets/status` when it
//!    changed, and comes back when a ready pod is due to turn available.
//!
//! Events (as Kubernetes words them): SuccessfulCreate, FailedCreate, SuccessfulDelete,
//! FailedDelete, on the ReplicaSet. Never: touch a pod another controller owns, or
//! write a pod's spec or status.

pub mod manage;
pub mod ranking;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use rkube_api::selectors::LabelSelector;
use rkube_client::{Api, Client, DeleteParams, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::object::{controller_of, now};
use rkube_runtime::store::{Snapshot, INDEX_NAMESPACE, INDEX_OWNER};
use rkube_runtime::{
    Action, Change, Controller, EventType, Expectations, ObjectKey, Recorder, Selection, Store,
};

use crate::ownership::{self, index_orphans, INDEX_ORPHANS};
use crate::{pods, Context};
use manage::Plan;

/// The controller's name (`--controllers`, metrics, spans).
pub const NAME: &str = "replicaset";
/// Who reports its events.
pub const COMPONENT: &str = "replicaset-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming the pods of ReplicaSet {key} failed")]
    Claim {
        key: ObjectKey,
        #[source]
        source: ownership::Error,
    },
    #[error("creating pods for ReplicaSet {key} failed")]
    Create {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
    #[error("deleting pods of ReplicaSet {key} failed")]
    Delete {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
    #[error("writing the status of ReplicaSet {key} failed")]
    Status {
        key: ObjectKey,
        #[source]
        source: rkube_client::Error,
    },
}

impl Error {
    /// The `ReplicaFailure` condition a failed round leaves, if it is one.
    fn failure(&self) -> Option<status::Failure> {
        match self {
            Error::Create { source, .. } => Some(status::Failure {
                reason: "FailedCreate",
                message: source.to_string(),
            }),
            Error::Delete { source, .. } => Some(status::Failure {
                reason: "FailedDelete",
                message: source.to_string(),
            }),
            _ => None,
        }
    }
}

pub(crate) struct State {
    client: Client,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
    burst: usize,
}

/// Runs the controller until the context's shutdown.
pub async fn run(ctx: Context) {
    let replicasets = ctx.factory.informer::<ReplicaSet>(Selection::all());
    let pods = ctx.factory.informer::<Pod>(Selection::all());
    pods.add_index(INDEX_ORPHANS, index_orphans());
    let expectations = Arc::new(Expectations::default());
    // Before `owns` adds its handler: a reconcile woken by a pod must find the pod
    // already counted against its expectations.
    {
        let (e, rss) = (expectations.clone(), replicasets.store());
        pods.add_handler(move |c: &Change<Pod>| observe(&e, &rss, c));
    }
    let rss = replicasets.store();
    let controller = Controller::new(NAME, &replicasets)
        .owns(&pods)
        .watches(&pods, move |p: &Pod| matching_replicasets(&rss, p))
        .workers(ctx.config.concurrent_replicaset_syncs);
    let state = Arc::new(State {
        client: ctx.client.clone(),
        replicasets: replicasets.store(),
        pods: pods.store(),
        expectations,
        recorder: ctx.recorder(COMPONENT),
        burst: manage::BURST_REPLICAS,
    });
    controller
        .run(reconcile, retry_with_backoff, state, ctx.shutdown().clone())
        .await;
}

/// The ReplicaSet key a pod's controller reference names, when that ReplicaSet (as far
/// as the cache knows) is the one that made it.
fn owner_key(rss: &Store<ReplicaSet>, pod: &Pod) -> Option<ObjectKey> {
    let r = controller_of(&pod.metadata)?;
    if r.kind != "ReplicaSet" || r.api_version != "apps/v1" {
        return None;
    }
    let key = ObjectKey::new(pod.metadata.namespace.clone().unwrap_or_default(), &r.name);
    match rss.get(&key) {
        Some(rs) if rs.metadata.uid.as_deref() != Some(r.uid.as_str()) => None,
        _ => Some(key),
    }
}

/// Counts what the cache saw against the expectations of the pod's ReplicaSet.
fn observe(e: &Expectations, rss: &Store<ReplicaSet>, change: &Change<Pod>) {
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    match change {
        Change::Added(p) => {
            if let Some(k) = owner_key(rss, p) {
                if p.metadata.deletion_timestamp.is_some() {
                    e.deletion_observed(&k, &uid(p));
                } else {
                    e.creation_observed(&k);
                }
            }
        }
        Change::Updated { new, .. } => {
            if new.metadata.deletion_timestamp.is_some() {
                if let Some(k) = owner_key(rss, new) {
                    e.deletion_observed(&k, &uid(new));
                }
            }
        }
        Change::Deleted(p) => {
            if let Some(k) = owner_key(rss, p) {
                e.deletion_observed(&k, &uid(p));
            }
        }
    }
}

/// For an orphan pod: the ReplicaSets of its namespace that select it.
fn matching_replicasets(rss: &Store<ReplicaSet>, pod: &Pod) -> Vec<ObjectKey> {
    if controller_of(&pod.metadata).is_some() {
        return vec![];
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    rss.by_index(
        INDEX_NAMESPACE,
        pod.metadata.namespace.as_deref().unwrap_or(""),
    )
    .iter()
    .filter(|rs| selector_of(rs).is_some_and(|s| !s.is_empty() && s.matches(&labels)))
    .map(|rs| ObjectKey::of(rs.as_ref()))
    .collect()
}

fn selector_of(rs: &ReplicaSet) -> Option<LabelSelector> {
    let spec = rs.spec.as_ref()?;
    LabelSelector::from_metav1(Some(&spec.selector)).ok()
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let Some(rs) = st.replicasets.get(&key) else {
        st.expectations.forget(&key);
        return Ok(Action::await_change());
    };
    let Some(selector) = selector_of(&rs).filter(|s| !s.is_empty()) else {
        // Validation keeps such ReplicaSets out; one that got in selects nothing here.
        tracing::warn!(%key, "the ReplicaSet's selector is missing or invalid");
        return Ok(Action::await_change());
    };
    let needs_sync = st.expectations.satisfied(&key);
    let snapshot = st.pods.snapshot();
    let candidates = ownership::candidates(rs.as_ref(), &snapshot)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let claimed = ownership::claim(&st.client, rs.as_ref(), &selector, candidates)
        .await
        .map_err(|source| Error::Claim {
            key: key.clone(),
            source,
        })?;
    let managed = if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        manage_replicas(&st, &key, &rs, &claimed, &snapshot).await
    } else {
        Ok(())
    };
    let at = now();
    let failure = managed.as_ref().err().and_then(Error::failure);
    let new_status = status::calculate(&rs, &claimed, failure.as_ref(), at);
    update_status(&st, &key, &rs, new_status).await?;
    managed?;
    Ok(match status::next_availability_check(&rs, &claimed, at) {
        Some(ms) => Action::requeue(Duration::from_millis(ms.max(0) as u64)),
        None => Action::await_change(),
    })
}

/// Creates or deletes pods towards `spec.replicas`; see the module documentation.
async fn manage_replicas(
    st: &Arc<State>,
    key: &ObjectKey,
    rs: &Arc<ReplicaSet>,
    active: &[Arc<Pod>],
    snapshot: &Snapshot<Pod>,
) -> Result<(), Error> {
    let desired = rs
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as usize;
    match manage::plan(active.len(), desired, st.burst) {
        Plan::Nothing => Ok(()),
        Plan::Create(n) => create_pods(st, key, rs, n).await,
        Plan::Delete(n) => {
            let related = related_pods(rs, snapshot, &st.replicasets);
            let victims = ranking::pods_to_delete(active, &related, n, now());
            delete_pods(st, key, rs, victims).await
        }
    }
}

async fn create_pods(
    st: &Arc<State>,
    key: &ObjectKey,
    rs: &Arc<ReplicaSet>,
    n: usize,
) -> Result<(), Error> {
    st.expectations.expect_creations(key, n);
    let mut template = manage::pod_from_template(rs);
    // A ReplicaSet without a trace of its own: its pods continue this reconcile's.
    rkube_runtime::trace::annotate(&mut template.metadata);
    let api: Api<Pod> = Api::namespaced(&st.client, &key.namespace);
    let (created, err) = manage::slow_start(n, manage::INITIAL_BATCH, || {
        let (api, template, st) = (api.clone(), &template, st.clone());
        async move {
            match api.create(template, &WriteParams::default()).await {
                Ok(pod) => {
                    let name = pod.metadata.name.unwrap_or_default();
                    st.recorder.publish_for(
                        rs.as_ref(),
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                    Ok(())
                }
                Err(e) if namespace_terminating(&e) => {
                    // Every create would fail the same way; the namespace is going.
                    st.expectations.creation_failed(key);
                    Ok(())
                }
                Err(e) => {
                    st.recorder.publish_for(
                        rs.as_ref(),
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    Err(e)
                }
            }
        }
    })
    .await;
    // Pods never attempted, or that failed, will never be observed.
    for _ in created..n {
        st.expectations.creation_failed(key);
    }
    match err {
        Some(source) => Err(Error::Create {
            key: key.clone(),
            source,
        }),
        None => Ok(()),
    }
}

async fn delete_pods(
    st: &Arc<State>,
    key: &ObjectKey,
    rs: &Arc<ReplicaSet>,
    victims: Vec<Arc<Pod>>,
) -> Result<(), Error> {
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    st.expectations
        .expect_deletions(key, victims.iter().map(|p| uid(p)));
    let api: Api<Pod> = Api::namespaced(&st.client, &key.namespace);
    let results = futures::future::join_all(victims.iter().map(|p| {
        let api = api.clone();
        async move {
            let name = p.metadata.name.clone().unwrap_or_default();
            let params = DeleteParams {
                precondition_uid: p.metadata.uid.clone(),
                ..Default::default()
            };
            (p, name.clone(), api.delete(&name, &params).await)
        }
    }))
    .await;
    let mut first_error = None;
    for (p, name, result) in results {
        match result {
            Ok(_) => st.recorder.publish_for(
                rs.as_ref(),
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {name}"),
            ),
            // Gone already (perhaps by this very delete, committed before an apiserver
            // died and retried elsewhere), or the name now belongs to another pod: this
            // one is gone, and the cache will see it go. The expectation stays until it
            // does — lowering it now would let a reconcile on the stale cache delete
            // another pod in its place.
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => {
                // Did the delete happen anyway? Only a pod that is still there, not
                // terminating, will never be observed going.
                if still_there(&api, p).await {
                    st.expectations.deletion_failed(key, &uid(p));
                }
                st.recorder.publish_for(
                    rs.as_ref(),
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Error deleting: {e}"),
                );
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(source) => Err(Error::Delete {
            key: key.clone(),
            source,
        }),
        None => Ok(()),
    }
}

/// Whether `pod` (this UID) still exists and is not terminating, by a linearizable read;
/// when the read fails too, it is assumed to be there (the delete is tried again).
async fn still_there(api: &Api<Pod>, pod: &Pod) -> bool {
    let name = pod.metadata.name.clone().unwrap_or_default();
    match api.get(&name).await {
        Ok(now) => {
            now.metadata.uid == pod.metadata.uid && now.metadata.deletion_timestamp.is_none()
        }
        Err(e) if e.is_not_found() => false,
        Err(_) => true,
    }
}

/// The active pods of every ReplicaSet under the same controller as `rs` (its own when
/// it has none): whose spread over nodes ranks pods for deletion.
fn related_pods(rs: &ReplicaSet, pods: &Snapshot<Pod>, rss: &Store<ReplicaSet>) -> Vec<Arc<Pod>> {
    let own_uid = rs.metadata.uid.clone().unwrap_or_default();
    let uids: Vec<String> = match controller_of(&rs.metadata) {
        None => vec![own_uid],
        Some(owner) => rss
            .by_index(INDEX_OWNER, &owner.uid)
            .iter()
            .filter(|s| controller_of(&s.metadata).is_some_and(|r| r.uid == owner.uid))
            .filter_map(|s| s.metadata.uid.clone())
            .collect(),
    };
    uids.iter()
        .flat_map(|u| {
            pods.by_index(INDEX_OWNER, u).into_iter().filter(move |p| {
                pods::is_active(p) && controller_of(&p.metadata).is_some_and(|r| &r.uid == u)
            })
        })
        .collect()
}

fn namespace_terminating(e: &rkube_client::Error) -> bool {
    e.status().is_some_and(|s| {
        s.causes()
            .iter()
            .any(|c| c.reason == "NamespaceTerminating")
    })
}

/// Writes `new` as the status of `rs` when it differs; one retry on a newer object
/// (Kubernetes' `updateReplicaSetStatus`). A ReplicaSet gone meanwhile is no error.
async fn update_status(
    st: &State,
    key: &ObjectKey,
    rs: &ReplicaSet,
    mut new: ReplicaSetStatus,
) -> Result<(), Error> {
    if !status::needs_update(rs, &new) {
        return Ok(());
    }
    // The generation this round acted on, also when retrying on a newer object.
    new.observed_generation = rs.metadata.generation;
    let api: Api<ReplicaSet> = Api::namespaced(&st.client, &key.namespace);
    let failed = |source| Error::Status {
        key: key.clone(),
        source,
    };
    let mut obj = rs.clone();
    obj.status = Some(new.clone());
    match api.update_status(&obj, &WriteParams::default()).await {
        Err(e) if e.is_conflict() => {}
        Err(e) if !e.is_not_found() => return Err(failed(e)),
        _ => return Ok(()),
    }
    let mut fresh = match api.get(&key.name).await {
        Ok(fresh) => fresh,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    fresh.status = Some(new);
    match api.update_status(&fresh, &WriteParams::default()).await {
        Err(e) if !e.is_not_found() => Err(failed(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
