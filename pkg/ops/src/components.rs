//! The table of a local cluster's components: one row per kind of process (apiserver,
//! load balancer, controller-manager, scheduler, kubelet), saying which binary it runs, how
//! many of it run and, for each process, its name (hence its pid file `DIR/pids/<name>.pid`
//! and log `DIR/logs/<name>.log`), its command line built from the cluster layout, the
//! argument that identifies it in `/proc/PID/cmdline`, and how its readiness is probed.
//!
//! `up`, `status` and `down` iterate this table instead of knowing each component: adding
//! one is a row in [`table`] (and its kind in [`AVAILABLE`] once its binary exists). The
//! table is pure: it starts, probes and reads nothing.
//!
//! The controller-manager, the scheduler and the kubelets share one command line, the
//! flags every rkube component has (pkg/component): `--apiserver ADDR` per apiserver (they
//! fail over themselves), `--certificate-authority`, `--client-certificate` and
//! `--client-key` (their identity from `DIR/pki`), `--listen ADDR` (plain HTTP `/healthz`,
//! `/readyz`, `/metrics`), the telemetry flags, and `--leader-elect=true` for the ones that
//! run active/standby on a Lease. Kubelets also get `--node-name`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::apiserver_cmd::{ApiserverArgs, TlsFiles};
use crate::layout::{ApiserverSpec, ClusterDir, ClusterLayout, ComponentAddress};
use crate::noderuntime::NodePaths;
use crate::pki::{ClientIdentity, ClusterPki};
use crate::process::{APISERVER_BIN, LB_NAME, RKUBE_BIN};

/// The kinds beyond the apiservers and the load balancer that `up` can start, because
/// their binaries exist.
pub const AVAILABLE: &[Kind] = &[Kind::ControllerManager, Kind::Scheduler, Kind::Kubelet];

/// What a process is. Its JSON form is the `kind` of `rkube status -o json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Apiserver,
    LoadBalancer,
    ControllerManager,
    Scheduler,
    Kubelet,
}

impl Kind {
    /// The name in `rkube status -o json` (`load-balancer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Apiserver => "apiserver",
            Kind::LoadBalancer => "load-balancer",
            Kind::ControllerManager => "controller-manager",
            Kind::Scheduler => "scheduler",
            Kind::Kubelet => "kubelet",
        }
    }

    /// The name in messages (`load balancer`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "load balancer",
            other => other.as_str(),
        }
    }

    /// The binary that runs it.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Apiserver => APISERVER_BIN,
            Kind::LoadBalancer => RKUBE_BIN,
            Kind::ControllerManager => "rkube-controller-manager",
            Kind::Scheduler => "rkube-scheduler",
            Kind::Kubelet => "rkube-kubelet",
        }
    }

    /// Kubernetes' port for it (health and metrics); a local cluster takes free ports
    /// instead, as several of them share one machine.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Kind::ControllerManager => Some(10257),
            Kind::Scheduler => Some(10259),
            Kind::Kubelet => Some(10250),
            Kind::Apiserver | Kind::LoadBalancer => None,
        }
    }

    /// The Lease (namespace `kube-system`) of a component that runs active/standby.
    pub fn lease(self) -> Option<&'static str> {
        match self {
            Kind::ControllerManager => Some("kube-controller-manager"),
            Kind::Scheduler => Some("kube-scheduler"),
            _ => None,
        }
    }

    /// The kinds that share the components' command line (see the module docs).
    pub fn is_component(self) -> bool {
        matches!(
            self,
            Kind::ControllerManager | Kind::Scheduler | Kind::Kubelet
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The telemetry flags every process gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// `--log-format` (`text` or `json`) when set.
    pub log_format: Option<String>,
    /// `--otlp-endpoint` when set.
    pub otlp_endpoint: Option<String>,
}

impl Telemetry {
    fn push_args(&self, args: &mut Vec<OsString>) {
        if let Some(format) = &self.log_format {
            args.extend(["--log-format".into(), format.into()]);
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            args.extend(["--otlp-endpoint".into(), endpoint.into()]);
        }
    }
}

/// How `up` knows a process is ready, and `status` that it is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Every replica answers `Maintenance/Status` over TLS as the admin, all name the same
    /// leader, and each has applied what it knows is committed (judged over the whole row).
    RaftStatus,
    /// A `Maintenance/Status` call through it (to whichever replica) is answered.
    StatusThrough,
    /// `GET http://<address>/readyz` answers 200.
    Readyz,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSpec {
    pub kind: Kind,
    /// The binary's file name (see [`crate::process::find_binary`]).
    pub binary: &'static str,
    pub readiness: Readiness,
    /// One per process: how many run is `processes.len()`.
    pub processes: Vec<ProcessSpec>,
}

/// One process of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Unique in the cluster: its pid file is `DIR/pids/<name>.pid`, its log
    /// `DIR/logs/<name>.log`.
    pub name: String,
    pub args: Vec<OsString>,
    /// An argument only this process of this cluster has (a path under DIR), so that
    /// `/proc/PID/cmdline` tells it from any other.
    pub marker: PathBuf,
    /// Created before the start when the process keeps data.
    pub data_dir: Option<PathBuf>,
    /// What its readiness probe dials.
    pub address: SocketAddr,
}

