//! `rkube status`: what every process of the cluster is doing right now.
//!
//! Each replica is asked for `rkube.store.v1.Maintenance/Status` over gRPC (TLS, as the
//! admin of `DIR/pki`, when the cluster has certificates); a replica that does not answer
//! is reported with role `down` (its pid is still shown when its process is alive, e.g.
//! while it starts). Every other row of the table of components is listed with its pid and
//! health (the readiness probe `up` waits for: a Status call through the load balancer,
//! `GET /readyz` of the others) and, for the components that run active/standby, whether it
//! holds its Lease (`kube-system/kube-controller-manager`, `kube-system/kube-scheduler`),
//! read through the apiservers with rkube-client as the admin: the component whose name is
//! the part of the Lease's `holderIdentity` before the first `_` holds it. Nodes come from
//! the Node objects' `Ready` condition. The report's JSON form is a stable
//! contract for scripts: keys are never renamed, unknown values are `null`. Rendering and
//! reading Leases and Nodes are pure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rkube_proto::store::maintenance_client::MaintenanceClient;
use rkube_proto::store::{StatusRequest, StatusResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::components::{self, Kind, Readiness, Telemetry};
use crate::layout::{ApiserverSpec, ClusterDir};
use crate::pki::ClusterPki;
use crate::process;
use crate::Result;

/// The `kind` of the load balancer in [`StatusReport::components`].
pub const LB_KIND: &str = "load-balancer";

/// The namespace of the components' Leases.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// The role reported for a replica that cannot be reached.
pub const ROLE_DOWN: &str = "down";

/// How long `status` waits for one replica before calling it down.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// `rkube status`'s flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    about = "Show every replica's process, Raft role, term and indexes",
    long_about = None
)]
pub struct StatusOptions {
    /// The cluster directory: layout, data, logs and pid files.
    #[arg(long, value_name = "DIR", env = "RKUBE_DIR", default_value = crate::layout::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
}

/// How a report is printed: kubectl-style columns or the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// A report that prints in either [`Output`] form (`rkube status`, the benchmarks).
pub trait Report {
    fn render_as(&self, output: Output) -> String;
}

impl Report for StatusReport {
    fn render_as(&self, output: Output) -> String {
        match output {
            Output::Table => self.render_table(),
            Output::Json => self.to_json(),
        }
    }
}

/// The whole cluster, as `rkube status -o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub apiservers: Vec<ApiserverStatus>,
    /// Every other process: the load balancer, the controller-manager, the scheduler, the
    /// kubelets.
    pub components: Vec<ComponentStatus>,
    /// The Node objects; empty when there are none (or the apiservers cannot say).
    pub nodes: Vec<NodeStatus>,
}

/// One apiserver replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiserverStatus {
    pub name: String,
    /// `null` when the process is not running.
    pub pid: Option<u32>,
    /// `leader`, `follower`, `candidate`, `learner` (as the replica says), or `down`.
    pub role: String,
    /// `null` (as are the indexes) when the replica is down.
    pub term: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub api_address: String,
    pub peer_address: String,
}

/// A process of the cluster other than an apiserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: String,
    /// `load-balancer`, `controller-manager`, `scheduler`, `kubelet`.
    pub kind: String,
    /// `null` when the process is not running.
    pub pid: Option<u32>,
    /// It runs and its readiness probe passes.
    pub healthy: bool,
    /// Whether it holds its Lease: `null` for components that do not elect a leader, and
    /// when the Lease cannot be read.
    pub leader: Option<bool>,
}

/// A node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
}

impl NodeStatus {
    /// From a Node object; `None` when it has no name. Pure.
    pub fn of(node: &Value) -> Option<Self> {
        let name = node.pointer("/metadata/name")?.as_str()?.to_string();
        let ready = node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        Some(NodeStatus { name, ready })
    }
}

/// What asking an apiserver (or the load balancer in front of them) for its status gave.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Answered(StatusResponse),
    Unreachable(Unreachable),
}

