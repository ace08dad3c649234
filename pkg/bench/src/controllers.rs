//! `rkube bench controllers`: the Deployment and ReplicaSet controllers of a real
//! `rkube-controller-manager`, measured as a user sees them, through the API.
//!
//! Three `rkube-apiserver` replicas and one controller-manager (its own client
//! certificate, `--apiserver` for every replica, leader election as in `rkube up`) start in
//! a temporary directory. Then, one after the other:
//!
//! 1. **create**: one Deployment of `--replicas` pods; the time from its POST until a
//!    watcher of the namespace's pods has seen that many pods (and the first of them).
//! 2. **ready**: there is no kubelet in this benchmark, so the benchmark marks each pod
//!    Running and Ready itself (a status PATCH per pod, as a kubelet would write it) from
//!    `--status-writers` connections; the time until the Deployment reports every replica
//!    available. This phase measures the stand-in as much as the controllers.
//! 3. **rollout**: a change to the pod template (rolling update, 25 % surge and
//!    unavailable); new pods are marked Ready as they appear; the time until the rollout is
//!    complete as `kubectl rollout status` judges it and no old pod is left.
//! 4. **scale to 0**: the time until the last pod is gone.
//!
//! For each phase the controller-manager's CPU; at the end its peak and final RSS.
//! The pods are never bound to a node, so the apiserver deletes them at once (no graceful
//! termination): phase 4 measures the controllers and the store, not kubelets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::bench::api::http::ApiConn;
use crate::bench::api::report::render_cells;
use crate::bench::api::report::CpuUse;
use crate::bench::api::workload::{connect_many, ensure_namespace, proc_mib, CpuMeter};
use crate::bench::replicas::{Replicas, Setup};
use crate::bench::report::{fmt_ms, render_goals, Goal, MachineInfo};
use crate::bench::{BenchError, Progress};
use crate::pki::ClientIdentity;

/// The namespace of the benchmark's Deployment.
pub const NAMESPACE: &str = "bench";
/// The Deployment's name.
pub const DEPLOYMENT: &str = "web";
/// The aim for phase 1.
pub const CREATE_AIM_S: f64 = 3.0;

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const CM_IDENTITY: &str = "controller-manager";

/// What `rkube bench controllers` measures and how: its flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(
    about = "Measure the Deployment and ReplicaSet controllers: a large deployment created, \
             rolled out and scaled to zero through three replicas",
    long_about = "Measure the Deployment and ReplicaSet controllers of a real \
    rkube-controller-manager.\n\n\
    Starts three rkube-apiserver replicas and one controller-manager on loopback in a \
    temporary directory, then: creates one Deployment of --replicas pods (time until a \
    watcher has seen every pod); marks every pod Ready as a kubelet would (there is no \
    kubelet; time until the Deployment is available); rolls out a new pod template \
    (time until the rollout is complete); scales to 0 (time until the last pod is gone). \
    Reports the controller-manager's CPU per phase and its memory. Progress goes to \
    stderr, the report to stdout. All processes and the temporary directory are removed \
    at the end, also on error or Ctrl-C."
)]
pub struct ControllersBenchOptions {
    /// Replicas of the Deployment
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub replicas: usize,
    /// Connections the stand-in kubelet writes pod status from
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub status_writers: usize,
    /// Skip the rolling update
    #[arg(long)]
    pub skip_rollout: bool,
    /// How long each phase may take
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = rkube_ops::parse_duration)]
    pub phase_timeout: Duration,
    /// Directory holding rkube-apiserver and rkube-controller-manager (default: next to
    /// rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir)
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// How long the replicas may take to be ready, and the controller-manager to run
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = rkube_ops::parse_duration)]
    pub ready_timeout: Duration,
    /// Extra argument for every rkube-apiserver (repeatable)
    #[arg(long = "rkube-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub rkube_args: Vec<String>,
    /// Extra argument for the controller-manager, e.g. --concurrent-replicaset-syncs=10
    /// (repeatable)
    #[arg(long = "cm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub cm_args: Vec<String>,
    /// Keep the temporary directory (data, logs, certificates)
    #[arg(long)]
    pub keep_data: bool,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: rkube_ops::Output,
}

