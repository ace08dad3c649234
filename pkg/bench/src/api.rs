//! `rkube bench api`: three `rkube-apiserver` replicas measured through the Kubernetes REST
//! door, as kubectl and client-go reach it: HTTPS with HTTP/2, authenticated by the admin
//! client certificate of a cluster PKI made for the run (the same `DIR/pki` layout as
//! `rkube up`).
//!
//! Phases, one after the other on one cluster:
//!
//! 1. **create**: `--pods` pods (a Deployment-style manifest, ~1.8 KiB of JSON) from
//!    `--clients` concurrent clients, each with its own connection, spread over the
//!    replicas (closed loop) → pods/s, latency p50/p99; then each replica's RSS.
//! 2. **writes**: merge patches of one pod's annotation at `--rate` requests/s for
//!    `--duration`, open loop: request `k` is due at `k / rate` and its latency runs from
//!    then, so a stall cannot hide behind fewer requests (no coordinated omission).
//! 3. **reads**: GETs of single pods (linearizable, the default) the same way.
//! 4. **watch**: `--watchers` watch streams on the pods of one namespace (one connection
//!    each, spread over the replicas), and a writer patching those pods at `--watch-rate`
//!    with its send time in an annotation → delivery latency from send to receipt, over
//!    every (write, watcher) pair, and how many deliveries never arrived.
//! 5. **node watch**: `node_watchers` watch streams as that many kubelets open them (one
//!    connection each, pods of every namespace with `fieldSelector=spec.nodeName=node-<i>`),
//!    one pod bound to each node, and a writer patching those pods in turn at
//!    `node_watch_rate` → delivery latency, deliveries to the wrong watcher, the replicas'
//!    CPU (`/proc/<pid>/stat`) and RSS with every stream open.
//!
//! Modules: [`http`] (the HTTP/2-over-TLS client), [`workload`] (the phases), [`report`]
//! (results, table, aims). The replicas are children of the benchmark, killed (and the
//! temporary directory removed) on every way out, as in `rkube bench store`.

pub mod http;
pub mod report;
pub mod workload;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use crate::bench::cluster::Cluster;
use crate::bench::report::fmt_ms;
use crate::bench::{BenchError, Progress, MEMBERS};

pub use report::ApiBenchReport;
use report::{ApiParameters, ReplicaMemory};
use workload::WatchPlan;

/// How the benchmark reaches the replicas (printed in the report).
pub const TRANSPORT: &str = "HTTPS (HTTP/2, TLS 1.3) with an admin client certificate";

/// What `rkube bench api` measures and how: its flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(
    about = "Measure the Kubernetes REST API of three replicas: pod creation, single-object \
             write and read latency, watch delivery, memory",
    long_about = "Measure the Kubernetes REST API of three rkube-apiserver replicas.\n\n\
    Starts three replicas on loopback in a temporary directory with a cluster PKI, and \
    talks to them as kubectl does: HTTPS, HTTP/2, the admin client certificate. Phases: \
    --pods pod creations from --clients concurrent clients (pods/s, latency); merge \
    patches and GETs of single pods at --rate requests/s for --duration each, open loop \
    (latency from each request's scheduled time); --watchers watch streams and a \
    writer at --watch-rate changes/s (delivery latency from send to receipt); each \
    replica's RSS holding the pods. Prints the results with the issue's aims as \
    MET/MISSED. Progress goes to stderr, the report to stdout. All processes and the \
    temporary directory are removed at the end, also on error or Ctrl-C."
)]
pub struct ApiBenchOptions {
    /// Pods to create (and hold while memory is measured)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent clients creating pods, each with its own connection
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub clients: usize,
    /// Requests per second of the open-loop write and read runs
    #[arg(long, value_name = "PER_SEC", default_value_t = 100.0)]
    pub rate: f64,
    /// Length of each open-loop run (0s skips them)
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = rkube_ops::parse_duration)]
    pub duration: Duration,
    /// Watch streams, each on its own connection (0 skips the watch phase)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub watchers: usize,
    /// Writes per second to the watched pods
    #[arg(long, value_name = "PER_SEC", default_value_t = 10.0)]
    pub watch_rate: f64,
    /// How long the watch writer runs
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = rkube_ops::parse_duration)]
    pub watch_duration: Duration,
    /// Watchers of the node watch, each selecting one node's pods by spec.nodeName, as that
    /// many kubelets would (0 skips it); it runs for --watch-duration
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub node_watchers: usize,
    /// Writes per second to pods on the watched nodes during the node watch
    #[arg(long, value_name = "PER_SEC", default_value_t = 50.0)]
    pub node_watch_rate: f64,
    /// A request taking longer than this counts as failed
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = rkube_ops::parse_duration)]
    pub request_timeout: Duration,
    /// Directory holding rkube-apiserver (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir)
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// How long the replicas may take to elect a leader.
    #[arg(skip = crate::READY_TIMEOUT)]
    pub ready_timeout: Duration,
    /// Extra argument for every rkube-apiserver, for experiments (repeatable)
    #[arg(long = "rkube-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub rkube_args: Vec<String>,
    /// Keep the temporary directory (data, logs, certificates, each replica's /metrics)
    #[arg(long)]
    pub keep_data: bool,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: rkube_ops::Output,
}

