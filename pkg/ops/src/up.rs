//! `rkube up`: make every process of the local cluster run, then wait until it is ready.
//!
//! Expected flow: create or reuse the cluster directory and its layout, take its lock,
//! create whatever certificates are missing (`DIR/pki`, see [`crate::pki`]), then walk the
//! table of components ([`crate::components::table`]: the apiserver replicas, the load
//! balancer, and the controller-manager, scheduler and kubelets once they exist) and start
//! each process that is not running (a running one is left alone, so `up` is idempotent and
//! a restart keeps a replica's data and addresses). Then wait for each row in turn with its
//! readiness probe: every replica answers Status (over TLS, as the admin), all know the same
//! leader, that leader says it leads, and each has applied what it knows is committed; a
//! Status call through the load balancer is answered; each component's `/readyz` answers
//! 200. Finally `DIR/kubeconfig` is written: the load balancer's `https://` address, the
//! CA, and the admin's client certificate. A process that exits while `up` waits fails it at
//! once, with its log's last lines. On timeout the processes keep running so their logs
//! and status can be inspected; `down` stops them.
//!
//! Every process gets the telemetry flags `up` was given (`--log-format`,
//! `--otlp-endpoint`). Kinds whose binary does not exist yet are not started:
//! [`crate::components::AVAILABLE`] lists those that are. Each node (`--nodes`, default 1)
//! first gets its own containerd with the pause and demo images imported
//! ([`crate::noderuntime`]), then its kubelet; a kubelet is ready once its Node is Ready.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::components::{self, ComponentSpec, Kind, ProcessSpec, Telemetry};
use crate::layout::{ApiserverSpec, ClusterDir, ClusterLayout};
use crate::pki::{ClusterPki, ServingCert};
use crate::process::{self, Launch};
use crate::status::{probe, readyz, Probe};
use crate::{Error, Result};

/// Apiserver replicas of a new cluster when `--apiservers` is not given.
pub const DEFAULT_APISERVERS: usize = 3;
/// Kubelets of a new cluster when `--nodes` is not given (once kubelets exist).
pub const DEFAULT_NODES: usize = 1;
/// How long `up` waits for the cluster to become ready when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const POLL_INTERVAL: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const LOG_TAIL_LINES: usize = 10;

/// What `up` should do: `rkube up`'s flags (cmd/rkube flattens them) and the telemetry
/// settings it passes on to every process.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    about = "Start the cluster (or whatever of it is not running) and wait until it is ready",
    long_about = None,
    after_help = "The telemetry flags --log-format and --otlp-endpoint (or \
                  OTEL_EXPORTER_OTLP_ENDPOINT) are passed on to every process `up` starts."
)]
pub struct UpOptions {
    /// The cluster directory: layout, data, logs and pid files.
    #[arg(long, value_name = "DIR", env = "RKUBE_DIR", default_value = crate::layout::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Apiserver replicas [default: 3 for a new cluster; an existing cluster keeps its own]
    #[arg(long, value_name = "N")]
    pub apiservers: Option<usize>,
    /// Kubelets to run [default: 1; 0 = control plane only], each with its own
    /// containerd (needs root, containerd, runc, the CNI plugins and busybox-static)
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// Replica i serves clients on port N+i (default: free ports, chosen once at creation)
    #[arg(long, value_name = "N")]
    pub api_port_base: Option<u16>,
    /// Replica i serves Raft peers on port N+i (default: free ports, chosen once at creation)
    #[arg(long, value_name = "N")]
    pub peer_port_base: Option<u16>,
    /// The load balancer, kubectl's address, listens on this port (default: a free port,
    /// chosen once at creation)
    #[arg(long, value_name = "PORT")]
    pub lb_port: Option<u16>,
    /// Directory holding rkube-apiserver and rkube (default: next to rkube, then $PATH)
    #[arg(long, value_name = "DIR", env = "RKUBE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// How long to wait for the cluster to become ready (e.g. 60s, 2m, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Passed to every process; the binary fills it from its own telemetry flags.
    #[arg(skip)]
    pub telemetry: Telemetry,
    /// An extra flag for every process of a kind, as KIND=FLAG (e.g.
    /// controller-manager=--node-monitor-grace-period=5s); repeatable; kept in the cluster's
    /// layout for restarts, and the flags given for a kind replace what it had
    #[arg(long = "component-arg", value_name = "KIND=FLAG", value_parser = parse_component_arg, allow_hyphen_values = true)]
    pub component_args: Vec<(Kind, String)>,
    /// The components beyond the apiservers and the load balancer this `up` may run
    /// (controller-manager, scheduler, kubelet): [`components::AVAILABLE`], or stand-ins
    /// in tests.
    #[arg(skip = components::AVAILABLE.to_vec())]
    pub components: Vec<Kind>,
    /// Whether each kubelet gets its own containerd with the images imported (false for
    /// stand-in kubelets in tests).
    #[arg(skip = true)]
    pub node_runtime: bool,
}