impl Default for ControllersBenchOptions {
    fn default() -> Self {
        Self {
            replicas: 1000,
            status_writers: 16,
            skip_rollout: false,
            phase_timeout: Duration::from_secs(300),
            bin_dir: None,
            tmp_dir: None,
            ready_timeout: crate::READY_TIMEOUT,
            rkube_args: Vec::new(),
            cm_args: Vec::new(),
            keep_data: false,
            output: rkube_ops::Output::Table,
        }
    }
}

impl ControllersBenchOptions {
    /// Rejects values the benchmark cannot run with.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidOptions(m.to_string()));
        if self.replicas == 0 || self.replicas > 100_000 {
            return bad("--replicas must be between 1 and 100000");
        }
        if self.status_writers == 0 || self.status_writers > 1000 {
            return bad("--status-writers must be between 1 and 1000");
        }
        if self.phase_timeout.is_zero() {
            return bad("--phase-timeout must be more than 0");
        }
        Ok(())
    }
}

/// One phase's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    /// From the request that starts it until its end condition held.
    pub seconds: f64,
    /// When the watcher saw the first change the phase causes (first pod created or
    /// deleted), from the start.
    pub first_ms: Option<f64>,
    /// Pods created or deleted during the phase, as the watcher counted them.
    pub pods_created: usize,
    pub pods_deleted: usize,
    /// Status writes of the stand-in kubelet during the phase.
    pub status_writes: usize,
    /// CPU of the controller-manager (`server_cpu_seconds`), the benchmark and the rest
    /// (`other_cpu_seconds`, the apiservers not counted).
    pub cpu: CpuUse,
    /// CPU of the three apiserver replicas.
    pub apiserver_cpu_seconds: f64,
}

/// The whole report, as `-o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllersBenchReport {
    pub machine: MachineInfo,
    pub replicas: usize,
    pub status_writers: usize,
    pub version: String,
    pub cm_args: Vec<String>,
    pub phases: Vec<Phase>,
    pub cm_rss_mib_end: f64,
    pub cm_rss_mib_peak: f64,
    pub goals: Vec<Goal>,
}

impl ControllersBenchReport {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the report serializes");
        s.push('\n');
        s
    }

    pub fn render_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Controllers benchmark: one Deployment of {} replicas, 3 rkube-apiserver replicas, \
             1 rkube-controller-manager",
            self.replicas
        );
        out.push_str(&self.machine.line());
        let _ = writeln!(out, "rkube: {}", self.version);
        out.push('\n');
        let mut rows = vec![[
            "phase".to_string(),
            "time".to_string(),
            "controller-manager CPU".to_string(),
            "apiservers CPU".to_string(),
        ]];
        for p in &self.phases {
            let mut what = p.name.clone();
            if let Some(first) = p.first_ms {
                what.push_str(&format!(" (first after {})", fmt_ms(first)));
            }
            rows.push([
                what,
                format!("{:.2} s", p.seconds),
                format!(
                    "{:.2} s ({:.0}%)",
                    p.cpu.server_cpu_seconds,
                    100.0 * p.cpu.server_cpu_seconds / p.cpu.seconds.max(1e-9)
                ),
                format!("{:.2} s", p.apiserver_cpu_seconds),
            ]);
        }
        rows.push([
            "controller-manager RSS (end / peak)".to_string(),
            format!("{:.0} MiB", self.cm_rss_mib_end),
            format!("{:.0} MiB", self.cm_rss_mib_peak),
            String::new(),
        ]);
        out.push_str(&render_cells(&rows));
        out.push('\n');
        out.push_str(&render_goals(&self.goals));
        for p in &self.phases {
            if p.cpu.disturbed() {
                let _ = writeln!(
                    out,
                    "warning: {}: other processes used {:.0}% of a CPU during the phase; the \
                     numbers are disturbed",
                    p.name,
                    100.0 * p.cpu.other_cpu_seconds / p.cpu.seconds.max(1e-9)
                );
            }
        }
        out
    }
}

impl rkube_ops::Report for ControllersBenchReport {
    fn render_as(&self, output: rkube_ops::Output) -> String {
        match output {
            rkube_ops::Output::Table => self.render_table(),
            rkube_ops::Output::Json => self.to_json(),
        }
    }
}

