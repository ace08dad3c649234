//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! foreground and orphan deletions the apiserver marks with the `foregroundDeletion` and
//! `orphan` finalizers — Kubernetes' garbage collector, over every resource discovery
//! names.
//!
//! Expected flow:
//! - discovery names the resources to monitor (those that can be listed, watched and
//!   deleted); one [`monitor::Monitor`] per resource lists and watches its objects'
//!   metadata, rediscovery every 30 s adds monitors for new resources;
//! - one task, the graph builder, applies what monitors see to the [`graph::Graph`]
//!   (owners and dependents by UID) and queues the work it calls for;
//! - once every monitor has listed, `--concurrent-gc-syncs` workers per queue take it:
//!   *attempt to delete* reads the object live, reads each of its owners live
//!   (dangling, solid, or waiting for its dependents) and does what [`decide::decide`]
//!   says — keep it, drop references to owners that are gone, or delete it (Background,
//!   or Foreground when a waiting owner's deletion must carry down); for an object being
//!   deleted in the foreground it removes the finalizer once no dependent blocks it.
//!   *Attempt to orphan* removes the owner's references from its dependents, then the
//!   `orphan` finalizer.
//!
//! Guarantees: nothing is deleted on the graph's word alone — every owner is read live
//! before its dependents are judged, and every delete carries the UID precondition, so an
//! object recreated under the same name is never deleted by mistake; patches are
//! compare-and-set on the resourceVersion they were computed from.
//!
//! Caveats: events.k8s.io/v1 events are not monitored: they are the core events under
//! another group, which are (Kubernetes ignores both). A cluster-scoped object naming a
//! namespaced owner is never collected (a `OwnerRefInvalidNamespace` warning event says
//! so), as in Kubernetes 1.20+.

pub mod decide;
pub mod graph;
mod monitor;
mod object;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rkube_client::{Client, Gvr};
use rkube_runtime::events::EventType;
use rkube_runtime::queue::WorkQueue;
use rkube_runtime::watcher::Backoff;
use rkube_runtime::Recorder;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::discovery::{self, ApiResource, Resources};
use crate::Context;
use decide::{decide, Decision, Owner};
use graph::{Change, Graph, Identity, Node, Uid, Work, FOREGROUND, ORPHAN};
use object::{Meta, Target};

/// How often discovery is asked again for new resources (Kubernetes' GC syncs as often).
const REDISCOVERY: Duration = Duration::from_secs(30);
/// Owners verified absent, remembered so a thousand dependents of one deleted owner cost
/// one read (UIDs are never reused, so an entry never goes stale).
const ABSENT_OWNERS: usize = 500;
/// Resources not monitored: the same objects as others that are.
const IGNORED: &[(&str, &str)] = &[("events.k8s.io", "events")];

/// Why one attempt failed; it is retried with the queue's back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {resource} {name:?} failed")]
    Read {
        resource: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("{verb} of {resource} {name:?} failed")]
    Write {
        verb: &'static str,
        resource: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("{resource} {name:?} kept changing under the garbage collector's writes")]
    Contended { resource: String, name: String },
    #[error("no served resource holds {kind} objects of {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("orphaning the dependents of {owner} failed for {failed} of them")]
    Orphaning {
        owner: String,
        failed: usize,
        #[source]
        first: Box<Error>,
    },
}

/// What a worker does with a key after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Again later, with back-off (an owner that exists but is not observed yet).
    Again,
}

/// Owners a live read found absent, by (UID, namespace looked in).
#[derive(Default)]
struct AbsentOwners {
    set: HashSet<(Uid, String)>,
    order: VecDeque<(Uid, String)>,
}

impl AbsentOwners {
    fn contains(&self, uid: &str, namespace: &str) -> bool {
        self.set.contains(&(uid.to_string(), namespace.to_string()))
    }

