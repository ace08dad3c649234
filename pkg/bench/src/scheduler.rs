//! `rkube bench scheduler`: how fast `rkube-scheduler` binds pods, end to end through
//! three apiserver replicas and Raft, as a watcher of the pods sees it.
//!
//! For each case (`--nodes` sizes, each plain and — with `--spread` — with a topology
//! spread constraint) the benchmark starts a fresh cluster of three replicas (TLS, the
//! cluster PKI as `rkube up` makes it), creates that many Node objects (allocatable cpu,
//! memory and pods, a hostname and a zone label; there are no kubelets), starts one
//! `rkube-scheduler` (`--leader-elect=false`, its own `system:kube-scheduler`
//! certificate), waits until a first pod is bound (its caches are synced), opens a watch
//! on the pods, and creates `--pods` pods at once from `--clients` concurrent clients.
//! It reports pods bound per second (from the first create sent to the last binding
//! seen), the latency of each pod from its create being sent to its binding being seen
//! (p50, p99), and the scheduler's CPU seconds and peak memory (`/proc/PID`).
//!
//! The spread case gives each pod `topologySpreadConstraints`: zone `DoNotSchedule`
//! (maxSkew 1) and hostname `ScheduleAnyway` (maxSkew 1) over the same app label.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rkube_client::{Client, Gvr, ListParams, WatchParams, WriteParams};
use serde::Serialize;
use serde_json::{json, Value};

use crate::bench::cluster::free_ports;
use crate::bench::replicas::{Replicas, Setup};
use crate::bench::report::fmt_ms;
use crate::bench::stats::Summary;
use crate::bench::{BenchError, Progress};
use crate::pki::ClientIdentity;

/// The namespace the pods are made in.
pub const NAMESPACE: &str = "default";
pub const SCHEDULER_BIN: &str = "rkube-scheduler";

/// kube-scheduler's CI thresholds for its 5,000-node scheduling-throughput tests (pods/s),
/// printed beside the results.
pub const KUBE_SCHEDULER_THRESHOLDS: (f64, f64) = (680.0, 810.0);

/// What `rkube bench scheduler` measures: its flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(
    about = "Measure rkube-scheduler: pods bound per second end to end, latency from creation to binding, CPU and memory",
    long_about = "Measure rkube-scheduler end to end.\n\n\
    For each --nodes size (and, with --spread, again with a topology spread constraint) \
    starts three rkube-apiserver replicas on loopback, creates that many Node objects, \
    starts one rkube-scheduler and creates --pods pods at once; reports pods bound per \
    second as a watcher of the pods sees the bindings, p50/p99 from each create to its \
    binding, and the scheduler's CPU and peak memory. Progress goes to stderr, the report \
    to stdout. All processes and the temporary directory are removed at the end."
)]
pub struct SchedulerBenchOptions {
    /// Node counts, one case each (comma-separated)
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1000,5000"
    )]
    pub nodes: Vec<usize>,
    /// Pods created at once in each case
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent clients creating nodes and pods
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub clients: usize,
    /// Also run each size with a topology spread constraint on every pod
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub spread: bool,
    /// Zones the nodes are labelled with (topology.kubernetes.io/zone)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub zones: usize,
    /// How long a case may take to bind every pod
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = rkube_ops::parse_duration)]
    pub timeout: Duration,
    /// Directory holding rkube-apiserver and rkube-scheduler (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir)
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: rkube_ops::Output,
}

impl SchedulerBenchOptions {
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidOptions(m.to_string()));
        if self.nodes.is_empty() || self.nodes.contains(&0) {
            return bad("--nodes needs at least one count, each at least 1");
        }
        if self.pods == 0 || self.clients == 0 || self.zones == 0 {
            return bad("--pods, --clients and --zones must be at least 1");
        }
        Ok(())
    }
}

/// One case's results.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub nodes: usize,
    pub pods: usize,
    pub spread: bool,
    /// Pods bound per second, from the first create sent to the last binding seen.
    pub pods_per_second: f64,
    /// Pods created per second (the apiserver's side of the same window).
    pub created_per_second: f64,
    /// From each pod's create being sent to its binding being seen.
    pub latency: Summary,
    pub scheduler_cpu_seconds: f64,
    pub seconds: f64,
    pub scheduler_peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchedulerBenchReport {
    pub machine: crate::bench::report::MachineInfo,
    pub cases: Vec<CaseResult>,
}