/// The aim: the pods of a 1,000-replica deployment exist within 3 s. Pure.
pub fn evaluate_goals(replicas: usize, phases: &[Phase]) -> Vec<Goal> {
    phases
        .iter()
        .find(|p| p.name == "create")
        .map(|p| Goal {
            goal: format!("{replicas} pods created within {CREATE_AIM_S:.0} s"),
            met: Some(p.seconds <= CREATE_AIM_S),
            detail: format!(
                "{:.2} s ({:.0} pods/s)",
                p.seconds,
                replicas as f64 / p.seconds.max(1e-9)
            ),
        })
        .into_iter()
        .collect()
}

/// The Deployment the benchmark creates: `replicas` pods of one container, rolling update
/// with 25 % surge and unavailable (Kubernetes' defaults, spelled out). Pure.
pub fn deployment_manifest(replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": DEPLOYMENT}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": DEPLOYMENT}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "rkube.local/busybox:1.35",
                    "command": ["httpd", "-f", "-p", "8080"],
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]}
            }
        }
    })
}

/// The status a kubelet writes for a running, ready pod (merge patch). Pure.
pub fn ready_status_patch(now: &str) -> Value {
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    json!({"status": {
        "phase": "Running",
        "startTime": now,
        "conditions": [cond("PodScheduled"), cond("Initialized"),
                       cond("ContainersReady"), cond("Ready")],
    }})
}

/// Whether a pod object has condition Ready=True. Pure.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether a Deployment's rollout is complete as `kubectl rollout status` judges it. Pure.
pub fn rollout_complete(d: &Value, replicas: u64) -> bool {
    let s = &d["status"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    n(&s["observedGeneration"]) >= n(&d["metadata"]["generation"])
        && n(&s["updatedReplicas"]) == replicas
        && n(&s["replicas"]) == replicas
        && n(&s["availableReplicas"]) == replicas
}

/// What the pod watcher has seen so far.
#[derive(Debug, Clone, Default)]
struct Seen {
    live: usize,
    created: usize,
    deleted: usize,
    first_created: Option<Instant>,
    first_deleted: Option<Instant>,
}

/// Runs the benchmark on its own runtime (see `rkube bench store`).
pub async fn run_controllers(
    opts: ControllersBenchOptions,
    progress: Progress,
) -> Result<ControllersBenchReport, BenchError> {
    opts.validate()?;
    crate::bench::on_bench_runtime(move || async move { run_here(&opts, &progress).await }).await
}

/// A controller-manager child process, killed when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_here(
    opts: &ControllersBenchOptions,
    progress: &Progress,
) -> Result<ControllersBenchReport, BenchError> {
    let replicas = Replicas::start(
        &Setup {
            prefix: "rkube-bench-controllers-",
            bin_dir: opts.bin_dir.clone(),
            tmp_dir: opts.tmp_dir.clone(),
            keep_data: opts.keep_data,
            rkube_args: opts.rkube_args.clone(),
            clients: vec![ClientIdentity::controller_manager(CM_IDENTITY)],
            ready_timeout: opts.ready_timeout,
        },
        progress,
    )
    .await?;
    let result = measure(opts, &replicas, progress).await;
    replicas.finish()?;
    progress("stopped");
    result
}