    fn insert(&mut self, uid: &str, namespace: &str) {
        let key = (uid.to_string(), namespace.to_string());
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > ABSENT_OWNERS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// What the builder, the workers and the rediscovery loop share.
struct Shared {
    client: Client,
    recorder: Recorder,
    graph: Mutex<Graph>,
    resources: RwLock<Resources>,
    /// Into the graph builder (monitors, and workers' verified absences).
    changes: mpsc::Sender<Change>,
    attempt_to_delete: WorkQueue<Uid>,
    attempt_to_orphan: WorkQueue<Uid>,
    absent: Mutex<AbsentOwners>,
}

/// Runs the garbage collector until the context's shutdown.
pub async fn run(ctx: Context) {
    let shutdown = ctx.shutdown().clone();
    let Some(resources) = discover_until_answered(&ctx.client, &shutdown).await else {
        return;
    };
    let (tx, rx) = mpsc::channel(1024);
    let shared = Arc::new(Shared {
        client: ctx.client.clone(),
        recorder: ctx.recorder("garbage-collector-controller"),
        graph: Mutex::new(Graph::default()),
        resources: RwLock::new(resources.clone()),
        changes: tx,
        attempt_to_delete: WorkQueue::new("garbage_collector_attempt_to_delete"),
        attempt_to_orphan: WorkQueue::new("garbage_collector_attempt_to_orphan"),
        absent: Mutex::new(AbsentOwners::default()),
    });
    let tasks = TaskTracker::new();
    let mut monitored = HashSet::new();
    for r in monitorable(&resources) {
        monitored.insert(r.gvr.clone());
        spawn_monitor(&tasks, &shared, r.clone(), &shutdown);
    }
    let (synced_tx, mut synced) = watch::channel(false);
    tasks.spawn(build(
        shared.clone(),
        rx,
        monitored.clone(),
        synced_tx,
        shutdown.clone(),
    ));
    tracing::info!(
        resources = monitored.len(),
        "garbage collector: waiting for every monitor to list"
    );
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = synced.wait_for(|s| *s) => {}
    }
    if !shutdown.is_cancelled() {
        let workers = ctx.config.concurrent_gc_syncs.max(1);
        tracing::info!(workers, "garbage collector: graph built; starting workers");
        for _ in 0..workers {
            tasks.spawn(work(
                shared.attempt_to_delete.clone(),
                "garbagecollector.attempt_to_delete",
                shared.clone(),
                |uid, s| Box::pin(attempt_to_delete(uid, s)),
            ));
            tasks.spawn(work(
                shared.attempt_to_orphan.clone(),
                "garbagecollector.attempt_to_orphan",
                shared.clone(),
                |uid, s| Box::pin(attempt_to_orphan(uid, s)),
            ));
        }
        tasks.spawn(rediscover(
            tasks.clone(),
            shared.clone(),
            monitored,
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    shared.attempt_to_delete.shut_down_now();
    shared.attempt_to_orphan.shut_down_now();
    tasks.close();
    tasks.wait().await;
    tracing::info!("garbage collector stopped");
}

/// The resources to monitor: those that can be listed, watched and deleted.
fn monitorable(resources: &Resources) -> impl Iterator<Item = &ApiResource> {
    resources
        .supporting(&["list", "watch", "delete"])
        .filter(|r| {
            !IGNORED
                .iter()
                .any(|(g, n)| r.gvr.group == *g && r.gvr.resource == *n)
        })
}

async fn discover_until_answered(
    client: &Client,
    shutdown: &CancellationToken,
) -> Option<Resources> {
    let mut backoff = Backoff::default();
    loop {
        match discovery::discover(client).await {
            Ok(r) => return Some(r),
            Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

fn spawn_monitor(
    tasks: &TaskTracker,
    shared: &Arc<Shared>,
    resource: ApiResource,
    shutdown: &CancellationToken,
) {
    let m = monitor::Monitor {
        client: shared.client.clone(),
        resource,
        changes: shared.changes.clone(),
    };
    tasks.spawn(m.run(shutdown.clone()));
}

/// Asks discovery again every [`REDISCOVERY`]; monitors resources that appeared and
/// keeps the kind mapping current.
async fn rediscover(
    tasks: TaskTracker,
    shared: Arc<Shared>,
    mut monitored: HashSet<Gvr>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REDISCOVERY) => {}
        }
        let resources = match discovery::discover(&shared.client).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: rediscovery failed");
                continue;
            }
        };
        for r in monitorable(&resources) {
            if monitored.insert(r.gvr.clone()) {
                tracing::info!(resource = %r.qualified_name(), "garbage collector: monitoring a new resource");
                spawn_monitor(&tasks, &shared, r.clone(), &shutdown);
            }
        }
        *shared
            .resources
            .write()
            .unwrap_or_else(PoisonError::into_inner) = resources;
    }
}

/// The graph builder: the one writer of the graph. Marks the graph synced once every
/// monitor in `pending` has listed.
async fn build(
    shared: Arc<Shared>,
    mut changes: mpsc::Receiver<Change>,
    mut pending: HashSet<Gvr>,
    synced: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    if pending.is_empty() {
        synced.send_replace(true);
    }
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = changes.recv() => match c { Some(c) => c, None => return },
        };
        if let Change::Replace { resource, .. } = &change {
            if pending.remove(resource) && pending.is_empty() {
                synced.send_replace(true);
            }
        }
        let work = shared
            .graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(change);
        for w in work {
            match w {
                Work::Delete(uid) => shared.attempt_to_delete.add(uid),
                Work::Orphan(uid) => shared.attempt_to_orphan.add(uid),
            }
        }
    }
}