/// What probing one process as its row says gave.
enum Health {
    Status(Probe),
    Readyz(std::result::Result<(), Unreachable>),
}

impl Health {
    fn passed(&self) -> bool {
        matches!(
            self,
            Health::Status(Probe::Answered(_)) | Health::Readyz(Ok(()))
        )
    }
}

/// Why a process gave no status, or is not ready.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unreachable {
    /// It does not run (so it is not asked).
    #[error("not running")]
    NotRunning,
    #[error("GET http://{addr}/readyz failed")]
    Readyz {
        addr: SocketAddr,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("http://{addr}/readyz answered {code}")]
    NotReady { addr: SocketAddr, code: u16 },
    /// No channel can be built for the address.
    #[error("cannot dial {addr}")]
    Address {
        addr: SocketAddr,
        #[source]
        source: Arc<rkube_client::InvalidAddress>,
    },
    /// The call failed: no connection, or the server's error.
    #[error("Status call to {addr} failed")]
    Call {
        addr: SocketAddr,
        #[source]
        source: CallFailed,
    },
    #[error("no answer within {}s", .0.as_secs_f64())]
    TimedOut(Duration),
}

/// A failed gRPC call, shown by its status message (tonic's `Display` of a status lists
/// metadata and details too) with the transport's causes as its sources.
#[derive(Debug, Clone)]
pub struct CallFailed(pub tonic::Status);

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for CallFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// Gathers the status of the cluster in `dir`. Fails only when `dir` holds no cluster (or
/// its files cannot be read); unreachable processes are part of a successful report.
pub async fn status(dir: &Path) -> Result<StatusReport> {
    let dir = ClusterDir::open(dir)?;
    let layout = dir.load_layout()?;
    let table = components::table(&dir, &layout, &Telemetry::default());
    let tls = api_client(&dir)?;
    let mut processes = Vec::new();
    for row in &table {
        for p in &row.processes {
            let pid = process::running_pid(&dir.pid_file(&p.name), row.binary, &p.marker)?;
            processes.push((row, p, pid));
        }
    }
    let client = rkube_client::Client::new(rkube_client::Config {
        tls: tls.clone(),
        deadline: STATUS_TIMEOUT,
        attempt_timeout: STATUS_TIMEOUT,
        connect_timeout: STATUS_TIMEOUT,
        ..rkube_client::Config::new(layout.apiservers.iter().map(|s| s.api_address.to_string()))
    })
    .ok();
    let probes = futures::future::join_all(
        processes
            .iter()
            .map(|(row, p, pid)| health(row.readiness, p.address, *pid, tls.as_ref())),
    )
    .await;
    // With no replica answering, asking for Leases and Nodes would only wait out the
    // client's deadline.
    let answered = probes
        .iter()
        .any(|h| matches!(h, Health::Status(Probe::Answered(_))));
    let client = client.filter(|_| answered);
    let leases: Vec<&str> = table.iter().filter_map(|row| row.kind.lease()).collect();
    let (lease_reads, nodes) = futures::join!(
        futures::future::join_all(leases.iter().map(|name| read_lease(client.as_ref(), name))),
        list_nodes(client.as_ref()),
    );

    let mut report = StatusReport {
        apiservers: Vec::new(),
        components: Vec::new(),
        nodes,
    };
    for ((row, p, pid), probe) in processes.into_iter().zip(probes) {
        if let (Kind::Apiserver, Health::Status(probe)) = (row.kind, &probe) {
            let spec = layout
                .apiserver(&p.name)
                .expect("the table's replicas are the layout's");
            report
                .apiservers
                .push(ApiserverStatus::from_probe(spec, pid, probe));
            continue;
        }
        let lease = row
            .kind
            .lease()
            .and_then(|lease| leases.iter().position(|l| *l == lease))
            .map(|i| &lease_reads[i]);
        report.components.push(ComponentStatus {
            name: p.name.clone(),
            kind: row.kind.as_str().to_string(),
            pid,
            healthy: pid.is_some() && probe.passed(),
            leader: lease.and_then(|read| read.held_by(&p.name)),
        });
    }
    Ok(report)
}