/// Every process of the cluster in `layout`, in start order: apiservers, the load balancer,
/// then the components the layout has. `telemetry` goes to every command line. Pure.
pub fn table(
    dir: &ClusterDir,
    layout: &ClusterLayout,
    telemetry: &Telemetry,
) -> Vec<ComponentSpec> {
    let pki = ClusterPki::new(dir.pki_dir());
    let mut rows = vec![apiserver_row(dir, layout, &pki, telemetry)];
    if let Some(address) = layout.load_balancer {
        rows.push(ComponentSpec {
            kind: Kind::LoadBalancer,
            binary: Kind::LoadBalancer.binary(),
            readiness: Readiness::StatusThrough,
            processes: vec![ProcessSpec {
                name: LB_NAME.to_string(),
                args: lb_args(layout, &pki, telemetry),
                marker: lb_marker(dir),
                data_dir: None,
                address,
            }],
        });
    }
    // The controller-manager, the scheduler, the kubelets: one row per kind, in this order,
    // with as many processes as the layout has of it.
    for kind in [Kind::ControllerManager, Kind::Scheduler, Kind::Kubelet] {
        let processes: Vec<ProcessSpec> = layout
            .components
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| ProcessSpec {
                name: c.name.clone(),
                args: {
                    let mut args = component_args(layout, c, &pki, telemetry);
                    if let Some(node) = &c.node {
                        args.extend(kubelet_args(&NodePaths::new(dir, node)));
                    }
                    args
                },
                marker: pki.client_cert(&c.name),
                data_dir: None,
                address: c.listen,
            })
            .collect();
        if !processes.is_empty() {
            rows.push(ComponentSpec {
                kind,
                binary: kind.binary(),
                readiness: Readiness::Readyz,
                processes,
            });
        }
    }
    rows
}

/// The client identities of the cluster's components (their certificates in `DIR/pki`):
/// the controller-manager's and the scheduler's always (a cluster has them, whether or not
/// this `rkube` runs them), and one per kubelet of the layout.
pub fn identities(layout: &ClusterLayout) -> Vec<ClientIdentity> {
    let mut ids = Vec::new();
    for kind in [Kind::ControllerManager, Kind::Scheduler] {
        let mut names: Vec<&str> = layout
            .components
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.name.as_str())
            .collect();
        if names.is_empty() {
            names.push(kind.as_str());
        }
        for name in names {
            ids.push(match kind {
                Kind::ControllerManager => ClientIdentity::controller_manager(name),
                _ => ClientIdentity::scheduler(name),
            });
        }
    }
    ids.extend(
        layout
            .components
            .iter()
            .filter(|c| c.kind == Kind::Kubelet)
            .filter_map(|c| Some(ClientIdentity::node(&c.name, c.node.as_deref()?))),
    );
    ids
}

