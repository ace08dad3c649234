//! The kubelet's Node: registration (capacity and allocatable from the host, addresses,
//! nodeInfo with the runtime's version, the four conditions), its Lease in
//! `kube-node-lease` renewed every `lease_renew` (what the node lifecycle controller
//! watches), and status updates when something changed (or every five minutes).
//!
//! Never: touch pods. The pod CIDR is read here and handed to the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use rkube_client::{Api, Client, PatchType, WriteParams};
use rkube_runtime::{EventType, Recorder};
use tokio_util::sync::CancellationToken;

/// What the host offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub cpus: usize,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
    pub max_pods: u32,
    pub internal_ip: String,
    pub hostname: String,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The first IPv4 address of the interface the default route leaves by (no packet is
/// sent: connecting a UDP socket only picks the source address), or 127.0.0.1.
pub fn default_ip() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("10.255.255.255:9")?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".to_string())
}

impl Host {
    /// Reads the host (`/proc`, `/etc`, statvfs of `root_dir`).
    pub fn probe(root_dir: &std::path::Path, max_pods: u32, node_ip: Option<String>) -> Host {
        let memory_kib = read_trimmed("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .unwrap_or(0);
        let storage = nix::sys::statvfs::statvfs(root_dir)
            .map(|s| s.blocks() as i64 * s.fragment_size() as i64)
            .unwrap_or(0);
        let os_image = read_trimmed("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".to_string());
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: memory_kib * 1024,
            ephemeral_storage_bytes: storage,
            max_pods,
            internal_ip: node_ip.unwrap_or_else(default_ip),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        }
    }

    fn resources(&self) -> BTreeMap<String, Quantity> {
        [
            ("cpu", self.cpus.to_string()),
            ("memory", format!("{}Ki", self.memory_bytes / 1024)),
            (
                "ephemeral-storage",
                format!("{}Ki", self.ephemeral_storage_bytes / 1024),
            ),
            ("pods", self.max_pods.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v)))
        .collect()
    }
}

/// The conditions' (type, status, reason, message) when the runtime is `runtime_ready`
/// (or why not). Pure.
pub fn conditions(
    runtime_problem: Option<&str>,
) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let ready = match runtime_problem {
        None => (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status".to_string(),
        ),
        Some(why) => ("Ready", "False", "KubeletNotReady", why.to_string()),
    };
    vec![
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available".to_string(),
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure".to_string(),
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available".to_string(),
        ),
        ready,
    ]
}

/// The node's status, keeping transition times of conditions that did not change. Pure.
pub fn node_status(
    host: &Host,
    node_name: &str,
    runtime_version: &str,
    runtime_problem: Option<&str>,
    previous: Option<&NodeStatus>,
    now: &Time,
) -> NodeStatus {
    let prev = |t: &str| {
        previous
            .and_then(|p| p.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t).cloned())
    };
    let conditions = conditions(runtime_problem)
        .into_iter()
        .map(|(t, status, reason, message)| {
            let since = prev(t)
                .filter(|c| c.status == status)
                .and_then(|c| c.last_transition_time)
                .unwrap_or_else(|| now.clone());
            NodeCondition {
                type_: t.to_string(),
                status: status.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message),
                last_transition_time: Some(since),
                last_heartbeat_time: Some(now.clone()),
            }
        })
        .collect();
    NodeStatus {
        capacity: Some(host.resources()),
        allocatable: Some(host.resources()),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: host.internal_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node_name.to_string(),
            },
        ]),
        conditions: Some(conditions),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: host.boot_id.clone(),
            container_runtime_version: runtime_version.to_string(),
            kernel_version: host.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: crate::KUBELET_VERSION.to_string(),
            machine_id: host.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: host.os_image.clone(),
            system_uuid: host.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The status with heartbeat times blanked, to tell a real change from a heartbeat.
fn without_heartbeats(s: &NodeStatus) -> NodeStatus {
    let mut s = s.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
    }
    s.images = None;
    s.daemon_endpoints = None;
    s
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("registering node {node}")]
    Register {
        node: String,
        #[source]
        source: rkube_client::Error,
    },
}

/// Registers the node (or takes over an existing one of the same name).
pub async fn register(
    client: &Client,
    name: &str,
    pod_cidr: Option<&str>,
    status: NodeStatus,
) -> Result<Node, NodeError> {
    let api: Api<Node> = Api::cluster(client);
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: pod_cidr.map(str::to_string),
            pod_cidrs: pod_cidr.map(|c| vec![c.to_string()]),
            ..Default::default()
        }),
        status: Some(status.clone()),
    };
    let err = |source| NodeError::Register {
        node: name.to_string(),
        source,
    };
    match api.create(&node, &WriteParams::default()).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(err(e)),
    }
    // Status is a subresource: a create may drop it.
    patch_status(client, name, &status).await.map_err(err)
}

async fn patch_status(
    client: &Client,
    name: &str,
    status: &NodeStatus,
) -> rkube_client::Result<Node> {
    let body = serde_json::to_vec(&serde_json::json!({"status": status})).expect("encodes");
    let v = client
        .patch(
            &rkube_client::Gvr::of::<Node>(),
            "",
            name,
            "status",
            PatchType::Merge,
            &body,
            &WriteParams::default(),
        )
        .await?;
    serde_json::from_value(v).map_err(|e| rkube_client::Error::Decode(e.to_string()))
}

