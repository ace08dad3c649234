//! The scheduling loop: informers feed the cache and the queue; one loop pops a pod,
//! runs its profile against the cache (under the cache's lock, so the attempt sees one
//! consistent state), assumes the pod onto the chosen node and hands the Binding to a
//! task of its own — so the next pod is scheduled against the assumed state while the
//! previous Binding commits through Raft.
//!
//! Event handlers only update the cache and the queue. A pod is ours when its
//! `spec.schedulerName` names one of our profiles; pods of other schedulers are left
//! alone. Failures are Kubernetes-shaped: a FailedScheduling event and the pod's
//! PodScheduled=False condition (reason Unschedulable) when no node fits, the pod parked
//! as unschedulable until the cluster changes; a failed Binding drops the assumption
//! and retries after back-off, except when the pod is already bound or gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use rand::SeedableRng;
use rkube_client::{Client, Gvr, PatchType, WriteParams};
use rkube_runtime::events::{reference_to, EventWriter};
use rkube_runtime::{Change, EventType, InformerFactory, Recorder, Reporter, Selection, Store};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::cache::{bound_node, Cache};
use crate::config::Settings;
use crate::framework::{self, Attempt, FitError};
use crate::metrics;
use crate::nodeinfo::PodInfo;
use crate::queue::{QueuedPod, SchedulingQueue};

/// Bindings in flight at most; the loop waits for one to finish beyond that.
pub const MAX_BINDINGS_IN_FLIGHT: usize = 512;

/// The schedulerName a pod asks for (Kubernetes defaults an empty one).
pub fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
}

struct Shared {
    client: Client,
    settings: Settings,
    cache: Cache,
    queue: SchedulingQueue,
    pods: Store<Pod>,
    /// One recorder per profile: events name the profile's schedulerName as their source.
    recorders: Vec<(String, Recorder)>,
    bindings: Arc<Semaphore>,
    tasks: TaskTracker,
}

impl Shared {
    fn ours(&self, pod: &Pod) -> bool {
        self.settings.profile(scheduler_name(pod)).is_some()
    }

    fn recorder(&self, pod: &Pod) -> &Recorder {
        let name = scheduler_name(pod);
        &self
            .recorders
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or(&self.recorders[0])
            .1
    }

    fn on_node(&self, change: &Change<Node>) {
        let key = change.key();
        match change {
            Change::Added(n) => {
                self.cache.apply_node(&key.name, Some(n.clone()));
                self.queue.move_all("NodeAdd");
            }
            Change::Updated { old, new } => {
                self.cache.apply_node(&key.name, Some(new.clone()));
                if node_changed_for_scheduling(old, new) {
                    self.queue.move_all("NodeUpdate");
                }
            }
            Change::Deleted(_) => self.cache.apply_node(&key.name, None),
        }
    }

    fn on_pod(&self, change: &Change<Pod>) {
        let key = change.key();
        match change {
            Change::Deleted(pod) => {
                let was_placed = self.cache.placement(&key).is_some();
                self.cache.remove_pod(&key);
                self.queue.delete(&key);
                if was_placed || bound_node(pod).is_some() {
                    self.queue.move_all("AssignedPodDelete");
                }
            }
            Change::Added(pod) | Change::Updated { new: pod, .. } => {
                let was_placed = self
                    .cache
                    .placement(&key)
                    .is_some_and(|(_, assumed)| !assumed);
                self.cache.apply_pod(&key, Some(pod.clone()));
                let bound = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| !n.is_empty());
                if bound {
                    self.queue.delete(&key);
                    if was_placed && bound_node(pod).is_none() {
                        // Finished: its resources are free again.
                        self.queue.move_all("AssignedPodUpdate");
                    }
                } else if pod.metadata.deletion_timestamp.is_some() || !self.ours(pod) {
                    self.queue.delete(&key);
                } else if !self.cache.is_assumed(&key) {
                    self.queue.add_or_update(key, pod.clone());
                }
            }
        }
    }
}

/// Whether a node update could make a pod fit that did not: its labels, taints,
/// cordon, or allocatable changed (not its heartbeats).
fn node_changed_for_scheduling(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || old.status.as_ref().map(|s| &s.allocatable)
            != new.status.as_ref().map(|s| &s.allocatable)
}

