//! The agent: one per node. Waits for its Node's `spec.podCIDR` (node IPAM), makes the
//! VXLAN device on the uplink that holds the node's address, publishes the device's MAC
//! and that address as annotations on its Node, then keeps the kernel's neighbour, FDB
//! and route entries equal to what the other Nodes' annotations ask for — on every Node
//! change and every `resync` — with [`crate::plan`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rkube_client::{Api, Client, PatchType, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::{Action, Controller, InformerFactory, ObjectKey, Selection, Store};
use tokio_util::sync::CancellationToken;

use crate::kernel::{Device, Kernel, KernelError, VxlanSpec};
use crate::plan::{
    self, peer_from_node, Entry, NotAPeer, BACKEND_ANNOTATION, PUBLIC_IP_ANNOTATION,
    VTEP_MAC_ANNOTATION,
};

/// The agent's flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Config {
    /// This node's name (its Node object)
    #[arg(long, value_name = "NAME")]
    pub node_name: String,
    /// The address other nodes send VXLAN packets to (default: the Node's InternalIP);
    /// must be an address of an interface of this node
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<Ipv4Addr>,
    /// The VXLAN device
    #[arg(long, default_value = "flannel.1", value_name = "NAME")]
    pub device: String,
    /// VXLAN network identifier
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub vni: u32,
    /// VXLAN UDP port (Linux's default, as flannel uses)
    #[arg(long, default_value_t = 8472, value_name = "PORT")]
    pub port: u16,
    /// Program the network namespace at this path (e.g. /run/netns/NAME) instead of the
    /// agent's own; the API is still reached from the agent's
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// How often the kernel is compared with the wanted state even without a change
    #[arg(long, default_value = "30s", value_parser = rkube_component::parse_duration, value_name = "DURATION")]
    pub resync: Duration,
    /// Delete the VXLAN device (and the masquerading rules) when the agent stops
    #[arg(long)]
    pub delete_on_exit: bool,
    /// The whole pod range (node IPAM's --cluster-cidr): traffic within it keeps its
    /// source address
    #[arg(long, default_value = "10.244.0.0/16", value_name = "CIDR")]
    pub cluster_cidr: Ipv4Net,
    /// Masquerade pod traffic leaving --cluster-cidr (iptables chain RKUBE-OVERLAY)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub masquerade: bool,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("node {node} has no IPv4 InternalIP address; pass --public-ip")]
    NoAddress { node: String },
    #[error("updating node {node}'s annotations")]
    Annotate {
        node: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("node {node}'s spec.podCIDR {cidr:?} is not an IPv4 CIDR")]
    BadPodCidr { node: String, cidr: String },
    #[error("writing the masquerading rules")]
    Masquerade(#[from] crate::masquerade::MasqueradeError),
}

/// Errors of one reconcile (retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

struct Metrics {
    peers: Gauge,
    changes: Counter,
    failures: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        peers: Gauge::default(),
        changes: Counter::default(),
        failures: Counter::default(),
    };
    let results = [
        rkube_telemetry::metrics::register(
            "rkube_overlay_peers",
            "Other nodes whose subnet is routed through the tunnel.",
            m.peers.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_overlay_kernel_changes",
            "Neighbour, FDB and route entries added, replaced or removed.",
            m.changes.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_overlay_kernel_failures",
            "Kernel changes that failed (undone, retried with back-off).",
            m.failures.clone(),
        ),
    ];
    for r in results {
        if let Err(e) = r {
            tracing::warn!(error = %e, "overlay metric not registered");
        }
    }
    m
});

struct State {
    me: String,
    subnet: Ipv4Net,
    kernel: Kernel,
    device: Device,
    nodes: Store<Node>,
    /// Peers reported as skipped, so each reason is logged once per change.
    skipped: Mutex<std::collections::BTreeMap<String, String>>,
}

