//! rkube-scheduler as `rkube up` runs it (two replicas, active/standby on the
//! `kube-system/kube-scheduler` Lease, over three TLS apiservers), against Node objects
//! the test creates (no kubelet exists yet: nodes with allocatable and a Ready condition).
//!
//! The node lifecycle controller would taint such nodes once their (missing) Lease is
//! late, so the controller-manager runs with a one-hour grace period here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use rkube_client::{Api, Client, DeleteParams, ListParams, TypedEvent, WatchParams, WriteParams};
use rkube_e2e::cluster::send_signal;
use rkube_e2e::local::LocalCluster;
use serde_json::{json, Value};

const NS: &str = "default";
const WITHIN: Duration = Duration::from_secs(30);

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

/// Polls `f` until it gives a value; panics naming `what` after `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

struct T {
    client: Client,
}

impl T {
    async fn node(&self, name: &str, cpu: &str, extra: Value) {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        });
        merge(&mut v, extra);
        let node: Node = serde_json::from_value(v).unwrap();
        Api::<Node>::cluster(&self.client)
            .create(&node, &WriteParams::default())
            .await
            .unwrap_or_else(|e| panic!("node {name}: {e}"));
    }

    async fn delete_nodes(&self, names: &[&str]) {
        for n in names {
            Api::<Node>::cluster(&self.client)
                .delete(n, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("delete node {n}: {e}"));
        }
    }

    async fn pod(&self, name: &str, cpu: &str, extra: Value) {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "rkube.local/busybox:1.35",
                "resources": {"requests": {"cpu": cpu}}}]}
        });
        merge(&mut v, extra);
        let pod: Pod = serde_json::from_value(v).unwrap();
        Api::<Pod>::namespaced(&self.client, NS)
            .create(&pod, &WriteParams::default())
            .await
            .unwrap_or_else(|e| panic!("pod {name}: {e}"));
    }

    async fn delete_pod(&self, name: &str) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let _ = Api::<Pod>::namespaced(&self.client, NS)
            .delete(name, &params)
            .await;
    }

    async fn node_of(&self, name: &str) -> Option<String> {
        Api::<Pod>::namespaced(&self.client, NS)
            .get(name)
            .await
            .ok()?
            .spec?
            .node_name
    }

    async fn bound_to(&self, name: &str) -> String {
        poll(&format!("{name} is bound"), WITHIN, || self.node_of(name)).await
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        Api::<Event>::namespaced(&self.client, NS)
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    async fn failed_with(&self, name: &str, message: &str) {
        wait_for(
            &format!("{name} has FailedScheduling {message:?}"),
            WITHIN,
            || async {
                self.events(name).await.iter().any(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.message.as_deref() == Some(message)
                })
            },
        )
        .await;
    }
}

fn unavailable(n: usize, reasons: &str) -> String {
    format!("0/{n} nodes are available: {reasons}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.")
}

