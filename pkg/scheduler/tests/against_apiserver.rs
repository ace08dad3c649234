//! The scheduler against a real in-process apiserver: Node objects the test creates
//! (no kubelet), pods created through the API, bindings and events read back.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Api, Client, Config as ClientConfig, ListParams, WriteParams};
use rkube_scheduler::Settings;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

struct Harness {
    api: TestApiserver,
    client: Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(settings: Settings) -> Harness {
        let api = TestApiserver::start().await;
        let mut c = ClientConfig::new([api.addr.clone()]);
        c.deadline = Duration::from_secs(10);
        let client = Client::new(c).expect("client");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(rkube_scheduler::run(
            client.clone(),
            settings,
            "test".into(),
            shutdown.clone(),
        ));
        Harness {
            api,
            client,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.api.stop().await;
    }

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
            .expect("node created");
    }

    async fn pod(&self, name: &str, cpu: &str, extra: Value) {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": cpu}}}]}
        });
        merge(&mut v, extra);
        let pod: Pod = serde_json::from_value(v).unwrap();
        Api::<Pod>::namespaced(&self.client, "default")
            .create(&pod, &WriteParams::default())
            .await
            .expect("pod created");
    }

    async fn get(&self, name: &str) -> Pod {
        Api::<Pod>::namespaced(&self.client, "default")
            .get(name)
            .await
            .expect("pod")
    }

    async fn node_of(&self, name: &str) -> Option<String> {
        self.get(name).await.spec.and_then(|s| s.node_name)
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        Api::<Event>::namespaced(&self.client, "default")
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
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

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_spread_evenly_over_equal_nodes_and_get_a_scheduled_event() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let h = Harness::start(Settings::default()).await;
        for n in ["n1", "n2", "n3"] {
            h.node(n, "4", json!({})).await;
        }
        for i in 0..9 {
            h.pod(&format!("p{i}"), "100m", json!({})).await;
        }
        let mut per_node = std::collections::BTreeMap::new();
        for i in 0..9 {
            let name = format!("p{i}");
            eventually("every pod is bound", WITHIN, || async {
                h.node_of(&name).await.is_some()
            })
            .await;
            *per_node.entry(h.node_of(&name).await.unwrap()).or_insert(0) += 1;
        }
        assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
        let p0 = h.get("p0").await;
        let cond = p0.status.unwrap().conditions.unwrap();
        assert!(cond
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True"));
        let node = h.node_of("p0").await.unwrap();
        eventually("p0 has its Scheduled event", WITHIN, || async {
            h.events("p0").await.iter().any(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.message.as_deref()
                        == Some(&format!("Successfully assigned default/p0 to {node}"))
            })
        })
        .await;
        h.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_is_reported_with_per_node_reasons_then_bound_when_a_node_fits() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let h = Harness::start(Settings::default()).await;
        h.node("small1", "1", json!({})).await;
        h.node("small2", "1", json!({})).await;
        h.node("tainted", "8", json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})).await;
        h.pod("big", "2", json!({})).await;
        let want = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: x}, 2 Insufficient cpu. \
                    preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
        eventually("FailedScheduling names the reasons", WITHIN, || async {
            h.events("big").await.iter().any(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.type_.as_deref() == Some("Warning")
                    && e.message.as_deref() == Some(want)
            })
        })
        .await;
        eventually("PodScheduled=False, Unschedulable", WITHIN, || async {
            h.get("big").await.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(want)
            })
        })
        .await;
        assert_eq!(h.node_of("big").await, None);
        // A node that fits appears: the pod is bound to it well within its back-off cap.
        let t = std::time::Instant::now();
        h.node("large", "4", json!({})).await;
        eventually("big is bound to large", Duration::from_secs(12), || async {
            h.node_of("big").await.as_deref() == Some("large")
        })
        .await;
        assert!(t.elapsed() < Duration::from_secs(12));
        // Binding it again is refused by the apiserver.
        let err = h.client.bind("default", "big", "small1", &WriteParams::default()).await.unwrap_err();
        assert_eq!(err.code(), 409);
        h.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_for_another_scheduler_stays_pending_and_a_second_profile_schedules_differently() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let settings = rkube_scheduler::config::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1
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
",
        )
        .unwrap();
        let h = Harness::start(settings).await;
        h.node("a", "4", json!({})).await;
        h.node("b", "4", json!({})).await;
        h.pod("seed", "1", json!({"spec": {"nodeName": "a"}})).await;
        h.pod(
            "elsewhere",
            "100m",
            json!({"spec": {"schedulerName": "someone-else"}}),
        )
        .await;
        for i in 0..3 {
            h.pod(
                &format!("packed{i}"),
                "500m",
                json!({"spec": {"schedulerName": "packer"}}),
            )
            .await;
            h.pod(&format!("spread{i}"), "500m", json!({})).await;
        }
        for i in 0..3 {
            let (packed, spread) = (format!("packed{i}"), format!("spread{i}"));
            eventually("the pods are bound", WITHIN, || async {
                h.node_of(&packed).await.is_some() && h.node_of(&spread).await.is_some()
            })
            .await;
        }
        // The packer fills the node already in use.
        for i in 0..3 {
            assert_eq!(h.node_of(&format!("packed{i}")).await.as_deref(), Some("a"));
        }
        let spread_b = count_on(&h, "spread", "b").await;
        assert!(
            spread_b >= 2,
            "least-allocated puts most on the emptier node: {spread_b}"
        );
        // Events name the profile that scheduled the pod.
        eventually("packer's event", WITHIN, || async {
            h.events("packed0").await.iter().any(|e| {
                e.reason.as_deref() == Some("Scheduled")
                    && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("packer")
            })
        })
        .await;
        assert_eq!(h.node_of("elsewhere").await, None);
        assert!(h.events("elsewhere").await.is_empty());
        h.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

async fn count_on(h: &Harness, prefix: &str, node: &str) -> usize {
    let mut n = 0;
    for i in 0..3 {
        if h.node_of(&format!("{prefix}{i}")).await.as_deref() == Some(node) {
            n += 1;
        }
    }
    n
}