type Attempt =
    fn(
        Uid,
        Arc<Shared>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, Error>> + Send>>;

/// One worker of `queue`: takes a UID, attempts, and retries failures with back-off.
async fn work(queue: WorkQueue<Uid>, name: &'static str, shared: Arc<Shared>, attempt: Attempt) {
    while let Some(uid) = queue.get().await {
        let span = tracing::info_span!("attempt", otel.name = name, uid = %uid);
        match attempt(uid.clone(), shared.clone()).instrument(span).await {
            Ok(Outcome::Done) => queue.forget(&uid),
            Ok(Outcome::Again) => queue.add_rate_limited(uid.clone()),
            Err(e) => {
                tracing::debug!(uid = %uid, error = %error_chain(&e), "{name} failed; retrying");
                queue.add_rate_limited(uid.clone());
            }
        }
        queue.done(&uid);
    }
}

/// An error and its sources, for logs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

impl Shared {
    fn node(&self, uid: &str) -> Option<Node> {
        self.graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .node(uid)
            .cloned()
    }

    /// The served resource of an observed node, or the one its kind maps to.
    fn resource_of(&self, node: &Node) -> Result<ApiResource, Error> {
        let resources = self
            .resources
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let found = match &node.resource {
            Some(gvr) => resources.all.iter().find(|r| &r.gvr == gvr),
            None => resources.by_kind(&node.identity.api_version, &node.identity.kind),
        };
        found.cloned().ok_or_else(|| Error::UnknownKind {
            api_version: node.identity.api_version.clone(),
            kind: node.identity.kind.clone(),
        })
    }

    fn by_kind(&self, api_version: &str, kind: &str) -> Result<ApiResource, Error> {
        let resources = self
            .resources
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        resources
            .by_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| Error::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })
    }

    /// Tells the graph that `identity` was found absent.
    async fn absent(&self, identity: Identity) {
        // The builder is gone only at shutdown.
        let _ = self.changes.send(Change::Absent(identity)).await;
    }
}

fn namespace_for<'a>(resource: &ApiResource, namespace: &'a str) -> &'a str {
    if resource.namespaced {
        namespace
    } else {
        ""
    }
}

