//! The gRPC front door (`rkube.api.v1.Resources`) through `rkube-client`,
//! against real apiserver processes of the e2e harness: CRUD, Kubernetes
//! errors with their reasons, pods/binding, one pipeline behind both doors,
//! and failover of gets and a watch through kill -9 of the client's endpoint
//! and of the Raft leader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{
    Api, Client, Config, DeleteParams, Error, Gvr, ListParams, Reason, TypedEvent, WatchParams,
    WriteParams,
};
use rkube_e2e::cluster::{Cluster, Options};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), value.to_string())])),
        ..Default::default()
    }
}

fn client_of(cluster: &Cluster, order: &[usize]) -> Client {
    let endpoints: Vec<String> = order
        .iter()
        .map(|i| cluster.replicas[*i].api.to_string())
        .collect();
    Client::new(Config::new(endpoints)).unwrap()
}

/// Polls `cond` until it holds, failing the test at `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_default_namespace(client: &Client) {
    let ns: Api<Namespace> = Api::cluster(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ns.get("default").await {
            Ok(_) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the default namespace never appeared: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One HTTP/1.1 request to the REST door; returns the status code and the JSON body.
async fn rest(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let payload = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&payload).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let len = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if len == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + len]);
            rest = &rest[eol + 4 + len..];
        }
        body = out;
    }
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn expect_api_error(e: &Error, code: u16, reason: Reason) {
    let s = e
        .status()
        .unwrap_or_else(|| panic!("not the API's answer: {e:?}"));
    assert_eq!((s.code, s.reason), (code, reason), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crud_errors_binding_and_one_pipeline_behind_both_doors() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut cluster = Cluster::start_with(Options {
            system_namespaces: true,
            history_revisions: 200,
            ..Default::default()
        })
        .await;
        cluster.leader(Duration::from_secs(30)).await;
        let client = client_of(&cluster, &[0, 1, 2]);
        wait_for_default_namespace(&client).await;
        let cms: Api<ConfigMap> = Api::namespaced(&client, "default");
        let w = WriteParams::default();

        // CRUD.
        let created = cms.create(&config_map("one", "a"), &w).await.unwrap();
        let uid = created.metadata.uid.clone().unwrap();
        let rv1 = created.metadata.resource_version.clone().unwrap();
        let got = cms.get("one").await.unwrap();
        assert_eq!(got.metadata.uid.as_deref(), Some(uid.as_str()));
        assert_eq!(got.data.as_ref().unwrap()["k"], "a");
        let mut changed = got.clone();
        changed.data = Some(BTreeMap::from([("k".to_string(), "b".to_string())]));
        let updated = cms.update(&changed, &w).await.unwrap();
        assert_ne!(updated.metadata.resource_version.as_deref(), Some(rv1.as_str()));
        let list = cms.list(&ListParams::default()).await.unwrap();
        let names: Vec<_> = list.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
        assert!(names.contains(&"one".to_string()), "{names:?}");
        assert!(list.resource_version.parse::<i64>().unwrap() > 0);
        let patched = cms
            .patch("one", rkube_client::PatchType::Merge, &json!({"data": {"p": "q"}}), &w)
            .await
            .unwrap();
        assert_eq!(patched.data.as_ref().unwrap()["p"], "q");

        // Errors carry Kubernetes' Status.
        let e = cms.get("missing").await.unwrap_err();
        expect_api_error(&e, 404, Reason::NotFound);
        assert_eq!(e.status().unwrap().message, "configmaps \"missing\" not found");
        let e = cms.create(&config_map("one", "x"), &w).await.unwrap_err();
        expect_api_error(&e, 409, Reason::AlreadyExists);
        assert!(e.is_already_exists());
        let mut stale = got.clone();
        stale.metadata.resource_version = Some(rv1.clone());
        let e = cms.update(&stale, &w).await.unwrap_err();
        expect_api_error(&e, 409, Reason::Conflict);
        assert!(e.is_conflict());
        let e = cms.create(&config_map("Bad_Name", "x"), &w).await.unwrap_err();
        expect_api_error(&e, 422, Reason::Invalid);
        let causes = e.status().unwrap().causes();
        assert!(causes.iter().any(|c| c.field == "metadata.name"), "{causes:?}");

        // One pipeline: gRPC writes are REST reads and the other way round.
        let addr = cluster.replicas[1].api;
        let (code, body) = rest(addr, "GET", "/api/v1/namespaces/default/configmaps/one", None).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["metadata"]["uid"], uid.as_str());
        assert_eq!(body["data"]["p"], "q");
        let (code, body) = rest(
            addr,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-rest"}, "data": {"x": "y"}})),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        let seen = cms.get("from-rest").await.unwrap();
        assert_eq!(seen.metadata.uid.as_deref(), body["metadata"]["uid"].as_str());

        // A watch through gRPC sees a REST write.
        let from = cms.list(&ListParams::default()).await.unwrap().resource_version;
        let mut watch = cms.watch(WatchParams::from_version(from)).await.unwrap();
        let (code, _) = rest(
            addr,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}})),
        )
        .await;
        assert_eq!(code, 201);
        loop {
            match watch.next().await.expect("the watch ended").unwrap() {
                TypedEvent::Added(cm) => {
                    assert_eq!(cm.metadata.name.as_deref(), Some("watched"));
                    break;
                }
                TypedEvent::Bookmark { .. } => continue,
                other => panic!("unexpected event {other:?}"),
            }
        }

        // Binding: once through gRPC, then a conflict; REST binds another pod.
        let pods: Api<Pod> = Api::namespaced(&client, "default");
        for name in ["p1", "p2"] {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }))
            .unwrap();
            pods.create(&pod, &w).await.unwrap();
        }
        let bound = client.bind("default", "p1", "node-a", &w).await.unwrap();
        assert_eq!(bound["spec"]["nodeName"], "node-a");
        assert_eq!(pods.get("p1").await.unwrap().spec.unwrap().node_name.as_deref(), Some("node-a"));
        let e = client.bind("default", "p1", "node-b", &w).await.unwrap_err();
        expect_api_error(&e, 409, Reason::Conflict);
        assert!(e.status().unwrap().message.contains("already assigned to node \"node-a\""), "{e}");
        let e = client.bind("default", "nobody", "node-a", &w).await.unwrap_err();
        expect_api_error(&e, 404, Reason::NotFound);
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p2"}, "target": {"kind": "Node", "name": "node-b"}});
        let (code, body) = rest(addr, "POST", "/api/v1/namespaces/default/pods/p2/binding", Some(&binding)).await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(pods.get("p2").await.unwrap().spec.unwrap().node_name.as_deref(), Some("node-b"));
        let (code, body) = rest(addr, "POST", "/api/v1/namespaces/default/pods/p2/binding", Some(&binding)).await;
        assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")), "{body}");

        // Delete, then NotFound through both doors.
        cms.delete("one", &DeleteParams::default()).await.unwrap();
        expect_api_error(&cms.get("one").await.unwrap_err(), 404, Reason::NotFound);
        let (code, body) = rest(addr, "GET", "/api/v1/namespaces/default/configmaps/one", None).await;
        assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));

        // A watch from a compacted resourceVersion is 410 Gone.
        for i in 0..250 {
            let v = serde_json::to_value(config_map("churn", &i.to_string())).unwrap();
            let gvr = Gvr::of::<ConfigMap>();
            if i == 0 {
                client.create(&gvr, "default", &v, &w).await.unwrap();
            } else {
                client.update(&gvr, "default", "churn", &v, &w).await.unwrap();
            }
        }
        let e = cms.watch(WatchParams::from_version(rv1)).await.err().expect("410");
        assert!(e.is_gone(), "{e:?}");
    })
    .await
    .expect("test timed out");
}

