//! `rkube bench store`: rkube's replicated store and a real etcd, measured side by side
//! on this machine with the same client code.
//!
//! For each system the benchmark starts a fresh three-member cluster on loopback in a
//! temporary directory (fsync on, every tuning at the system's defaults), then runs:
//!
//! 1. **1 client**: `--ops` sequential Puts of distinct keys with `--value-size` values.
//! 2. **N clients**: `--concurrent-ops` Puts from `--clients` concurrent clients, each with
//!    its own connection to every member.
//! 3. **Leader failover**: `--kills` times, with one writer running against all members
//!    (moving on to the next member on an error or after `--failover-request-timeout`),
//!    `kill -9` the leader and measure the time until the first write issued after the
//!    kill succeeds; then restart the member and wait until it has caught up.
//!
//! Clients send their writes round-robin to all members (`--target all`, the default; a
//! follower forwards to the leader in both systems) or only to the leader
//! (`--target leader`). The systems run one after the other, never at the same time.
//!
//! Modules: [`cluster`] (command lines, processes, readiness, leader detection),
//! [`workload`] (the runs), [`stats`] (percentiles), [`report`] (results, table, goals),
//! [`etcd`] (the part of etcd's v3 API the benchmark drives); [`api`] is `rkube bench api`,
//! [`scheduler`] `rkube bench scheduler`.
//! The member processes are children of the benchmark, not detached like `rkube up`'s:
//! they are killed and the temporary directory removed on every way out, errors and
//! Ctrl-C included.

pub mod api;
pub mod cluster;
pub mod controllers;
/// The part of etcd's v3 API that the store benchmark drives (compiled by this crate's
/// build script, so no rkube component links etcd's protocol).
#[allow(clippy::all)]
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
pub mod podstartup;
pub mod replicas;
pub mod report;
pub mod scheduler;
pub mod stats;
pub mod workload;

#[cfg(test)]
mod tests;

// The benchmarks were `rkube_ops::bench` before they became a crate of their own; the alias
// keeps the `crate::bench::` paths of their modules valid, so edits made to them elsewhere
// before the move still merge.
use crate as bench;
use rkube_ops::{apiserver_cmd, pki, process, tls};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use cluster::System;
pub use report::StoreBenchReport;

use cluster::{free_ports, plan_members, Cluster};
use report::{MachineInfo, Parameters, SystemResult};
use stats::{micros, Summary};
use workload::{FailoverPlan, ThroughputPlan};

/// Where progress lines go (one line per call, no trailing newline).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Members per cluster.
pub const MEMBERS: usize = 3;

/// Which members the throughput clients send their writes to: round-robin over every
/// member (`all`; followers forward to the leader), or only the member that leads when the
/// run starts (`leader`).
// No doc comments on the variants: clap would print them as per-value help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Target {
    #[default]
    All,
    Leader,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::All => "all",
            Target::Leader => "leader",
        }
    }
}