/// Kubernetes' `attemptToDeleteItem`; see the module documentation.
async fn attempt_to_delete(uid: Uid, s: Arc<Shared>) -> Result<Outcome, Error> {
    let Some(node) = s.node(&uid) else {
        return Ok(Outcome::Done);
    };
    // Being deleted: wait for the deletion itself (unless it waits on its dependents).
    if node.being_deleted && !node.deleting_dependents {
        return Ok(Outcome::Done);
    }
    let resource = s.resource_of(&node)?;
    let id = &node.identity;
    let target = Target {
        client: &s.client,
        gvr: &resource.gvr,
        namespace: namespace_for(&resource, &id.namespace),
        name: &id.name,
        uid: &id.uid,
    };
    let Some(latest) = target.read().await? else {
        s.absent(id.clone()).await;
        return Ok(Outcome::Done);
    };
    let outcome = if latest.deleting() && latest.has_finalizer(FOREGROUND) {
        deleting_dependents(&s, &uid, &target).await?;
        Outcome::Done
    } else if latest.deleting() {
        Outcome::Done
    } else {
        collect(&s, &node, &resource, &target, &latest).await?
    };
    // An owner that exists but was not observed yet: look again until it is, or a
    // virtual node added and removed while a watch was down would stay forever.
    let still_virtual = s.node(&uid).is_some_and(|n| n.is_virtual());
    Ok(if still_virtual {
        Outcome::Again
    } else {
        outcome
    })
}

/// An object being deleted in the foreground: once no dependent blocks it, its finalizer
/// goes; until then, its blocking dependents are attempted (unless they wait too).
async fn deleting_dependents(s: &Shared, uid: &str, target: &Target<'_>) -> Result<(), Error> {
    let blocking = s
        .graph
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .blocking_dependents(uid);
    if blocking.is_empty() {
        tracing::debug!(
            name = target.name,
            "no dependent blocks it: removing foregroundDeletion"
        );
        return target.remove_finalizer(FOREGROUND).await;
    }
    for (dependent, waiting) in blocking {
        if !waiting {
            s.attempt_to_delete.add(dependent);
        }
    }
    Ok(())
}

/// Reads every owner of an object live and does what [`decide`] says.
async fn collect(
    s: &Shared,
    node: &Node,
    resource: &ApiResource,
    target: &Target<'_>,
    latest: &Meta,
) -> Result<Outcome, Error> {
    let owners = latest.owners();
    let mut found = Vec::with_capacity(owners.len());
    for r in owners {
        match classify(s, r, resource, &node.identity.namespace).await? {
            Some(how) => found.push((r.uid.clone(), how)),
            None => {
                // A namespaced owner of a cluster-scoped object: never resolvable.
                s.recorder.publish(
                    reference(resource, latest),
                    EventType::Warning,
                    "OwnerRefInvalidNamespace",
                    &format!(
                        "ownerRef [{}/{}, namespace: , name: {}, uid: {}] does not exist in namespace \"\"",
                        r.api_version, r.kind, r.name, r.uid
                    ),
                );
                return Ok(Outcome::Done);
            }
        }
    }
    let (has_dependents, a_dependent_is_waiting) = {
        let graph = s.graph.lock().unwrap_or_else(PoisonError::into_inner);
        let deps = graph.dependents(&node.identity.uid);
        (!deps.is_empty(), deps.iter().any(|d| d.deleting_dependents))
    };
    match decide(
        &found,
        has_dependents,
        a_dependent_is_waiting,
        latest.finalizers(),
    ) {
        Decision::Keep => {}
        Decision::RemoveReferences(gone) => {
            tracing::debug!(name = target.name, owners = ?gone, "removing references to owners gone or waiting");
            target
                .change_owners(|refs| {
                    let before = refs.len();
                    refs.retain(|r| !gone.contains(&r.uid));
                    refs.len() != before
                })
                .await?;
        }
        Decision::Delete { policy, unblock } => {
            if unblock {
                target
                    .change_owners(|refs| {
                        let mut changed = false;
                        for r in refs
                            .iter_mut()
                            .filter(|r| r.block_owner_deletion == Some(true))
                        {
                            r.block_owner_deletion = Some(false);
                            changed = true;
                        }
                        changed
                    })
                    .await?;
            }
            tracing::info!(
                resource = %resource.qualified_name(),
                namespace = target.namespace,
                name = target.name,
                uid = target.uid,
                policy = policy.as_str(),
                "deleting an object no owner keeps"
            );
            target.delete(policy.as_str()).await?;
        }
    }
    Ok(Outcome::Done)
}