impl Default for ApiBenchOptions {
    fn default() -> Self {
        Self {
            pods: 10_000,
            clients: 64,
            rate: 100.0,
            duration: Duration::from_secs(20),
            watchers: 1000,
            watch_rate: 10.0,
            watch_duration: Duration::from_secs(20),
            node_watchers: 10_000,
            node_watch_rate: 50.0,
            bin_dir: None,
            tmp_dir: None,
            ready_timeout: crate::READY_TIMEOUT,
            request_timeout: Duration::from_secs(10),
            rkube_args: Vec::new(),
            keep_data: false,
            output: rkube_ops::Output::Table,
        }
    }
}

/// The value of environment variable `name`, or `default` when it is unset or does not
/// parse (the node watch's size until `rkube bench api` has flags for it).
impl ApiBenchOptions {
    /// Rejects values the benchmark cannot run with.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidOptions(m.to_string()));
        if self.pods == 0 {
            return bad("--pods must be at least 1");
        }
        if self.clients == 0 {
            return bad("--clients must be at least 1");
        }
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            return bad("--rate must be more than 0 and at most 100000");
        }
        if self.watchers > 0 && !(self.watch_rate > 0.0 && self.watch_rate <= 10_000.0) {
            return bad("--watch-rate must be more than 0 and at most 10000");
        }
        if self.watchers > 0 && self.watch_duration.is_zero() {
            return bad("--watch-duration must be more than 0 (or --watchers 0)");
        }
        if self.node_watchers > 0 {
            if !(self.node_watch_rate > 0.0 && self.node_watch_rate <= 10_000.0) {
                return bad("the node watch rate must be more than 0 and at most 10000");
            }
            if self.watch_duration.is_zero() {
                return bad("--watch-duration must be more than 0 (or no node watchers)");
            }
        }
        Ok(())
    }
}

/// Runs the whole API benchmark on its own runtime (see `rkube bench store`); Ctrl-C
/// stops it with [`BenchError::Interrupted`] after killing every replica.
pub async fn run_api(
    opts: ApiBenchOptions,
    progress: Progress,
) -> Result<ApiBenchReport, BenchError> {
    opts.validate()?;
    crate::bench::on_bench_runtime(move || async move { run_api_here(&opts, &progress).await })
        .await
}