/// Creates or renews the node's Lease.
pub async fn renew_lease(
    client: &Client,
    node: &Node,
    duration: Duration,
) -> rkube_client::Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let now = MicroTime(rkube_runtime::object::now());
    let spec = LeaseSpec {
        holder_identity: Some(name.clone()),
        lease_duration_seconds: Some(duration.as_secs() as i32),
        renew_time: Some(now),
        ..Default::default()
    };
    let patch = serde_json::json!({"spec": spec});
    match api
        .patch(&name, PatchType::Merge, &patch, &WriteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.clone(),
                        uid: node.metadata.uid.clone().unwrap_or_default(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&lease, &WriteParams::default()).await.map(drop)
        }
        Err(e) => Err(e),
    }
}

/// The node's heartbeat loops: the Lease every `renew`, the status when it changes (checked
/// every `status_every`) or at least every five minutes. `runtime` says whether the
/// runtime is ready (None) or what is wrong. Runs until `shutdown`.
#[allow(clippy::too_many_arguments)]
pub async fn heartbeat<F, Fut>(
    client: Client,
    mut node: Node,
    host: Host,
    runtime_version: String,
    lease_duration: Duration,
    renew: Duration,
    status_every: Duration,
    recorder: Recorder,
    mut runtime: F,
    on_node: impl Fn(&Node) + Send,
    shutdown: CancellationToken,
) where
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut lease_tick = tokio::time::interval(renew);
    // Every second until the node is first Ready (its pod CIDR, hence its network, comes
    // soon after registration), then every `status_every`.
    let mut status_tick = tokio::time::interval(status_every.min(Duration::from_secs(1)));
    let mut settled = false;
    let mut last_report = tokio::time::Instant::now();
    let mut was_ready = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&client, &node, lease_duration).await {
                    tracing::warn!(node = %name, error = %rkube_component::error_chain(&e), "cannot renew the node's lease");
                }
            }
            _ = status_tick.tick() => {
                // The Node as the cluster has it: its pod CIDR comes from the IPAM controller.
                match Api::<Node>::cluster(&client).get(&name).await {
                    Ok(n) => {
                        on_node(&n);
                        node = n;
                    }
                    Err(e) => tracing::warn!(node = %name, error = %rkube_component::error_chain(&e), "cannot read the node"),
                }
                let problem = runtime().await;
                let now = Time(rkube_runtime::object::now());
                let status = node_status(&host, &name, &runtime_version, problem.as_deref(), node.status.as_ref(), &now);
                let changed = node.status.as_ref().map(without_heartbeats) != Some(without_heartbeats(&status));
                if problem.is_none() && !settled {
                    settled = true;
                    status_tick = tokio::time::interval_at(
                        tokio::time::Instant::now() + status_every,
                        status_every,
                    );
                }
                if !changed && last_report.elapsed() < Duration::from_secs(300) {
                    continue;
                }
                match patch_status(&client, &name, &status).await {
                    Ok(n) => {
                        last_report = tokio::time::Instant::now();
                        let ready = problem.is_none();
                        if was_ready != Some(ready) {
                            let reason = if ready { "NodeReady" } else { "NodeNotReady" };
                            let message = format!("Node {name} status is now: {reason}");
                            recorder.publish_for(&n, EventType::Normal, reason, &message);
                            was_ready = Some(ready);
                        }
                        on_node(&n);
                        node = n;
                    }
                    Err(e) => tracing::warn!(node = %name, error = %rkube_component::error_chain(&e), "cannot update the node's status"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            cpus: 2,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 20 << 30,
            max_pods: 110,
            internal_ip: "10.0.0.5".into(),
            hostname: "h".into(),
            kernel_version: "6.1".into(),
            os_image: "Debian".into(),
            machine_id: "m".into(),
            boot_id: "b".into(),
        }
    }

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn the_status_reports_capacity_addresses_runtime_and_four_conditions() {
        let s = node_status(&host(), "n1", "containerd://1.6.20", None, None, &t(1));
        let cap = s.capacity.as_ref().unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        assert!(cap.contains_key("ephemeral-storage"));
        assert_eq!(s.allocatable, s.capacity);
        let types: Vec<(&str, &str)> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
                ("Ready", "True")
            ]
        );
        assert_eq!(
            s.node_info.unwrap().container_runtime_version,
            "containerd://1.6.20"
        );
        assert_eq!(s.addresses.unwrap()[0].address, "10.0.0.5");
    }

    #[test]
    fn a_heartbeat_alone_is_no_change_but_readiness_is() {
        let first = node_status(&host(), "n1", "c", None, None, &t(1));
        let beat = node_status(&host(), "n1", "c", None, Some(&first), &t(11));
        assert_eq!(without_heartbeats(&first), without_heartbeats(&beat));
        let down = node_status(
            &host(),
            "n1",
            "c",
            Some("network not ready"),
            Some(&beat),
            &t(21),
        );
        assert_ne!(without_heartbeats(&beat), without_heartbeats(&down));
        let ready = down
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(ready.last_transition_time, Some(t(21)));
    }
}