impl UpOptions {
    /// The contract's defaults for a cluster in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        UpOptions {
            dir: dir.into(),
            apiservers: None,
            nodes: None,
            api_port_base: None,
            peer_port_base: None,
            lb_port: None,
            bin_dir: None,
            timeout: DEFAULT_TIMEOUT,
            telemetry: Telemetry::default(),
            components: components::AVAILABLE.to_vec(),
            component_args: Vec::new(),
            node_runtime: true,
        }
    }

    fn kubelets(&self) -> bool {
        self.components.contains(&Kind::Kubelet)
    }
}

impl Default for UpOptions {
    fn default() -> Self {
        Self::new(crate::layout::DEFAULT_DIR)
    }
}

/// A ready cluster, as `up` leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The cluster directory, absolute.
    pub dir: PathBuf,
    pub layout: ClusterLayout,
    /// One entry per replica, in layout order.
    pub apiservers: Vec<ReplicaStart>,
    /// The load balancer process.
    pub load_balancer: ReplicaStart,
    /// The controller-manager, scheduler and kubelets, in table order.
    pub components: Vec<ReplicaStart>,
    /// Name of the replica every replica agrees leads.
    pub leader: String,
    /// The leader's term.
    pub term: u64,
}

/// What `up` did about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStart {
    pub name: String,
    pub kind: Kind,
    pub pid: u32,
    /// `false` when the process was already running and left alone.
    pub started: bool,
}

impl ReplicaStart {
    fn state(&self) -> &'static str {
        if self.started {
            "started"
        } else {
            "already running"
        }
    }
}

impl Cluster {
    /// gRPC endpoints of every replica (`https://127.0.0.1:PORT`), in layout order.
    pub fn api_endpoints(&self) -> Vec<String> {
        self.layout
            .apiservers
            .iter()
            .map(ApiserverSpec::api_url)
            .collect()
    }

