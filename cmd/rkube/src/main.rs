//! `rkube`: the operator's tool for a local rkube cluster. This main only parses flags,
//! calls `rkube_ops` and turns the outcome into output and an exit code; the logic lives
//! in `pkg/ops`.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error (bad flags, or a request the existing
//! cluster cannot satisfy).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rkube",
    version,
    about = "Run and inspect a local rkube cluster",
    long_about = "Run and inspect a local rkube cluster: every component is a separate \
                  background process on this machine, with its data, logs and pid files \
                  under one directory (--dir, default ./.rkube).",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the cluster (or whatever of it is not running) and wait until it is ready.
    Up(UpArgs),
    /// Show every replica's process, Raft role, term and indexes.
    Status(StatusArgs),
    /// Stop every process of the cluster.
    Down(DownArgs),
    /// Run the TCP load balancer in front of the apiservers (`rkube up` starts it as a
    /// background process; kubectl reaches the cluster through it).
    Lb(rkube_lb::LbOptions),
    /// Benchmarks (they start and stop their own processes; no cluster needed).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Measure the replicated store's writes and leader failover side by side with etcd.
    #[command(
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
    Store(BenchStoreArgs),
    /// Measure the Kubernetes REST API of three replicas: pod creation, single-object
    /// write and read latency, watch delivery, memory.
    #[command(
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
    Api(BenchApiArgs),
}

#[derive(Debug, Args)]
struct BenchApiArgs {
    /// Pods to create (and hold while memory is measured)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pods: usize,
    /// Concurrent clients creating pods, each with its own connection
    #[arg(long, value_name = "N", default_value_t = 64)]
    clients: usize,
    /// Requests per second of the open-loop write and read runs
    #[arg(long, value_name = "PER_SEC", default_value_t = 100.0)]
    rate: f64,
    /// Length of each open-loop run (0s skips them)
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = rkube_ops::parse_duration)]
    duration: Duration,
    /// Watch streams, each on its own connection (0 skips the watch phase)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    watchers: usize,
    /// Writes per second to the watched pods
    #[arg(long, value_name = "PER_SEC", default_value_t = 10.0)]
    watch_rate: f64,
    /// How long the watch writer runs
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = rkube_ops::parse_duration)]
    watch_duration: Duration,
    /// A request taking longer than this counts as failed
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = rkube_ops::parse_duration)]
    request_timeout: Duration,
    /// Directory holding rkube-apiserver (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir)
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Extra argument for every rkube-apiserver, for experiments (repeatable)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    rkube_arg: Vec<String>,
    /// Keep the temporary directory (data, logs, certificates, each replica's /metrics)
    #[arg(long)]
    keep_data: bool,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Args)]
struct BenchStoreArgs {
    /// Writes in the single-client run
    #[arg(long, value_name = "N", default_value_t = 2000)]
    ops: usize,
    /// Writes in the concurrent run, over all clients
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    concurrent_ops: usize,
    /// Concurrent clients in the concurrent run (each with its own connections)
    #[arg(long, value_name = "N", default_value_t = 64)]
    clients: usize,
    /// Leader kills in the failover run (0 = skip it)
    #[arg(long, value_name = "N", default_value_t = 20)]
    kills: usize,
    /// Bytes per value
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    value_size: usize,
    /// Where clients send writes: every member round-robin (followers forward to the
    /// leader), or the leader only
    #[arg(long, value_enum, default_value = "all")]
    target: BenchTarget,
    /// Measure rkube only
    #[arg(long)]
    skip_etcd: bool,
    /// The etcd binary (a path, or a name looked up on $PATH)
    #[arg(long, value_name = "PATH", default_value = "etcd")]
    etcd: PathBuf,
    /// Directory holding rkube-apiserver (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Parent of the temporary data directory (default: the system temp dir); put it on
    /// the disk to measure, not on a tmpfs
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// The failover writer abandons a request after this long and tries the next member
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = rkube_ops::parse_duration)]
    failover_request_timeout: Duration,
    /// Extra argument for every rkube-apiserver, for experiments (repeatable), e.g.
    /// --rkube-arg=--election-timeout-ms=150
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    rkube_arg: Vec<String>,
    /// Extra argument for every etcd, for experiments (repeatable)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    etcd_arg: Vec<String>,
    /// Keep the temporary directory (member data and logs) for inspection
    #[arg(long)]
    keep_data: bool,
    /// Output format of the report
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchTarget {
    All,
    Leader,
}

