//! The node lifecycle controller: notices nodes whose kubelet went silent, taints nodes by
//! their Ready condition, and evicts pods from nodes with NoExecute taints they do not
//! tolerate (long enough) — so their ReplicaSets replace them elsewhere.
//!
//! Expected flow, per node, every `--node-monitor-period` and whenever its Node, its
//! Lease (`kube-node-lease/<node>`) or one of its pods changes:
//! 1. *health* ([`health`]): a node not heard from for `--node-monitor-grace-period`
//!    (40 s) gets Ready/MemoryPressure/DiskPressure/PIDPressure = Unknown, a
//!    `NodeNotReady` event, and its pods' Ready conditions set False;
//! 2. *taints*: `node.kubernetes.io/unreachable` (Ready Unknown) or `not-ready` (Ready
//!    False), NoSchedule and NoExecute, and `unschedulable` for a cordoned node; removed
//!    when the node is Ready again;
//! 3. *evictions* ([`eviction`]): each pod on a node with NoExecute taints is deleted when
//!    its tolerations run out (the apiserver gives every pod 300 s for not-ready and
//!    unreachable, as Kubernetes' DefaultTolerationSeconds does), with a
//!    `TaintManagerEviction` event; the node is reconciled again at the next deadline.
//!
//! Guarantees: writes are conditional on resourceVersion (node) and UID (pod deletes).
//! Caveat: "heard from" is what this controller instance observed; a new leader gives
//! every node a fresh grace period, as Kubernetes does.

pub mod eviction;
pub mod health;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_client::{Api, DeleteParams, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::store::{index_pod_node_name, INDEX_NODE_NAME};
use rkube_runtime::{Action, Controller, EventType, ObjectKey, Recorder, Selection, Store};
use tokio::time::Instant;

use crate::Context;

/// The namespace of the kubelets' heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating node {node} failed")]
    Node {
        node: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("evicting pod {pod} failed")]
    Evict {
        pod: String,
        #[source]
        source: rkube_client::Error,
    },
}

/// What this instance last saw of a node's heartbeats, and when (local time).
#[derive(Debug, Clone, PartialEq)]
struct Heard {
    lease_renew: Option<String>,
    heartbeat: Option<String>,
    at: Instant,
}

struct State {
    ctx: Context,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    heard: Mutex<HashMap<String, Heard>>,
    recorder: Recorder,
}

/// Runs the controller until the context's shutdown.
pub async fn run(ctx: Context) {
    let nodes = ctx.factory.informer::<Node>(Selection::all());
    let leases = ctx
        .factory
        .informer::<Lease>(Selection::all().namespace(LEASE_NAMESPACE));
    let pods = ctx.factory.informer::<Pod>(Selection::all());
    pods.add_index(INDEX_NODE_NAME, index_pod_node_name());
    let controller = Controller::new("nodelifecycle", &nodes)
        .watches(&leases, |l: &Lease| {
            vec![ObjectKey::cluster(
                l.metadata.name.clone().unwrap_or_default(),
            )]
        })
        .watches(&pods, |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .map(ObjectKey::cluster)
                .into_iter()
                .collect()
        })
        .resync_every(ctx.config.node_monitor_period)
        .workers(2);
    let state = Arc::new(State {
        recorder: ctx.recorder("node-controller"),
        ctx: ctx.clone(),
        nodes: nodes.store(),
        leases: leases.store(),
        pods: pods.store(),
        heard: Mutex::new(HashMap::new()),
    });
    controller
        .run(reconcile, retry_with_backoff, state, ctx.shutdown().clone())
        .await;
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let Some(node) = st.nodes.get(&key) else {
        st.heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.name);
        return Ok(Action::await_change());
    };
    let mut node = (*node).clone();
    let grace = st.ctx.config.node_monitor_grace_period;
    let silent_for = st.observe(&node);
    let now = rkube_runtime::object::now();
    let api: Api<Node> = Api::cluster(&st.ctx.client);
    let node_error = |source| Error::Node {
        node: key.name.clone(),
        source,
    };

    // 1. Health.
    if silent_for > grace {
        if let Some(conditions) = health::silent_conditions(&node, now) {
            let was_ready = health::ready_status(&node) == Some("True");
            node.status.get_or_insert_with(Default::default).conditions = Some(conditions);
            node = api
                .update_status(&node, &WriteParams::default())
                .await
                .map_err(node_error)?;
            tracing::warn!(node = %key.name, silent_for = ?silent_for, "node stopped reporting; Ready=Unknown");
            st.recorder.publish_for(
                &node,
                EventType::Normal,
                "NodeNotReady",
                &format!("Node {} status is now: NodeNotReady", key.name),
            );
            if was_ready {
                st.mark_pods_not_ready(&key.name).await;
            }
        }
    }

    // 2. Taints.
    if let Some(taints) = health::desired_taints(&node, now) {
        node.spec.get_or_insert_with(Default::default).taints =
            Some(taints).filter(|t| !t.is_empty());
        node = api
            .update(&node, &WriteParams::default())
            .await
            .map_err(node_error)?;
    }

    // 3. Evictions.
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut next: Option<Duration> = None;
    if taints
        .iter()
        .any(|t| t.effect == rkube_api::taints::NO_EXECUTE)
    {
        for pod in st.pods.by_index(INDEX_NODE_NAME, &key.name) {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match eviction::decide(&pod, &taints, now) {
                eviction::Decision::Keep => {}
                eviction::Decision::EvictAt(at) if at <= now => st.evict(&pod).await?,
                eviction::Decision::EvictAt(at) => {
                    let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
                    next = Some(next.map_or(wait, |n| n.min(wait)));
                }
            }
        }
    }
    // Check again at the next eviction deadline, or when the grace period could run out.
    let mut after = next;
    if silent_for <= grace {
        let until_silent = grace - silent_for + Duration::from_millis(100);
        after = Some(after.map_or(until_silent, |a| a.min(until_silent)));
    }
    Ok(match after {
        Some(d) => Action::requeue(d.max(Duration::from_millis(100))),
        None => Action::await_change(),
    })
}

