//! The API workloads: pod creation by N concurrent clients (closed loop), open-loop runs of
//! single-object writes and reads at a fixed rate, and watch delivery to many watchers.
//! The manifests, the schedule and `/proc` parsing are pure functions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

use super::http::ApiConn;
use super::report::{CpuUse, LoadResult, NodeWatchResult, WatchResult};
use crate::bench::stats::{micros, Summary};
use crate::bench::workload::{cpu_seconds, machine_busy_seconds};
use crate::bench::BenchError;

/// The namespace the created pods live in.
pub const PODS_NAMESPACE: &str = "bench";
/// The namespace of the watched pods (few, so the watchers see only the writer's changes).
pub const WATCH_NAMESPACE: &str = "bench-watch";
/// The annotation the watch writer puts its send time in (nanoseconds since the epoch).
pub const SENT_ANNOTATION: &str = "rkube.io/bench-sent-unix-nanos";
/// Pods the watch writer changes in turn.
pub const WATCHED_PODS: usize = 10;
/// The namespace of the node watch's pods: one pod bound to each node.
pub const NODES_NAMESPACE: &str = "bench-nodes";

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// The name of created pod `n`.
pub fn pod_name(n: usize) -> String {
    format!("web-7d4b9c8f6d-{n:05}")
}

/// A pod as a Deployment's ReplicaSet creates it: owner reference, template labels and
/// hash, one container with ports, env, resources, probes and a service-account token
/// volume, tolerations. About 1.8 KiB of JSON. Pure.
pub fn pod_manifest(name: &str, namespace: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7d4b9c8f6d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T05:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d4b9c8f6d",
                "uid": "5b0f3b9e-6c1d-4b7e-9a51-2f0c8d7e4a11",
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "rkube.local/busybox:1.35",
                "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"}
                },
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080},
                    "periodSeconds": 5,
                    "failureThreshold": 3
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080},
                    "initialDelaySeconds": 10,
                    "periodSeconds": 10
                },
                "volumeMounts": [{
                    "name": "kube-api-access",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": true
                }],
                "imagePullPolicy": "IfNotPresent"
            }],
            "volumes": [{
                "name": "kube-api-access",
                "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                ]}
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        }
    })
}

/// The name of node `i` of the node watch (what kubelet `i` would register).
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// The one pod bound to node `i` in the node watch.
pub fn node_pod_name(i: usize) -> String {
    format!("on-node-{i}")
}

/// Node `i`'s pod: [`pod_manifest`] in [`NODES_NAMESPACE`], already bound to
/// [`node_name`]`(i)` as the scheduler would have left it. Pure.
pub fn node_pod_manifest(i: usize) -> serde_json::Value {
    let mut pod = pod_manifest(&node_pod_name(i), NODES_NAMESPACE);
    pod["spec"]["nodeName"] = serde_json::Value::String(node_name(i));
    pod
}

/// Kubelet `i`'s watch: pods of every namespace bound to its node, from `rv`, with
/// bookmarks, as a kubelet's informer asks. Pure.
pub fn node_watch_path(i: usize, rv: &str) -> String {
    format!(
        "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3D{}&resourceVersion={rv}\
         &allowWatchBookmarks=true&timeoutSeconds=3600",
        node_name(i)
    )
}

/// The request times of an open-loop run: request `k` at `k / rate` seconds after the
/// start, for `duration`. Pure.
pub fn open_loop_schedule(rate: f64, duration: Duration) -> Vec<Duration> {
    if rate <= 0.0 {
        return Vec::new();
    }
    let n = (rate * duration.as_secs_f64()).round() as u64;
    (0..n)
        .map(|k| Duration::from_secs_f64(k as f64 / rate))
        .collect()
}

/// The value of `field` (e.g. `VmRSS`) of a `/proc/PID/status` text, in KiB. Pure.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `field` of `/proc/PID/status` in MiB (0 when the process is gone).
pub fn proc_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_status_kib(&s, field))
        .map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// Measures the CPU used between [`CpuMeter::start`] and [`CpuMeter::stop`].
