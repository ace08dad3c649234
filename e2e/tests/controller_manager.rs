//! The controller-manager as `rkube up` runs it (two replicas, active/standby, over
//! three apiservers): rollouts that never break maxSurge/maxUnavailable and finish across
//! kill -9 of the active controller-manager and of the Raft leader, with no pod
//! duplicated or lost; a node whose Lease stops is tainted and its pods are replaced.
//!
//! No kubelet exists yet: the test plays its part for the pods (it binds them, when a node
//! is needed, and marks them Ready through the status subresource).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use rkube_client::{Api, Client, ListParams, PatchType, TypedEvent, WatchParams, WriteParams};
use rkube_e2e::cluster::send_signal;
use rkube_e2e::local::LocalCluster;
use serde_json::json;

const NS: &str = "default";

fn now() -> k8s_openapi::jiff::Timestamp {
    rkube_runtime::object::now()
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    tolerations: serde_json::Value,
) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}], "tolerations": tolerations},
            },
        },
    }))
    .unwrap()
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Plays the kubelet: every pod that appears (bound to a node when `nodes` is given,
/// round robin) is marked Running and Ready a little later.
fn fake_kubelet(client: Client, nodes: Arc<Mutex<Vec<String>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(&client, NS);
        let mut next = 0usize;
        loop {
            let Ok(list) = pods.list(&ListParams::default()).await else {
                continue;
            };
            for p in list.items {
                if p.metadata.deletion_timestamp.is_some() || is_ready(&p) {
                    continue;
                }
                let name = p.metadata.name.clone().unwrap();
                let unbound = p.spec.as_ref().and_then(|s| s.node_name.clone()).is_none();
                let candidates: Vec<String> = nodes.lock().unwrap().clone();
                if unbound && !candidates.is_empty() {
                    let node = &candidates[next % candidates.len()];
                    next += 1;
                    if client
                        .bind(NS, &name, node, &WriteParams::default())
                        .await
                        .is_err()
                    {
                        continue;
                    }
                }
                let Ok(mut fresh) = pods.get(&name).await else {
                    continue;
                };
                fresh.status = Some(PodStatus {
                    phase: Some("Running".into()),
                    conditions: Some(vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(now())),
                        ..Default::default()
                    }]),
                    ..Default::default()
                });
                let _ = pods.update_status(&fresh, &WriteParams::default()).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The holder of the controller-manager's Lease (its process name).
async fn cm_leader(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let holder = leases
        .get("kube-controller-manager")
        .await
        .ok()?
        .spec?
        .holder_identity?;
    holder
        .split('_')
        .next()
        .map(str::to_string)
        .filter(|h| !h.is_empty())
}

/// Watches the ReplicaSets and pods of `app`, checking at every event the rollout bounds:
/// the ReplicaSets' replicas never sum above `replicas + surge`, and once the rollout
/// started ready pods never drop below `replicas - unavailable`.
fn guard_bounds(
    client: Client,
    app: &str,
    replicas: i32,
    surge: i32,
    unavailable: i32,
) -> Arc<Mutex<Vec<String>>> {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let v = violations.clone();
    let selector = format!("app={app}");
    tokio::spawn(async move {
        let sizes: Arc<Mutex<BTreeMap<String, i32>>> = Default::default();
        let ready: Arc<Mutex<BTreeSet<String>>> = Default::default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(&client, NS);
        let pod_api: Api<Pod> = Api::namespaced(&client, NS);
        let params = WatchParams {
            label_selector: selector,
            ..Default::default()
        };
        let (mut rsw, mut pw) = (
            rs_api.watch(params.clone()).await.unwrap(),
            pod_api.watch(params).await.unwrap(),
        );
        let mut armed = false;
        // The last pod changes seen, for the violation messages.
        let mut recent: std::collections::VecDeque<String> = Default::default();
        loop {
            tokio::select! {
                ev = rsw.next() => match ev {
                    Some(Ok(TypedEvent::Added(rs))) | Some(Ok(TypedEvent::Modified(rs))) => {
                        let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                        sizes.lock().unwrap().insert(rs.metadata.name.clone().unwrap(), n);
                    }
                    Some(Ok(TypedEvent::Deleted(rs))) => { sizes.lock().unwrap().remove(&rs.metadata.name.unwrap()); }
                    Some(Ok(_)) => {}
                    other => { v.lock().unwrap().push(format!("the ReplicaSet watch ended: {other:?}")); return }
                },
                ev = pw.next() => match ev {
                    Some(Ok(TypedEvent::Added(p))) | Some(Ok(TypedEvent::Modified(p))) => {
                        let name = p.metadata.name.clone().unwrap();
                        recent.push_back(format!("{name} ready={} deleting={} rv={:?} conditions={:?}",
                            is_ready(&p), p.metadata.deletion_timestamp.is_some(), p.metadata.resource_version,
                            p.status.as_ref().and_then(|s| s.conditions.as_ref()).map(|cs| cs.iter().map(|c| format!("{}={}", c.type_, c.status)).collect::<Vec<_>>())));
                        if is_ready(&p) && p.metadata.deletion_timestamp.is_none() { ready.lock().unwrap().insert(name); }
                        else { ready.lock().unwrap().remove(&name); }
                    }
                    Some(Ok(TypedEvent::Deleted(p))) => {
                        recent.push_back(format!("{} deleted", p.metadata.name.clone().unwrap()));
                        ready.lock().unwrap().remove(&p.metadata.name.unwrap());
                    }
                    Some(Ok(_)) => {}
                    other => { v.lock().unwrap().push(format!("the pod watch ended: {other:?}")); return }
                },
            }
            while recent.len() > 12 {
                recent.pop_front();
            }
            let total: i32 = sizes.lock().unwrap().values().sum();
            let ready_now = ready.lock().unwrap().len() as i32;
            armed |= ready_now >= replicas;
            if total > replicas + surge {
                v.lock().unwrap().push(format!(
                    "replica sets sum to {total} > {replicas} + {surge}"
                ));
            }
            if armed && ready_now < replicas - unavailable {
                v.lock()
                    .unwrap()
                    .push(format!("{ready_now} ready < {replicas} - {unavailable}; replica sets {:?}; last pod changes: {recent:#?}", sizes.lock().unwrap()));
            }
        }
    });
    violations
}

/// Waits until the rollout of `name` to `image` is complete: every replica updated and
/// available, nothing else left.
async fn wait_rolled_out(
    client: &Client,
    name: &str,
    image: &str,
    replicas: i32,
    within: Duration,
) {
    let deployments: Api<Deployment> = Api::namespaced(client, NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    wait_for(&format!("{name} rolled out to {image}"), within, || {
        let (deployments, pods, image) = (deployments.clone(), pods.clone(), image.to_string());
        async move {
            let Ok(d) = deployments.get(name).await else {
                return false;
            };
            let st = d.status.clone().unwrap_or_default();
            let gen_ok = st.observed_generation == d.metadata.generation;
            let listed = pods
                .list(&ListParams {
                    label_selector: format!("app={name}"),
                    ..Default::default()
                })
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let live: Vec<&Pod> = listed
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let all_new = live.iter().all(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some(image.as_str())
            });
            gen_ok
                && st.updated_replicas == Some(replicas)
                && st.available_replicas == Some(replicas)
                && st.replicas == Some(replicas)
                && live.len() == replicas as usize
                && all_new
        }
    })
    .await;
}

async fn set_image(client: &Client, name: &str, image: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client, NS);
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    deployments
        .patch(name, PatchType::Strategic, &patch, &WriteParams::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_keep_their_bounds_and_finish_across_kill_9_of_the_active_controller_manager_and_the_raft_leader(
) {
    let cluster = LocalCluster::up_with(&[
        "--component-arg",
        "controller-manager=--leader-elect-lease-duration=4s",
        "--component-arg",
        "controller-manager=--leader-elect-renew-deadline=3s",
        "--component-arg",
        "controller-manager=--leader-elect-retry-period=500ms",
    ]);
    let client = cluster.client();
    let _kubelet = fake_kubelet(client.clone(), Arc::new(Mutex::new(Vec::new())));
    let deployments: Api<Deployment> = Api::namespaced(&client, NS);
    wait_for(
        "a controller-manager leads",
        Duration::from_secs(30),
        || {
            let c = client.clone();
            async move { cm_leader(&c).await.is_some() }
        },
    )
    .await;
    deployments
        .create(
            &deployment("web", 6, "demo:v1", json!([])),
            &WriteParams::default(),
        )
        .await
        .unwrap();
    wait_rolled_out(&client, "web", "demo:v1", 6, Duration::from_secs(60)).await;
    let violations = guard_bounds(client.clone(), "web", 6, 2, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Mid-rollout, kill -9 the controller-manager that leads: the standby finishes it.
    let leader = cm_leader(&client).await.unwrap();
    set_image(&client, "web", "demo:v2").await;
    wait_for("the rollout started", Duration::from_secs(20), || {
        let d = deployments.clone();
        async move {
            d.get("web")
                .await
                .is_ok_and(|d| d.status.and_then(|s| s.updated_replicas).unwrap_or(0) > 0)
        }
    })
    .await;
    let pid = cluster.pid_of(&leader).expect("the leader runs");
    send_signal(pid, libc::SIGKILL);
    let killed = Instant::now();
    wait_for("the standby leads", Duration::from_secs(20), || {
        let (c, old) = (client.clone(), leader.clone());
        async move { cm_leader(&c).await.is_some_and(|l| l != old) }
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took over after {:?} (lease 4 s)",
        killed.elapsed()
    );
    wait_rolled_out(&client, "web", "demo:v2", 6, Duration::from_secs(60)).await;

    // Mid-rollout, kill -9 the Raft leader: the controllers' watches and writes fail over.
    set_image(&client, "web", "demo:v3").await;
    let st = cluster.status();
    let raft_leader = st["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "leader")
        .and_then(|a| a["pid"].as_u64())
        .expect("a Raft leader") as u32;
    send_signal(raft_leader, libc::SIGKILL);
    wait_rolled_out(&client, "web", "demo:v3", 6, Duration::from_secs(90)).await;

    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "rollout bounds broken: {v:?}");
    // No pod duplicated or lost: six, all of the newest template, one ReplicaSet with them.
    let rs_api: Api<ReplicaSet> = Api::namespaced(&client, NS);
    let sets = rs_api
        .list(&ListParams {
            label_selector: "app=web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    let active: Vec<_> = sets
        .iter()
        .filter(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        .collect();
    assert_eq!(active.len(), 1, "one ReplicaSet holds every replica");
    assert_eq!(sets.len(), 3, "three revisions kept");
}

fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(Time(now())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_stops_is_tainted_and_its_pods_are_replaced_on_another() {
    let cluster = LocalCluster::up_with(&[
        "--component-arg",
        "controller-manager=--node-monitor-grace-period=3s",
        "--component-arg",
        "controller-manager=--node-monitor-period=500ms",
    ]);
    let client = cluster.client();
    let nodes: Api<Node> = Api::cluster(&client);
    let leases: Api<Lease> = Api::namespaced(&client, "kube-node-lease");
    for n in ["n-a", "n-b"] {
        nodes
            .create(&node(n), &WriteParams::default())
            .await
            .unwrap();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(n.into()),
                namespace: Some("kube-node-lease".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(n.into()),
                renew_time: Some(MicroTime(now())),
                lease_duration_seconds: Some(40),
                ..Default::default()
            }),
        };
        leases
            .create(&lease, &WriteParams::default())
            .await
            .unwrap();
    }
    // Both "kubelets" renew their Leases, until n-a's stops.
    let alive = Arc::new(Mutex::new(vec!["n-a".to_string(), "n-b".to_string()]));
    let renewer = {
        let (leases, alive) = (leases.clone(), alive.clone());
        tokio::spawn(async move {
            loop {
                let names = alive.lock().unwrap().clone();
                for n in names {
                    if let Ok(mut l) = leases.get(&n).await {
                        l.spec.as_mut().unwrap().renew_time = Some(MicroTime(now()));
                        let _ = leases.update(&l, &WriteParams::default()).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let schedulable = Arc::new(Mutex::new(vec!["n-a".to_string(), "n-b".to_string()]));
    let _kubelet = fake_kubelet(client.clone(), schedulable.clone());
    let tolerations = json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1},
    ]);
    let deployments: Api<Deployment> = Api::namespaced(&client, NS);
    deployments
        .create(
            &deployment("svc", 4, "demo:v1", tolerations),
            &WriteParams::default(),
        )
        .await
        .unwrap();
    wait_rolled_out(&client, "svc", "demo:v1", 4, Duration::from_secs(60)).await;
    let pods: Api<Pod> = Api::namespaced(&client, NS);
    let on = |node: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams {
                label_selector: "app=svc".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().unwrap().node_name.as_deref() == Some(node)
            })
            .count()
        }
    };
    assert_eq!(on("n-a").await, 2, "round robin put two pods on each node");

    // n-a goes silent; the scheduler stand-in only uses n-b from now on.
    alive.lock().unwrap().retain(|n| n != "n-a");
    schedulable.lock().unwrap().retain(|n| n != "n-a");
    wait_for(
        "n-a is unreachable and tainted",
        Duration::from_secs(30),
        || {
            let nodes = nodes.clone();
            async move {
                let n = nodes.get("n-a").await.unwrap();
                let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
                taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            }
        },
    )
    .await;
    wait_for(
        "every pod runs on n-b",
        Duration::from_secs(30),
        || async move { on("n-a").await == 0 && on("n-b").await == 4 },
    )
    .await;
    wait_rolled_out(&client, "svc", "demo:v1", 4, Duration::from_secs(30)).await;
    let b = nodes.get("n-b").await.unwrap();
    assert!(
        b.spec.and_then(|s| s.taints).unwrap_or_default().is_empty(),
        "n-b stays untainted"
    );
    renewer.abort();
}