impl State {
    /// Notes the node's heartbeats; returns how long it has been silent.
    fn observe(&self, node: &Node) -> Duration {
        let name = node.metadata.name.clone().unwrap_or_default();
        let lease_renew = self
            .leases
            .get(&ObjectKey::new(LEASE_NAMESPACE, &name))
            .and_then(|l| {
                l.spec
                    .as_ref()?
                    .renew_time
                    .as_ref()
                    .map(|t| t.0.to_string())
            });
        let heartbeat = health::heartbeat(node);
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = heard.entry(name).or_insert_with(|| Heard {
            lease_renew: lease_renew.clone(),
            heartbeat: heartbeat.clone(),
            at: Instant::now(),
        });
        if entry.lease_renew != lease_renew || entry.heartbeat != heartbeat {
            *entry = Heard {
                lease_renew,
                heartbeat,
                at: Instant::now(),
            };
        }
        entry.at.elapsed()
    }

    /// Sets the Ready condition of every pod on `node` to False (best effort).
    async fn mark_pods_not_ready(&self, node: &str) {
        let now = Time(rkube_runtime::object::now());
        for pod in self.pods.by_index(INDEX_NODE_NAME, node) {
            let mut pod = (*pod).clone();
            let Some(status) = pod.status.as_mut() else {
                continue;
            };
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            match conditions.iter_mut().find(|c| c.type_ == "Ready") {
                Some(c) if c.status == "False" => continue,
                Some(c) => {
                    c.status = "False".into();
                    c.last_transition_time = Some(now.clone());
                }
                None => conditions.push(PodCondition {
                    type_: "Ready".into(),
                    status: "False".into(),
                    last_transition_time: Some(now.clone()),
                    ..Default::default()
                }),
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(&self.ctx.client, &ns);
            if let Err(e) = api.update_status(&pod, &WriteParams::default()).await {
                tracing::debug!(pod = ?pod.metadata.name, error = %e, "marking a pod not ready failed");
            }
        }
    }

    async fn evict(&self, pod: &Pod) -> Result<(), Error> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.recorder.publish_for(
            pod,
            EventType::Normal,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        );
        let api: Api<Pod> = Api::namespaced(&self.ctx.client, &ns);
        let params = DeleteParams {
            precondition_uid: pod.metadata.uid.clone(),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{ns}/{name}"), "evicted from a NoExecute-tainted node");
                Ok(())
            }
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(source) => Err(Error::Evict {
                pod: format!("{ns}/{name}"),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