/// What `rkube bench store` measures and how: its flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(
    about = "Measure the replicated store's writes and leader failover side by side with etcd",
    long_about = "Measure the replicated store side by side with a real etcd.\n\n\
    Starts three rkube-apiserver replicas on loopback in a temporary directory, then a \
    three-member etcd cluster (when `etcd` is found), one after the other, fsync on, \
    defaults everywhere. For each: --ops sequential writes from 1 client, \
    --concurrent-ops writes from --clients concurrent clients, and --kills leader \
    kills (kill -9) under a running writer, measuring the time until writes succeed \
    again. Prints writes/s, latency p50/p99 and failover times side by side with the \
    ratio rkube/etcd. Progress goes to stderr, the report to stdout. All processes and \
    the temporary directory are removed at the end, also on error or Ctrl-C."
)]
pub struct StoreBenchOptions {
    /// Writes in the single-client run
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub ops: usize,
    /// Writes in the concurrent run, over all clients
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub concurrent_ops: usize,
    /// Concurrent clients in the concurrent run (each with its own connections)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub clients: usize,
    /// Leader kills in the failover run (0 = skip it)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub kills: usize,
    /// Bytes per value
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    pub value_size: usize,
    /// Where clients send writes: every member round-robin (followers forward to the
    /// leader), or the leader only
    #[arg(long, value_enum, default_value = "all")]
    pub target: Target,
    /// Measure rkube only
    #[arg(long)]
    pub skip_etcd: bool,
    /// The etcd binary (a path, or a name looked up on $PATH)
    #[arg(long, value_name = "PATH", default_value = "etcd")]
    pub etcd: PathBuf,
    /// Directory holding rkube-apiserver (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir); put it on
    /// the disk to measure, not on a tmpfs
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// The failover writer abandons a request after this long and tries the next member
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = rkube_ops::parse_duration)]
    pub failover_request_timeout: Duration,
    /// How long a cluster may take to elect a leader (and a restarted member to catch up).
    #[arg(skip = READY_TIMEOUT)]
    pub ready_timeout: Duration,
    /// Extra argument for every rkube-apiserver, for experiments (repeatable), e.g.
    /// --rkube-arg=--election-timeout-ms=150
    #[arg(long = "rkube-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub rkube_args: Vec<String>,
    /// Extra argument for every etcd, for experiments (repeatable)
    #[arg(long = "etcd-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub etcd_args: Vec<String>,
    /// Keep the temporary directory (member data and logs) for inspection
    #[arg(long)]
    pub keep_data: bool,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: rkube_ops::Output,
}

/// How long a cluster may take to elect a leader (and a restarted member to catch up)
/// when the caller does not say.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for StoreBenchOptions {
    fn default() -> Self {
        Self {
            ops: 2000,
            concurrent_ops: 20_000,
            clients: 64,
            kills: 20,
            value_size: 256,
            target: Target::All,
            skip_etcd: false,
            bin_dir: None,
            etcd: PathBuf::from("etcd"),
            tmp_dir: None,
            failover_request_timeout: Duration::from_millis(200),
            ready_timeout: READY_TIMEOUT,
            rkube_args: Vec::new(),
            etcd_args: Vec::new(),
            keep_data: false,
            output: rkube_ops::Output::Table,
        }
    }
}

impl StoreBenchOptions {
    /// Rejects values the benchmark cannot run with.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidOptions(m.to_string()));
        if self.ops == 0 {
            return bad("--ops must be at least 1");
        }
        if self.concurrent_ops == 0 {
            return bad("--concurrent-ops must be at least 1");
        }
        if self.clients == 0 {
            return bad("--clients must be at least 1");
        }
        if self.value_size == 0 || self.value_size > 1024 * 1024 {
            return bad("--value-size must be between 1 and 1048576 bytes");
        }
        if self.failover_request_timeout.is_zero() {
            return bad("--failover-request-timeout must be more than 0");
        }
        Ok(())
    }
}