    /// The "cluster ready" summary and what to do next; `dir_arg` is the directory as the
    /// user spelled it, for the suggested commands. Pure.
    pub fn summary(&self, dir_arg: &Path) -> String {
        let dir_arg = shell_quote(&dir_arg.display().to_string());
        let n = self.layout.apiservers.len();
        let mut out = format!(
            "cluster ready: {n} apiserver{}, leader {} (term {})\n",
            if n == 1 { "" } else { "s" },
            self.leader,
            self.term
        );
        for (spec, start) in self.layout.apiservers.iter().zip(&self.apiservers) {
            let _ = writeln!(
                out,
                "  {:<4} pid {:<8} api {:<15}   peer {:<15}   {}",
                spec.name,
                start.pid,
                spec.api_address,
                spec.peer_address,
                start.state()
            );
        }
        if let Some(lb) = self.layout.load_balancer {
            let _ = writeln!(
                out,
                "  {:<4} pid {:<8} kubectl's address https://{lb}   {}",
                self.load_balancer.name,
                self.load_balancer.pid,
                self.load_balancer.state()
            );
        }
        for (c, start) in self.layout.components.iter().zip(&self.components) {
            let _ = writeln!(
                out,
                "  {} pid {:<8} health http://{}/readyz   {}",
                c.name,
                start.pid,
                c.listen,
                start.state()
            );
        }
        let missing: Vec<&str> = [
            (Kind::ControllerManager, "controller-manager"),
            (Kind::Scheduler, "scheduler"),
            (Kind::Kubelet, "kubelets"),
        ]
        .into_iter()
        .filter(|(kind, _)| !self.layout.components.iter().any(|c| c.kind == *kind))
        .map(|(_, what)| what)
        .collect();
        match missing.as_slice() {
            [] => {}
            [_, _, _] => {
                let _ = writeln!(
                    out,
                    "the controller-manager, scheduler and kubelets are not available yet: the Kubernetes API stores objects only"
                );
            }
            some => {
                let _ = writeln!(out, "this cluster runs no {}", some.join(" and no "));
            }
        }
        let _ = writeln!(out, "next:");
        let _ = writeln!(
            out,
            "  kubectl --kubeconfig {}/kubeconfig get namespaces",
            dir_arg
        );
        let _ = writeln!(
            out,
            "  rkube status --dir {dir_arg}            every replica's role, every component's health"
        );
        let _ = writeln!(
            out,
            "  rkube down --dir {dir_arg}              stop the cluster (--purge also deletes its directory)"
        );
        let _ = writeln!(
            out,
            "  logs: {}",
            self.dir.join("logs").join("<name>.log").display()
        );
        out
    }
}

/// Starts the cluster described by `opts` and waits until it is ready, printing progress
/// lines (and the final summary) on stdout; a closed stdout is ignored.
pub async fn up(opts: &UpOptions) -> Result<Cluster> {
    // Not println!: a closed stdout (`rkube up | head`) must not abort the start-up.
    let mut print = |line: &str| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    };
    up_with_progress(opts, &mut print).await
}