async fn measure(
    opts: &ControllersBenchOptions,
    replicas: &Replicas,
    progress: &Progress,
) -> Result<ControllersBenchReport, BenchError> {
    let timeout = Duration::from_secs(10);
    let admin = connect_many(&replicas.addrs, 1, replicas.admin_h2.clone()).await?;
    let admin = admin.into_iter().next().expect("one connection");
    ensure_namespace(&admin, NAMESPACE).await?;

    // The controller-manager, as `rkube up` starts it.
    let program = crate::process::find_binary("rkube-controller-manager", opts.bin_dir.as_deref())?;
    let health_port = crate::bench::cluster::free_ports(1)?[0];
    let pki = &replicas.pki;
    let mut cmd = std::process::Command::new(&program);
    for a in &replicas.addrs {
        cmd.arg("--apiserver").arg(a.to_string());
    }
    cmd.arg("--certificate-authority")
        .arg(pki.ca_cert())
        .arg("--client-certificate")
        .arg(pki.client_cert(CM_IDENTITY))
        .arg("--client-key")
        .arg(pki.client_key(CM_IDENTITY))
        .arg("--listen")
        .arg(format!("127.0.0.1:{health_port}"))
        .arg("--name")
        .arg("controller-manager-bench")
        .args(&opts.cm_args);
    let log_path = replicas.logs().join("controller-manager.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| BenchError::io("create", &log_path, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| BenchError::io("open", &log_path, e))?;
    progress(&format!("starting {}", program.display()));
    let child = cmd
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            name: "rkube-controller-manager".into(),
            program: program.clone(),
            source,
        })?;
    let mut cm = ChildGuard(child);
    let cm_pid = cm.0.id();

    // Running controllers give the namespace its default ServiceAccount.
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        if let Some(status) = cm.0.try_wait().ok().flatten() {
            return Err(BenchError::Exited {
                name: "rkube-controller-manager".into(),
                status: status.to_string(),
                log: log_path.clone(),
                tail: rkube_ops::process::log_tail(&log_path, 20),
            });
        }
        let a = admin
            .request_within(
                http::Method::GET,
                &format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"),
                None,
                Bytes::new(),
                timeout,
            )
            .await?;
        if a.status == 200 {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady {
                system: "rkube-controller-manager",
                reason: "no default ServiceAccount in the benchmark's namespace".into(),
                timeout: opts.ready_timeout,
                logs: vec![log_path.clone()],
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress("controller-manager running");

    // Watchers: the namespace's pods (counts, and new pods for the stand-in kubelet) and
    // the Deployment (its status).
    let (seen_tx, seen_rx) = watch::channel(Seen::default());
    let (dep_tx, dep_rx) = watch::channel(Value::Null);
    let (ready_tx, ready_rx) = mpsc::unbounded_channel::<String>();
    let marking = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pods_rv = list_rv(&admin, &format!("/api/v1/namespaces/{NAMESPACE}/pods")).await?;
    let dep_rv = list_rv(
        &admin,
        &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
    )
    .await?;
    let watch_conn = ApiConn::connect(replicas.addrs[0], replicas.admin_h2.clone()).await?;
    let mut pods_stream = watch_conn
        .watch(&format!(
            "/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={pods_rv}&timeoutSeconds=3600"
        ))
        .await?;
    let mut dep_stream = watch_conn
        .watch(&format!(
            "/apis/apps/v1/namespaces/{NAMESPACE}/deployments?watch=1&resourceVersion={dep_rv}&timeoutSeconds=3600"
        ))
        .await?;
    let pods_task = {
        let marking = marking.clone();
        let ready_tx = ready_tx.clone();
        tokio::spawn(async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            while let Ok(Some(line)) = pods_stream.next_line().await {
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let name = ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                match ev["type"].as_str() {
                    Some("ADDED") => {
                        let is_ready = pod_ready(&ev["object"]);
                        ready.insert(name.clone(), is_ready);
                        if !is_ready && marking.load(std::sync::atomic::Ordering::SeqCst) {
                            let _ = ready_tx.send(name);
                        }
                        seen_tx.send_modify(|s| {
                            s.live += 1;
                            s.created += 1;
                            s.first_created.get_or_insert_with(Instant::now);
                        });
                    }
                    Some("MODIFIED") => {
                        ready.insert(name, pod_ready(&ev["object"]));
                    }
                    Some("DELETED") => {
                        ready.remove(&name);
                        seen_tx.send_modify(|s| {
                            s.live = s.live.saturating_sub(1);
                            s.deleted += 1;
                            s.first_deleted.get_or_insert_with(Instant::now);
                        });
                    }
                    _ => {}
                }
            }
            ready
        })
    };
    let dep_task = tokio::spawn(async move {
        while let Ok(Some(line)) = dep_stream.next_line().await {
            if let Ok(ev) = serde_json::from_slice::<Value>(&line) {
                if ev["object"]["metadata"]["name"] == DEPLOYMENT {
                    dep_tx.send_replace(ev["object"].clone());
                }
            }
        }
    });

    // The stand-in kubelet: status writers taking pod names from one queue.
    let writers = connect_many(
        &replicas.addrs,
        opts.status_writers,
        replicas.admin_h2.clone(),
    )
    .await?;
    let status_writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ready_rx = Arc::new(tokio::sync::Mutex::new(ready_rx));
    let mut writer_tasks = Vec::new();
    for conn in writers {
        let (rx, count) = (ready_rx.clone(), status_writes.clone());
        writer_tasks.push(tokio::spawn(async move {
            loop {
                let name = { rx.lock().await.recv().await };
                let Some(name) = name else { break };
                let now = jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let body = Bytes::from(ready_status_patch(&now).to_string());
                let path = format!("/api/v1/namespaces/{NAMESPACE}/pods/{name}/status");
                // A pod deleted meanwhile answers 404: nothing to mark.
                if let Ok(a) = conn
                    .request_within(
                        http::Method::PATCH,
                        &path,
                        Some(MERGE_PATCH),
                        body,
                        Duration::from_secs(30),
                    )
                    .await
                {
                    if a.status == 200 {
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let n = opts.replicas;
    let mut phases = Vec::new();
    let api_pids = replicas.pids();
    let phase = |name: &str,
                 started: Instant,
                 seen0: &Seen,
                 seen1: &Seen,
                 writes: usize,
                 (cm, api): (CpuUse, CpuUse)| {
        let mut cpu = cm;
        cpu.other_cpu_seconds = (cpu.other_cpu_seconds - api.server_cpu_seconds).max(0.0);
        let first = if name == "scale to 0" {
            seen1
                .first_deleted
                .filter(|_| seen0.first_deleted.is_none())
        } else {
            seen1
                .first_created
                .filter(|_| seen0.first_created.is_none())
        };
        Phase {
            name: name.to_string(),
            seconds: started.elapsed().as_secs_f64(),
            first_ms: first.map(|t| t.saturating_duration_since(started).as_secs_f64() * 1e3),
            pods_created: seen1.created - seen0.created,
            pods_deleted: seen1.deleted - seen0.deleted,
            status_writes: writes,
            cpu,
            apiserver_cpu_seconds: api.server_cpu_seconds,
        }
    };
    let pids = [cm_pid];

    // 1. create
    progress(&format!("create: a Deployment of {n} replicas ..."));
    let seen0 = seen_rx.borrow().clone();
    let cpu = (CpuMeter::start(&pids), CpuMeter::start(&api_pids));
    let started = Instant::now();
    let a = admin
        .request_within(
            http::Method::POST,
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
            Some(JSON),
            Bytes::from(deployment_manifest(n).to_string()),
            timeout,
        )
        .await?;
    if a.status != 201 {
        return Err(BenchError::Failed(format!(
            "creating the Deployment: {}",
            a.brief()
        )));
    }
    let seen1 = wait_seen(
        &seen_rx,
        |s| s.live >= n,
        "every pod created",
        opts.phase_timeout,
    )
    .await?;
    let p = phase(
        "create",
        started,
        &seen0,
        &seen1,
        0,
        (cpu.0.stop(), cpu.1.stop()),
    );
    progress(&format!(
        "create: {n} pods in {:.2} s ({:.0} pods/s)",
        p.seconds,
        n as f64 / p.seconds
    ));
    phases.push(p);

    // 2. ready (the stand-in kubelet)
    progress(&format!("ready: marking {n} pods Ready ..."));
    let seen0 = seen_rx.borrow().clone();
    let writes0 = status_writes.load(std::sync::atomic::Ordering::Relaxed);
    let cpu = (CpuMeter::start(&pids), CpuMeter::start(&api_pids));
    let started = Instant::now();
    marking.store(true, std::sync::atomic::Ordering::SeqCst);
    for name in list_names(&admin, &format!("/api/v1/namespaces/{NAMESPACE}/pods")).await? {
        let _ = ready_tx.send(name);
    }
    wait_deployment(
        &dep_rx,
        |d| rollout_complete(d, n as u64),
        "every replica available",
        opts.phase_timeout,
    )
    .await?;
    let seen1 = seen_rx.borrow().clone();
    let writes = status_writes.load(std::sync::atomic::Ordering::Relaxed) - writes0;
    let p = phase(
        "ready (stand-in kubelet)",
        started,
        &seen0,
        &seen1,
        writes,
        (cpu.0.stop(), cpu.1.stop()),
    );
    progress(&format!(
        "ready: available after {:.2} s, {writes} status writes",
        p.seconds
    ));
    phases.push(p);

    // 3. rollout
    if !opts.skip_rollout {
        progress("rollout: a new pod template ...");
        let seen0 = seen_rx.borrow().clone();
        let writes0 = status_writes.load(std::sync::atomic::Ordering::Relaxed);
        let cpu = (CpuMeter::start(&pids), CpuMeter::start(&api_pids));
        let started = Instant::now();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"rkube.io/bench-revision": "2"}}}}});
        let a = admin
            .request_within(
                http::Method::PATCH,
                &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}"),
                Some(MERGE_PATCH),
                Bytes::from(patch.to_string()),
                timeout,
            )
            .await?;
        if a.status != 200 {
            return Err(BenchError::Failed(format!(
                "changing the pod template: {}",
                a.brief()
            )));
        }
        let generation = serde_json::from_slice::<Value>(&a.body)
            .ok()
            .and_then(|d| d["metadata"]["generation"].as_u64())
            .unwrap_or(2);
        wait_deployment(
            &dep_rx,
            |d| {
                d["metadata"]["generation"].as_u64() >= Some(generation)
                    && rollout_complete(d, n as u64)
            },
            "the rollout complete",
            opts.phase_timeout,
        )
        .await?;
        wait_seen(
            &seen_rx,
            |s| s.live == n,
            "no old pod left",
            opts.phase_timeout,
        )
        .await?;
        let seen1 = seen_rx.borrow().clone();
        let writes = status_writes.load(std::sync::atomic::Ordering::Relaxed) - writes0;
        let p = phase(
            "rollout",
            started,
            &seen0,
            &seen1,
            writes,
            (cpu.0.stop(), cpu.1.stop()),
        );
        progress(&format!(
            "rollout: complete after {:.2} s ({} pods created, {} deleted)",
            p.seconds, p.pods_created, p.pods_deleted
        ));
        phases.push(p);
    }

    // 4. scale to 0
    progress("scale to 0 ...");
    let seen0 = seen_rx.borrow().clone();
    let cpu = (CpuMeter::start(&pids), CpuMeter::start(&api_pids));
    let started = Instant::now();
    let a = admin
        .request_within(
            http::Method::PATCH,
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}"),
            Some(MERGE_PATCH),
            Bytes::from(json!({"spec": {"replicas": 0}}).to_string()),
            timeout,
        )
        .await?;
    if a.status != 200 {
        return Err(BenchError::Failed(format!("scaling to 0: {}", a.brief())));
    }
    let seen1 = wait_seen(
        &seen_rx,
        |s| s.live == 0,
        "every pod gone",
        opts.phase_timeout,
    )
    .await?;
    let p = phase(
        "scale to 0",
        started,
        &seen0,
        &seen1,
        0,
        (cpu.0.stop(), cpu.1.stop()),
    );
    progress(&format!("scale to 0: gone after {:.2} s", p.seconds));
    phases.push(p);

    let report = ControllersBenchReport {
        machine: replicas.machine.clone(),
        replicas: n,
        status_writers: opts.status_writers,
        version: replicas.version.clone(),
        cm_args: opts.cm_args.clone(),
        goals: evaluate_goals(n, &phases),
        phases,
        cm_rss_mib_end: proc_mib(cm_pid, "VmRSS"),
        cm_rss_mib_peak: proc_mib(cm_pid, "VmHWM"),
    };
    drop(ready_tx);
    pods_task.abort();
    dep_task.abort();
    for t in writer_tasks {
        t.abort();
    }
    drop(cm);
    Ok(report)
}