/// Everything `rkube bench store` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad flag values (a usage error).
    #[error("{0}")]
    InvalidOptions(String),
    /// Finding the rkube binary failed.
    #[error(transparent)]
    Ops(#[from] rkube_ops::Error),
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {name} ({})", program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} exited ({status}) during the benchmark; its log {}{}", log.display(),
        if tail.trim().is_empty() { String::new() } else { format!(" ends with:\n{}", tail.trim_end()) })]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{system} did not become ready within {}s: {reason} (logs: {})", timeout.as_secs(),
        logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotReady {
        system: &'static str,
        reason: String,
        timeout: Duration,
        logs: Vec<PathBuf>,
    },
    #[error("bad address {addr:?}")]
    Address {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("a client task failed")]
    ClientTask(#[source] tokio::task::JoinError),
    #[error("{system}: the writer made no progress for {}s before kill {kill}", waited.as_secs())]
    NoProgress {
        system: &'static str,
        kill: usize,
        waited: Duration,
    },
    /// What went wrong, as the API benchmark's phases describe it.
    #[error("{0}")]
    Failed(String),
    /// A request of the API benchmark failed.
    #[error(transparent)]
    Http(#[from] crate::api::http::HttpError),
    #[error("the benchmark thread panicked")]
    Panicked,
    #[error("interrupted")]
    Interrupted,
}

impl BenchError {
    /// Whether the caller should fix the flags (a usage error).
    pub fn is_usage(&self) -> bool {
        matches!(self, BenchError::InvalidOptions(_))
    }

    /// The `rkube` command's exit code for this error: 2 for a usage error, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.is_usage() {
            2
        } else {
            1
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BenchError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl rkube_ops::Report for StoreBenchReport {
    fn render_as(&self, output: rkube_ops::Output) -> String {
        match output {
            rkube_ops::Output::Table => self.render_table(),
            rkube_ops::Output::Json => self.to_json(),
        }
    }
}

impl rkube_ops::Report for api::ApiBenchReport {
    fn render_as(&self, output: rkube_ops::Output) -> String {
        match output {
            rkube_ops::Output::Table => self.render_table(),
            rkube_ops::Output::Json => self.to_json(),
        }
    }
}

/// Runs the whole store benchmark and returns its report.
///
/// The load runs on its own two-thread Tokio runtime on a separate thread, so the client
/// side is the same whatever runtime the caller uses. A Ctrl-C (SIGINT) stops the
/// benchmark with [`BenchError::Interrupted`] after killing every member.
pub async fn run_store(
    opts: StoreBenchOptions,
    progress: Progress,
) -> Result<StoreBenchReport, BenchError> {
    opts.validate()?;
    on_bench_runtime(move || async move { run_store_here(&opts, &progress).await }).await
}

/// Runs the future `make` returns on its own two-thread Tokio runtime on a separate
/// thread, so the client side is the same whatever runtime the caller uses; a Ctrl-C
/// (SIGINT) ends it with [`BenchError::Interrupted`]. Dropping the future on the way out
/// drops whatever cluster it owns, which kills the member processes.
pub(crate) async fn on_bench_runtime<T, F, Fut>(make: F) -> Result<T, BenchError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, BenchError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("rkube-bench".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| BenchError::io("start a runtime in", ".", e))
                .and_then(|rt| {
                    rt.block_on(async {
                        tokio::select! {
                            r = make() => r,
                            _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
                        }
                    })
                });
            let _ = tx.send(result);
        })
        .map_err(|e| BenchError::io("start a thread in", ".", e))?;
    rx.await.map_err(|_| BenchError::Panicked)?
}

