//! rkube's kubelet: registers its Node and keeps its Lease, runs the pods bound to it in
//! a CRI runtime (containerd), and reports their status.
//!
//! Map of the modules:
//!
//! - [`cri`]: the CRI client (runtime.v1 over the runtime's unix socket).
//! - [`node`]: registration, the Lease heartbeat, node status.
//! - [`pods`]: the pod workers' sync (sandbox, images, containers, restarts, deadlines,
//!   termination and the final delete, orphan clean-up).
//! - [`pleg`]: relists the runtime every second and wakes the pods that changed.
//! - [`status`]: the pod status as a pure function; [`status_manager`] writes it.
//! - [`qos`], [`backoff`], [`cni`]: QoS classes and cgroup resources, back-off delays, the
//!   node's CNI configuration (pure, tested with tables).
//! - [`metrics`]: the pod start SLI, running pods and containers, PLEG relist duration.
//!
//! [`run`] wires them: the pod informer (only this node's pods: the server filters by
//! `spec.nodeName`) feeds a controller whose reconcile is the pod sync (one at a time per
//! pod), resynced every 20 s; the PLEG and the informer queue pods; the status manager
//! writes. Every sync runs in a `kubelet.reconcile` span continuing the pod's trace.

pub mod admission;
pub mod backoff;
pub mod cni;
pub mod cri;
pub mod metrics;
pub mod node;
pub mod pleg;
pub mod pods;
pub mod qos;
pub mod status;
pub mod status_manager;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_component::{parse_duration, BoxError, Context};
use rkube_runtime::events::Reporter;
use rkube_runtime::{Controller, InformerFactory, Recorder, Selection};

use crate::backoff::BackoffConfig;

/// The version the node reports (the Kubernetes API level rkube follows).
pub const KUBELET_VERSION: &str = "v1.33.0-rkube";

/// The kubelet's flags (Kubernetes' names where Kubernetes has the flag).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// The Node this kubelet registers and runs pods for
    #[arg(long, value_name = "NAME")]
    pub node_name: String,
    /// The CRI runtime's socket
    #[arg(
        long,
        value_name = "ENDPOINT",
        default_value = "unix:///run/containerd/containerd.sock"
    )]
    pub container_runtime_endpoint: String,
    /// The node's pod CIDR (default: the Node's spec.podCIDR from the node IPAM controller)
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// Where pod directories and logs live
    #[arg(long, value_name = "DIR", default_value = "/var/lib/rkube-kubelet")]
    pub root_dir: PathBuf,
    /// The cgroup (cgroupfs, absolute) under which kubepods/<qos>/pod<uid> are made
    #[arg(long, value_name = "CGROUP", default_value = "/")]
    pub cgroup_root: String,
    /// Write the node's CNI configuration (bridge + host-local on the pod CIDR, firewall,
    /// portmap, loopback) into this directory, which the runtime reads
    #[arg(long, value_name = "DIR")]
    pub cni_conf_dir: Option<PathBuf>,
    /// The bridge of the node's pods (default rk-<node name>)
    #[arg(long, value_name = "NAME")]
    pub cni_bridge: Option<String>,
    /// The address the node reports (default: the address of the default route)
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<String>,
    /// Pods this node takes at most
    #[arg(long, default_value_t = 110, value_name = "N")]
    pub max_pods: u32,
    /// Pods synced at once
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrent_pod_syncs: usize,
    /// Every pod is synced at least this often
    #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
    pub sync_frequency: Duration,
    /// How often the runtime is relisted
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub pleg_relist_period: Duration,
    /// The node Lease's duration
    #[arg(long, default_value = "40s", value_parser = parse_duration, value_name = "DURATION")]
    pub node_lease_duration: Duration,
    /// How often the node Lease is renewed
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub node_lease_renew_interval: Duration,
    /// How often the node status is computed (written when it changed)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub node_status_update_frequency: Duration,
    /// First CrashLoopBackOff / ImagePullBackOff delay (doubles each time)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub backoff_initial: Duration,
    /// Longest back-off delay
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub backoff_max: Duration,
    /// A container running this long without failing starts its back-off over
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub backoff_reset: Duration,
    /// Deadline of each CRI call (image pulls get at least 2 minutes)
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub runtime_request_timeout: Duration,
}