/// [`run_api`] on the current runtime (no thread, no Ctrl-C handling).
pub async fn run_api_here(
    opts: &ApiBenchOptions,
    progress: &Progress,
) -> Result<ApiBenchReport, BenchError> {
    opts.validate()?;
    let mut replicas = crate::bench::replicas::Replicas::start(
        &crate::bench::replicas::Setup {
            prefix: "rkube-bench-api-",
            bin_dir: opts.bin_dir.clone(),
            tmp_dir: opts.tmp_dir.clone(),
            keep_data: opts.keep_data,
            rkube_args: opts.rkube_args.clone(),
            clients: Vec::new(),
            ready_timeout: opts.ready_timeout,
        },
        progress,
    )
    .await?;
    let addrs = replicas.addrs.clone();
    let config = replicas.admin_h2.clone();
    let pids = replicas.pids();
    let timeout = opts.request_timeout;

    // Phase 1: pods.
    let admin = workload::connect_many(&addrs, addrs.len(), config.clone()).await?;
    workload::ensure_namespace(&admin[0], workload::PODS_NAMESPACE).await?;
    let clients = workload::connect_many(&addrs, opts.clients, config.clone()).await?;
    progress(&format!(
        "create: {} pods from {} clients ...",
        opts.pods, opts.clients
    ));
    let create = workload::create_pods(&clients, opts.pods, &pids, timeout).await?;
    drop(clients);
    replicas.cluster.check_alive()?;
    progress(&format!("create: {}", describe(&create)));
    let rss_after_pods: Vec<f64> = pids
        .iter()
        .map(|&p| workload::proc_mib(p, "VmRSS"))
        .collect();
    progress(&format!(
        "memory holding {} pods: {}",
        create.requests,
        rss_after_pods
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{} {m:.0} MiB", replicas.cluster.name(i)))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Phases 2 and 3: single-object writes and reads, open loop.
    let targets = create.requests.max(1);
    let (write, read) = if opts.duration.is_zero() {
        (None, None)
    } else {
        let schedule = workload::open_loop_schedule(opts.rate, opts.duration);
        progress(&format!(
            "writes: PATCH a pod at {}/s for {} s (open loop) ...",
            opts.rate,
            opts.duration.as_secs_f64()
        ));
        let write = workload::open_loop(
            "PATCH pod",
            &admin,
            opts.rate,
            &schedule,
            |k| workload::write_call(k, targets),
            &pids,
            timeout,
        )
        .await?;
        replicas.cluster.check_alive()?;
        progress(&format!("writes: {}", describe(&write)));
        progress(&format!(
            "reads: GET a pod at {}/s for {} s (open loop) ...",
            opts.rate,
            opts.duration.as_secs_f64()
        ));
        let read = workload::open_loop(
            "GET pod",
            &admin,
            opts.rate,
            &schedule,
            |k| workload::read_call(k, targets),
            &pids,
            timeout,
        )
        .await?;
        replicas.cluster.check_alive()?;
        progress(&format!("reads: {}", describe(&read)));
        (Some(write), Some(read))
    };

    // Phase 4: watch delivery.
    let watch = if opts.watchers == 0 {
        None
    } else {
        let plan = WatchPlan {
            watchers: opts.watchers,
            rate: opts.watch_rate,
            duration: opts.watch_duration,
            drain: Duration::from_secs(10),
            timeout,
        };
        let w = workload::watch_delivery(&addrs, config.clone(), &admin[0], &plan, &pids, progress)
            .await?;
        replicas.cluster.check_alive()?;
        progress(&format!(
            "watch: delivery p50 {} p99 {} max {}; {} of {} delivered; CPU: servers {:.1} s, \
             client {:.1} s, other processes {:.1} s over {:.1} s{}",
            fmt_ms(w.latency.p50_us as f64 / 1e3),
            fmt_ms(w.latency.p99_us as f64 / 1e3),
            fmt_ms(w.latency.max_us as f64 / 1e3),
            w.delivered,
            w.expected,
            w.cpu.server_cpu_seconds,
            w.cpu.client_cpu_seconds,
            w.cpu.other_cpu_seconds,
            w.cpu.seconds,
            if w.cpu.disturbed() {
                " (disturbed: the machine is not idle)"
            } else {
                ""
            }
        ));
        Some(w)
    };

    // Phase 5: node watch.
    let node_watch = if opts.node_watchers == 0 {
        None
    } else {
        let plan = WatchPlan {
            watchers: opts.node_watchers,
            rate: opts.node_watch_rate,
            duration: opts.watch_duration,
            drain: Duration::from_secs(10),
            timeout,
        };
        let creators = workload::connect_many(&addrs, opts.clients, config.clone()).await?;
        let w = workload::node_watch_delivery(
            &addrs,
            config.clone(),
            &admin[0],
            &creators,
            &plan,
            &pids,
            progress,
        )
        .await?;
        drop(creators);
        replicas.cluster.check_alive()?;
        progress(&format!(
            "node watch: delivery p50 {} p99 {} max {}; {} of {} delivered, {} to a wrong \
             node; server CPU {:.1} s over {:.1} s ({:.2} CPU); RSS with the streams open: \
             {} MiB{}",
            fmt_ms(w.latency.p50_us as f64 / 1e3),
            fmt_ms(w.latency.p99_us as f64 / 1e3),
            fmt_ms(w.latency.max_us as f64 / 1e3),
            w.delivered,
            w.expected,
            w.misdelivered,
            w.cpu.server_cpu_seconds,
            w.cpu.seconds,
            w.cpu.server_cpu_seconds / w.cpu.seconds.max(1e-9),
            w.rss_mib_open
                .iter()
                .map(|m| format!("{m:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            if w.cpu.disturbed() {
                " (disturbed: the machine is not idle)"
            } else {
                ""
            }
        ));
        Some(w)
    };

    let memory = pids
        .iter()
        .enumerate()
        .map(|(i, &pid)| ReplicaMemory {
            name: replicas.cluster.name(i).to_string(),
            pid,
            rss_mib_after_pods: rss_after_pods[i],
            rss_mib_end: workload::proc_mib(pid, "VmRSS"),
            peak_mib: workload::proc_mib(pid, "VmHWM"),
        })
        .collect();
    if opts.keep_data {
        save_metrics(&admin, &replicas.cluster, &replicas.root, timeout).await;
    }
    drop(admin);
    let (machine, version, startup) = (
        replicas.machine.clone(),
        replicas.version.clone(),
        replicas.startup,
    );
    replicas.finish()?;
    progress("stopped");

    let pod_manifest_bytes = workload::pod_manifest(&workload::pod_name(0), "bench")
        .to_string()
        .len();
    let report = ApiBenchReport {
        machine,
        parameters: ApiParameters {
            replicas: MEMBERS,
            pods: opts.pods,
            pod_manifest_bytes,
            clients: opts.clients,
            rate: opts.rate,
            duration_s: opts.duration.as_secs_f64(),
            watchers: opts.watchers,
            watch_rate: opts.watch_rate,
            watch_duration_s: opts.watch_duration.as_secs_f64(),
            node_watchers: opts.node_watchers,
            node_watch_rate: opts.node_watch_rate,
            transport: TRANSPORT.to_string(),
            rkube_args: opts.rkube_args.clone(),
        },
        version,
        startup_ms: startup.as_secs_f64() * 1e3,
        create,
        write,
        read,
        watch,
        node_watch,
        memory,
        goals: Vec::new(),
    }
    .with_goals();
    Ok(report)
}

/// Writes each replica's `/metrics` to `root/metrics-<name>.txt` (for diagnosis with
/// `--keep-data`); failures are ignored.
async fn save_metrics(
    conns: &[http::ApiConn],
    cluster: &Cluster,
    root: &std::path::Path,
    timeout: Duration,
) {
    for (i, conn) in conns.iter().enumerate() {
        if let Ok(a) = conn
            .request_within(
                ::http::Method::GET,
                "/metrics",
                None,
                bytes::Bytes::new(),
                timeout,
            )
            .await
        {
            let _ = std::fs::write(
                root.join(format!("metrics-{}.txt", cluster.name(i))),
                &a.body,
            );
        }
    }
}

fn describe(r: &report::LoadResult) -> String {
    format!(
        "{} ok, {} failed in {:.1} s ({:.0}/s), p50 {}, p99 {}, max {}; CPU: servers {:.1} s, \
         client {:.1} s, other processes {:.1} s{}",
        r.requests,
        r.errors,
        r.seconds,
        r.per_sec,
        fmt_ms(r.latency.p50_us as f64 / 1e3),
        fmt_ms(r.latency.p99_us as f64 / 1e3),
        fmt_ms(r.latency.max_us as f64 / 1e3),
        r.cpu.server_cpu_seconds,
        r.cpu.client_cpu_seconds,
        r.cpu.other_cpu_seconds,
        if r.cpu.disturbed() {
            " (disturbed: the machine is not idle)"
        } else {
            ""
        }
    )
}
