//! The CRI client: `runtime.v1` RuntimeService and ImageService over the runtime's unix
//! socket (containerd's CRI plugin). Every call is timed into
//! `rkube_kubelet_cri_operation_duration_seconds{operation}`, counted as an error in
//! `rkube_kubelet_cri_operation_errors{operation}` when it fails, carries the current
//! span's `traceparent` in its gRPC metadata, and has a deadline.
//!
//! Never: decide anything about pods. This module only speaks the protocol.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tonic::transport::{Channel, Endpoint};

/// The generated `runtime.v1` messages and clients (proto/k8s/cri/v1/api.proto).
#[allow(clippy::all)]
pub mod pb {
    tonic::include_proto!("runtime.v1");
}

use pb::image_service_client::ImageServiceClient;
use pb::runtime_service_client::RuntimeServiceClient;

/// Labels the kubelet puts on every sandbox and container it creates, so a restarted
/// kubelet finds what belongs to which pod (Kubernetes' names).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks what this kubelet manages (a sandbox without it is left alone).
pub const LABEL_MANAGED: &str = "rkube.io/managed-by";
/// The node whose kubelet created it (several kubelets may share a runtime in tests).
pub const LABEL_NODE: &str = "rkube.io/node";

/// A failed CRI call.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("invalid runtime endpoint {0:?}: expected unix:///path/to/socket or a path")]
    Endpoint(String),
    #[error("CRI {operation}: {status}")]
    Call {
        operation: &'static str,
        #[source]
        status: tonic::Status,
    },
}

impl CriError {
    /// The gRPC code of a failed call (`Unknown` for endpoint errors).
    pub fn code(&self) -> tonic::Code {
        match self {
            CriError::Call { status, .. } => status.code(),
            CriError::Endpoint(_) => tonic::Code::Unknown,
        }
    }

    /// The runtime's own message.
    pub fn message(&self) -> String {
        match self {
            CriError::Call { status, .. } => status.message().to_string(),
            CriError::Endpoint(e) => e.clone(),
        }
    }
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: String,
}

struct Metrics {
    duration: Family<Operation, Histogram, fn() -> Histogram>,
    errors: Family<Operation, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        duration: Family::new_with_constructor(rkube_telemetry::metrics::latency_histogram),
        errors: Family::default(),
    };
    for r in [
        rkube_telemetry::metrics::register(
            "rkube_kubelet_cri_operation_duration_seconds",
            "CRI call latency by operation (Kubernetes' kubelet_runtime_operations_duration_seconds).",
            m.duration.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_kubelet_cri_operation_errors",
            "Failed CRI calls by operation.",
            m.errors.clone(),
        ),
    ] {
        if let Err(e) = r {
            tracing::warn!(error = %e, "metric not registered");
        }
    }
    m
});

/// A CRI runtime at one unix socket. Cheap to clone.
#[derive(Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    timeout: Duration,
}

/// The socket path of `unix:///run/x.sock` or `/run/x.sock`.
pub fn socket_path(endpoint: &str) -> Result<PathBuf> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(CriError::Endpoint(endpoint.to_string()))
    }
}

macro_rules! call {
    ($self:ident, $client:ident, $method:ident, $op:literal, $req:expr) => {{
        let mut request = tonic::Request::new($req);
        request.set_timeout($self.timeout);
        rkube_telemetry::propagation::inject(request.metadata_mut());
        let labels = Operation {
            operation: $op.to_string(),
        };
        let started = Instant::now();
        let result = $self.$client.clone().$method(request).await;
        METRICS
            .duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => {
                METRICS.errors.get_or_create(&labels).inc();
                Err(CriError::Call {
                    operation: $op,
                    status,
                })
            }
        }
    }};
}