async fn list_rv(conn: &ApiConn, path: &str) -> Result<String, BenchError> {
    let list = get_json(conn, path).await?;
    Ok(list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string())
}

async fn list_names(conn: &ApiConn, path: &str) -> Result<Vec<String>, BenchError> {
    let list = get_json(conn, path).await?;
    Ok(list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

async fn get_json(conn: &ApiConn, path: &str) -> Result<Value, BenchError> {
    let a = conn
        .request_within(
            http::Method::GET,
            path,
            None,
            Bytes::new(),
            Duration::from_secs(30),
        )
        .await?;
    if a.status != 200 {
        return Err(BenchError::Failed(format!("GET {path}: {}", a.brief())));
    }
    serde_json::from_slice(&a.body)
        .map_err(|e| BenchError::Failed(format!("GET {path}: not JSON: {e}")))
}

async fn wait_seen(
    rx: &watch::Receiver<Seen>,
    done: impl Fn(&Seen) -> bool,
    what: &str,
    timeout: Duration,
) -> Result<Seen, BenchError> {
    let mut rx = rx.clone();
    let outcome = tokio::time::timeout(timeout, rx.wait_for(|s| done(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match outcome {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(_)) => Err(BenchError::Failed(format!(
            "the pod watch ended before {what}"
        ))),
        Err(_) => Err(BenchError::Failed(format!(
            "{what}: not within {} s (the watcher sees {:?})",
            timeout.as_secs(),
            *rx.borrow()
        ))),
    }
}

async fn wait_deployment(
    rx: &watch::Receiver<Value>,
    done: impl Fn(&Value) -> bool,
    what: &str,
    timeout: Duration,
) -> Result<(), BenchError> {
    let mut rx = rx.clone();
    let outcome = tokio::time::timeout(timeout, rx.wait_for(|d| done(d)))
        .await
        .map(|r| r.map(drop));
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(BenchError::Failed(format!(
            "the Deployment watch ended before {what}"
        ))),
        Err(_) => Err(BenchError::Failed(format!(
            "{what}: not within {} s (Deployment status {})",
            timeout.as_secs(),
            rx.borrow()["status"]
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_is_complete_only_when_every_count_matches_the_current_generation() {
        let d = |gen: u64, observed: u64, updated: u64, total: u64, available: u64| {
            json!({"metadata": {"generation": gen}, "status": {
                "observedGeneration": observed, "updatedReplicas": updated,
                "replicas": total, "availableReplicas": available}})
        };
        assert!(rollout_complete(&d(2, 2, 10, 10, 10), 10));
        assert!(
            !rollout_complete(&d(2, 1, 10, 10, 10), 10),
            "old generation"
        );
        assert!(
            !rollout_complete(&d(2, 2, 9, 10, 10), 10),
            "an old pod left"
        );
        assert!(
            !rollout_complete(&d(2, 2, 10, 12, 10), 10),
            "surge not scaled down"
        );
        assert!(!rollout_complete(&d(2, 2, 10, 10, 7), 10), "not available");
        assert!(!rollout_complete(&json!({}), 10));
    }

    #[test]
    fn a_pod_is_ready_by_its_ready_condition_only() {
        assert!(pod_ready(&ready_status_patch("2026-12-02T00:00:00Z")));
        let not = json!({"status": {"conditions": [
            {"type": "ContainersReady", "status": "True"},
            {"type": "Ready", "status": "False"}]}});
        assert!(!pod_ready(&not));
        assert!(!pod_ready(&json!({"status": {}})));
    }

    #[test]
    fn the_create_goal_is_met_within_three_seconds() {
        let p = |s: f64| Phase {
            name: "create".into(),
            seconds: s,
            first_ms: None,
            pods_created: 1000,
            pods_deleted: 0,
            status_writes: 0,
            cpu: CpuUse::default(),
            apiserver_cpu_seconds: 0.0,
        };
        assert_eq!(evaluate_goals(1000, &[p(2.9)])[0].met, Some(true));
        assert_eq!(evaluate_goals(1000, &[p(3.1)])[0].met, Some(false));
        assert!(evaluate_goals(1000, &[]).is_empty());
    }

    #[test]
    fn the_deployment_asks_for_the_replicas_and_kubernetes_default_strategy() {
        let d = deployment_manifest(1000);
        assert_eq!(d["spec"]["replicas"], 1000);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["selector"]["matchLabels"],
            d["spec"]["template"]["metadata"]["labels"]
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let mut o = ControllersBenchOptions::default();
        assert!(o.validate().is_ok());
        o.replicas = 0;
        assert!(o.validate().unwrap_err().is_usage());
        o = ControllersBenchOptions {
            status_writers: 0,
            ..Default::default()
        };
        assert!(o.validate().unwrap_err().is_usage());
    }
}