/// Probes one process as its row says; a component that does not run is not probed.
async fn health(
    readiness: Readiness,
    address: SocketAddr,
    pid: Option<u32>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Health {
    match readiness {
        // A replica answers for itself even when its pid file is lost.
        Readiness::RaftStatus => Health::Status(probe(address, tls, STATUS_TIMEOUT).await),
        _ if pid.is_none() => Health::Readyz(Err(Unreachable::NotRunning)),
        Readiness::StatusThrough => Health::Status(probe(address, tls, STATUS_TIMEOUT).await),
        Readiness::Readyz => Health::Readyz(readyz(address, STATUS_TIMEOUT).await),
    }
}

/// `GET http://<address>/readyz`: `Ok` on 200.
pub(crate) async fn readyz(
    address: SocketAddr,
    timeout: Duration,
) -> std::result::Result<(), Unreachable> {
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        crate::tls::http_get_status(&mut stream, &address.to_string(), "/readyz").await
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(code)) => Err(Unreachable::NotReady {
            addr: address,
            code,
        }),
        Ok(Err(source)) => Err(Unreachable::Readyz {
            addr: address,
            source: Arc::new(source),
        }),
        Err(_) => Err(Unreachable::TimedOut(timeout)),
    }
}

/// What reading a component's Lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRead {
    /// The Lease names this holder.
    Held(String),
    /// There is no Lease, or it names no holder: nobody leads.
    Free,
    /// The apiservers did not say.
    Unknown,
}

impl LeaseRead {
    /// From a Lease object (`None`: it does not exist). Pure.
    pub fn of(lease: Option<&Value>) -> Self {
        match lease
            .and_then(|l| l.pointer("/spec/holderIdentity"))
            .and_then(Value::as_str)
        {
            Some(holder) if !holder.is_empty() => LeaseRead::Held(holder.to_string()),
            _ => LeaseRead::Free,
        }
    }

    /// Whether the component named `name` holds it: the holder identity is
    /// `<name>_<something unique>`. `None` when unknown. Pure.
    pub fn held_by(&self, name: &str) -> Option<bool> {
        match self {
            LeaseRead::Held(holder) => Some(holder.split('_').next() == Some(name)),
            LeaseRead::Free => Some(false),
            LeaseRead::Unknown => None,
        }
    }
}

async fn read_lease(client: Option<&rkube_client::Client>, name: &str) -> LeaseRead {
    let Some(client) = client else {
        return LeaseRead::Unknown;
    };
    let leases = rkube_client::Gvr::new("coordination.k8s.io", "v1", "leases");
    match client.get(&leases, LEASE_NAMESPACE, name, "").await {
        Ok(lease) => LeaseRead::of(Some(&lease)),
        Err(e) if e.is_not_found() => LeaseRead::of(None),
        Err(e) => {
            tracing::debug!(
                lease = name,
                error = &e as &dyn std::error::Error,
                "cannot read a Lease"
            );
            LeaseRead::Unknown
        }
    }
}

async fn list_nodes(client: Option<&rkube_client::Client>) -> Vec<NodeStatus> {
    let Some(client) = client else {
        return Vec::new();
    };
    let nodes = rkube_client::Gvr::new("", "v1", "nodes");
    match client.list(&nodes, "", &Default::default()).await {
        Ok(list) => list.items.iter().filter_map(NodeStatus::of).collect(),
        Err(e) => {
            tracing::debug!(error = &e as &dyn std::error::Error, "cannot list nodes");
            Vec::new()
        }
    }
}

/// How to reach the cluster's API port: TLS as the admin when the cluster has certificates
/// (`None`: plain HTTP, for clusters created before TLS).
pub(crate) fn api_client(dir: &ClusterDir) -> Result<Option<Arc<rustls::ClientConfig>>> {
    let pki = ClusterPki::new(dir.pki_dir());
    if !pki.exists() {
        return Ok(None);
    }
    crate::tls::client_config(
        &pki.ca_cert(),
        Some((&pki.admin_cert(), &pki.admin_key())),
        &[b"h2"],
    )
    .map(Some)
}