/// What the watch task saw.
#[derive(Default)]
struct Seen {
    added: Vec<(String, String)>,
    endpoints: Vec<String>,
    error: Option<String>,
    resumes: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gets_and_a_watch_carry_on_through_kill_9_of_their_endpoint_and_of_the_leader() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut cluster = Cluster::start_with(Options {
            system_namespaces: true,
            ..Default::default()
        })
        .await;
        let leader = cluster.leader(Duration::from_secs(30)).await;
        // The client starts on a follower, so its endpoint and the leader are
        // two different kills.
        let follower = (leader + 1) % 3;
        let order = [follower, (follower + 1) % 3, (follower + 2) % 3];
        let client = client_of(&cluster, &order);
        wait_for_default_namespace(&client).await;
        let cms: Api<ConfigMap> = Api::namespaced(&client, "default");
        let w = WriteParams::default();
        cms.create(&config_map("probe", "x"), &w).await.unwrap();
        let from = cms
            .list(&ListParams::default())
            .await
            .unwrap()
            .resource_version;

        // The watch, recording every ADDED configmap and where it came from.
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut watch = cms.watch(WatchParams::from_version(from)).await.unwrap();
        assert_eq!(
            watch.raw().endpoint(),
            Some(cluster.replicas[follower].api.to_string())
        );
        let watcher = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(ev) = watch.next().await {
                    let mut s = seen.lock().unwrap();
                    match ev {
                        Ok(TypedEvent::Added(cm)) => {
                            s.added.push((
                                cm.metadata.name.unwrap(),
                                cm.metadata.resource_version.unwrap(),
                            ));
                            s.endpoints.push(watch.raw().endpoint().unwrap_or_default());
                            s.resumes = watch.raw().resumes();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            s.error = Some(e.to_string());
                            return;
                        }
                    }
                }
            })
        };

        // A loop of gets through the same client.
        let gets = Arc::new(Mutex::new((0u64, Vec::<String>::new())));
        let stop = stop_flag();
        let getter = {
            let (gets, stop, cms) = (gets.clone(), stop.clone(), cms.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match cms.get("probe").await {
                        Ok(_) => gets.lock().unwrap().0 += 1,
                        Err(e) => gets.lock().unwrap().1.push(e.to_string()),
                    }
                }
            })
        };

        // A writer creating cm-0, cm-1, ... one after the other, through its
        // own client; a create whose outcome is unknown is repeated (the
        // store's create is compare-and-set on absence, so it lands once).
        let written = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let writer = {
            let (written, stop) = (written.clone(), stop.clone());
            let wclient = client_of(&cluster, &order);
            tokio::spawn(async move {
                let cms: Api<ConfigMap> = Api::namespaced(&wclient, "default");
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("cm-{i:04}");
                    let rv = match cms
                        .create(&config_map(&name, "v"), &WriteParams::default())
                        .await
                    {
                        Ok(c) => c.metadata.resource_version.unwrap(),
                        Err(e) if e.is_already_exists() => match cms.get(&name).await {
                            Ok(c) => c.metadata.resource_version.unwrap(),
                            Err(_) => continue,
                        },
                        Err(_) => continue,
                    };
                    written.lock().unwrap().push((name, rv));
                    i += 1;
                }
            })
        };
        let added = |seen: &Arc<Mutex<Seen>>| seen.lock().unwrap().added.len();
        let ok_gets = |gets: &Arc<Mutex<(u64, Vec<String>)>>| gets.lock().unwrap().0;

        wait_until("10 events before any kill", Duration::from_secs(30), || {
            added(&seen) >= 10
        })
        .await;
        // kill -9 the endpoint both the watch and the gets use.
        cluster.kill(follower);
        let (n, g) = (added(&seen), ok_gets(&gets));
        wait_until(
            "10 events after killing the client's endpoint",
            Duration::from_secs(60),
            || added(&seen) >= n + 10,
        )
        .await;
        wait_until(
            "gets after killing the client's endpoint",
            Duration::from_secs(30),
            || ok_gets(&gets) > g + 10,
        )
        .await;
        {
            let s = seen.lock().unwrap();
            let dead = cluster.replicas[follower].api.to_string();
            assert_ne!(
                s.endpoints.last().unwrap(),
                &dead,
                "the watch moved to a live endpoint"
            );
        }

        // Bring it back (a quorum must survive the next kill), then kill the leader.
        cluster.restart(follower);
        cluster.wait_all_ready(Duration::from_secs(60)).await;
        let leader = cluster.leader(Duration::from_secs(30)).await;
        cluster.kill(leader);
        let (n, g) = (added(&seen), ok_gets(&gets));
        wait_until(
            "10 events after killing the leader",
            Duration::from_secs(60),
            || added(&seen) >= n + 10,
        )
        .await;
        wait_until(
            "gets after killing the leader",
            Duration::from_secs(30),
            || ok_gets(&gets) > g + 10,
        )
        .await;

        // Stop writing; the watch must deliver every write exactly once, in order.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.await.unwrap();
        getter.await.unwrap();
        let expected = written.lock().unwrap().clone();
        wait_until(
            "the watch to deliver every write",
            Duration::from_secs(30),
            || {
                let s = seen.lock().unwrap();
                s.error.is_some() || s.added.len() >= expected.len()
            },
        )
        .await;
        let s = seen.lock().unwrap();
        assert!(s.error.is_none(), "the watch ended: {:?}", s.error);
        assert_eq!(s.added, expected, "watch events differ from the writes");
        assert!(s.resumes >= 1, "the watch never had to resume");
        let (ok, errors) = &*gets.lock().unwrap();
        assert!(errors.is_empty(), "gets failed: {errors:?}");
        eprintln!(
            "{} creates watched in order through {} resumes; {ok} gets, none failed",
            s.added.len(),
            s.resumes
        );
        watcher.abort();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_object_never_undo_each_other() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let cluster = Cluster::start_api_single().await;
        let client = client_of(&cluster, &[0]);
        wait_for_default_namespace(&client).await;
        let cms: Api<ConfigMap> = Api::namespaced(&client, "default");
        cms.create(&config_map("shared", "0"), &WriteParams::default())
            .await
            .unwrap();
        // Each patch adds its own key. A patch computed from one state and written over
        // a newer one would drop the keys written in between.
        let patches = (0..32).map(|i| {
            let cms = cms.clone();
            async move {
                cms.patch(
                    "shared",
                    rkube_client::PatchType::Merge,
                    &json!({"data": {format!("k{i}"): "v"}}),
                    &WriteParams::default(),
                )
                .await
            }
        });
        for r in futures::future::join_all(patches).await {
            r.expect("a patch without a precondition is retried, never refused");
        }
        let data = cms.get("shared").await.unwrap().data.unwrap_or_default();
        let missing: Vec<String> = (0..32)
            .map(|i| format!("k{i}"))
            .filter(|k| !data.contains_key(k))
            .collect();
        assert!(missing.is_empty(), "patches were lost: {missing:?}");
    })
    .await
    .expect("test timed out");
}

fn stop_flag() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}