const PACKER: &str = "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    score:
      disabled: [{name: \"*\"}]
      enabled: [{name: NodeResourcesFit, weight: 10}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_places_pods_as_filters_and_scores_say_under_rkube_up() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), PACKER).unwrap();
    let config_arg = format!("scheduler=--config={}", cfg.path().display());
    let cluster = LocalCluster::up_with(&[
        "--component-arg",
        "controller-manager=--node-monitor-grace-period=1h",
        "--component-arg",
        &config_arg,
    ]);
    let t = T {
        client: cluster.client(),
    };
    tokio::time::timeout(Duration::from_secs(300), async {
        // Resource fit and even spreading; an unschedulable pod gets the per-node
        // reasons and is bound as soon as a node that fits appears.
        for n in ["r1", "r2", "r3"] {
            t.node(n, "2", json!({})).await;
        }
        for i in 0..6 {
            t.pod(&format!("fit{i}"), "500m", json!({})).await;
        }
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..6 {
            *per_node.entry(t.bound_to(&format!("fit{i}")).await).or_default() += 1;
        }
        assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [2, 2, 2], "{per_node:?}");
        t.pod("fit-big", "1500m", json!({})).await;
        t.failed_with("fit-big", &unavailable(3, "3 Insufficient cpu")).await;
        // The event is written before the condition: wait for the condition too.
        let pods = Api::<Pod>::namespaced(&t.client, NS);
        wait_for("fit-big has PodScheduled=False (Unschedulable)", Duration::from_secs(10), || {
            let pods = pods.clone();
            async move {
                pods.get("fit-big").await.ok().and_then(|p| p.status).and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.type_ == "PodScheduled"
                            && c.status == "False"
                            && c.reason.as_deref() == Some("Unschedulable")
                    })
                })
            }
        })
        .await;
        let appeared = Instant::now();
        t.node("r4", "2", json!({})).await;
        assert_eq!(t.bound_to("fit-big").await, "r4");
        assert!(appeared.elapsed() < Duration::from_secs(12), "{:?}", appeared.elapsed());
        t.delete_nodes(&["r1", "r2", "r3", "r4"]).await;

        // Node selectors, required node affinity, inter-pod affinity and anti-affinity.
        t.node("s1", "4", json!({"metadata": {"labels": {"disk": "ssd", "zone": "a"}}})).await;
        t.node("s2", "4", json!({"metadata": {"labels": {"disk": "hdd", "zone": "a"}}})).await;
        t.node("s3", "4", json!({"metadata": {"labels": {"disk": "hdd", "zone": "b"}}})).await;
        t.pod("sel-ssd", "100m", json!({"spec": {"nodeSelector": {"disk": "ssd"}}})).await;
        t.pod("sel-zone-b", "100m", json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}})).await;
        assert_eq!(t.bound_to("sel-ssd").await, "s1");
        assert_eq!(t.bound_to("sel-zone-b").await, "s3");
        t.pod("db", "100m", json!({"metadata": {"labels": {"app": "db"}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": "s2"}}})).await;
        assert_eq!(t.bound_to("db").await, "s2");
        t.pod("near-db", "100m", json!({"spec": {"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}},
                "topologyKey": "kubernetes.io/hostname"}]}}}})).await;
        t.pod("away-from-db", "100m", json!({"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}},
                "topologyKey": "zone"}]}}}})).await;
        assert_eq!(t.bound_to("near-db").await, "s2");
        assert_eq!(t.bound_to("away-from-db").await, "s3");
        t.pod("sel-none", "100m", json!({"spec": {"nodeSelector": {"disk": "tape"}}})).await;
        t.failed_with("sel-none", &unavailable(3, "3 node(s) didn't match Pod's node affinity/selector")).await;
        t.delete_pod("sel-none").await;
        t.delete_nodes(&["s1", "s2", "s3"]).await;

        // Taints and tolerations; host ports.
        t.node("t1", "4", json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})).await;
        t.node("t2", "4", json!({})).await;
        for i in 0..3 {
            t.pod(&format!("plain{i}"), "100m", json!({})).await;
        }
        for i in 0..3 {
            assert_eq!(t.bound_to(&format!("plain{i}")).await, "t2");
        }
        let tolerate = json!([{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]);
        t.pod("tolerant", "100m", json!({"spec": {"tolerations": tolerate,
            "nodeSelector": {"kubernetes.io/hostname": "t1"}}})).await;
        assert_eq!(t.bound_to("tolerant").await, "t1");
        let port = |name: &str| json!({"spec": {"tolerations": tolerate, "containers": [{"name": "c",
            "image": "rkube.local/busybox:1.35", "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
            "metadata": {"name": name}});
        t.pod("port1", "", port("port1")).await;
        let first = t.bound_to("port1").await;
        t.pod("port2", "", port("port2")).await;
        let second = t.bound_to("port2").await;
        assert_ne!(first, second, "two pods with hostPort 8080 on one node");
        t.pod("port3", "", port("port3")).await;
        t.failed_with("port3", &unavailable(2, "2 node(s) didn't have free ports for the requested pod ports")).await;
        t.pod("intolerant", "100m", json!({"spec": {"nodeSelector": {"kubernetes.io/hostname": "t1"}}})).await;
        t.failed_with("intolerant", &unavailable(2,
            "1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: x}")).await;
        t.delete_pod("port3").await;
        t.delete_pod("intolerant").await;
        t.delete_nodes(&["t1", "t2"]).await;

        // Topology spread (DoNotSchedule) over two zones of unequal size.
        t.node("z1", "8", json!({"metadata": {"labels": {"zone": "a"}}})).await;
        t.node("z2", "8", json!({"metadata": {"labels": {"zone": "a"}}})).await;
        t.node("z3", "8", json!({"metadata": {"labels": {"zone": "b"}}})).await;
        let mut zones: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..6 {
            t.pod(&format!("spread{i}"), "100m", json!({"metadata": {"labels": {"app": "spread"}},
                "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]}})).await;
        }
        for i in 0..6 {
            let node = t.bound_to(&format!("spread{i}")).await;
            let zone = if node == "z3" { "b" } else { "a" };
            *zones.entry(zone.to_string()).or_default() += 1;
        }
        assert_eq!(zones, BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]));
        t.delete_nodes(&["z1", "z2", "z3"]).await;

        // A second profile with its own weights packs where the default spreads; a pod
        // for a scheduler that is not ours stays Pending and untouched.
        t.node("p1", "4", json!({})).await;
        t.node("p2", "4", json!({})).await;
        t.pod("other", "100m", json!({"spec": {"schedulerName": "someone-else"}})).await;
        t.pod("packed-seed", "1", json!({"spec": {"nodeName": "p1"}})).await;
        for i in 0..3 {
            t.pod(&format!("packed{i}"), "500m", json!({"spec": {"schedulerName": "packer"}})).await;
            t.pod(&format!("spreading{i}"), "500m", json!({})).await;
        }
        let mut spreading_on_p2 = 0;
        for i in 0..3 {
            assert_eq!(t.bound_to(&format!("packed{i}")).await, "p1");
            if t.bound_to(&format!("spreading{i}")).await == "p2" {
                spreading_on_p2 += 1;
            }
        }
        assert!(spreading_on_p2 >= 2, "the default profile spreads: {spreading_on_p2} of 3 on p2");
        assert!(t.events("packed0").await.iter().any(|e| e.reason.as_deref() == Some("Scheduled")
            && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("packer")));
        assert_eq!(t.node_of("other").await, None);
        assert!(t.events("other").await.is_empty());
    })
    .await
    .expect("the scenarios finish in time");
}

/// The holder of the scheduler's Lease (its process name).
async fn scheduler_leader(client: &Client) -> Option<String> {
    let holder = Api::<Lease>::namespaced(client, "kube-system")
        .get("kube-scheduler")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_active_scheduler_while_pods_arrive_hands_over_without_binding_twice() {
    let cluster = LocalCluster::up_with(&[
        "--component-arg",
        "controller-manager=--node-monitor-grace-period=1h",
        "--component-arg",
        "scheduler=--leader-elect-lease-duration=4s",
        "--component-arg",
        "scheduler=--leader-elect-renew-deadline=3s",
        "--component-arg",
        "scheduler=--leader-elect-retry-period=500ms",
    ]);
    let client = cluster.client();
    let t = T {
        client: client.clone(),
    };
    tokio::time::timeout(Duration::from_secs(240), async {
        for n in ["k1", "k2", "k3"] {
            t.node(n, "64", json!({})).await;
        }
        let leader = poll("a scheduler leads", WITHIN, || scheduler_leader(&client)).await;
        // Every binding the pods' watch shows: a pod's node, once set, never changes.
        let bindings: Arc<Mutex<HashMap<String, BTreeSet<String>>>> = Arc::default();
        let seen = bindings.clone();
        let pods: Api<Pod> = Api::namespaced(&client, NS);
        let mut watch = pods.watch(WatchParams::default()).await.expect("watch");
        let watcher = tokio::spawn(async move {
            while let Some(Ok(ev)) = watch.next().await {
                if let TypedEvent::Added(p) | TypedEvent::Modified(p) = ev {
                    if let Some(n) = p.spec.and_then(|s| s.node_name) {
                        seen.lock()
                            .unwrap()
                            .entry(p.metadata.name.unwrap())
                            .or_default()
                            .insert(n);
                    }
                }
            }
        });
        const PODS: usize = 120;
        let creator = {
            let t = T {
                client: client.clone(),
            };
            tokio::spawn(async move {
                for i in 0..PODS {
                    t.pod(&format!("ha{i}"), "100m", json!({})).await;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = cluster.pid_of(&leader).expect("the leader's pid");
        send_signal(pid, libc::SIGKILL);
        let killed = Instant::now();
        creator.await.unwrap();
        let new_leader = poll("the standby leads", WITHIN, || async {
            scheduler_leader(&client).await.filter(|l| *l != leader)
        })
        .await;
        wait_for("every pod is bound", Duration::from_secs(60), || async {
            bindings.lock().unwrap().len() == PODS
        })
        .await;
        eprintln!(
            "standby {} took over; all {PODS} pods bound {:?} after the kill",
            new_leader,
            killed.elapsed()
        );
        for (pod, nodes) in bindings.lock().unwrap().iter() {
            assert_eq!(nodes.len(), 1, "{pod} bound to {nodes:?}");
        }
        let pending = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
            .count();
        assert_eq!(pending, 0);
        // Binding a bound pod is refused.
        let err = client
            .bind(NS, "ha0", "k1", &WriteParams::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), 409);
        watcher.abort();
    })
    .await
    .expect("the failover finishes in time");
}