/// Asks the apiserver at `addr` (a replica, or the load balancer) for its status, giving up
/// after `timeout`.
pub(crate) async fn probe(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Probe {
    match tokio::time::timeout(timeout, query(addr, tls, timeout)).await {
        Ok(Ok(status)) => Probe::Answered(status),
        Ok(Err(why)) => Probe::Unreachable(why),
        Err(_) => Probe::Unreachable(Unreachable::TimedOut(timeout)),
    }
}

async fn query(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> std::result::Result<StatusResponse, Unreachable> {
    let channel =
        rkube_client::channel(&addr.to_string(), tls.cloned(), timeout).map_err(|source| {
            Unreachable::Address {
                addr,
                source: Arc::new(source),
            }
        })?;
    MaintenanceClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| Unreachable::Call {
            addr,
            source: CallFailed(status),
        })
}

impl ApiserverStatus {
    /// Combines the layout, the process check and the probe into one row. Pure.
    pub(crate) fn from_probe(spec: &ApiserverSpec, pid: Option<u32>, probe: &Probe) -> Self {
        let (role, term, commit_index, applied_index) = match probe {
            Probe::Answered(s) => (
                s.role.clone(),
                Some(s.term),
                Some(s.commit_index),
                Some(s.applied_index),
            ),
            Probe::Unreachable(_) => (ROLE_DOWN.to_string(), None, None, None),
        };
        ApiserverStatus {
            name: spec.name.clone(),
            pid,
            role,
            term,
            commit_index,
            applied_index,
            api_address: spec.api_address.to_string(),
            peer_address: spec.peer_address.to_string(),
        }
    }
}

impl StatusReport {
    /// The contract's JSON form, pretty-printed, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("status report serializes");
        json.push('\n');
        json
    }

    /// kubectl-style tables: apiservers always; components and nodes when there are any.
    pub fn render_table(&self) -> String {
        let mut out = render_columns(
            &[
                "NAME", "PID", "ROLE", "TERM", "COMMIT", "APPLIED", "API", "PEER",
            ],
            self.apiservers
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        or_none(a.pid),
                        a.role.clone(),
                        or_none(a.term),
                        or_none(a.commit_index),
                        or_none(a.applied_index),
                        a.api_address.clone(),
                        a.peer_address.clone(),
                    ]
                })
                .collect(),
        );
        if !self.components.is_empty() {
            out.push('\n');
            out.push_str(&render_columns(
                &["COMPONENT", "KIND", "PID", "HEALTHY", "LEADER"],
                self.components
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.kind.clone(),
                            or_none(c.pid),
                            c.healthy.to_string(),
                            or_none(c.leader),
                        ]
                    })
                    .collect(),
            ));
        }
        if !self.nodes.is_empty() {
            out.push('\n');
            out.push_str(&render_columns(
                &["NODE", "READY"],
                self.nodes
                    .iter()
                    .map(|n| vec![n.name.clone(), n.ready.to_string()])
                    .collect(),
            ));
        }
        out
    }

    /// The replica every reachable replica agrees is leader, if any.
    pub fn leader(&self) -> Option<&ApiserverStatus> {
        let mut leaders = self.apiservers.iter().filter(|a| a.role == "leader");
        let first = leaders.next()?;
        leaders.next().is_none().then_some(first)
    }

    /// How many replicas answered.
    pub fn reachable(&self) -> usize {
        self.apiservers
            .iter()
            .filter(|a| a.role != ROLE_DOWN)
            .count()
    }
}

fn or_none<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "<none>".to_string(), |v| v.to_string())
}

/// Left-aligned columns separated by three spaces, as kubectl prints them. Pure.
pub fn render_columns(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len().saturating_sub(1);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(w - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
