//! The kubelet's metrics (Kubernetes' names under rkube's `rkube_` prefix): the pod start
//! SLI, running pods and containers, and the PLEG relist duration. CRI latencies are in
//! [`crate::cri`].

use std::sync::LazyLock;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Clone)]
pub struct Metrics {
    /// Creation to running and ready, image pulls excluded.
    pub pod_start_sli: Histogram,
    /// Creation to running and ready, everything included.
    pub pod_start_total: Histogram,
    pub running_pods: Gauge,
    pub running_containers: Gauge,
    pub pleg_relist: Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    // 50 ms to ~100 s: pod starts.
    let starts = || Histogram::new(exponential_buckets(0.05, 1.6, 18));
    let m = Metrics {
        pod_start_sli: starts(),
        pod_start_total: starts(),
        running_pods: Gauge::default(),
        running_containers: Gauge::default(),
        pleg_relist: rkube_telemetry::metrics::latency_histogram(),
    };
    let results = [
        rkube_telemetry::metrics::register(
            "rkube_kubelet_pod_start_sli_duration_seconds",
            "Pod creation to running and ready as this kubelet saw it, image pulls excluded (Kubernetes' kubelet_pod_start_sli_duration_seconds).",
            m.pod_start_sli.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_kubelet_pod_start_total_duration_seconds",
            "Pod creation to running and ready, image pulls included.",
            m.pod_start_total.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_kubelet_running_pods",
            "Pods with a ready sandbox.",
            m.running_pods.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_kubelet_running_containers",
            "Containers running.",
            m.running_containers.clone(),
        ),
        rkube_telemetry::metrics::register(
            "rkube_kubelet_pleg_relist_duration_seconds",
            "How long listing the runtime's sandboxes and containers took.",
            m.pleg_relist.clone(),
        ),
    ];
    for r in results {
        if let Err(e) = r {
            tracing::warn!(error = %e, "metric not registered");
        }
    }
    m
});

impl Metrics {
    pub fn get() -> Metrics {
        METRICS.clone()
    }
}