/// [`up`], reporting progress lines to `progress` instead of stdout.
pub async fn up_with_progress(
    opts: &UpOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Cluster> {
    let note = check_nodes(opts.nodes, opts.kubelets())?;
    if let Some(0) = opts.apiservers {
        return Err(Error::InvalidOptions(
            "--apiservers must be at least 1".to_string(),
        ));
    }
    // Every binary this `up` may need is found before anything is written.
    let mut programs = BTreeMap::new();
    for kind in [Kind::Apiserver, Kind::LoadBalancer]
        .iter()
        .chain(&opts.components)
    {
        programs.insert(
            kind.binary(),
            process::find_binary(kind.binary(), opts.bin_dir.as_deref())?,
        );
    }

    let dir = ClusterDir::create(&opts.dir)?;
    let _lock = dir.lock()?;
    let (mut layout, nodes) = if dir.has_layout() {
        let layout = dir.load_layout()?;
        layout.check_request(
            dir.root(),
            opts.apiservers,
            opts.api_port_base,
            opts.peer_port_base,
            opts.nodes,
        )?;
        progress(&format!(
            "using existing cluster in {} ({})",
            dir.root().display(),
            layout.describe()
        ));
        let nodes = layout.nodes();
        (layout, nodes)
    } else {
        let layout = ClusterLayout::allocate(
            opts.apiservers.unwrap_or(DEFAULT_APISERVERS),
            opts.api_port_base,
            opts.peer_port_base,
        )?;
        dir.save_layout(&layout)?;
        progress(&format!(
            "created cluster in {} ({})",
            dir.root().display(),
            layout.describe()
        ));
        let nodes = match opts.kubelets() {
            true => opts.nodes.unwrap_or(DEFAULT_NODES),
            false => 0,
        };
        (layout, nodes)
    };
    let lb_added = layout.ensure_load_balancer(dir.root(), opts.lb_port)?;
    let args_changed = layout.set_extra_args(&opts.component_args);
    if layout.ensure_components(&opts.components, nodes)? || lb_added || args_changed {
        dir.save_layout(&layout)?;
    }
    dir.create_subdirs()?;
    if let Some(note) = note {
        progress(note);
    }

    let pki = ClusterPki::new(dir.pki_dir());
    let written =
        pki.ensure_with_clients(&serving_certs(&layout), &components::identities(&layout))?;
    if !written.is_empty() {
        progress(&format!(
            "wrote {} in {}",
            written.join(", "),
            pki.dir().display()
        ));
    }
    let admin = crate::tls::client_config(
        &pki.ca_cert(),
        Some((&pki.admin_cert(), &pki.admin_key())),
        &[b"h2"],
    )?;

    let nodes: Vec<String> = layout
        .components
        .iter()
        .filter_map(|c| c.node.clone())
        .collect();
    if opts.node_runtime && !nodes.is_empty() {
        let archives = crate::noderuntime::build_images(&dir, opts.bin_dir.as_deref())?;
        for node in &nodes {
            let paths = crate::noderuntime::NodePaths::new(&dir, node);
            crate::noderuntime::ensure_containerd(&dir, &paths, &archives, progress).await?;
        }
        progress(&format!(
            "images {} and {} present in {} node{}",
            crate::images::PAUSE_IMAGE,
            crate::images::BUSYBOX_IMAGE,
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" }
        ));
    }

    let table = components::table(&dir, &layout, &opts.telemetry);
    let mut running = Vec::new();
    for row in &table {
        let program = match programs.get(row.binary) {
            Some(program) => program.clone(),
            // A component an earlier, newer `up` laid out.
            None => process::find_binary(row.binary, opts.bin_dir.as_deref())?,
        };
        for p in &row.processes {
            running.push(ensure_running(&dir, row, p, &program, progress)?);
        }
    }

    progress(&format!(
        "waiting for {} apiserver{} to elect a leader (timeout {}s) ...",
        layout.apiservers.len(),
        if layout.apiservers.len() == 1 {
            ""
        } else {
            "s"
        },
        opts.timeout.as_secs_f64()
    ));
    let mut waiter = Waiter {
        dir: &dir,
        running,
        deadline: Instant::now() + opts.timeout,
        timeout: opts.timeout,
        dir_arg: shell_quote(&opts.dir.display().to_string()),
    };
    let mut leader = (0, 0);
    for row in &table {
        match row.readiness {
            components::Readiness::RaftStatus => {
                leader = waiter.poll(|| raft_ready(&layout, &admin)).await?;
            }
            components::Readiness::StatusThrough => {
                for p in &row.processes {
                    waiter.poll(|| status_through(row.kind, p, &admin)).await?;
                }
            }
            components::Readiness::Readyz => {
                waiter.poll(|| all_readyz(row)).await?;
            }
        }
    }

    let started = |r: &Running| ReplicaStart {
        name: r.name.clone(),
        kind: r.kind,
        pid: r.pid,
        started: r.child.is_some(),
    };
    let of_kind = |kind: Kind| -> Vec<ReplicaStart> {
        waiter
            .running
            .iter()
            .filter(|r| r.kind == kind)
            .map(started)
            .collect()
    };
    let load_balancer = of_kind(Kind::LoadBalancer)
        .pop()
        .expect("the table has a load balancer once the layout has one");
    let cluster = Cluster {
        dir: dir.root().to_path_buf(),
        apiservers: of_kind(Kind::Apiserver),
        load_balancer,
        components: waiter
            .running
            .iter()
            .filter(|r| r.kind.is_component())
            .map(started)
            .collect(),
        leader: layout
            .apiservers
            .iter()
            .find(|s| s.id == leader.0)
            .map_or_else(|| leader.0.to_string(), |s| s.name.clone()),
        term: leader.1,
        layout,
    };
    let lb_address = cluster.layout.load_balancer.expect("ensured above");
    write_kubeconfig(&dir.kubeconfig(), &format!("https://{lb_address}"), &pki)?;
    progress(cluster.summary(&opts.dir).trim_end());
    Ok(cluster)
}

/// Refuses kubelets when this `up` cannot run them (the default gets a note instead).
fn check_nodes(nodes: Option<usize>, kubelets: bool) -> Result<Option<&'static str>> {
    match nodes {
        _ if kubelets => Ok(None),
        Some(0) => Ok(None),
        Some(requested) => Err(Error::NodesNotSupported { requested }),
        None => Ok(Some(
            "note: --nodes defaults to 1, but kubelets are not available yet: starting none \
             (pass --nodes 0 to start a control plane only without this note)",
        )),
    }
}