/// [`run_store`] on the current runtime (no thread, no Ctrl-C handling).
pub async fn run_store_here(
    opts: &StoreBenchOptions,
    progress: &Progress,
) -> Result<StoreBenchReport, BenchError> {
    opts.validate()?;
    let rkube_bin =
        crate::process::find_binary(crate::process::APISERVER_BIN, opts.bin_dir.as_deref())?;
    let etcd_bin = if opts.skip_etcd {
        Err("skipped (--skip-etcd)".to_string())
    } else {
        find_etcd(&opts.etcd).ok_or_else(|| {
            format!(
                "`{}` not found on PATH (install etcd, e.g. Debian's etcd-server, or pass --etcd)",
                opts.etcd.display()
            )
        })
    };
    if let Err(why) = &etcd_bin {
        progress(&format!("etcd: {why}; measuring rkube only"));
    }

    let parent = opts.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut tmp = tempfile::Builder::new()
        .prefix("rkube-bench-")
        .tempdir_in(&parent)
        .map_err(|e| BenchError::io("create a temporary directory in", &parent, e))?;
    if opts.keep_data {
        tmp.disable_cleanup(true);
        progress(&format!(
            "keeping {} after the benchmark (--keep-data)",
            tmp.path().display()
        ));
    }
    progress(&format!("working in {}", tmp.path().display()));

    let machine = machine_info(tmp.path())?;
    progress(&format!(
        "machine: {} CPUs, {} MiB, kernel {}, 4 KiB fdatasync p50 {} p99 {}",
        machine.nproc,
        machine.memory_mib,
        machine.kernel,
        report::fmt_ms(machine.fsync_p50_us as f64 / 1e3),
        report::fmt_ms(machine.fsync_p99_us as f64 / 1e3)
    ));

    let rkube = measure_system(System::Rkube, &rkube_bin, tmp.path(), opts, progress).await?;
    let etcd = match etcd_bin {
        Ok(bin) => Ok(measure_system(System::Etcd, &bin, tmp.path(), opts, progress).await?),
        Err(why) => Err(why),
    };
    let parameters = Parameters {
        ops: opts.ops,
        concurrent_ops: opts.concurrent_ops,
        clients: opts.clients,
        kills: opts.kills,
        value_size: opts.value_size,
        target: opts.target.label().to_string(),
        failover_request_timeout_ms: opts.failover_request_timeout.as_millis() as u64,
        rkube_args: opts.rkube_args.clone(),
        etcd_args: opts.etcd_args.clone(),
    };
    if !opts.keep_data {
        tmp.close()
            .map_err(|e| BenchError::io("remove the temporary directory", &parent, e))?;
    }
    Ok(StoreBenchReport::new(machine, parameters, rkube, etcd))
}

/// Starts a cluster of `system`, runs every workload on it, and stops it.
async fn measure_system(
    system: System,
    program: &Path,
    tmp: &Path,
    opts: &StoreBenchOptions,
    progress: &Progress,
) -> Result<SystemResult, BenchError> {
    let label = system.label();
    let version = binary_version(program);
    let root = tmp.join(label);
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| BenchError::io("create", &logs, e))?;
    let ports = free_ports(2 * MEMBERS)?;
    let specs = plan_members(system, &root, &ports[..MEMBERS], &ports[MEMBERS..]);
    progress(&format!(
        "{label}: starting {MEMBERS} members ({}) from {}",
        specs
            .iter()
            .map(|s| format!("{} {}", s.name, s.client_addr))
            .collect::<Vec<_>>()
            .join(", "),
        program.display()
    ));
    let started = Instant::now();
    let token = format!("rkube-bench-{}", std::process::id());
    let extra = match system {
        System::Rkube => &opts.rkube_args,
        System::Etcd => &opts.etcd_args,
    };
    let mut cluster = Cluster::start(system, program, specs, &logs, &token, extra)?;
    let leader = cluster.wait_ready(opts.ready_timeout).await?;
    let startup = started.elapsed();
    progress(&format!(
        "{label}: ready after {:.1} s; leader {}",
        startup.as_secs_f64(),
        cluster.name(leader)
    ));

    let endpoints = |cluster: &Cluster, leader: usize| match opts.target {
        Target::All => cluster.client_addrs(),
        Target::Leader => vec![cluster.client_addrs()[leader].clone()],
    };
    let single_plan = ThroughputPlan {
        run: format!("{label}-single"),
        clients: 1,
        ops: opts.ops,
        value_size: opts.value_size,
        endpoints: endpoints(&cluster, leader),
        request_timeout: Duration::from_secs(10),
    };
    progress(&format!("{label}: 1 client, {} writes ...", opts.ops));
    let single = workload::throughput(system, &single_plan, &cluster.pids()).await?;
    cluster.check_alive()?;
    progress(&format!("{label}: 1 client: {}", describe_phase(&single)));

    let leader = cluster.wait_ready(opts.ready_timeout).await?;
    let concurrent_plan = ThroughputPlan {
        run: format!("{label}-concurrent"),
        clients: opts.clients,
        ops: opts.concurrent_ops,
        endpoints: endpoints(&cluster, leader),
        ..single_plan
    };
    progress(&format!(
        "{label}: {} clients, {} writes ...",
        opts.clients, opts.concurrent_ops
    ));
    let concurrent = workload::throughput(system, &concurrent_plan, &cluster.pids()).await?;
    cluster.check_alive()?;
    progress(&format!(
        "{label}: {} clients: {}",
        opts.clients,
        describe_phase(&concurrent)
    ));

    let failover = if opts.kills > 0 {
        progress(&format!(
            "{label}: failover: {} leader kills under a running writer ...",
            opts.kills
        ));
        let plan = FailoverPlan {
            kills: opts.kills,
            value_size: opts.value_size,
            request_timeout: opts.failover_request_timeout,
            give_up_after: Duration::from_secs(30),
            ready_timeout: opts.ready_timeout,
        };
        let f = workload::failover(&mut cluster, &plan, progress).await?;
        progress(&format!(
            "{label}: failover: write unavailability p50 {} p99 {} max {}{}",
            report::fmt_ms(f.unavailability.p50_us as f64 / 1e3),
            report::fmt_ms(f.unavailability.p99_us as f64 / 1e3),
            report::fmt_ms(f.unavailability.max_us as f64 / 1e3),
            if f.not_resumed > 0 {
                format!(" ({} kills never resumed)", f.not_resumed)
            } else {
                String::new()
            }
        ));
        Some(f)
    } else {
        None
    };
    cluster.kill_all();
    progress(&format!("{label}: stopped"));
    Ok(SystemResult {
        system: label.to_string(),
        version,
        startup_ms: startup.as_secs_f64() * 1e3,
        single,
        concurrent,
        failover,
    })
}

