//! `rkube up`: make every process of the local cluster run, then wait until it is ready.
//!
//! Expected flow: create or reuse the cluster directory and its layout, take its lock,
//! create whatever certificates are missing (`DIR/pki`, see [`crate::pki`]), start each
//! replica whose process is not running (a running one is left alone, so `up` is
//! idempotent and a restart keeps the replica's data and addresses) with TLS and client
//! authentication on its API port, start the load balancer (`rkube lb`) if it is not
//! running, then poll every replica's Status (over TLS, as the admin) until all answer, all
//! know the same leader, that leader says it leads, and each has applied what it knows is
//! committed, and finally until a Status call through the load balancer is answered. Then
//! `DIR/kubeconfig` is written: the load balancer's `https://` address, the CA, and the
//! admin's client certificate. On timeout the processes keep running so their logs and
//! status can be inspected; `down` stops them.
//!
//! Kubelets, the controller-manager and the scheduler do not exist yet: `--nodes` other
//! than 0 is refused, and its default only produces a note.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use tokio::time::Instant;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::apiserver_cmd::{ApiserverArgs, TlsFiles};
use crate::layout::{ApiserverSpec, ClusterDir, ClusterLayout};
use crate::pki::{ClusterPki, ServingCert};
use crate::process::{self, Launch, APISERVER_BIN, LB_NAME, RKUBE_BIN};
use crate::status::{probe, Probe};
use crate::{Error, Result};

/// Apiserver replicas of a new cluster when `--apiservers` is not given.
pub const DEFAULT_APISERVERS: usize = 3;
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
    /// Kubelets to run [default: 1; 0 = control plane only]. Kubelets are not available
    /// yet: only 0 is accepted, and the default starts none.
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
    /// Passed to every process as `--log-format` when set (`text` or `json`); the binary
    /// fills it from its own telemetry flags.
    #[arg(skip)]
    pub log_format: Option<String>,
    /// Passed to every process as `--otlp-endpoint` when set.
    #[arg(skip)]
    pub otlp_endpoint: Option<String>,
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
            log_format: None,
            otlp_endpoint: None,
        }
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
    /// Name of the replica every replica agrees leads.
    pub leader: String,
    /// The leader's term.
    pub term: u64,
}

/// What `up` did about one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStart {
    pub name: String,
    pub pid: u32,
    /// `false` when the replica was already running and left alone.
    pub started: bool,
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
                if start.started {
                    "started"
                } else {
                    "already running"
                }
            );
        }
        if let Some(lb) = self.layout.load_balancer {
            let _ = writeln!(
                out,
                "  {:<4} pid {:<8} kubectl's address https://{lb}   {}",
                self.load_balancer.name,
                self.load_balancer.pid,
                if self.load_balancer.started {
                    "started"
                } else {
                    "already running"
                }
            );
        }
        let _ = writeln!(
            out,
            "the controller-manager, scheduler and kubelets are not available yet: the Kubernetes API stores objects only"
        );
        let _ = writeln!(out, "next:");
        let _ = writeln!(
            out,
            "  kubectl --kubeconfig {}/kubeconfig get namespaces",
            dir_arg
        );
        let _ = writeln!(
            out,
            "  rkube status --dir {dir_arg}            roles, terms and indexes of every replica"
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
    let note = check_nodes(opts.nodes)?;
    if let Some(0) = opts.apiservers {
        return Err(Error::InvalidOptions(
            "--apiservers must be at least 1".to_string(),
        ));
    }
    let program = process::find_binary(APISERVER_BIN, opts.bin_dir.as_deref())?;
    let lb_program = process::find_binary(RKUBE_BIN, opts.bin_dir.as_deref())?;

    let dir = ClusterDir::create(&opts.dir)?;
    let _lock = dir.lock()?;
    let mut layout = if dir.has_layout() {
        let layout = dir.load_layout()?;
        layout.check_request(
            dir.root(),
            opts.apiservers,
            opts.api_port_base,
            opts.peer_port_base,
        )?;
        progress(&format!(
            "using existing cluster in {} ({})",
            dir.root().display(),
            layout.describe()
        ));
        layout
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
        layout
    };
    if layout.ensure_load_balancer(dir.root(), opts.lb_port)? {
        dir.save_layout(&layout)?;
    }
    let lb_address = layout.load_balancer.expect("ensured above");
    dir.create_subdirs()?;
    if let Some(note) = note {
        progress(note);
    }

    let pki = ClusterPki::new(dir.pki_dir());
    let written = pki.ensure(&serving_certs(&layout))?;
    if !written.is_empty() {
        progress(&format!(
            "wrote {} in {}",
            written.join(", "),
            pki.dir().display()
        ));
    }
    let client = crate::tls::client_config(
        &pki.ca_cert(),
        Some((&pki.admin_cert(), &pki.admin_key())),
        &[b"h2"],
    )?;

    let mut replicas = Vec::with_capacity(layout.apiservers.len());
    for spec in &layout.apiservers {
        replicas.push(ensure_running(
            &dir, &layout, spec, &program, &pki, opts, progress,
        )?);
    }
    let mut lb = ensure_lb_running(&dir, &layout, &lb_program, &pki, progress)?;

    progress(&format!(
        "waiting for {} apiserver{} to elect a leader (timeout {}s) ...",
        replicas.len(),
        if replicas.len() == 1 { "" } else { "s" },
        opts.timeout.as_secs_f64()
    ));
    let dir_arg = shell_quote(&opts.dir.display().to_string());
    let deadline = Instant::now() + opts.timeout;
    let (leader, term) = wait_ready(
        &dir,
        &layout,
        &mut replicas,
        &client,
        deadline,
        opts.timeout,
        &dir_arg,
    )
    .await?;
    wait_lb(
        &dir,
        &mut lb,
        lb_address,
        &client,
        deadline,
        opts.timeout,
        &dir_arg,
    )
    .await?;

    let cluster = Cluster {
        dir: dir.root().to_path_buf(),
        apiservers: replicas
            .iter()
            .map(|r| ReplicaStart {
                name: r.name.clone(),
                pid: r.pid,
                started: r.child.is_some(),
            })
            .collect(),
        load_balancer: ReplicaStart {
            name: lb.name.clone(),
            pid: lb.pid,
            started: lb.child.is_some(),
        },
        leader: layout
            .apiservers
            .iter()
            .find(|s| s.id == leader)
            .map_or_else(|| leader.to_string(), |s| s.name.clone()),
        term,
        layout,
    };
    write_kubeconfig(&dir.kubeconfig(), &format!("https://{lb_address}"), &pki)?;
    progress(cluster.summary(&opts.dir).trim_end());
    Ok(cluster)
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

/// Refuses kubelets until they exist; the default gets a note for the user instead.
fn check_nodes(nodes: Option<usize>) -> Result<Option<&'static str>> {
    match nodes {
        Some(0) => Ok(None),
        Some(requested) => Err(Error::NodesNotSupported { requested }),
        None => Ok(Some(
            "note: --nodes defaults to 1, but kubelets are not available yet: starting none \
             (pass --nodes 0 to start a control plane only without this note)",
        )),
    }
}