/// How a process is named in messages: `apiserver a1`, `load balancer`, `scheduler`,
/// `kubelet-n1`.
fn who(kind: Kind, name: &str) -> String {
    match kind {
        Kind::LoadBalancer => kind.label().to_string(),
        _ if name.starts_with(kind.as_str()) => name.to_string(),
        _ => format!("{} {name}", kind.label()),
    }
}

/// A process `up` is waiting for.
struct Running {
    kind: Kind,
    name: String,
    pid: u32,
    /// Set when this `up` started the process: lets it notice an early exit at once.
    child: Option<Child>,
    log: PathBuf,
}

fn ensure_running(
    dir: &ClusterDir,
    row: &ComponentSpec,
    p: &ProcessSpec,
    program: &Path,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Running> {
    let pid_file = dir.pid_file(&p.name);
    let log = dir.log_file(&p.name);
    let who = who(row.kind, &p.name);
    let running = |pid, child| Running {
        kind: row.kind,
        name: p.name.clone(),
        pid,
        child,
        log: log.clone(),
    };
    if let Some(pid) = process::running_pid(&pid_file, row.binary, &p.marker)? {
        progress(&format!("{who} already running (pid {pid})"));
        return Ok(running(pid, None));
    }
    process::remove_pid_file(&pid_file)?;
    if let Some(data_dir) = &p.data_dir {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io("create directory", data_dir, e))?;
    }
    let child = process::spawn_detached(&Launch {
        name: &p.name,
        program,
        args: &p.args,
        cwd: dir.root(),
        log_file: &log,
        pid_file: &pid_file,
    })?;
    let pid = child.id();
    progress(&format!(
        "starting {who} (pid {pid}) on {}, log {}",
        p.address,
        log.display()
    ));
    Ok(running(pid, Some(child)))
}

/// Why the cluster is not ready yet: which process, and what is missing.
struct Waiting {
    /// The process (its log is `DIR/logs/<name>.log`).
    name: String,
    /// How messages name it (`apiserver a1`, `load balancer on 127.0.0.1:7443`).
    what: String,
    reason: String,
}

/// Polls readiness checks until the deadline, failing at once when a started process
/// exits.
struct Waiter<'a> {
    dir: &'a ClusterDir,
    running: Vec<Running>,
    deadline: Instant,
    timeout: Duration,
    /// The directory as the user spelled it, for suggested commands.
    dir_arg: String,
}