pub struct CpuMeter {
    pids: Vec<u32>,
    started: Instant,
    server: f64,
    client: f64,
    machine: f64,
}

impl CpuMeter {
    pub fn start(server_pids: &[u32]) -> Self {
        Self {
            pids: server_pids.to_vec(),
            started: Instant::now(),
            server: cpu_seconds(server_pids),
            client: cpu_seconds(&[std::process::id()]),
            machine: machine_busy_seconds(),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let server = cpu_seconds(&self.pids) - self.server;
        let client = cpu_seconds(&[std::process::id()]) - self.client;
        let machine = machine_busy_seconds() - self.machine;
        CpuUse {
            seconds: self.started.elapsed().as_secs_f64(),
            server_cpu_seconds: server,
            client_cpu_seconds: client,
            other_cpu_seconds: (machine - server - client).max(0.0),
        }
    }
}

/// Connects `n` connections, connection `i` to `addrs[i % addrs.len()]`, `parallel` at a
/// time.
pub async fn connect_many(
    addrs: &[std::net::SocketAddr],
    n: usize,
    config: Arc<rustls::ClientConfig>,
) -> Result<Vec<ApiConn>, BenchError> {
    let mut conns = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        let batch = futures::future::join_all(
            chunk
                .iter()
                .map(|&i| ApiConn::connect(addrs[i % addrs.len()], config.clone())),
        )
        .await;
        for c in batch {
            conns.push(c?);
        }
    }
    Ok(conns)
}

/// Creates a namespace; an existing one is fine.
pub async fn ensure_namespace(conn: &ApiConn, name: &str) -> Result<(), BenchError> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let a = conn
        .request_within(
            http::Method::POST,
            "/api/v1/namespaces",
            Some(JSON),
            Bytes::from(body.to_string()),
            Duration::from_secs(10),
        )
        .await?;
    match a.status {
        200 | 201 | 409 => Ok(()),
        _ => Err(BenchError::Failed(format!(
            "creating namespace {name}: {}",
            a.brief()
        ))),
    }
}

/// Creates `pods` pods in [`PODS_NAMESPACE`] from the clients `conns` (one client per
/// connection, all starting together); each takes pod numbers from a shared counter.
/// Latency is per create, from just before the request to the answer.
pub async fn create_pods(
    conns: &[ApiConn],
    pods: usize,
    server_pids: &[u32],
    timeout: Duration,
) -> Result<LoadResult, BenchError> {
    create_many(
        conns,
        pods,
        PODS_NAMESPACE,
        |n| pod_manifest(&pod_name(n), PODS_NAMESPACE),
        server_pids,
        timeout,
    )
    .await
}

/// Creates `n` pods in `namespace`, pod `k` being `manifest(k)`, the way
/// [`create_pods`] does.
pub async fn create_many(
    conns: &[ApiConn],
    n: usize,
    namespace: &str,
    manifest: fn(usize) -> serde_json::Value,
    server_pids: &[u32],
    timeout: Duration,
) -> Result<LoadResult, BenchError> {
    let pods = n;
    let next = Arc::new(AtomicUsize::new(0));
    let start_line = Arc::new(Barrier::new(conns.len() + 1));
    let path = format!("/api/v1/namespaces/{namespace}/pods");
    let mut tasks = Vec::with_capacity(conns.len());
    for conn in conns {
        let (conn, next, start_line, path) =
            (conn.clone(), next.clone(), start_line.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            start_line.wait().await;
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= pods {
                    break;
                }
                let body = Bytes::from(manifest(n).to_string());
                let started = Instant::now();
                match conn
                    .request_within(http::Method::POST, &path, Some(JSON), body, timeout)
                    .await
                {
                    Ok(a) if a.status == 201 => latencies.push(micros(started.elapsed())),
                    Ok(a) => errors.push(a.brief()),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        }));
    }
    start_line.wait().await;
    let cpu = CpuMeter::start(server_pids);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(pods);
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t
            .await
            .map_err(|e| BenchError::Failed(format!("a client task failed: {e}")))?;
        latencies.extend(l);
        errors.extend(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(LoadResult::new(
        "POST pods",
        conns.len(),
        0.0,
        &mut latencies,
        errors,
        seconds,
        cpu.stop(),
    ))
}

