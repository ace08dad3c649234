//! `rkube status`: what every process of the cluster is doing right now.
//!
//! Each replica is asked for `rkube.store.v1.Maintenance/Status` over gRPC (TLS, as the
//! admin of `DIR/pki`, when the cluster has certificates); a replica that does not answer
//! is reported with role `down` (its pid is still shown when its process is alive, e.g.
//! while it starts). The load balancer is a component of kind `load-balancer`, healthy when
//! a Status call through it is answered. The report's JSON form is DESIGN.md's stable
//! contract for scripts: keys are never renamed, unknown values are `null`. Rendering is
//! pure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rkube_proto::store::maintenance_client::MaintenanceClient;
use rkube_proto::store::{StatusRequest, StatusResponse};
use serde::{Deserialize, Serialize};

use crate::layout::{ApiserverSpec, ClusterDir};
use crate::pki::ClusterPki;
use crate::process::{self, APISERVER_BIN, LB_NAME, RKUBE_BIN};
use crate::Result;

/// The `kind` of the load balancer in [`StatusReport::components`].
pub const LB_KIND: &str = "load-balancer";

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
    /// The controller-manager, the scheduler and the kubelets once they exist; empty now.
    pub components: Vec<ComponentStatus>,
    /// Registered nodes once kubelets exist; empty now.
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

/// A control-plane component or kubelet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: String,
    /// `controller-manager`, `scheduler`, `kubelet`, ...
    pub kind: String,
    pub pid: Option<u32>,
    pub healthy: bool,
    /// Whether it holds its Lease (always true for components that do not elect: kubelets,
    /// the load balancer).
    pub leader: bool,
}

/// A node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
}

/// What asking one replica for its status gave.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Answered(StatusResponse),
    Unreachable(Unreachable),
}

/// Why an apiserver (or the load balancer in front of them) gave no status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unreachable {
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
/// its files cannot be read); unreachable replicas are part of a successful report.
pub async fn status(dir: &Path) -> Result<StatusReport> {
    let dir = ClusterDir::open(dir)?;
    let layout = dir.load_layout()?;
    let mut pids = Vec::with_capacity(layout.apiservers.len());
    for spec in &layout.apiservers {
        pids.push(process::running_pid(
            &dir.pid_file(&spec.name),
            APISERVER_BIN,
            &dir.data_dir(&spec.name),
        )?);
    }
    let client = api_client(&dir)?;
    let probes = futures::future::join_all(
        layout
            .apiservers
            .iter()
            .map(|s| probe(s.api_address, client.as_ref(), STATUS_TIMEOUT)),
    )
    .await;
    let apiservers = layout
        .apiservers
        .iter()
        .zip(pids)
        .zip(&probes)
        .map(|((spec, pid), probe)| ApiserverStatus::from_probe(spec, pid, probe))
        .collect();
    let mut components = Vec::new();
    if let Some(lb) = layout.load_balancer {
        let pid = process::running_pid(&dir.pid_file(LB_NAME), RKUBE_BIN, &lb_marker(&dir))?;
        let healthy = match pid {
            Some(_) => matches!(
                probe(lb, client.as_ref(), STATUS_TIMEOUT).await,
                Probe::Answered(_)
            ),
            None => false,
        };
        components.push(ComponentStatus {
            name: LB_NAME.to_string(),
            kind: LB_KIND.to_string(),
            pid,
            healthy,
            leader: true,
        });
    }
    Ok(StatusReport {
        apiservers,
        components,
        nodes: Vec::new(),
    })
}

/// The argument that identifies this cluster's load balancer among `rkube` processes: its
/// `--backend-ca` (the cluster's CA file, unique per cluster directory).
pub(crate) fn lb_marker(dir: &ClusterDir) -> std::path::PathBuf {
    ClusterPki::new(dir.pki_dir()).ca_cert()
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
                            c.leader.to_string(),
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
