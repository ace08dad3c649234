//! Admission through the REST door of a real replica: `TraceContext` puts the
//! creating request's trace context on a new pod (continuing the caller's W3C
//! trace), leaves a pod's own annotation alone and other kinds untouched; a
//! Deployment's trace reaches its ReplicaSet and every pod through the controllers.

use std::time::Duration;

use rkube_e2e::cluster::{free_port, Cluster, Options};
use rkube_e2e::http::Http;
use serde_json::{json, Value};

const JSON: &str = "application/json";
const ANNOTATION: &str = "tracing.k8s.io/traceparent";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn pod(name: &str, annotations: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "rkube.local/busybox:1.35"}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pod_carries_its_creating_requests_trace_context() {
    // Tracing on: an OTLP endpoint (nothing listens there; export failures do
    // not matter, the spans and their context exist all the same).
    let mut cluster = Cluster::start_with(Options {
        replicas: 1,
        system_namespaces: true,
        extra_args: vec![format!("--otlp-endpoint=http://127.0.0.1:{}", free_port())],
        ..Default::default()
    })
    .await;
    cluster.leader(Duration::from_secs(30)).await;
    let endpoint = cluster.endpoint(0);
    let run = tokio::task::spawn_blocking(move || {
        let traced = Http::new(&endpoint, JSON, Duration::from_secs(30))
            .with_header("traceparent", &format!("00-{TRACE_ID}-{PARENT_SPAN}-01"));
        let pods = "/api/v1/namespaces/default/pods";

        // The annotation continues the caller's trace: same trace id, the
        // apiserver's own span as parent, sampled.
        let r = traced.request("POST", pods, JSON, &pod("traced", json!({})));
        assert_eq!(r.code, 201, "{}", r.body);
        let tp = r.body["metadata"]["annotations"][ANNOTATION]
            .as_str()
            .unwrap_or_else(|| panic!("no {ANNOTATION}: {}", r.body))
            .to_string();
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00", "{tp}");
        assert_eq!(parts[1], TRACE_ID, "the pod's trace is the request's: {tp}");
        assert_eq!(parts[2].len(), 16, "{tp}");
        assert_ne!(
            parts[2], PARENT_SPAN,
            "the parent is the apiserver's span: {tp}"
        );
        // And it is stored, not only echoed.
        let r = traced.request("GET", &format!("{pods}/traced"), JSON, b"");
        assert_eq!(r.body["metadata"]["annotations"][ANNOTATION], tp.as_str());

        // A pod that brings its own trace context keeps it.
        let own = "00-11111111111111111111111111111111-2222222222222222-01";
        let r = traced.request("POST", pods, JSON, &pod("own", json!({ANNOTATION: own})));
        assert_eq!(r.code, 201, "{}", r.body);
        assert_eq!(r.body["metadata"]["annotations"][ANNOTATION], own);

        // Other kinds are not annotated.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let r = traced.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            JSON,
            cm.to_string().as_bytes(),
        );
        assert_eq!(r.code, 201, "{}", r.body);
        assert!(
            r.body["metadata"].get("annotations").is_none(),
            "{}",
            r.body
        );
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests finish in time")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_trace_runs_through_its_replica_set_to_every_pod() {
    let mut cluster = Cluster::start_with(Options {
        replicas: 1,
        system_namespaces: true,
        extra_args: vec![format!("--otlp-endpoint=http://127.0.0.1:{}", free_port())],
        ..Default::default()
    })
    .await;
    cluster.leader(Duration::from_secs(30)).await;
    let endpoint = cluster.endpoint(0);
    let api = cluster.replicas[0].api.to_string();
    // The real controller-manager, without leader election, on this replica.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cm = std::process::Command::new(rkube_e2e::cluster::bin("rkube-controller-manager"))
        .args([
            "--apiserver",
            &api,
            "--listen",
            "127.0.0.1:0",
            "--leader-elect=false",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("rkube-controller-manager starts");
    let run = tokio::task::spawn_blocking(move || {
        let traced = Http::new(&endpoint, JSON, Duration::from_secs(30))
            .with_header("traceparent", &format!("00-{TRACE_ID}-{PARENT_SPAN}-01"));
        let plain = Http::new(&endpoint, JSON, Duration::from_secs(30));
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "rkube.local/busybox:1.35"}]}},
            },
        });
        let r = traced.request(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            JSON,
            deployment.to_string().as_bytes(),
        );
        assert_eq!(r.code, 201, "{}", r.body);
        let trace_of = |obj: &Value| -> Option<String> {
            obj["metadata"]["annotations"][ANNOTATION]
                .as_str()
                .and_then(|tp| tp.split('-').nth(1))
                .map(str::to_string)
        };
        assert_eq!(trace_of(&r.body).as_deref(), Some(TRACE_ID), "{}", r.body);
        // The ReplicaSet and its three pods carry the same trace.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let rs = plain.request(
                "GET",
                "/apis/apps/v1/namespaces/default/replicasets",
                JSON,
                b"",
            );
            let pods = plain.request(
                "GET",
                "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
                JSON,
                b"",
            );
            let rs_items = rs.body["items"].as_array().cloned().unwrap_or_default();
            let pod_items = pods.body["items"].as_array().cloned().unwrap_or_default();
            if rs_items.len() == 1 && pod_items.len() == 3 {
                assert_eq!(
                    trace_of(&rs_items[0]).as_deref(),
                    Some(TRACE_ID),
                    "{}",
                    rs_items[0]
                );
                for p in &pod_items {
                    assert_eq!(trace_of(p).as_deref(), Some(TRACE_ID), "{p}");
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no ReplicaSet with 3 pods: {} / {}",
                rs.body,
                pods.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let result = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = cm.kill();
    let _ = cm.wait();
    let cm_log = std::fs::read_to_string(log.path()).unwrap_or_default();
    result
        .expect("requests finish in time")
        .unwrap_or_else(|e| panic!("{e}\ncontroller-manager log:\n{cm_log}"));
}