impl Cri {
    /// A client of the runtime at `endpoint` (connects lazily, reconnects as needed).
    pub fn connect(endpoint: &str, timeout: Duration) -> Result<Cri> {
        let path = socket_path(endpoint)?;
        let channel = unix_channel(&path);
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            timeout,
        })
    }

    pub async fn version(&self) -> Result<pb::VersionResponse> {
        call!(
            self,
            runtime,
            version,
            "version",
            pb::VersionRequest {
                version: "v1".into()
            }
        )
    }

    pub async fn status(&self) -> Result<pb::StatusResponse> {
        call!(
            self,
            runtime,
            status,
            "status",
            pb::StatusRequest { verbose: false }
        )
    }

    pub async fn run_pod_sandbox(&self, config: pb::PodSandboxConfig) -> Result<String> {
        let r = call!(
            self,
            runtime,
            run_pod_sandbox,
            "run_podsandbox",
            pb::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }
        )?;
        Ok(r.pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            stop_pod_sandbox,
            "stop_podsandbox",
            pb::StopPodSandboxRequest {
                pod_sandbox_id: id.into()
            }
        )
        .map(drop)
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            remove_pod_sandbox,
            "remove_podsandbox",
            pb::RemovePodSandboxRequest {
                pod_sandbox_id: id.into()
            }
        )
        .map(drop)
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<pb::PodSandboxStatus> {
        let r = call!(
            self,
            runtime,
            pod_sandbox_status,
            "podsandbox_status",
            pb::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            }
        )?;
        Ok(r.status.unwrap_or_default())
    }

    /// The sandboxes carrying every label of `labels`.
    pub async fn list_pod_sandbox(&self, labels: &[(&str, &str)]) -> Result<Vec<pb::PodSandbox>> {
        let r = call!(
            self,
            runtime,
            list_pod_sandbox,
            "list_podsandbox",
            pb::ListPodSandboxRequest {
                filter: Some(pb::PodSandboxFilter {
                    label_selector: selector(labels),
                    ..Default::default()
                })
            }
        )?;
        Ok(r.items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: pb::ContainerConfig,
        sandbox_config: pb::PodSandboxConfig,
    ) -> Result<String> {
        let r = call!(
            self,
            runtime,
            create_container,
            "create_container",
            pb::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            }
        )?;
        Ok(r.container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            start_container,
            "start_container",
            pb::StartContainerRequest {
                container_id: id.into()
            }
        )
        .map(drop)
    }

    /// Stops the container: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let mut me = self.clone();
        // The call itself lasts up to the grace period.
        me.timeout = self.timeout + grace;
        call!(
            me,
            runtime,
            stop_container,
            "stop_container",
            pb::StopContainerRequest {
                container_id: id.into(),
                timeout: grace.as_secs() as i64,
            }
        )
        .map(drop)
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            remove_container,
            "remove_container",
            pb::RemoveContainerRequest {
                container_id: id.into()
            }
        )
        .map(drop)
    }

    /// The containers carrying every label of `labels`.
    pub async fn list_containers(&self, labels: &[(&str, &str)]) -> Result<Vec<pb::Container>> {
        let r = call!(
            self,
            runtime,
            list_containers,
            "list_containers",
            pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    label_selector: selector(labels),
                    ..Default::default()
                })
            }
        )?;
        Ok(r.containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<pb::ContainerStatus> {
        let r = call!(
            self,
            runtime,
            container_status,
            "container_status",
            pb::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            }
        )?;
        Ok(r.status.unwrap_or_default())
    }

    /// The image, or `None` when the runtime does not have it (not an error in CRI).
    pub async fn image_status(&self, image: &str) -> Result<Option<pb::Image>> {
        let r = call!(
            self,
            images,
            image_status,
            "image_status",
            pb::ImageStatusRequest {
                image: Some(pb::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            }
        )?;
        Ok(r.image)
    }

    pub async fn pull_image(
        &self,
        image: &str,
        sandbox_config: pb::PodSandboxConfig,
    ) -> Result<String> {
        let mut me = self.clone();
        me.timeout = self.timeout.max(Duration::from_secs(120));
        let r = call!(
            me,
            images,
            pull_image,
            "pull_image",
            pb::PullImageRequest {
                image: Some(pb::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth: None,
                sandbox_config: Some(sandbox_config),
            }
        )?;
        Ok(r.image_ref)
    }
}

fn selector(labels: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A lazily connecting channel to a unix socket (the URI is a placeholder tonic needs).
fn unix_channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    Endpoint::from_static("http://cri.invalid").connect_with_connector_lazy(tower::service_fn(
        move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_names_an_absolute_socket_path() {
        for (endpoint, want) in [
            (
                "unix:///run/containerd/containerd.sock",
                Some("/run/containerd/containerd.sock"),
            ),
            ("/tmp/n1/containerd.sock", Some("/tmp/n1/containerd.sock")),
            ("unix://relative.sock", None),
            ("tcp://127.0.0.1:1", None),
        ] {
            assert_eq!(
                socket_path(endpoint).ok(),
                want.map(PathBuf::from),
                "{endpoint}"
            );
        }
    }
}
