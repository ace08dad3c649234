//! The apiserver's watch cache, against real replicas: many watchers under different
//! selectors (namespace, labels, `spec.nodeName` as kubelets select) see exactly the
//! events they should, in order and once, across a Raft leader kill, checked against the
//! store's own history; a watcher that stops reading is ended with 410 while one that
//! reads gets everything; a `resourceVersion=0` list is served from the cache.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_client::{Client, Config, Event, Gvr, WatchParams, WriteParams};
use rkube_e2e::cluster::{Cluster, Options};
use rkube_proto::store as spb;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("the test finished in time")
}

fn client_of(cluster: &Cluster, first: usize) -> Client {
    let n = cluster.replicas.len();
    let endpoints: Vec<String> = (0..n)
        .map(|k| cluster.replicas[(first + k) % n].api.to_string())
        .collect();
    Client::new(Config::new(endpoints)).unwrap()
}

/// One REST request on its own connection; the status and the JSON body.
async fn rest(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let raw = rest_raw(addr, method, path, body).await;
    let (code, body) = split_response(&raw);
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn rest_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Vec<u8> {
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
    raw
}

/// The status code and the (de-chunked) body of a whole HTTP/1.1 response.
fn split_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
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
    (code, body)
}

/// The value of a `/metrics` series (name and labels as printed), if present.
async fn metric(addr: std::net::SocketAddr, series: &str) -> Option<f64> {
    let raw = rest_raw(addr, "GET", "/metrics", None).await;
    let (_, body) = split_response(&raw);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

// What each watcher selects, and what it should see.

#[derive(Debug, Clone)]
struct Selection {
    resource: &'static str,
    name: &'static str,
    namespace: &'static str,
    labels: &'static str,
    fields: &'static str,
}

impl Selection {
    /// Whether `pod` (in `ns`) is selected, as the apiserver's selectors decide.
    fn matches(&self, ns: &str, pod: &Value) -> bool {
        let app = pod["metadata"]["labels"]["app"].as_str();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let ns_ok = self.namespace.is_empty() || self.namespace == ns;
        let labels_ok = match self.labels.split_once('=') {
            None => true,
            Some((_, want)) => app == Some(want),
        };
        let fields_ok = match self.fields.strip_prefix("spec.nodeName=") {
            None => true,
            Some(want) => node == want,
        };
        ns_ok && labels_ok && fields_ok
    }
}

/// (type, namespace/name, resourceVersion) of an object event.
type Seen = (String, String, i64);

fn seen_of(kind: &str, o: &Value) -> Seen {
    (
        kind.to_string(),
        format!(
            "{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        ),
        o["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0),
    )
}

/// The events `sel` must see for the store's history `events` (in revision order),
/// with Kubernetes' selector transitions.
fn expected(sel: &Selection, events: &[spb::Event]) -> Vec<Seen> {
    let mut out = Vec::new();
    for e in events {
        let kv = e.kv.as_ref().unwrap();
        let key = String::from_utf8_lossy(&kv.key).to_string();
        let mut parts = key.trim_start_matches("/registry/pods/").splitn(2, '/');
        let (ns, name) = (parts.next().unwrap(), parts.next().unwrap());
        let id = format!("{ns}/{name}");
        let decode = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
        let prev = e.prev_kv.as_ref().map(|p| decode(&p.value));
        let kind = if e.r#type == spb::event::EventType::Delete as i32 {
            prev.as_ref()
                .filter(|p| sel.matches(ns, p))
                .map(|_| "DELETED")
        } else {
            let now = sel.matches(ns, &decode(&kv.value));
            match (prev.as_ref().map(|p| sel.matches(ns, p)), now) {
                (None, true) | (Some(false), true) => Some("ADDED"),
                (Some(true), true) => Some("MODIFIED"),
                (Some(true), false) => Some("DELETED"),
                _ => None,
            }
        };
        if let Some(kind) = kind {
            out.push((kind.to_string(), id, kv.mod_revision));
        }
    }
    out
}

/// Every event under `/registry/pods/` after `from` up to `to`, from replica `i`'s store.
async fn store_history(cluster: &Cluster, i: usize, from: i64, to: i64) -> Vec<spb::Event> {
    let mut client = cluster
        .watch_client(i)
        .await
        .max_decoding_message_size(256 << 20);
    let mut stream = client
        .watch(spb::WatchRequest {
            key: Bytes::from_static(b"/registry/pods/"),
            range_end: Bytes::from_static(b"/registry/pods0"),
            start_revision: from + 1,
            prev_kv: true,
            progress_interval_ms: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    loop {
        let r = stream
            .message()
            .await
            .unwrap()
            .expect("the store watch ended");
        assert_eq!(r.compact_revision, 0, "the history was compacted");
        if r.created {
            continue;
        }
        events.extend(r.events);
        if r.header.map_or(0, |h| h.revision) >= to {
            return events;
        }
    }
}

/// A watcher recording its object events (and whether it failed) as they arrive.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Why the watch ended, and whether it was a 410 (relist).
    failed: Arc<Mutex<Option<String>>>,
    gone: Arc<Mutex<bool>>,
    resumes: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(client: Client, sel: &Selection, from: &str) -> Recorder {
        let params = WatchParams {
            label_selector: sel.labels.to_string(),
            field_selector: sel.fields.to_string(),
            ..WatchParams::from_version(from)
        };
        let mut watch = client
            .watch(&Gvr::new("", "v1", sel.resource), sel.namespace, params)
            .await
            .unwrap_or_else(|e| panic!("watch {}: {e}", sel.name));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let (gone, resumes) = (Arc::new(Mutex::new(false)), Arc::new(Mutex::new(0)));
        let task = {
            let (seen, failed, resumes, gone) =
                (seen.clone(), failed.clone(), resumes.clone(), gone.clone());
            tokio::spawn(async move {
                while let Some(ev) = watch.next().await {
                    *resumes.lock().unwrap() = watch.resumes();
                    match ev {
                        Ok(Event::Added(o)) => seen.lock().unwrap().push(seen_of("ADDED", &o)),
                        Ok(Event::Modified(o)) => {
                            seen.lock().unwrap().push(seen_of("MODIFIED", &o))
                        }
                        Ok(Event::Deleted(o)) => seen.lock().unwrap().push(seen_of("DELETED", &o)),
                        Ok(_) => {}
                        Err(e) => {
                            *gone.lock().unwrap() = e.is_gone();
                            *failed.lock().unwrap() = Some(e.to_string());
                            return;
                        }
                    }
                }
                *failed.lock().unwrap() = Some("the watch ended".into());
            })
        };
        Recorder {
            seen,
            failed,
            gone,
            resumes,
            task,
        }
    }
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "rkube.local/busybox:1.35"}]}
    })
}