/// Runs the scheduler until `shutdown`: informers, the loop, bindings in flight drained.
pub async fn run(
    client: Client,
    settings: Settings,
    instance: String,
    shutdown: CancellationToken,
) {
    let factory = InformerFactory::new(client.clone());
    let node_informer = factory.informer::<Node>(Selection::all());
    let pod_informer = factory.informer::<Pod>(Selection::all());
    let tasks = TaskTracker::new();
    let mut recorders = Vec::new();
    for p in &settings.profiles {
        let (rec, writer): (Recorder, EventWriter) = Recorder::new(
            client.clone(),
            Reporter {
                component: p.scheduler_name.clone(),
                instance: instance.clone(),
            },
        );
        tasks.spawn(writer.run(shutdown.clone()));
        recorders.push((p.scheduler_name.clone(), rec));
    }
    let shared = Arc::new(Shared {
        client,
        queue: SchedulingQueue::new(settings.queue_config()),
        settings,
        cache: Cache::new(),
        pods: pod_informer.store(),
        recorders,
        bindings: Arc::new(Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
        tasks: tasks.clone(),
    });
    let s = shared.clone();
    node_informer.add_handler(move |c| s.on_node(c));
    let s = shared.clone();
    pod_informer.add_handler(move |c| s.on_pod(c));
    factory.start(shutdown.clone());
    tokio::select! {
        _ = factory.wait_for_sync() => {}
        _ = shutdown.cancelled() => {}
    }
    if !shutdown.is_cancelled() {
        let (nodes, placed, _) = shared.cache.counts();
        tracing::info!(nodes, pods = placed, pending = ?shared.queue.lengths(), "caches synced; scheduling");
    }
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let qp = tokio::select! {
            qp = shared.queue.pop() => qp,
            _ = shutdown.cancelled() => None,
        };
        let Some(qp) = qp else { break };
        let permit = tokio::select! {
            p = shared.bindings.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        schedule_one(&shared, qp, permit, &mut rng);
    }
    shared.queue.close();
    tasks.close();
    tasks.wait().await;
    factory.join().await;
    tracing::info!("scheduler stopped");
}

/// One attempt for `qp`: decide under the cache lock, then bind (or report) in a task.
fn schedule_one(
    shared: &Arc<Shared>,
    qp: QueuedPod,
    permit: tokio::sync::OwnedSemaphorePermit,
    rng: &mut impl rand::Rng,
) {
    // The newest copy of the pod: it may have been bound, deleted or handed to another
    // scheduler while it waited.
    let current = shared.pods.get(&qp.key);
    let pod = match current {
        Some(p)
            if bound_node(&p).is_none()
                && p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_none_or(str::is_empty)
                && p.metadata.deletion_timestamp.is_none()
                && p.metadata.uid == qp.pod.metadata.uid =>
        {
            p
        }
        _ => return shared.queue.done(&qp.key, None),
    };
    let Some(profile) = shared.settings.profile(scheduler_name(&pod)) else {
        return shared.queue.done(&qp.key, None);
    };
    let _enter = qp.span.enter();
    let info = Arc::new(PodInfo::new(pod.clone()));
    let started = Instant::now();
    let outcome = {
        let mut st = shared.cache.lock();
        let memo = if profile.uses(framework::Plugin::PodTopologySpread) {
            st.memoise_spread(&info, profile.default_spreading)
        } else {
            None
        };
        let view: &crate::cache::State = &st;
        let attempt = Attempt {
            profile,
            start: view.next_start,
            others_have_terms: view.others_have_terms(),
            spread: memo.as_ref().and_then(|k| view.spread_memo.get(k)),
        };
        let out = framework::schedule(&info, &view.nodes, &attempt, rng);
        let len = st.nodes.len().max(1);
        st.next_start = (st.next_start + out.processed) % len;
        out.result
    };
    let took = started.elapsed();
    match outcome {
        Ok(decision) => {
            shared.cache.assume(info, &decision.node);
            metrics::attempt("scheduled", &profile.scheduler_name, took);
            qp.span.record("node", decision.node.as_str());
            qp.span.record("result", "scheduled");
            let shared2 = shared.clone();
            let span = tracing::info_span!("scheduler.bind", node = %decision.node);
            drop(_enter);
            shared.tasks.spawn(
                async move {
                    bind(&shared2, qp, pod, decision.node).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        Err(fit) => {
            metrics::attempt("unschedulable", &profile.scheduler_name, took);
            qp.span.record("result", "unschedulable");
            tracing::debug!(pod = %qp.key, reason = %fit, "no node fits");
            drop(_enter);
            let shared2 = shared.clone();
            shared.tasks.spawn(async move {
                report_unschedulable(&shared2, &qp, &pod, &fit).await;
                shared2.queue.done(&qp.key, Some(true));
                drop(permit);
            });
        }
    }
}

async fn bind(shared: &Shared, qp: QueuedPod, pod: Arc<Pod>, node: String) {
    let (ns, name) = (&qp.key.namespace, &qp.key.name);
    match shared
        .client
        .bind(ns, name, &node, &WriteParams::default())
        .await
    {
        Ok(_) => {
            metrics::scheduled(qp.attempts, qp.first_queued.elapsed());
            shared.recorder(&pod).publish(
                reference_to(pod.as_ref()),
                EventType::Normal,
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
            );
            tracing::debug!(pod = %qp.key, %node, "bound");
            shared.queue.done(&qp.key, None);
        }
        Err(e) => {
            shared.cache.forget(&qp.key);
            shared.queue.move_all("AssumedPodForget");
            if e.is_conflict() || e.is_not_found() {
                // Already bound (by another scheduler instance) or gone: nothing to retry.
                tracing::info!(pod = %qp.key, %node, error = %e, "binding refused; leaving the pod");
                shared.queue.done(&qp.key, None);
                return;
            }
            metrics::attempt("error", scheduler_name(&pod), Duration::ZERO);
            tracing::warn!(pod = %qp.key, %node, error = %e, "binding failed; retrying after back-off");
            shared.recorder(&pod).publish(
                reference_to(pod.as_ref()),
                EventType::Warning,
                "FailedScheduling",
                &format!("Binding rejected: {e}"),
            );
            shared.queue.done(&qp.key, Some(false));
        }
    }
}

/// FailedScheduling and PodScheduled=False (reason Unschedulable) for a pod no node fits.
async fn report_unschedulable(shared: &Shared, qp: &QueuedPod, pod: &Pod, fit: &FitError) {
    let message = fit.to_string();
    shared.recorder(pod).publish(
        reference_to(pod),
        EventType::Warning,
        "FailedScheduling",
        &message,
    );
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message.as_str())
        });
    if already {
        return;
    }
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": rkube_runtime::object::now(),
    }]}});
    let body = serde_json::to_vec(&patch).expect("JSON values encode");
    let result = shared
        .client
        .patch(
            &Gvr::of::<Pod>(),
            &qp.key.namespace,
            &qp.key.name,
            "status",
            PatchType::Strategic,
            &body,
            &WriteParams::default(),
        )
        .await;
    if let Err(e) = result {
        if !e.is_not_found() {
            tracing::warn!(pod = %qp.key, error = %e, "cannot set PodScheduled=False");
        }
    }
}