impl Waiter<'_> {
    async fn poll<T, F, Fut>(&mut self, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Waiting>>,
    {
        loop {
            self.check_processes()?;
            let waiting = match check().await {
                Ok(ready) => return Ok(ready),
                Err(waiting) => waiting,
            };
            tracing::debug!(process = %waiting.name, reason = %waiting.reason, "cluster not ready yet");
            let now = Instant::now();
            if now >= self.deadline {
                let log = self.dir.log_file(&waiting.name);
                return Err(Error::NotReady {
                    tail: process::log_tail(&log, LOG_TAIL_LINES),
                    name: waiting.what,
                    reason: waiting.reason,
                    log,
                    timeout: self.timeout,
                    dir: self.dir_arg.clone(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL.min(self.deadline - now)).await;
        }
    }

    /// Fails as soon as a process is gone: waiting for it would only time out.
    fn check_processes(&mut self) -> Result<()> {
        for r in &mut self.running {
            let exited = match &mut r.child {
                Some(child) => child
                    .try_wait()
                    .map_err(|e| Error::io("wait for", &r.log, e))?
                    .map(|status| status.to_string()),
                None => (!process::is_alive(r.pid)).then(|| "exit status unknown".to_string()),
            };
            if let Some(status) = exited {
                return Err(Error::ProcessExited {
                    name: format!("{} (pid {})", who(r.kind, &r.name), r.pid),
                    status,
                    tail: process::log_tail(&r.log, LOG_TAIL_LINES),
                    log: r.log.clone(),
                    dir: self.dir_arg.clone(),
                });
            }
        }
        Ok(())
    }
}

/// One round of Status probes of every replica, judged by [`assess`]; the leader's id
/// and term when ready.
async fn raft_ready(
    layout: &ClusterLayout,
    admin: &Arc<rustls::ClientConfig>,
) -> std::result::Result<(u64, u64), Waiting> {
    let probes = futures::future::join_all(
        layout
            .apiservers
            .iter()
            .map(|s| probe(s.api_address, Some(admin), PROBE_TIMEOUT)),
    )
    .await;
    match assess(&layout.apiservers, &probes) {
        Readiness::Ready { leader, term } => Ok((leader, term)),
        Readiness::Waiting { name, reason } => Err(Waiting {
            what: format!("apiserver {name}"),
            name,
            reason,
        }),
    }
}

/// Whether a Status call through `p` (the load balancer) is answered.
async fn status_through(
    kind: Kind,
    p: &ProcessSpec,
    admin: &Arc<rustls::ClientConfig>,
) -> std::result::Result<(), Waiting> {
    match probe(p.address, Some(admin), PROBE_TIMEOUT).await {
        Probe::Answered(_) => Ok(()),
        Probe::Unreachable(why) => Err(Waiting {
            name: p.name.clone(),
            what: format!("{} on {}", who(kind, &p.name), p.address),
            reason: crate::error_chain(&why),
        }),
    }
}

/// Whether every process of `row` answers `/readyz` with 200.
async fn all_readyz(row: &ComponentSpec) -> std::result::Result<(), Waiting> {
    for p in &row.processes {
        if let Err(why) = readyz(p.address, PROBE_TIMEOUT).await {
            return Err(Waiting {
                name: p.name.clone(),
                what: who(row.kind, &p.name),
                reason: crate::error_chain(&why),
            });
        }
    }
    Ok(())
}

/// What each replica's serving certificate must name: its own address and the load
/// balancer's (clients reach it through either).
pub fn serving_certs(layout: &ClusterLayout) -> Vec<ServingCert> {
    layout
        .apiservers
        .iter()
        .map(|s| {
            let mut ips = vec![s.api_address.ip()];
            ips.extend(layout.load_balancer.map(|lb| lb.ip()));
            ServingCert {
                name: s.name.clone(),
                ips,
            }
        })
        .collect()
}

/// The PEM texts a kubeconfig embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigCredentials {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// A kubeconfig for kubectl: one cluster (`server`, trusting the CA), one user (the client
/// certificate), one context. Pure.
pub fn kubeconfig_text(server: &str, creds: &KubeconfigCredentials) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: {server}\n\
         \x20   certificate-authority-data: {ca}\n\
         contexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: {user}\n\
         current-context: rkube\nusers:\n- name: {user}\n  user:\n\
         \x20   client-certificate-data: {cert}\n\
         \x20   client-key-data: {key}\n",
        ca = base64(creds.ca_pem.as_bytes()),
        cert = base64(creds.client_cert_pem.as_bytes()),
        key = base64(creds.client_key_pem.as_bytes()),
        user = crate::pki::ADMIN_USER,
    )
}

/// Standard base64 with padding (RFC 4648), as kubeconfig's `*-data` fields hold. Pure.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes DIR/kubeconfig (mode 0600: it holds the admin's private key).
fn write_kubeconfig(path: &Path, server: &str, pki: &ClusterPki) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| Error::io("read", p, e));
    let creds = KubeconfigCredentials {
        ca_pem: read(pki.ca_cert())?,
        client_cert_pem: read(pki.admin_cert())?,
        client_key_pem: read(pki.admin_key())?,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(kubeconfig_text(server, &creds).as_bytes())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

/// Whether the cluster is ready, judged from one round of Status probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready {
        leader: u64,
        term: u64,
    },
    /// The first replica found not ready, and why.
    Waiting {
        name: String,
        reason: String,
    },
}