/// A process `up` is waiting for: a replica or the load balancer.
struct Replica {
    /// `apiserver` or `load balancer`, for messages.
    kind: &'static str,
    name: String,
    pid: u32,
    /// Set when this `up` started the process: lets it notice an early exit at once.
    child: Option<Child>,
    log: PathBuf,
}

fn ensure_running(
    dir: &ClusterDir,
    layout: &ClusterLayout,
    spec: &ApiserverSpec,
    program: &Path,
    pki: &ClusterPki,
    opts: &UpOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Replica> {
    let data_dir = dir.data_dir(&spec.name);
    let pid_file = dir.pid_file(&spec.name);
    let log = dir.log_file(&spec.name);
    if let Some(pid) = process::running_pid(&pid_file, APISERVER_BIN, &data_dir)? {
        progress(&format!(
            "apiserver {} already running (pid {pid})",
            spec.name
        ));
        return Ok(Replica {
            kind: "apiserver",
            name: spec.name.clone(),
            pid,
            child: None,
            log,
        });
    }
    process::remove_pid_file(&pid_file)?;
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io("create directory", &data_dir, e))?;
    let args = apiserver_args(layout, spec, &data_dir, pki, opts);
    let child = process::spawn_detached(&Launch {
        name: &spec.name,
        program,
        args: &args,
        cwd: dir.root(),
        log_file: &log,
        pid_file: &pid_file,
    })?;
    let pid = child.id();
    progress(&format!(
        "starting apiserver {} (pid {pid}) on {}, log {}",
        spec.name,
        spec.api_address,
        log.display()
    ));
    Ok(Replica {
        kind: "apiserver",
        name: spec.name.clone(),
        pid,
        child: Some(child),
        log,
    })
}

/// The command line of one `rkube-apiserver` replica: TLS with the replica's serving
/// certificate, client certificates from the cluster CA and the token file authenticate,
/// anonymous requests are refused. Pure.
pub fn apiserver_args(
    layout: &ClusterLayout,
    spec: &ApiserverSpec,
    data_dir: &Path,
    pki: &ClusterPki,
    opts: &UpOptions,
) -> Vec<OsString> {
    let mut a = ApiserverArgs::new(
        spec.name.clone(),
        spec.id,
        data_dir,
        spec.api_address.to_string(),
        spec.peer_address.to_string(),
    );
    a.initial_members = layout
        .apiservers
        .iter()
        .map(ApiserverSpec::initial_member)
        .collect();
    a.tls = Some(TlsFiles {
        cert: pki.serving_cert(&spec.name),
        key: pki.serving_key(&spec.name),
        client_ca: Some(pki.ca_cert()),
    });
    a.token_auth_file = Some(pki.token_file());
    a.log_format = opts.log_format.clone();
    a.otlp_endpoint = opts.otlp_endpoint.clone();
    a.to_args()
}