impl SchedulerBenchReport {
    pub fn render_table(&self) -> String {
        let mut out = format!(
            "rkube-scheduler, end to end through 3 apiservers ({} CPUs, {} MiB)\n",
            self.machine.nproc, self.machine.memory_mib
        );
        out.push_str(&format!(
            "{:>6} {:>6} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}\n",
            "nodes", "pods", "spread", "bound/s", "created/s", "p50", "p99", "cpu s", "rss MiB"
        ));
        for c in &self.cases {
            out.push_str(&format!(
                "{:>6} {:>6} {:>7} {:>10.0} {:>10.0} {:>9} {:>9} {:>9.1} {:>9.0}\n",
                c.nodes,
                c.pods,
                if c.spread { "yes" } else { "no" },
                c.pods_per_second,
                c.created_per_second,
                fmt_ms(c.latency.p50_us as f64 / 1e3),
                fmt_ms(c.latency.p99_us as f64 / 1e3),
                c.scheduler_cpu_seconds,
                c.scheduler_peak_rss_mib
            ));
        }
        out.push_str(&format!(
            "kube-scheduler CI thresholds at 5000 nodes: {:.0}–{:.0} pods/s\n",
            KUBE_SCHEDULER_THRESHOLDS.0, KUBE_SCHEDULER_THRESHOLDS.1
        ));
        out
    }
}

impl rkube_ops::Report for SchedulerBenchReport {
    fn render_as(&self, output: rkube_ops::Output) -> String {
        match output {
            rkube_ops::Output::Json => {
                serde_json::to_string_pretty(self).expect("reports serialize") + "\n"
            }
            _ => self.render_table(),
        }
    }
}

/// A Node object as the benchmark makes it.
pub fn node_manifest(i: usize, zones: usize) -> Value {
    let name = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % zones),
        }},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

/// A pod as the benchmark makes it (with the spread constraints when `spread`).
pub fn pod_manifest(i: usize, spread: bool) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": NAMESPACE, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "rkube.local/pause:1",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    });
    if spread {
        pod["spec"]["topologySpreadConstraints"] = json!([
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "bench"}}},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "bench"}}}
        ]);
    }
    pod
}

/// CPU seconds (user + system) of `pid` from `/proc/PID/stat` (0 when gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    parse_stat_cpu(&stat).unwrap_or(0.0)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds (100 ticks per second).
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Runs every case on its own runtime; Ctrl-C stops it after killing every process.
pub async fn run_scheduler(
    opts: SchedulerBenchOptions,
    progress: Progress,
) -> Result<SchedulerBenchReport, BenchError> {
    opts.validate()?;
    crate::bench::on_bench_runtime(move || async move {
        let parent = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let machine = crate::bench::machine_info(&parent)?;
        let mut cases = Vec::new();
        for &nodes in &opts.nodes {
            for spread in [false, true] {
                if spread && !opts.spread {
                    continue;
                }
                let c = run_case(&opts, nodes, spread, &progress).await?;
                progress(&format!(
                    "{} nodes{}: {:.0} pods bound/s, p50 {} p99 {}, scheduler {:.1} CPU s, {:.0} MiB",
                    nodes,
                    if spread { " (spread)" } else { "" },
                    c.pods_per_second,
                    fmt_ms(c.latency.p50_us as f64 / 1e3),
                    fmt_ms(c.latency.p99_us as f64 / 1e3),
                    c.scheduler_cpu_seconds,
                    c.scheduler_peak_rss_mib
                ));
                cases.push(c);
            }
        }
        Ok(SchedulerBenchReport { machine, cases })
    })
    .await
}

