//! The kubelet's API side against a real in-process apiserver: graceful deletion of bound
//! pods (what the kubelet's final delete relies on), node registration and the Lease, and
//! the status manager writing only the newest status.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Api, Client, Config, DeleteParams, WriteParams};
use rkube_kubelet::node::{self, Host};
use rkube_kubelet::status_manager::StatusManager;
use rkube_runtime::ObjectKey;
use tokio_util::sync::CancellationToken;

fn client(api: &TestApiserver) -> Client {
    let mut c = Config::new([api.addr.clone()]);
    c.deadline = Duration::from_secs(10);
    Client::new(c).expect("a client")
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "rkube.local/busybox:1.35"}]},
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_bound_pod_is_deleted_gracefully_until_its_kubelet_deletes_it_with_grace_zero() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let api = TestApiserver::start().await;
        let pods: Api<Pod> = Api::namespaced(&client(&api), "default");
        let w = WriteParams::default();
        pods.create(&pod("bound", Some("n1")), &w).await.unwrap();
        pods.create(&pod("unbound", None), &w).await.unwrap();

        pods.delete("unbound", &DeleteParams::default())
            .await
            .unwrap();
        assert!(
            pods.get("unbound").await.unwrap_err().is_not_found(),
            "no node: gone at once"
        );

        pods.delete("bound", &DeleteParams::default())
            .await
            .unwrap();
        let marked = pods.get("bound").await.unwrap();
        assert!(marked.metadata.deletion_timestamp.is_some());
        assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
        let shorter = DeleteParams {
            grace_period_seconds: Some(5),
            ..Default::default()
        };
        pods.delete("bound", &shorter).await.unwrap();
        assert_eq!(
            pods.get("bound")
                .await
                .unwrap()
                .metadata
                .deletion_grace_period_seconds,
            Some(5)
        );
        let rv = pods.get("bound").await.unwrap().metadata.resource_version;
        pods.delete("bound", &DeleteParams::default())
            .await
            .unwrap();
        assert_eq!(
            pods.get("bound").await.unwrap().metadata.resource_version,
            rv,
            "a longer grace changes nothing"
        );
        let last = DeleteParams {
            grace_period_seconds: Some(0),
            precondition_uid: marked.metadata.uid.clone(),
            ..Default::default()
        };
        pods.delete("bound", &last).await.unwrap();
        assert!(pods.get("bound").await.unwrap_err().is_not_found());
        api.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn registration_reports_the_host_and_the_lease_names_the_node() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let api = TestApiserver::start().await;
        let c = client(&api);
        let host = Host::probe(std::path::Path::new("/"), 110, Some("10.0.0.7".into()));
        let now = Time(rkube_runtime::object::now());
        let status = node::node_status(&host, "n1", "containerd://1.6.20", None, None, &now);
        let n = node::register(&c, "n1", Some("10.244.3.0/24"), status)
            .await
            .unwrap();
        assert_eq!(
            n.spec.as_ref().unwrap().pod_cidr.as_deref(),
            Some("10.244.3.0/24")
        );
        let got = Api::<Node>::cluster(&c).get("n1").await.unwrap();
        let st = got.status.unwrap();
        assert_eq!(st.capacity.unwrap()["pods"].0, "110");
        assert!(st
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"));
        assert_eq!(st.addresses.unwrap()[0].address, "10.0.0.7");
        // Registering again (a restarted kubelet) takes the node over.
        let status = node::node_status(&host, "n1", "containerd://1.6.20", None, None, &now);
        node::register(&c, "n1", None, status).await.unwrap();

        node::renew_lease(
            &c,
            &got.metadata.clone().into_node(),
            Duration::from_secs(40),
        )
        .await
        .unwrap();
        let lease = Api::<Lease>::namespaced(&c, "kube-node-lease")
            .get("n1")
            .await
            .unwrap();
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        let first = spec.renew_time.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        node::renew_lease(&c, &got.metadata.into_node(), Duration::from_secs(40))
            .await
            .unwrap();
        let renewed = Api::<Lease>::namespaced(&c, "kube-node-lease")
            .get("n1")
            .await
            .unwrap();
        assert!(renewed.spec.unwrap().renew_time.unwrap().0 > first.0);
        api.stop().await;
    })
    .await
    .expect("test timed out");
}

trait IntoNode {
    fn into_node(self) -> Node;
}

impl IntoNode for k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    fn into_node(self) -> Node {
        Node {
            metadata: self,
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn the_status_manager_writes_the_newest_status() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let api = TestApiserver::start().await;
        let c = client(&api);
        let pods: Api<Pod> = Api::namespaced(&c, "default");
        let created = pods
            .create(&pod("p", Some("n1")), &WriteParams::default())
            .await
            .unwrap();
        let uid = created.metadata.uid.unwrap();
        let m = StatusManager::default();
        let key = ObjectKey::new("default", "p");
        let status = |phase: &str, ip: Option<&str>| PodStatus {
            phase: Some(phase.into()),
            pod_ip: ip.map(str::to_string),
            ..Default::default()
        };
        m.set(
            key.clone(),
            uid.clone(),
            status("Pending", Some("10.244.0.9")),
        );
        m.set(key.clone(), uid.clone(), status("Running", None));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(m.clone().run(c.clone(), shutdown.clone()));
        eventually("the status written", || {
            let pods = pods.clone();
            async move {
                pods.get("p")
                    .await
                    .unwrap()
                    .status
                    .and_then(|s| s.phase)
                    .as_deref()
                    == Some("Running")
            }
        })
        .await;
        let s = pods.get("p").await.unwrap().status.unwrap();
        assert_eq!(
            s.pod_ip, None,
            "the newest status replaced the pending one whole"
        );
        assert_eq!(m.pending(), 0);
        shutdown.cancel();
        task.await.unwrap();
        api.stop().await;
    })
    .await
    .expect("test timed out");
}