/// The load balancer's command line: `rkube lb` in front of every replica, health-checking
/// their `/readyz` over TLS. The `--backend-ca` path also identifies the process as this
/// cluster's (see [`crate::process::running_pid`]). Pure.
pub fn lb_args(layout: &ClusterLayout, pki: &ClusterPki) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["lb".into(), "--listen".into()];
    args.push(
        layout
            .load_balancer
            .map_or_else(String::new, |a| a.to_string())
            .into(),
    );
    for s in &layout.apiservers {
        args.push("--backend".into());
        args.push(s.api_address.to_string().into());
    }
    args.push("--backend-ca".into());
    args.push(pki.ca_cert().into());
    args
}

fn ensure_lb_running(
    dir: &ClusterDir,
    layout: &ClusterLayout,
    program: &Path,
    pki: &ClusterPki,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Replica> {
    let pid_file = dir.pid_file(LB_NAME);
    let log = dir.log_file(LB_NAME);
    let replica = |pid, child| Replica {
        kind: "load balancer",
        name: LB_NAME.to_string(),
        pid,
        child,
        log: log.clone(),
    };
    if let Some(pid) = process::running_pid(&pid_file, RKUBE_BIN, &pki.ca_cert())? {
        progress(&format!("load balancer already running (pid {pid})"));
        return Ok(replica(pid, None));
    }
    process::remove_pid_file(&pid_file)?;
    let args = lb_args(layout, pki);
    let child = process::spawn_detached(&Launch {
        name: LB_NAME,
        program,
        args: &args,
        cwd: dir.root(),
        log_file: &log,
        pid_file: &pid_file,
    })?;
    let pid = child.id();
    progress(&format!(
        "starting load balancer (pid {pid}) on {}, log {}",
        layout
            .load_balancer
            .map_or_else(String::new, |a| a.to_string()),
        log.display()
    ));
    Ok(replica(pid, Some(child)))
}

/// Polls until a Status call through the load balancer is answered.
async fn wait_lb(
    dir: &ClusterDir,
    lb: &mut Replica,
    address: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    deadline: Instant,
    timeout: Duration,
    dir_arg: &str,
) -> Result<()> {
    loop {
        check_processes(std::slice::from_mut(lb), dir_arg)?;
        let reason = match probe(address, Some(client), PROBE_TIMEOUT).await {
            Probe::Answered(_) => return Ok(()),
            Probe::Unreachable(why) => crate::error_chain(&why),
        };
        let now = Instant::now();
        if now >= deadline {
            let what = format!("load balancer on {address}");
            return Err(not_ready(dir, LB_NAME, what, reason, timeout, dir_arg));
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// Polls until [`assess`] says ready; returns the leader's id and term.
async fn wait_ready(
    dir: &ClusterDir,
    layout: &ClusterLayout,
    replicas: &mut [Replica],
    client: &Arc<rustls::ClientConfig>,
    deadline: Instant,
    timeout: Duration,
    dir_arg: &str,
) -> Result<(u64, u64)> {
    loop {
        check_processes(replicas, dir_arg)?;
        let probes = futures::future::join_all(
            layout
                .apiservers
                .iter()
                .map(|s| probe(s.api_address, Some(client), PROBE_TIMEOUT)),
        )
        .await;
        let waiting = match assess(&layout.apiservers, &probes) {
            Readiness::Ready { leader, term } => return Ok((leader, term)),
            Readiness::Waiting { name, reason } => (name, reason),
        };
        tracing::debug!(replica = %waiting.0, reason = %waiting.1, "cluster not ready yet");
        let now = Instant::now();
        if now >= deadline {
            let (name, reason) = waiting;
            let what = format!("apiserver {name}");
            return Err(not_ready(dir, &name, what, reason, timeout, dir_arg));
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// The error for a component (`what`, logging as `log_name`) that was not
/// ready in time, with the tail of its log.
fn not_ready(
    dir: &ClusterDir,
    log_name: &str,
    what: String,
    reason: String,
    timeout: Duration,
    dir_arg: &str,
) -> Error {
    let log = dir.log_file(log_name);
    Error::NotReady {
        tail: process::log_tail(&log, LOG_TAIL_LINES),
        name: what,
        reason,
        log,
        timeout,
        dir: dir_arg.to_string(),
    }
}

/// Fails as soon as a replica's process is gone: waiting for it would only time out.
fn check_processes(replicas: &mut [Replica], dir_arg: &str) -> Result<()> {
    for r in replicas.iter_mut() {
        let exited = match &mut r.child {
            Some(child) => child
                .try_wait()
                .map_err(|e| Error::io("wait for", &r.log, e))?
                .map(|status| status.to_string()),
            None => (!process::is_alive(r.pid)).then(|| "exit status unknown".to_string()),
        };
        if let Some(status) = exited {
            return Err(Error::ProcessExited {
                name: format!("{} {} (pid {})", r.kind, r.name, r.pid),
                status,
                tail: process::log_tail(&r.log, LOG_TAIL_LINES),
                log: r.log.clone(),
                dir: dir_arg.to_string(),
            });
        }
    }
    Ok(())
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