/// Runs the agent until `shutdown`.
pub async fn run(
    client: Client,
    config: Config,
    health: rkube_component::Health,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let factory = InformerFactory::new(client.clone());
    let nodes = factory.informer::<Node>(Selection::all());
    factory.start(shutdown.clone());
    let store = nodes.store();
    let key = ObjectKey::cluster(&config.node_name);

    // 1. Our Node with its subnet.
    tracing::info!(node = %config.node_name, "waiting for the node's spec.podCIDR");
    let node = loop {
        if let Some(n) = store.get(&key) {
            if n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some() {
                break n;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    let cidr = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .unwrap_or_default();
    let subnet: Ipv4Net =
        cidr.parse::<Ipv4Net>()
            .map(|n| n.trunc())
            .map_err(|_| AgentError::BadPodCidr {
                node: config.node_name.clone(),
                cidr: cidr.clone(),
            })?;
    let public_ip = match config.public_ip {
        Some(ip) => ip,
        None => internal_ip(&node).ok_or_else(|| AgentError::NoAddress {
            node: config.node_name.clone(),
        })?,
    };

    // 2. The device.
    let kernel = Kernel::open(config.netns.as_deref()).await?;
    let (uplink, uplink_mtu) = kernel.uplink_for(public_ip).await?;
    let spec = VxlanSpec {
        name: config.device.clone(),
        vni: config.vni,
        port: config.port,
        local: public_ip,
        uplink,
        mtu: plan::vxlan_mtu(uplink_mtu),
    };
    let (device, created) = kernel.ensure_vxlan(&spec).await?;
    kernel.set_address(device.index, subnet.network()).await?;
    tracing::info!(device = %spec.name, mac = %device.mac, %public_ip, %subnet, mtu = spec.mtu, created,
        "VXLAN device ready");

    if config.masquerade {
        let (cluster, netns) = (config.cluster_cidr, config.netns.clone());
        tokio::task::spawn_blocking(move || {
            crate::masquerade::apply(cluster, subnet, netns.as_deref())
        })
        .await
        .expect("the iptables task does not panic")?;
        tracing::info!(cluster = %config.cluster_cidr, "pod traffic leaving the cluster range is masqueraded");
    }

    // 3. Tell the others.
    annotate(&client, &config.node_name, &device, public_ip).await?;

    // 4. Keep the kernel in step with the other nodes.
    let controller = Controller::new("overlay", &nodes).resync_every(config.resync);
    let state = Arc::new(State {
        me: config.node_name.clone(),
        subnet,
        kernel: kernel.clone(),
        device,
        nodes: store.clone(),
        skipped: Mutex::new(Default::default()),
    });
    let synced = nodes.clone();
    health.add_check("informers-synced", move || synced.has_synced());
    // A node's reconcile re-plans every peer: any key stands for "the set of nodes".
    let annotations_again = {
        let (client, name) = (client.clone(), config.node_name.clone());
        let watched = store.clone();
        let me_key = key.clone();
        move || {
            // Our own Node lost its annotations (e.g. re-registered): put them back.
            let mine = watched.get(&me_key);
            let ok = mine.as_ref().is_some_and(|n| {
                let a = n.metadata.annotations.clone().unwrap_or_default();
                a.get(VTEP_MAC_ANNOTATION) == Some(&device.mac.to_string())
                    && a.get(PUBLIC_IP_ANNOTATION) == Some(&public_ip.to_string())
            });
            (!ok).then(|| (client.clone(), name.clone()))
        }
    };
    let st = state.clone();
    let reconcile = move |_key: ObjectKey, st: Arc<State>| {
        let again = annotations_again();
        async move {
            if let Some((client, name)) = again {
                if let Err(e) = annotate(&client, &name, &st.device, public_ip).await {
                    tracing::warn!(error = %rkube_component::error_chain(&e), "re-annotating the node failed");
                }
            }
            sync(&st).await
        }
    };
    controller
        .run(reconcile, retry_with_backoff, st, shutdown.clone())
        .await;
    if config.delete_on_exit {
        if config.masquerade {
            let netns = config.netns.clone();
            tokio::task::spawn_blocking(move || crate::masquerade::remove(netns.as_deref()))
                .await
                .expect("the iptables task does not panic")?;
        }
        kernel.delete_link(&config.device).await?;
        tracing::info!(device = %config.device, "VXLAN device deleted");
    }
    drop(state);
    Ok(())
}

/// One pass: plan from the Node objects and the kernel, apply. Per peer, steps that
/// succeeded are removed again when a later one fails, so a peer is either wholly
/// programmed or not at all.
async fn sync(st: &State) -> Result<Action, SyncError> {
    let span = tracing::info_span!("overlay.sync", otel.name = "overlay.sync", node = %st.me,
        peers = tracing::field::Empty, changes = tracing::field::Empty);
    let _enter = span.enter();
    let mut peers = Vec::new();
    let mut skipped = std::collections::BTreeMap::new();
    for n in st.nodes.list() {
        match peer_from_node(&n, &st.me) {
            Ok(p) => peers.push(p),
            Err(NotAPeer::Me) => {}
            Err(why) => {
                skipped.insert(n.metadata.name.clone().unwrap_or_default(), why.to_string());
            }
        }
    }
    {
        let mut last = st.skipped.lock().unwrap_or_else(PoisonError::into_inner);
        for (node, why) in &skipped {
            if last.get(node) != Some(why) {
                tracing::info!(peer = %node, reason = %why, "node not in the overlay yet");
            }
        }
        *last = skipped;
    }
    let now = st.kernel.read(st.device.index).await?;
    let plan = plan::plan(&peers, Some(st.subnet), &now);
    for node in &plan.conflicts {
        tracing::warn!(peer = %node, "node left out: its subnet or VTEP MAC is another's");
    }
    let mut changes = 0u64;
    for e in &plan.remove {
        st.kernel.remove(st.device.index, e).await?;
        tracing::info!(entry = %e, "removed");
        changes += 1;
    }
    let mut first_error = None;
    for steps in &plan.add {
        let mut done: Vec<&Entry> = Vec::new();
        for e in &steps.add {
            match st.kernel.add(st.device.index, e).await {
                Ok(()) => {
                    tracing::info!(peer = %steps.node, entry = %e, "programmed");
                    done.push(e);
                    changes += 1;
                }
                Err(err) => {
                    METRICS.failures.inc();
                    tracing::warn!(peer = %steps.node, entry = %e,
                        error = %rkube_component::error_chain(&err), "programming failed; undoing this peer's steps");
                    for d in done.iter().rev() {
                        let _ = st.kernel.remove(st.device.index, d).await;
                    }
                    first_error.get_or_insert(err);
                    break;
                }
            }
        }
    }
    METRICS.changes.inc_by(changes);
    METRICS
        .peers
        .set((peers.len() - plan.conflicts.len().min(peers.len())) as i64);
    span.record("peers", peers.len());
    span.record("changes", changes);
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(Action::await_change()),
    }
}

/// Puts the VTEP MAC, the public IP and the backend on our Node (merge patch; nothing is
/// written when they are already there).
async fn annotate(
    client: &Client,
    node: &str,
    device: &Device,
    public_ip: Ipv4Addr,
) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(client);
    let patch = serde_json::json!({"metadata": {"annotations": {
        VTEP_MAC_ANNOTATION: device.mac.to_string(),
        PUBLIC_IP_ANNOTATION: public_ip.to_string(),
        BACKEND_ANNOTATION: "vxlan",
    }}});
    nodes
        .patch(node, PatchType::Merge, &patch, &WriteParams::default())
        .await
        .map_err(|source| AgentError::Annotate {
            node: node.to_string(),
            source,
        })?;
    tracing::info!(node, mac = %device.mac, %public_ip, "node annotated with its VTEP");
    Ok(())
}

/// The Node's first IPv4 InternalIP.
pub fn internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| match a.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(v)) => Some(v),
            _ => None,
        })
}
