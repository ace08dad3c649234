//! The `rkube` operator tool's logic: a supervisor for a local cluster of rkube
//! processes on one machine (`up`, `status`, `down`, the operator contract that
//! docs/architecture.md describes). `cmd/rkube` is a thin main over this crate; tests call it directly.
//!
//! Map of the modules:
//!
//! - [`layout`]: the cluster directory (`DIR/cluster.json`, `data/`, `logs/`, `pids/`) and the
//!   cluster's fixed layout (replica names, ids, addresses), allocated once and reused.
//! - [`process`]: binary discovery, detached spawning, pid files, "is this pid really our
//!   process" checks through `/proc`, signals. The only module that touches processes.
//! - [`pki`]: the cluster CA, serving and client certificates and tokens under `DIR/pki`.
//! - [`ports`]: free loopback ports for servers that bind them later.
//! - [`tls`]: TLS clients of the API port (configurations, streams, health checks) trusting
//!   that CA; gRPC channels come from `rkube_client::channel`.
//! - [`apiserver_cmd`]: the one builder of `rkube-apiserver` command lines.
//! - [`images`]: the pause and demo images, built as OCI archives from local files.
//! - [`noderuntime`]: each node's own containerd (config, start, image import) and the
//!   host clean-up `down` does.
//! - [`components`]: the table of the cluster's processes (apiservers, load balancer,
//!   controller-manager, scheduler, kubelets): binary, command line, pid and log names,
//!   readiness probe. `up`, `status` and `down` iterate it.
//! - [`up`]: start whatever of the cluster is not running and wait until it is ready.
//! - [`status`]: every replica's Raft status, every component's health and Lease, the
//!   nodes; rendered as a table or as JSON.
//! - [`down`]: stop every process of the cluster, optionally delete the directory.
//!
//! Nothing here runs cluster logic itself: every replica is a separate `rkube-apiserver`
//! process, and the load balancer a separate `rkube lb` process (crate `rkube-lb`), that
//! outlive the `rkube` command that started them. The benchmarks are crate `rkube-bench`.

pub mod apiserver_cmd;
pub mod components;
pub mod down;
mod error;
pub mod images;
pub mod layout;
pub mod noderuntime;
pub mod pki;
pub mod ports;
pub mod process;
pub mod status;
pub mod tls;
pub mod up;

pub use down::{down, DownOptions, DownReport, StoppedProcess};
pub use error::{error_chain, Error, Result};
pub use layout::{ApiserverSpec, ClusterDir, ClusterLayout, DEFAULT_DIR};
pub use status::{
    status, ApiserverStatus, ComponentStatus, NodeStatus, Output, Report, StatusOptions,
    StatusReport, ROLE_DOWN,
};
pub use up::{parse_duration, up, up_with_progress, Cluster, ReplicaStart, UpOptions};