/// Ready means: every replica answers as itself, knows a leader and has applied what it
/// knows is committed (what `/readyz` checks); all name the same leader; and that leader
/// says it leads. Pure.
pub(crate) fn assess(specs: &[ApiserverSpec], probes: &[Probe]) -> Readiness {
    let waiting = |spec: &ApiserverSpec, reason: String| Readiness::Waiting {
        name: spec.name.clone(),
        reason,
    };
    let name_of = |id: u64| {
        specs
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| format!("id {id}"), |s| s.name.clone())
    };
    let mut answers = Vec::with_capacity(specs.len());
    for (spec, probe) in specs.iter().zip(probes) {
        let status = match probe {
            Probe::Unreachable(why) => return waiting(spec, crate::error_chain(why)),
            Probe::Answered(status) => status,
        };
        if status.id != spec.id {
            return waiting(
                spec,
                format!(
                    "{} answers as replica id {} ({:?}), not id {}: another process owns the port",
                    spec.api_address, status.id, status.name, spec.id
                ),
            );
        }
        if status.leader == 0 {
            return waiting(
                spec,
                format!(
                    "no leader known yet (role {}, term {})",
                    status.role, status.term
                ),
            );
        }
        if status.applied_index < status.commit_index {
            return waiting(
                spec,
                format!(
                    "still applying the log (applied {} of {} committed)",
                    status.applied_index, status.commit_index
                ),
            );
        }
        answers.push((spec, status));
    }
    let Some((first_spec, first)) = answers.first() else {
        return Readiness::Waiting {
            name: "cluster".to_string(),
            reason: "no replicas".to_string(),
        };
    };
    if let Some((spec, status)) = answers.iter().find(|(_, s)| s.leader != first.leader) {
        return waiting(
            spec,
            format!(
                "sees leader {} while {} sees leader {}",
                name_of(status.leader),
                first_spec.name,
                name_of(first.leader)
            ),
        );
    }
    match answers.iter().find(|(spec, _)| spec.id == first.leader) {
        None => waiting(
            first_spec,
            format!(
                "its leader id {} is not a member of this cluster",
                first.leader
            ),
        ),
        Some((spec, status)) if status.role != "leader" => waiting(
            spec,
            format!(
                "the others name it leader but it says it is {} (term {})",
                status.role, status.term
            ),
        ),
        Some((_, status)) => Readiness::Ready {
            leader: status.id,
            term: status.term,
        },
    }
}

/// A duration flag that [`parse_duration`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDuration {
    #[error("invalid duration {0:?}: expected e.g. 60, 60s, 500ms, 2m")]
    NoNumber(String),
    #[error("invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses a duration flag: a whole number with an optional unit `ms`, `s`, `m` or `h`
/// (a bare number means seconds). Pure.
/// Parses `KIND=FLAG` for `--component-arg` (KIND: controller-manager, scheduler, kubelet).
pub fn parse_component_arg(text: &str) -> std::result::Result<(Kind, String), String> {
    let (kind, flag) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KIND=FLAG, e.g. controller-manager=--v=2"))?;
    let kind = [Kind::ControllerManager, Kind::Scheduler, Kind::Kubelet]
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| {
            format!("{kind:?} is not a component kind (controller-manager, scheduler, kubelet)")
        })?;
    if !flag.starts_with("--") {
        return Err(format!("{flag:?} is not a flag (--name=value)"));
    }
    Ok((kind, flag.to_string()))
}

pub fn parse_duration(text: &str) -> std::result::Result<Duration, InvalidDuration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| InvalidDuration::NoNumber(text.to_string()))?;
    let millis = match unit.trim() {
        "ms" => Some(value),
        "" | "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        other => {
            return Err(InvalidDuration::UnknownUnit {
                text: text.to_string(),
                unit: other.to_string(),
            })
        }
    }
    .ok_or_else(|| InvalidDuration::TooLong(text.to_string()))?;
    Ok(Duration::from_millis(millis))
}

/// Quotes `text` for a POSIX shell when it needs it, so suggested commands can be pasted.
pub(crate) fn shell_quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if safe {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