/// The scheduler process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_case(
    opts: &SchedulerBenchOptions,
    nodes: usize,
    spread: bool,
    progress: &Progress,
) -> Result<CaseResult, BenchError> {
    let scheduler = crate::process::find_binary(SCHEDULER_BIN, opts.bin_dir.as_deref())?;
    let mut replicas = Replicas::start(
        &Setup {
            prefix: "rkube-bench-scheduler-",
            bin_dir: opts.bin_dir.clone(),
            tmp_dir: opts.tmp_dir.clone(),
            keep_data: false,
            rkube_args: Vec::new(),
            clients: vec![ClientIdentity::scheduler("scheduler")],
            ready_timeout: crate::READY_TIMEOUT,
        },
        progress,
    )
    .await?;
    let logs = replicas.logs();
    let pki = replicas.pki.clone();
    let ports = free_ports(1)?;
    let endpoints: Vec<String> = replicas.addrs.iter().map(|a| a.to_string()).collect();
    let mut config = rkube_client::Config::new(endpoints.clone());
    config.tls = Some(replicas.admin_h2.clone());
    let client = Client::new(config).map_err(|e| BenchError::Failed(format!("client: {e}")))?;

    progress(&format!("{nodes} nodes: creating them ..."));
    let nodes_gvr = Gvr::new("", "v1", "nodes");
    let created = futures::stream::iter(0..nodes)
        .map(|i| {
            let (client, gvr) = (client.clone(), nodes_gvr.clone());
            async move {
                client
                    .create(
                        &gvr,
                        "",
                        &node_manifest(i, opts.zones),
                        &WriteParams::default(),
                    )
                    .await
            }
        })
        .buffer_unordered(opts.clients)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = created.into_iter().find(Result::is_err) {
        return Err(BenchError::Failed(format!("creating a node: {e}")));
    }

    let log_path = logs.join("scheduler.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| BenchError::io("create", &log_path, e))?;
    let mut cmd = std::process::Command::new(&scheduler);
    cmd.arg("--apiserver")
        .arg(endpoints.join(","))
        .arg("--certificate-authority")
        .arg(pki.ca_cert())
        .arg("--client-certificate")
        .arg(pki.client_cert("scheduler"))
        .arg("--client-key")
        .arg(pki.client_key("scheduler"))
        .arg(format!("--listen=127.0.0.1:{}", ports[0]))
        .arg("--leader-elect=false")
        .stdout(
            log.try_clone()
                .map_err(|e| BenchError::io("open", &log_path, e))?,
        )
        .stderr(log);
    let child = Child(cmd.spawn().map_err(|source| BenchError::Spawn {
        name: SCHEDULER_BIN.into(),
        program: scheduler.clone(),
        source,
    })?);
    let pid = child.0.id();

    // A first pod bound means the scheduler's caches are synced.
    let pods_gvr = Gvr::new("", "v1", "pods");
    let mut warm = pod_manifest(0, false);
    warm["metadata"]["name"] = json!("warm-up");
    warm["metadata"]["labels"] = json!({"app": "warm-up"});
    client
        .create(&pods_gvr, NAMESPACE, &warm, &WriteParams::default())
        .await
        .map_err(|e| BenchError::Failed(format!("creating the warm-up pod: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = client.get(&pods_gvr, NAMESPACE, "warm-up", "").await;
        if p.is_ok_and(|p| p.pointer("/spec/nodeName").is_some_and(|n| !n.is_null())) {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "the scheduler bound no warm-up pod within 60 s (log: {})",
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The watcher: when each pod was first seen bound.
    let list = client
        .list(&pods_gvr, NAMESPACE, &ListParams::default())
        .await
        .map_err(|e| BenchError::Failed(format!("listing pods: {e}")))?;
    let rv = list.resource_version;
    let mut watch = client
        .watch(&pods_gvr, NAMESPACE, WatchParams::from_version(rv))
        .await
        .map_err(|e| BenchError::Failed(format!("watching pods: {e}")))?;
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = bound.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(ev)) = watch.next().await {
            let Some(obj) = ev.object() else { continue };
            if obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_none()
            {
                continue;
            }
            if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
                seen.lock()
                    .expect("not poisoned")
                    .entry(name.to_string())
                    .or_insert_with(Instant::now);
            }
        }
    });

    progress(&format!(
        "{nodes} nodes{}: creating {} pods at once from {} clients ...",
        if spread { " (spread)" } else { "" },
        opts.pods,
        opts.clients
    ));
    let cpu_before = cpu_seconds(pid);
    let start = Instant::now();
    let sent: Vec<(String, Instant, Instant)> = futures::stream::iter(0..opts.pods)
        .map(|i| {
            let (client, gvr) = (client.clone(), pods_gvr.clone());
            async move {
                let name = format!("pod-{i}");
                let at = Instant::now();
                let r = client
                    .create(
                        &gvr,
                        NAMESPACE,
                        &pod_manifest(i, spread),
                        &WriteParams::default(),
                    )
                    .await;
                r.map(|_| (name, at, Instant::now()))
            }
        })
        .buffer_unordered(opts.clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::Failed(format!("creating a pod: {e}")))?;
    let created_at = sent.iter().map(|s| s.2).max().unwrap_or(start);
    let deadline = start + opts.timeout;
    loop {
        let n = bound.lock().expect("not poisoned").len();
        if n >= opts.pods {
            break;
        }
        replicas.cluster.check_alive()?;
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "only {n} of {} pods bound within {:?} (scheduler log: {})",
                opts.pods,
                opts.timeout,
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss = crate::bench::api::workload::proc_mib(pid, "VmHWM");
    watcher.abort();
    let bound = bound.lock().expect("not poisoned").clone();
    let last = bound.values().max().copied().unwrap_or(start);
    let latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(name, at, _)| bound.get(name).map(|b| b.saturating_duration_since(*at)))
        .collect();
    let window = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    drop(child);
    replicas.finish()?;
    Ok(CaseResult {
        nodes,
        pods: opts.pods,
        spread,
        pods_per_second: opts.pods as f64 / window,
        created_per_second: opts.pods as f64
            / created_at
                .saturating_duration_since(start)
                .as_secs_f64()
                .max(1e-9),
        latency: Summary::of_durations(&latencies),
        scheduler_cpu_seconds: cpu,
        seconds: window,
        scheduler_peak_rss_mib: rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat =
            "4242 (rkube sched) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn manifests_carry_what_the_cases_need() {
        let n = node_manifest(13, 10);
        assert_eq!(
            n["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "zone-3"
        );
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
        assert!(pod_manifest(1, false)["spec"]
            .get("topologySpreadConstraints")
            .is_none());
        assert_eq!(
            pod_manifest(1, true)["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"],
            "DoNotSchedule"
        );
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let mut o = SchedulerBenchOptions {
            nodes: vec![10],
            pods: 10,
            clients: 1,
            spread: false,
            zones: 1,
            timeout: Duration::from_secs(1),
            bin_dir: None,
            tmp_dir: None,
            output: rkube_ops::Output::Table,
        };
        assert!(o.validate().is_ok());
        o.nodes = vec![];
        assert!(o.validate().unwrap_err().is_usage());
    }
}