#[derive(Debug, Args)]
struct DirArg {
    /// The cluster directory: layout, data, logs and pid files.
    #[arg(long, value_name = "DIR", env = "RKUBE_DIR", default_value = rkube_ops::DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Apiserver replicas [default: 3 for a new cluster; an existing cluster keeps its own]
    #[arg(long, value_name = "N")]
    apiservers: Option<usize>,
    /// Kubelets to run [default: 1; 0 = control plane only]. Kubelets are not available
    /// yet: only 0 is accepted, and the default starts none.
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,
    /// Replica i serves clients on port N+i (default: free ports, chosen once at creation)
    #[arg(long, value_name = "N")]
    api_port_base: Option<u16>,
    /// Replica i serves Raft peers on port N+i (default: free ports, chosen once at creation)
    #[arg(long, value_name = "N")]
    peer_port_base: Option<u16>,
    /// The load balancer, kubectl's address, listens on this port (default: a free port,
    /// chosen once at creation)
    #[arg(long, value_name = "PORT")]
    lb_port: Option<u16>,
    /// Directory holding rkube-apiserver and rkube (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// How long to wait for the cluster to become ready (e.g. 60s, 2m, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = rkube_ops::parse_duration)]
    timeout: Duration,
    /// Log format of the started processes
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// OTLP/gRPC endpoint the started processes export traces to (e.g. http://127.0.0.1:4317)
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct DownArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Also delete the cluster directory (data, logs, layout)
    #[arg(long)]
    purge: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The load balancer is a long-running process whose log is its record; the
    // commands print their own results and log only warnings.
    let default_filter = match cli.command {
        Command::Lb(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let result = match cli.command {
        Command::Up(args) => up(args).await,
        Command::Status(args) => status(args).await,
        Command::Down(args) => down(args).await,
        Command::Lb(opts) => rkube_lb::serve_until_signalled(opts).await,
        Command::Bench(BenchCommand::Store(args)) => return bench_store(args).await,
        Command::Bench(BenchCommand::Api(args)) => return bench_api(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

async fn up(args: UpArgs) -> rkube_ops::Result<()> {
    let opts = rkube_ops::UpOptions {
        dir: args.dir.dir,
        apiservers: args.apiservers,
        nodes: args.nodes,
        api_port_base: args.api_port_base,
        peer_port_base: args.peer_port_base,
        lb_port: args.lb_port,
        bin_dir: args.bin_dir,
        timeout: args.timeout,
        log_format: args.log_format.map(|f| match f {
            LogFormat::Text => "text".to_string(),
            LogFormat::Json => "json".to_string(),
        }),
        otlp_endpoint: args.otlp_endpoint,
    };
    rkube_ops::up(&opts).await.map(drop)
}

async fn status(args: StatusArgs) -> rkube_ops::Result<()> {
    let report = rkube_ops::status(&args.dir.dir).await?;
    match args.output {
        Output::Table => print_out(&report.render_table()),
        Output::Json => print_out(&report.to_json()),
    }
    Ok(())
}

async fn down(args: DownArgs) -> rkube_ops::Result<()> {
    let report = rkube_ops::down(&args.dir.dir, args.purge).await?;
    print_out(&report.render());
    Ok(())
}

/// Writes to stdout, ignoring a closed pipe (`rkube status | head -1`) instead of panicking.
fn print_out(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

async fn bench_store(args: BenchStoreArgs) -> ExitCode {
    use rkube_bench::{StoreBenchOptions, Target};
    let opts = StoreBenchOptions {
        ops: args.ops,
        concurrent_ops: args.concurrent_ops,
        clients: args.clients,
        kills: args.kills,
        value_size: args.value_size,
        target: match args.target {
            BenchTarget::All => Target::All,
            BenchTarget::Leader => Target::Leader,
        },
        skip_etcd: args.skip_etcd,
        bin_dir: args.bin_dir,
        etcd: args.etcd,
        tmp_dir: args.tmp_dir,
        failover_request_timeout: args.failover_request_timeout,
        rkube_args: args.rkube_arg,
        etcd_args: args.etcd_arg,
        keep_data: args.keep_data,
        ..Default::default()
    };
    let progress: rkube_bench::Progress = std::sync::Arc::new(|line| eprintln!("{line}"));
    match rkube_bench::run_store(opts, progress).await {
        Ok(report) => {
            match args.output {
                Output::Table => print!("{}", report.render_table()),
                Output::Json => print!("{}", report.to_json()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

async fn bench_api(args: BenchApiArgs) -> ExitCode {
    let opts = rkube_bench::api::ApiBenchOptions {
        pods: args.pods,
        clients: args.clients,
        rate: args.rate,
        duration: args.duration,
        watchers: args.watchers,
        watch_rate: args.watch_rate,
        watch_duration: args.watch_duration,
        request_timeout: args.request_timeout,
        bin_dir: args.bin_dir,
        tmp_dir: args.tmp_dir,
        rkube_args: args.rkube_arg,
        keep_data: args.keep_data,
        ..Default::default()
    };
    let progress: rkube_bench::Progress = std::sync::Arc::new(|line| eprintln!("{line}"));
    match rkube_bench::api::run_api(opts, progress).await {
        Ok(report) => {
            match args.output {
                Output::Table => print_out(&report.render_table()),
                Output::Json => print_out(&report.to_json()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