/// One request of an open-loop run, built from its sequence number.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: http::Method,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// The status code of success.
    pub ok_status: u16,
}

/// Request `k` of the write run: a merge patch of one annotation of pod `k % targets`
/// (what `kubectl annotate` or a controller sends). Pure.
pub fn write_call(k: usize, targets: usize) -> Call {
    let body = json!({"metadata": {"annotations": {"rkube.io/bench-counter": k.to_string()}}});
    Call {
        method: http::Method::PATCH,
        path: format!(
            "/api/v1/namespaces/{PODS_NAMESPACE}/pods/{}",
            pod_name(k % targets.max(1))
        ),
        content_type: Some(MERGE_PATCH),
        body: Bytes::from(body.to_string()),
        ok_status: 200,
    }
}

/// Request `k` of the read run: a GET (linearizable: no resourceVersion) of pod
/// `k % targets`. Pure.
pub fn read_call(k: usize, targets: usize) -> Call {
    Call {
        method: http::Method::GET,
        path: format!(
            "/api/v1/namespaces/{PODS_NAMESPACE}/pods/{}",
            pod_name(k % targets.max(1))
        ),
        content_type: None,
        body: Bytes::new(),
        ok_status: 200,
    }
}

/// Sends `call(k)` at `schedule[k]` after the start, over `conns` round-robin, without
/// waiting for earlier answers (open loop). Each latency runs from the scheduled time, so
/// a stalled server shows as latency instead of as fewer requests.
pub async fn open_loop(
    operation: &str,
    conns: &[ApiConn],
    rate: f64,
    schedule: &[Duration],
    call: impl Fn(usize) -> Call,
    server_pids: &[u32],
    timeout: Duration,
) -> Result<LoadResult, BenchError> {
    let cpu = CpuMeter::start(server_pids);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(schedule.len());
    for (k, offset) in schedule.iter().enumerate() {
        let at = start + *offset;
        tokio::time::sleep_until(at).await;
        let conn = conns[k % conns.len()].clone();
        let c = call(k);
        tasks.push(tokio::spawn(async move {
            let r = conn
                .request_within(c.method, &c.path, c.content_type, c.body, timeout)
                .await;
            let latency = micros(at.elapsed());
            match r {
                Ok(a) if a.status == c.ok_status => Ok(latency),
                Ok(a) => Err(a.brief()),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut latencies = Vec::with_capacity(schedule.len());
    let mut errors = Vec::new();
    for t in tasks {
        match t
            .await
            .map_err(|e| BenchError::Failed(format!("a request task failed: {e}")))?
        {
            Ok(l) => latencies.push(l),
            Err(e) => errors.push(e),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(LoadResult::new(
        operation,
        0,
        rate,
        &mut latencies,
        errors,
        seconds,
        cpu.stop(),
    ))
}

/// What a watcher needs of one watch event line.
#[derive(Debug, Deserialize)]
struct EventLine {
    #[serde(rename = "type")]
    kind: String,
    object: EventObject,
}

#[derive(Debug, Deserialize)]
struct EventObject {
    #[serde(default)]
    metadata: EventMeta,
    #[serde(default)]
    spec: EventSpec,
}

#[derive(Debug, Default, Deserialize)]
struct EventMeta {
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct EventSpec {
    #[serde(default, rename = "nodeName")]
    node_name: String,
}

/// An ADDED/MODIFIED event's object carrying [`SENT_ANNOTATION`]: its send time and node.
fn sent_event(line: &[u8]) -> Option<(u128, String)> {
    let ev: EventLine = serde_json::from_slice(line).ok()?;
    if ev.kind != "MODIFIED" && ev.kind != "ADDED" {
        return None;
    }
    let sent = ev
        .object
        .metadata
        .annotations
        .get(SENT_ANNOTATION)?
        .parse()
        .ok()?;
    Some((sent, ev.object.spec.node_name))
}

/// The send time in a watch event line: `Some(nanos)` for an ADDED/MODIFIED event whose
/// object carries [`SENT_ANNOTATION`]; `None` for anything else (bookmarks, other pods).
/// Pure.
pub fn sent_nanos(line: &[u8]) -> Option<u128> {
    sent_event(line).map(|(sent, _)| sent)
}

/// Kubelet `watcher`'s view of an event line: `Some((sent, meant_for_me))` for an event
/// carrying a send time, `meant_for_me` false when the pod is bound to another node (its
/// field selector should have kept it out). Pure.
pub fn node_delivery(watcher: usize, line: &[u8]) -> Option<(u128, bool)> {
    sent_event(line).map(|(sent, node)| (sent, node == node_name(watcher)))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// What the watch phase does.
#[derive(Debug, Clone)]
pub struct WatchPlan {
    pub watchers: usize,
    pub rate: f64,
    pub duration: Duration,
    /// How long to wait for the last deliveries after the last write.
    pub drain: Duration,
    pub timeout: Duration,
}

/// Creates the watched pods, opens `plan.watchers` watch streams on pods in
/// [`WATCH_NAMESPACE`] (one connection each, spread over `addrs`, from the list's
/// resourceVersion as an informer does), then patches the watched pods in turn at
/// `plan.rate` (open loop), each patch carrying its send time; every watcher records, per
/// event, the time from that send to its reading the event.
pub async fn watch_delivery(
    addrs: &[std::net::SocketAddr],
    config: Arc<rustls::ClientConfig>,
    writer: &ApiConn,
    plan: &WatchPlan,
    server_pids: &[u32],
    progress: &crate::bench::Progress,
) -> Result<WatchResult, BenchError> {
    ensure_namespace(writer, WATCH_NAMESPACE).await?;
    let pods_path = format!("/api/v1/namespaces/{WATCH_NAMESPACE}/pods");
    for i in 0..WATCHED_PODS {
        let body = Bytes::from(pod_manifest(&format!("watched-{i}"), WATCH_NAMESPACE).to_string());
        let a = writer
            .request_within(
                http::Method::POST,
                &pods_path,
                Some(JSON),
                body,
                plan.timeout,
            )
            .await?;
        if a.status != 201 && a.status != 409 {
            return Err(BenchError::Failed(format!(
                "creating a watched pod: {}",
                a.brief()
            )));
        }
    }
    let rv = list_revision(writer, &pods_path, plan.timeout).await?;
    let watch_path = format!(
        "{pods_path}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=3600"
    );

    progress(&format!(
        "watch: opening {} watch streams from resourceVersion {rv} ...",
        plan.watchers
    ));
    let watchers = open_watchers(
        addrs,
        config,
        plan.watchers,
        |_| watch_path.clone(),
        |_, line| sent_nanos(line).map(|sent| (sent, true)),
    )
    .await;
    progress(&format!(
        "watch: {} streams open in {:.1} s ({} failed); writing at {}/s for {} s ...",
        watchers.tasks.len(),
        watchers.open_seconds,
        watchers.open_errors.len(),
        plan.rate,
        plan.duration.as_secs_f64()
    ));

    let cpu = CpuMeter::start(server_pids);
    let writes = write_send_times(writer, plan, |k| {
        format!("{pods_path}/watched-{}", k % WATCHED_PODS)
    })
    .await?;
    let open = watchers.tasks.len();
    // Wait for the last deliveries (or give up after `drain`: what is missing then counts
    // as lost). A write that timed out may still have been applied, so wait for those too.
    watchers.drain(writes.attempted * open, plan.drain).await;
    let cpu = cpu.stop();
    let seen = watchers.collect().await?;
    let mut errors = writes.errors;
    let write_errors = errors.len();
    errors.extend(seen.errors.iter().cloned());
    Ok(WatchResult {
        watchers: plan.watchers,
        open_errors: seen.open_errors,
        open_seconds: seen.open_seconds,
        writes: writes.ok_sent.len(),
        write_errors,
        write_rate: plan.rate,
        expected: writes.ok_sent.len() * open,
        delivered: seen.delivered_of(&writes.ok_sent),
        latency: Summary::of_micros(&mut seen.latencies()),
        error_samples: errors.into_iter().take(5).collect(),
        cpu,
    })
}

/// The node watch: `plan.watchers` kubelets, kubelet `i` watching the pods bound to
/// [`node_name`]`(i)` (`fieldSelector=spec.nodeName=node-<i>`, every namespace), each on
/// a connection of its own spread over `addrs`. One pod is bound to each node; the writer
/// patches them in turn at `plan.rate`, each patch carrying its send time, so every write
/// is meant for exactly one watcher. Records delivery latency, deliveries to the wrong
/// watcher, and the replicas' CPU and RSS with every watch open.
pub async fn node_watch_delivery(
    addrs: &[std::net::SocketAddr],
    config: Arc<rustls::ClientConfig>,
    writer: &ApiConn,
    creators: &[ApiConn],
    plan: &WatchPlan,
    server_pids: &[u32],
    progress: &crate::bench::Progress,
) -> Result<NodeWatchResult, BenchError> {
    ensure_namespace(writer, NODES_NAMESPACE).await?;
    progress(&format!(
        "node watch: creating {} pods, one bound to each node ...",
        plan.watchers
    ));
    let created = create_many(
        creators,
        plan.watchers,
        NODES_NAMESPACE,
        node_pod_manifest,
        server_pids,
        plan.timeout,
    )
    .await?;
    if created.errors > 0 {
        return Err(BenchError::Failed(format!(
            "node watch: {} of {} pod creates failed, e.g. {}",
            created.errors,
            plan.watchers,
            created.error_samples.first().map_or("", String::as_str)
        )));
    }
    let pods_path = format!("/api/v1/namespaces/{NODES_NAMESPACE}/pods");
    let rv = list_revision(writer, &pods_path, plan.timeout).await?;
    let rss_before: Vec<f64> = server_pids.iter().map(|&p| proc_mib(p, "VmRSS")).collect();
    progress(&format!(
        "node watch: opening {} watch streams (fieldSelector=spec.nodeName=node-<i>) from \
         resourceVersion {rv} ...",
        plan.watchers
    ));
    let open_cpu = CpuMeter::start(server_pids);
    let watchers = open_watchers(
        addrs,
        config,
        plan.watchers,
        |i| node_watch_path(i, &rv),
        node_delivery,
    )
    .await;
    let open_cpu = open_cpu.stop();
    let rss_open: Vec<f64> = server_pids.iter().map(|&p| proc_mib(p, "VmRSS")).collect();
    progress(&format!(
        "node watch: {} streams open in {:.1} s ({} failed); writing at {}/s for {} s ...",
        watchers.tasks.len(),
        watchers.open_seconds,
        watchers.open_errors.len(),
        plan.rate,
        plan.duration.as_secs_f64()
    ));
    let cpu = CpuMeter::start(server_pids);
    let nodes = plan.watchers;
    let writes = write_send_times(writer, plan, |k| {
        format!("{pods_path}/{}", node_pod_name(k % nodes))
    })
    .await?;
    // Each write is meant for one watcher: wait for those whose watcher is open.
    let opened: std::collections::HashSet<usize> = watchers.opened.iter().copied().collect();
    let meant = (0..writes.attempted)
        .filter(|k| opened.contains(&(k % nodes)))
        .count();
    watchers.drain(meant, plan.drain).await;
    let cpu = cpu.stop();
    let rss_end: Vec<f64> = server_pids.iter().map(|&p| proc_mib(p, "VmRSS")).collect();
    let seen = watchers.collect().await?;
    // Acknowledged writes whose watcher is open: each must arrive once.
    let expected = writes
        .ok_sent_for
        .iter()
        .filter(|(_, k)| opened.contains(&(k % nodes)))
        .count();
    let mut errors = writes.errors;
    let write_errors = errors.len();
    errors.extend(seen.errors.iter().cloned());
    Ok(NodeWatchResult {
        watchers: plan.watchers,
        open_errors: seen.open_errors,
        open_seconds: seen.open_seconds,
        writes: writes.ok_sent.len(),
        write_errors,
        write_rate: plan.rate,
        expected,
        delivered: seen.delivered_of(&writes.ok_sent),
        misdelivered: seen.misdelivered,
        latency: Summary::of_micros(&mut seen.latencies()),
        error_samples: errors.into_iter().take(5).collect(),
        open_cpu,
        cpu,
        rss_mib_before: rss_before,
        rss_mib_open: rss_open,
        rss_mib_end: rss_end,
    })
}

/// The resourceVersion of a one-item list of `path` (where an informer starts watching).
async fn list_revision(
    conn: &ApiConn,
    path: &str,
    timeout: Duration,
) -> Result<String, BenchError> {
    let list = conn
        .request_within(
            http::Method::GET,
            &format!("{path}?limit=1"),
            None,
            Bytes::new(),
            timeout,
        )
        .await?;
    serde_json::from_slice::<serde_json::Value>(&list.body)
        .ok()
        .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(String::from))
        .ok_or_else(|| BenchError::Failed(format!("listing {path}: {}", list.brief())))
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct WatcherRecord {
    /// (send time, latency in µs) of every event carrying a send time meant for it.
    deliveries: Vec<(u128, u64)>,
    /// Events carrying a send time that its selector should have kept out.
    misdelivered: usize,
    error: Option<String>,
}

/// Open watch streams, each read by a task of its own until `stop`.
struct Watchers {
    tasks: Vec<tokio::task::JoinHandle<WatcherRecord>>,
    /// Which watchers (by number) opened, in the order of `tasks`.
    opened: Vec<usize>,
    open_errors: Vec<String>,
    open_seconds: f64,
    stop: CancellationToken,
    received: Arc<AtomicUsize>,
}

/// What the watchers saw, all together.
struct Seen {
    records: Vec<WatcherRecord>,
    errors: Vec<String>,
    misdelivered: usize,
    open_errors: usize,
    open_seconds: f64,
}

impl Seen {
    /// Deliveries of the writes sent at `ok_sent` (acknowledged ones); those of writes
    /// that timed out count in the latencies but not against the expected number.
    fn delivered_of(&self, ok_sent: &std::collections::HashSet<u128>) -> usize {
        self.records
            .iter()
            .flat_map(|r| &r.deliveries)
            .filter(|(sent, _)| ok_sent.contains(sent))
            .count()
    }

    fn latencies(&self) -> Vec<u64> {
        self.records
            .iter()
            .flat_map(|r| r.deliveries.iter().map(|(_, us)| *us))
            .collect()
    }
}

impl Watchers {
    /// Waits until `expected` deliveries arrived, or `drain` passed.
    async fn drain(&self, expected: usize, drain: Duration) {
        let until = Instant::now() + drain;
        while self.received.load(Ordering::Relaxed) < expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every watcher and gathers what they saw.
    async fn collect(self) -> Result<Seen, BenchError> {
        self.stop.cancel();
        let mut records = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            records.push(
                t.await
                    .map_err(|e| BenchError::Failed(format!("a watcher task failed: {e}")))?,
            );
        }
        let mut errors: Vec<String> = records.iter().filter_map(|r| r.error.clone()).collect();
        errors.extend(self.open_errors.iter().cloned());
        Ok(Seen {
            misdelivered: records.iter().map(|r| r.misdelivered).sum(),
            records,
            errors,
            open_errors: self.open_errors.len(),
            open_seconds: self.open_seconds,
        })
    }
}

/// What watcher `i` makes of a line: the send time it carries and whether the event was
/// meant for that watcher; `None` for lines without a send time.
type Classify = fn(usize, &[u8]) -> Option<(u128, bool)>;

/// Opens `n` watch streams, watcher `i` on `path(i)` over a connection of its own to
/// `addrs[i % addrs.len()]` (32 connecting at a time); each reads its stream in a task and
/// records the lines `classify(i, line)` finds a send time in.
async fn open_watchers(
    addrs: &[std::net::SocketAddr],
    config: Arc<rustls::ClientConfig>,
    n: usize,
    path: impl Fn(usize) -> String,
    classify: Classify,
) -> Watchers {
    let opening = Instant::now();
    let stop = CancellationToken::new();
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    let mut opened = Vec::with_capacity(n);
    let mut open_errors = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        let results = futures::future::join_all(chunk.iter().map(|&i| {
            let (addr, config, path) = (addrs[i % addrs.len()], config.clone(), path(i));
            async move {
                let conn = ApiConn::connect(addr, config).await?;
                let stream = conn.watch(&path).await?;
                Ok::<_, crate::api::http::HttpError>((i, conn, stream))
            }
        }))
        .await;
        for r in results {
            let (i, conn, mut stream) = match r {
                Ok(x) => x,
                Err(e) => {
                    open_errors.push(e.to_string());
                    continue;
                }
            };
            let (stop, received) = (stop.clone(), received.clone());
            opened.push(i);
            tasks.push(tokio::spawn(async move {
                let _conn = conn;
                let mut record = WatcherRecord::default();
                loop {
                    let line = tokio::select! {
                        l = stream.next_line() => l,
                        _ = stop.cancelled() => break,
                    };
                    match line {
                        Ok(Some(line)) => match classify(i, &line) {
                            Some((sent, true)) => {
                                let us = (unix_nanos().saturating_sub(sent) / 1000)
                                    .min(u64::MAX as u128)
                                    as u64;
                                record.deliveries.push((sent, us));
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            Some((_, false)) => record.misdelivered += 1,
                            None => {}
                        },
                        Ok(None) => {
                            record.error = Some("the watch stream ended".to_string());
                            break;
                        }
                        Err(e) => {
                            record.error = Some(e.to_string());
                            break;
                        }
                    }
                }
                record
            }));
        }
    }
    Watchers {
        tasks,
        opened,
        open_errors,
        open_seconds: opening.elapsed().as_secs_f64(),
        stop,
        received,
    }
}

/// The writes of a watch phase.
struct SentWrites {
    attempted: usize,
    /// Send times of the acknowledged writes.
    ok_sent: std::collections::HashSet<u128>,
    /// (send time, write number) of the acknowledged writes.
    ok_sent_for: Vec<(u128, usize)>,
    errors: Vec<String>,
}

/// Merge-patches `path(k)` at `plan.rate` for `plan.duration` (open loop), write `k`
/// carrying its send time in [`SENT_ANNOTATION`].
async fn write_send_times(
    writer: &ApiConn,
    plan: &WatchPlan,
    path: impl Fn(usize) -> String,
) -> Result<SentWrites, BenchError> {
    let schedule = open_loop_schedule(plan.rate, plan.duration);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut writes = Vec::with_capacity(schedule.len());
    for (k, offset) in schedule.iter().enumerate() {
        tokio::time::sleep_until(start + *offset).await;
        let writer = writer.clone();
        let path = path(k);
        let timeout = plan.timeout;
        writes.push(tokio::spawn(async move {
            let sent = unix_nanos();
            let body = json!({"metadata": {"annotations": {SENT_ANNOTATION: sent.to_string()}}});
            match writer
                .request_within(
                    http::Method::PATCH,
                    &path,
                    Some(MERGE_PATCH),
                    Bytes::from(body.to_string()),
                    timeout,
                )
                .await
            {
                Ok(a) if a.status == 200 => Ok(sent),
                Ok(a) => Err(a.brief()),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut out = SentWrites {
        attempted: writes.len(),
        ok_sent: Default::default(),
        ok_sent_for: Vec::new(),
        errors: Vec::new(),
    };
    for (k, w) in writes.into_iter().enumerate() {
        match w
            .await
            .map_err(|e| BenchError::Failed(format!("a write task failed: {e}")))?
        {
            Ok(sent) => {
                out.ok_sent.insert(sent);
                out.ok_sent_for.push((sent, k));
            }
            Err(e) => out.errors.push(e),
        }
    }
    Ok(out)
}