/// How one owner reference of an object in `namespace` is found, read live (Kubernetes'
/// `isDangling`); `None` for a namespaced owner of a cluster-scoped object.
async fn classify(
    s: &Shared,
    r: &OwnerReference,
    dependent: &ApiResource,
    namespace: &str,
) -> Result<Option<Owner>, Error> {
    let owner = s.by_kind(&r.api_version, &r.kind)?;
    if owner.namespaced && !dependent.namespaced {
        return Ok(None);
    }
    let ns = namespace_for(&owner, namespace);
    if s.absent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&r.uid, ns)
    {
        return Ok(Some(Owner::Dangling));
    }
    let target = Target {
        client: &s.client,
        gvr: &owner.gvr,
        namespace: ns,
        name: &r.name,
        uid: &r.uid,
    };
    Ok(Some(match target.read().await? {
        None => {
            s.absent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(&r.uid, ns);
            Owner::Dangling
        }
        Some(m) if m.deleting() && m.has_finalizer(FOREGROUND) => Owner::Waiting,
        Some(_) => Owner::Solid,
    }))
}

/// Kubernetes' `attemptToOrphanWorker`: every dependent the graph knows loses its
/// reference to the owner, then the owner its `orphan` finalizer.
async fn attempt_to_orphan(uid: Uid, s: Arc<Shared>) -> Result<Outcome, Error> {
    let Some(owner) = s.node(&uid) else {
        return Ok(Outcome::Done);
    };
    if owner.is_virtual() {
        return Ok(Outcome::Done);
    }
    let dependents: Vec<Node> = s
        .graph
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .dependents(&uid)
        .into_iter()
        .cloned()
        .collect();
    let mut failed = Vec::new();
    for d in &dependents {
        let result = async {
            let resource = s.resource_of(d)?;
            Target {
                client: &s.client,
                gvr: &resource.gvr,
                namespace: namespace_for(&resource, &d.identity.namespace),
                name: &d.identity.name,
                uid: &d.identity.uid,
            }
            .change_owners(|refs| {
                let before = refs.len();
                refs.retain(|r| r.uid != uid);
                refs.len() != before
            })
            .await
        }
        .await;
        if let Err(e) = result {
            failed.push(e);
        }
    }
    if !failed.is_empty() {
        return Err(Error::Orphaning {
            owner: owner.identity.name.clone(),
            failed: failed.len(),
            first: Box::new(failed.swap_remove(0)),
        });
    }
    let resource = s.resource_of(&owner)?;
    Target {
        client: &s.client,
        gvr: &resource.gvr,
        namespace: namespace_for(&resource, &owner.identity.namespace),
        name: &owner.identity.name,
        uid: &owner.identity.uid,
    }
    .remove_finalizer(ORPHAN)
    .await?;
    Ok(Outcome::Done)
}

/// A reference to an object of `resource` for an event.
fn reference(resource: &ApiResource, meta: &Meta) -> ObjectReference {
    ObjectReference {
        api_version: Some(resource.api_version.clone()),
        kind: Some(resource.kind.clone()),
        name: Some(meta.name.clone()),
        namespace: meta.namespace.clone(),
        uid: Some(meta.uid.clone()),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests;