/// One step of the workload on pod `i`: create it (unbound; `app=web` unless i % 3 == 1),
/// bind it to `node-<i % 4>`, flip its label, delete it (even pods only).
#[derive(Debug, Clone, Copy)]
enum Step {
    Create(usize),
    Bind(usize),
    Relabel(usize),
    Delete(usize),
}

fn pod_ns(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "wa"
    } else {
        "wb"
    }
}

async fn run_step(client: &Client, step: Step) {
    let pods = Gvr::new("", "v1", "pods");
    let w = WriteParams::default();
    let name = |i: usize| format!("p{i}");
    // A write may fail around the leader kill (its outcome unknown, or a retry finding it
    // done): the store's history, not the acknowledgements, is what watchers must match.
    let done = match step {
        Step::Create(i) => {
            let app = if i % 3 == 1 { "db" } else { "web" };
            client
                .create(&pods, pod_ns(i), &pod(pod_ns(i), &name(i), app), &w)
                .await
                .map(|_| ())
        }
        Step::Bind(i) => client
            .bind(pod_ns(i), &name(i), &format!("node-{}", i % 4), &w)
            .await
            .map(|_| ()),
        Step::Relabel(i) => {
            let app = if i % 3 == 1 { "web" } else { "db" };
            let patch = json!({"metadata": {"labels": {"app": app}}}).to_string();
            client
                .patch(
                    &pods,
                    pod_ns(i),
                    &name(i),
                    "",
                    rkube_client::PatchType::Merge,
                    patch.as_bytes(),
                    &w,
                )
                .await
                .map(|_| ())
        }
        Step::Delete(i) => client
            .delete(&pods, pod_ns(i), &name(i), &Default::default())
            .await
            .map(|_| ()),
    };
    if let Err(e) = done {
        eprintln!("{step:?} failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_under_many_selectors_see_exactly_their_events_in_order_across_a_leader_kill() {
    within(Duration::from_secs(240), async {
        let mut cluster = Cluster::start_with(Options {
            replicas: 3,
            system_namespaces: true,
            ..Default::default()
        })
        .await;
        let leader = cluster.leader(Duration::from_secs(30)).await;
        let writer = client_of(&cluster, (leader + 1) % 3);
        let namespaces = Gvr::new("", "v1", "namespaces");
        for ns in ["wa", "wb"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            writer
                .create(&namespaces, "", &body, &WriteParams::default())
                .await
                .unwrap();
        }
        // Some pods exist before the watchers start: they see only what follows.
        for i in 100..104 {
            run_step(&writer, Step::Create(i)).await;
        }
        let from = writer
            .list(&Gvr::new("", "v1", "pods"), "", &Default::default())
            .await
            .unwrap()
            .resource_version;
        let from_rev: i64 = from.parse().unwrap();

        let mut selections = vec![
            Selection {
                resource: "pods",
                name: "everything",
                namespace: "",
                labels: "",
                fields: "",
            },
            Selection {
                resource: "pods",
                name: "namespace wa",
                namespace: "wa",
                labels: "",
                fields: "",
            },
            Selection {
                resource: "pods",
                name: "app=web",
                namespace: "",
                labels: "app=web",
                fields: "",
            },
            Selection {
                resource: "pods",
                name: "app=web in wb",
                namespace: "wb",
                labels: "app=web",
                fields: "",
            },
            Selection {
                resource: "pods",
                name: "unbound",
                namespace: "",
                labels: "",
                fields: "spec.nodeName=",
            },
        ];
        const NODES: [&str; 4] = [
            "spec.nodeName=node-0",
            "spec.nodeName=node-1",
            "spec.nodeName=node-2",
            "spec.nodeName=node-3",
        ];
        for fields in NODES {
            selections.push(Selection {
                resource: "pods",
                name: fields,
                namespace: "",
                labels: "",
                fields,
            });
            selections.push(Selection {
                resource: "pods",
                name: fields,
                namespace: "wa",
                labels: "",
                fields,
            });
        }
        // Every selection on every replica: the leader's watchers must resume elsewhere.
        let mut recorders = Vec::new();
        for (k, sel) in selections.iter().enumerate() {
            for first in 0..3 {
                let r = Recorder::start(client_of(&cluster, first), sel, &from).await;
                recorders.push((k, first, r));
            }
        }

        let mut steps = Vec::new();
        for i in 0..16 {
            steps.push(Step::Create(i));
        }
        for i in 0..16 {
            steps.push(Step::Bind(i));
            steps.push(Step::Relabel(i));
        }
        for i in (0..16).step_by(2) {
            steps.push(Step::Delete(i));
        }
        steps.push(Step::Relabel(100));
        steps.push(Step::Bind(101));
        steps.push(Step::Delete(102));
        let kill_at = steps.len() / 3;
        for (n, step) in steps.iter().enumerate() {
            if n == kill_at {
                cluster.kill(leader);
            }
            run_step(&writer, *step).await;
        }
        cluster.leader(Duration::from_secs(30)).await;
        let to: i64 = writer
            .list(&Gvr::new("", "v1", "pods"), "", &Default::default())
            .await
            .unwrap()
            .resource_version
            .parse()
            .unwrap();
        let survivor = (leader + 1) % 3;
        let history = store_history(&cluster, survivor, from_rev, to).await;
        assert!(
            history.len() > 40,
            "too little happened: {} events",
            history.len()
        );

        let mut resumed = 0;
        for (k, first, r) in &recorders {
            let sel = &selections[*k];
            let want = expected(sel, &history);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let got = r.seen.lock().unwrap().clone();
                if got.len() >= want.len() || Instant::now() > deadline {
                    assert_eq!(
                        got, want,
                        "watcher {} ({:?}) first on replica {first}",
                        sel.name, sel
                    );
                    break;
                }
                if let Some(why) = r.failed.lock().unwrap().clone() {
                    panic!(
                        "watcher {} first on replica {first} failed: {why}",
                        sel.name
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if *first == leader {
                resumed += (*r.resumes.lock().unwrap() > 0) as usize;
            }
        }
        assert!(
            resumed > 0,
            "no watcher on the killed leader resumed elsewhere"
        );
        for (_, _, r) in recorders {
            r.task.abort();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_ended_with_410_while_one_that_reads_gets_everything() {
    within(Duration::from_secs(180), async {
        let mut cluster = Cluster::start_with(Options {
            replicas: 1,
            system_namespaces: true,
            history_revisions: 2000,
            extra_args: vec!["--watch-cache-watcher-buffer=4".into()],
            ..Default::default()
        })
        .await;
        cluster.leader(Duration::from_secs(30)).await;
        let addr = cluster.replicas[0].api;
        let client = client_of(&cluster, 0);
        let cms = Gvr::new("", "v1", "configmaps");
        let from = client.list(&cms, "default", &Default::default()).await.unwrap().resource_version;

        // The slow one: a REST watch whose response is never read while writes go on.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
        );
        slow.write_all(head.as_bytes()).await.unwrap();
        // The reader: a gRPC watch read as it goes.
        let reader = Recorder::start(
            client.clone(),
            &Selection { resource: "configmaps", name: "reader", namespace: "default", labels: "", fields: "" },
            &from,
        )
        .await;

        // Big objects fill the socket buffers quickly; then the watcher's buffer fills.
        let filler = "x".repeat(64 * 1024);
        let slow_series = r#"rkube_apiserver_watch_cache_slow_watchers_terminated_total{group="",version="v1",resource="configmaps"}"#;
        let mut written = 0;
        loop {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("big-{written}")}, "data": {"x": filler}});
            client.create(&cms, "default", &cm, &WriteParams::default()).await.unwrap();
            written += 1;
            if metric(addr, slow_series).await.unwrap_or(0.0) >= 1.0 {
                break;
            }
            assert!(written < 400, "the unread watcher was never ended");
        }

        // The reader got every write, in order.
        let deadline = Instant::now() + Duration::from_secs(30);
        while reader.seen.lock().unwrap().len() < written {
            assert!(
                Instant::now() < deadline,
                "the reader got {} of {written} writes (resumed {} times)",
                reader.seen.lock().unwrap().len(),
                reader.resumes.lock().unwrap()
            );
            assert!(reader.failed.lock().unwrap().is_none(), "{:?}", reader.failed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = reader.seen.lock().unwrap().clone();
        let names: Vec<String> = got.iter().map(|(_, n, _)| n.clone()).collect();
        let want: Vec<String> = (0..written).map(|i| format!("default/big-{i}")).collect();
        assert_eq!(names, want);
        assert!(reader.failed.lock().unwrap().is_none(), "the reader was ended too");

        // The slow one: what was buffered, in order, then a 410 Expired, then the end.
        let mut raw = Vec::new();
        within(Duration::from_secs(30), slow.read_to_end(&mut raw)).await.unwrap();
        let (code, body) = split_response(&raw);
        assert_eq!(code, 200);
        let lines: Vec<Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let (last, events) = lines.split_last().expect("lines");
        assert_eq!(last["type"], "ERROR", "{last}");
        assert_eq!(last["object"]["code"], 410, "{last}");
        assert_eq!(last["object"]["reason"], "Expired", "{last}");
        assert!(
            last["object"]["message"].as_str().unwrap().starts_with("too old resource version"),
            "{last}"
        );
        assert!(events.len() < written, "the slow watcher got everything");
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev["type"], "ADDED");
            assert_eq!(ev["object"]["metadata"]["name"], format!("big-{i}"), "in order, none missing");
        }
        reader.task.abort();
    })
    .await;
}

#[tokio::test]
async fn a_list_at_resource_version_0_is_served_from_the_watch_cache() {
    within(Duration::from_secs(120), async {
        let mut cluster = Cluster::start_with(Options {
            replicas: 1,
            system_namespaces: true,
            ..Default::default()
        })
        .await;
        cluster.leader(Duration::from_secs(30)).await;
        let addr = cluster.replicas[0].api;
        let objects = r#"rkube_apiserver_watch_cache_objects{group="",version="v1",resource="configmaps"}"#;
        for i in 0..5 {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "labels": {"even": (i % 2 == 0).to_string()}}});
            let (code, body) = rest(addr, "POST", "/api/v1/namespaces/default/configmaps", Some(&cm)).await;
            assert_eq!(code, 201, "{body}");
        }
        assert_eq!(metric(addr, objects).await, None, "no cache before it is needed");

        let path = "/api/v1/namespaces/default/configmaps?resourceVersion=0&labelSelector=even%3Dtrue";
        let (code, list) = rest(addr, "GET", path, None).await;
        assert_eq!(code, 200, "{list}");
        assert_eq!(list["kind"], "ConfigMapList");
        let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["c0", "c2", "c4"]);
        assert!(list["items"][0]["metadata"]["resourceVersion"].as_str().is_some());
        // The cache now holds the resource's objects (those of every namespace).
        assert_eq!(metric(addr, objects).await, Some(5.0));

        // It follows later writes.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c6", "labels": {"even": "true"}}});
        let (code, _) = rest(addr, "POST", "/api/v1/namespaces/default/configmaps", Some(&cm)).await;
        assert_eq!(code, 201);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, list) = rest(addr, "GET", path, None).await;
            if list["items"].as_array().unwrap().len() == 4 {
                break;
            }
            assert!(Instant::now() < deadline, "the cache did not follow the write: {list}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Pages: the first from the cache, the rest from the store at the same revision.
        let (_, page) = rest(addr, "GET", &format!("{path}&limit=2"), None).await;
        let token = page["metadata"]["continue"]
            .as_str()
            .expect("a continue token")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let rv = page["metadata"]["resourceVersion"].clone();
        let (code, rest_page) = rest(
            addr,
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?labelSelector=even%3Dtrue&limit=2&continue={token}"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{rest_page}");
        assert_eq!(rest_page["metadata"]["resourceVersion"], rv);
        let mut all: Vec<String> = Vec::new();
        for p in [&page, &rest_page] {
            all.extend(p["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_string()));
        }
        assert_eq!(all, ["c0", "c2", "c4", "c6"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_left_behind_by_a_snapshot_install_is_rebuilt_and_its_watchers_told_410() {
    within(Duration::from_secs(240), async {
        // Only 50 revisions of history and a snapshot every 50 entries: a follower cut off
        // for 300 writes catches up by snapshot, past its cache's next revision.
        let mut cluster = Cluster::start_with(Options {
            replicas: 3,
            proxied: true,
            snapshot_every: 50,
            history_revisions: 50,
            system_namespaces: true,
            ..Default::default()
        })
        .await;
        let leader = cluster.leader(Duration::from_secs(30)).await;
        let (f, other) = ((leader + 1) % 3, (leader + 2) % 3);
        let only_f = Client::new(Config::new([cluster.replicas[f].api.to_string()])).unwrap();
        let writers = Client::new(Config::new([
            cluster.replicas[other].api.to_string(),
            cluster.replicas[leader].api.to_string(),
        ]))
        .unwrap();
        let cms = Gvr::new("", "v1", "configmaps");
        let create = |i: usize| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
        let from = writers.list(&cms, "default", &Default::default()).await.unwrap().resource_version;
        let watcher = Recorder::start(
            only_f,
            &Selection { resource: "configmaps", name: "on f", namespace: "default", labels: "", fields: "" },
            &from,
        )
        .await;
        for i in 0..5 {
            writers.create(&cms, "default", &create(i), &WriteParams::default()).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while watcher.seen.lock().unwrap().len() < 5 {
            assert!(Instant::now() < deadline, "the watcher on the follower saw too little");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        cluster.isolate(f, true);
        let applied_before = cluster.status(f).await.unwrap().applied_index;
        for i in 5..305 {
            writers.create(&cms, "default", &create(i), &WriteParams::default()).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut purged = true;
            for i in [leader, other] {
                purged &= cluster.status(i).await.is_some_and(|s| s.purged_index > applied_before);
            }
            if purged {
                break;
            }
            assert!(Instant::now() < deadline, "the others never purged their logs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.isolate(f, false);
        cluster.wait_converged(Duration::from_secs(60)).await;

        // The watcher could not be continued: 410, after exactly what it saw before.
        let deadline = Instant::now() + Duration::from_secs(30);
        while watcher.failed.lock().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the watcher on the follower was never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(*watcher.gone.lock().unwrap(), "{:?}", watcher.failed.lock().unwrap());
        let names: Vec<String> = watcher.seen.lock().unwrap().iter().map(|(_, n, _)| n.clone()).collect();
        let want: Vec<String> = (0..names.len()).map(|i| format!("default/c{i}")).collect();
        assert_eq!(names, want, "in order, none missing, before the 410");
        let addr = cluster.replicas[f].api;
        let resyncs = r#"rkube_apiserver_watch_cache_resyncs_total{group="",version="v1",resource="configmaps"}"#;
        assert!(metric(addr, resyncs).await.unwrap_or(0.0) >= 1.0, "the cache was not rebuilt");

        // The rebuilt cache follows the store again (a resourceVersion=0 list may lag it
        // by a moment, as any state is allowed).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, list) = rest(addr, "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=0", None).await;
            assert_eq!(code, 200, "{list}");
            let n = list["items"].as_array().unwrap().len();
            if n == 305 {
                break;
            }
            assert!(Instant::now() < deadline, "the rebuilt cache holds {n} of 305 objects");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watcher.task.abort();
    })
    .await;
}