fn apiserver_row(
    dir: &ClusterDir,
    layout: &ClusterLayout,
    pki: &ClusterPki,
    telemetry: &Telemetry,
) -> ComponentSpec {
    ComponentSpec {
        kind: Kind::Apiserver,
        binary: Kind::Apiserver.binary(),
        readiness: Readiness::RaftStatus,
        processes: layout
            .apiservers
            .iter()
            .map(|spec| {
                let data_dir = dir.data_dir(&spec.name);
                ProcessSpec {
                    name: spec.name.clone(),
                    args: apiserver_args(layout, spec, &data_dir, pki, telemetry),
                    marker: data_dir.clone(),
                    data_dir: Some(data_dir),
                    address: spec.api_address,
                }
            })
            .collect(),
    }
}

/// The command line of one `rkube-apiserver` replica: TLS with the replica's serving
/// certificate, client certificates from the cluster CA and the token file authenticate,
/// anonymous requests are refused. Pure.
pub fn apiserver_args(
    layout: &ClusterLayout,
    spec: &ApiserverSpec,
    data_dir: &std::path::Path,
    pki: &ClusterPki,
    telemetry: &Telemetry,
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
    a.log_format = telemetry.log_format.clone();
    a.otlp_endpoint = telemetry.otlp_endpoint.clone();
    a.to_args()
}

/// The load balancer's command line: `rkube lb` in front of every replica, health-checking
/// their `/readyz` over TLS. Pure.
pub fn lb_args(layout: &ClusterLayout, pki: &ClusterPki, telemetry: &Telemetry) -> Vec<OsString> {
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
    telemetry.push_args(&mut args);
    args
}

/// The argument that identifies this cluster's load balancer among `rkube` processes: its
/// `--backend-ca` (the cluster's CA file, unique per cluster directory).
pub fn lb_marker(dir: &ClusterDir) -> PathBuf {
    ClusterPki::new(dir.pki_dir()).ca_cert()
}

/// A kubelet's own flags: its node's containerd socket, directories, cgroup root and
/// bridge (see [`crate::noderuntime`]). Pure.
pub fn kubelet_args(p: &NodePaths) -> Vec<OsString> {
    vec![
        "--container-runtime-endpoint".into(),
        format!("unix://{}", p.socket().display()).into(),
        "--root-dir".into(),
        p.kubelet_root().into(),
        "--cgroup-root".into(),
        p.cgroup_root().into(),
        "--cni-conf-dir".into(),
        p.cni_conf_dir().into(),
        "--cni-bridge".into(),
        p.bridge().into(),
    ]
}

/// The command line every component shares (see the module docs). Pure.
pub fn component_args(
    layout: &ClusterLayout,
    component: &ComponentAddress,
    pki: &ClusterPki,
    telemetry: &Telemetry,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for s in &layout.apiservers {
        args.extend(["--apiserver".into(), s.api_address.to_string().into()]);
    }
    args.extend([
        "--certificate-authority".into(),
        pki.ca_cert().into(),
        "--client-certificate".into(),
        pki.client_cert(&component.name).into(),
        "--client-key".into(),
        pki.client_key(&component.name).into(),
        "--listen".into(),
        component.listen.to_string().into(),
        // The instance name starts its Lease holder identity, which `status` reads.
        "--name".into(),
        component.name.clone().into(),
    ]);
    if component.kind.lease().is_some() {
        args.push("--leader-elect=true".into());
    }
    if let Some(node) = &component.node {
        args.extend(["--node-name".into(), node.into()]);
    }
    telemetry.push_args(&mut args);
    for flag in layout.extra_args.get(&component.kind).into_iter().flatten() {
        args.push(flag.into());
    }
    args
}

#[cfg(test)]
mod tests;