fn describe_phase(p: &report::PhaseResult) -> String {
    format!(
        "{:.0} writes/s, p50 {}, p99 {}, {} errors; CPU: servers {:.2} ms/write, client {:.1} s, \
         other processes {:.1} s{}",
        p.writes_per_sec,
        report::fmt_ms(p.latency.p50_us as f64 / 1e3),
        report::fmt_ms(p.latency.p99_us as f64 / 1e3),
        p.errors,
        p.server_cpu_ms_per_write(),
        p.client_cpu_seconds,
        p.other_cpu_seconds,
        if p.disturbed() {
            " (disturbed: the machine is not idle)"
        } else {
            ""
        }
    )
}

/// The etcd binary: `etcd` itself when it names an existing file, else looked up on `PATH`.
fn find_etcd(etcd: &Path) -> Option<PathBuf> {
    if etcd.components().count() > 1 {
        return etcd.is_file().then(|| etcd.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(etcd))
        .find(|p| p.is_file())
}

/// The first line of `program --version` (empty when it fails).
pub(crate) fn binary_version(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// CPUs, memory, kernel, and the fsync latency of the directory the members will use.
pub(crate) fn machine_info(dir: &Path) -> Result<MachineInfo, BenchError> {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_meminfo_kib(&m))
        .map_or(0, |kib| kib / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let fsync = fsync_latency(dir, 200)?;
    Ok(MachineInfo {
        nproc,
        memory_mib,
        kernel,
        fsync_p50_us: fsync.p50_us,
        fsync_p99_us: fsync.p99_us,
        data_dir: dir.display().to_string(),
    })
}

/// `MemTotal` of `/proc/meminfo`, in KiB. Pure.
pub fn parse_meminfo_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Latency of `rounds` 4 KiB overwrites, each followed by fdatasync, in `dir`.
fn fsync_latency(dir: &Path, rounds: usize) -> Result<Summary, BenchError> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).map_err(|e| BenchError::io("create", &path, e))?;
    let block = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start((i % 16) as u64 * 4096))
            .and_then(|_| f.write_all(&block))
            .and_then(|()| f.sync_data())
            .map_err(|e| BenchError::io("write and sync", &path, e))?;
        samples.push(micros(started.elapsed()));
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(Summary::of_micros(&mut samples))
}