impl Config {
    pub fn crash_backoff(&self) -> BackoffConfig {
        BackoffConfig {
            initial: self.backoff_initial,
            max: self.backoff_max,
            reset_after: self.backoff_reset,
        }
    }
}

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the container runtime at {endpoint} does not answer")]
    Runtime {
        endpoint: String,
        #[source]
        source: cri::CriError,
    },
    #[error(transparent)]
    Endpoint(cri::CriError),
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error("writing the CNI configuration in {dir}")]
    Cni {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the runtime is ready, or what is wrong, from its Status conditions.
async fn runtime_problem(cri: &cri::Cri) -> Option<String> {
    match cri.status().await {
        Err(e) => Some(format!("container runtime is down: {}", e.message())),
        Ok(s) => {
            let bad: Vec<String> = s
                .status
                .map(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !c.status)
                .map(|c| {
                    format!(
                        "{}=false reason:{} message:{}",
                        c.r#type, c.reason, c.message
                    )
                })
                .collect();
            if bad.is_empty() {
                None
            } else if bad.iter().any(|b| b.starts_with("NetworkReady")) {
                Some(format!(
                    "container runtime network not ready: {}",
                    bad.join("; ")
                ))
            } else {
                Some(format!("container runtime not ready: {}", bad.join("; ")))
            }
        }
    }
}

fn write_cni(config: &Config, pod_cidr: &str) -> Result<(), StartError> {
    let Some(dir) = &config.cni_conf_dir else {
        return Ok(());
    };
    let bridge = config
        .cni_bridge
        .clone()
        .unwrap_or_else(|| cni::bridge_name(&config.node_name));
    // The network is named after the bridge: host-local keeps its allocations per network.
    match cni::write(dir, &bridge, &bridge, pod_cidr) {
        Ok(true) => {
            tracing::info!(dir = %dir.display(), %pod_cidr, %bridge, "wrote the CNI configuration");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(source) => Err(StartError::Cni {
            dir: dir.clone(),
            source,
        }),
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_cidr_of(node: &Node) -> Option<String> {
    node.spec
        .as_ref()?
        .pod_cidr
        .clone()
        .filter(|c| !c.is_empty())
}

/// Runs the kubelet until `ctx.shutdown`; see the crate documentation.
pub async fn run(ctx: Context, config: Config) -> Result<(), BoxError> {
    let cri = cri::Cri::connect(
        &config.container_runtime_endpoint,
        config.runtime_request_timeout,
    )
    .map_err(StartError::Endpoint)?;
    let version = cri.version().await.map_err(|source| StartError::Runtime {
        endpoint: config.container_runtime_endpoint.clone(),
        source,
    })?;
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    tracing::info!(runtime = %runtime_version, api = %version.runtime_api_version, "connected to the container runtime");
    std::fs::create_dir_all(&config.root_dir).map_err(|source| StartError::Cni {
        dir: config.root_dir.clone(),
        source,
    })?;
    let host = node::Host::probe(&config.root_dir, config.max_pods, config.node_ip.clone());
    let problem = runtime_problem(&cri).await;
    let now = Time(rkube_runtime::object::now());
    let status = node::node_status(
        &host,
        &config.node_name,
        &runtime_version,
        problem.as_deref(),
        None,
        &now,
    );
    let registered = node::register(
        &ctx.client,
        &config.node_name,
        config.pod_cidr.as_deref(),
        status,
    )
    .await?;
    tracing::info!(node = %config.node_name, "node registered");
    if let Some(cidr) = config.pod_cidr.clone().or_else(|| pod_cidr_of(&registered)) {
        write_cni(&config, &cidr)?;
    }

    let (recorder, writer) = Recorder::new(
        ctx.client.clone(),
        Reporter {
            component: "kubelet".to_string(),
            instance: config.node_name.clone(),
        },
    );
    ctx.tasks.spawn(writer.run(ctx.shutdown.clone()));
    recorder.publish_for(
        &registered,
        rkube_runtime::EventType::Normal,
        "Starting",
        "Starting kubelet.",
    );

    // /readyz says whether the node is Ready: what `rkube up` waits for.
    let node_ready = Arc::new(std::sync::atomic::AtomicBool::new(is_ready(&registered)));
    {
        let r = node_ready.clone();
        ctx.health.add_check("node-ready", move || {
            r.load(std::sync::atomic::Ordering::Relaxed)
        });
    }
    {
        let (cri, config2) = (cri.clone(), config.clone());
        let cidr_flag = config.pod_cidr.clone();
        ctx.tasks.spawn(node::heartbeat(
            ctx.client.clone(),
            registered,
            host.clone(),
            runtime_version,
            config.node_lease_duration,
            config.node_lease_renew_interval,
            config.node_status_update_frequency,
            recorder.clone(),
            move || {
                let cri = cri.clone();
                async move { runtime_problem(&cri).await }
            },
            move |n: &Node| {
                node_ready.store(is_ready(n), std::sync::atomic::Ordering::Relaxed);
                if cidr_flag.is_none() {
                    if let Some(cidr) = pod_cidr_of(n) {
                        if let Err(e) = write_cni(&config2, &cidr) {
                            tracing::error!(error = %rkube_component::error_chain(&e), "cannot write the CNI configuration");
                        }
                    }
                }
            },
            ctx.shutdown.clone(),
        ));
    }

    let factory = InformerFactory::new(ctx.client.clone());
    let pods = factory
        .informer::<Pod>(Selection::all().fields(&format!("spec.nodeName={}", config.node_name)));
    let status = status_manager::StatusManager::default();
    ctx.tasks
        .spawn(status.clone().run(ctx.client.clone(), ctx.shutdown.clone()));
    let controller = Controller::new("kubelet", &pods)
        .workers(config.concurrent_pod_syncs)
        .resync_every(config.sync_frequency);
    let kubelet = Arc::new(pods::Kubelet::new(
        config.clone(),
        cri,
        ctx.client.clone(),
        pods.store(),
        recorder,
        status,
        host.internal_ip.clone(),
        admission::Allocatable {
            cpu_milli: host.cpus as i64 * 1000,
            memory_bytes: host.memory_bytes,
            pods: config.max_pods as usize,
        },
    ));
    ctx.tasks.spawn(pleg::run(
        kubelet.clone(),
        controller.queue(),
        config.pleg_relist_period,
        ctx.shutdown.clone(),
    ));
    {
        let store = pods.store();
        ctx.health
            .add_check("pods-synced", move || store.has_synced());
    }
    factory.start(ctx.shutdown.clone());
    controller
        .run(
            |key, k: Arc<pods::Kubelet>| async move { k.sync(key).await },
            rkube_runtime::controller::retry_with_backoff,
            kubelet,
            ctx.shutdown.clone(),
        )
        .await;
    factory.join().await;
    Ok(())
}
