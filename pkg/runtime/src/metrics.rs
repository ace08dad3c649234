//! The runtime's Prometheus metrics, registered once per process in pkg/telemetry's
//! registry and labelled by queue, controller or resource, so any number of controllers
//! and informers in one process share the families.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Name {
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Families {
    depth: Family<Name, Gauge>,
    adds: Family<Name, Counter>,
    retries: Family<Name, Counter>,
    queue_duration: Histograms<Name>,
    reconcile_duration: Histograms<Name>,
    reconcile_errors: Family<Name, Counter>,
    informer_events: Family<ResourceLabel, Counter>,
    informer_relists: Family<ResourceLabel, Counter>,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let f = Families {
        depth: Family::default(),
        adds: Family::default(),
        retries: Family::default(),
        queue_duration: Family::new_with_constructor(rkube_telemetry::metrics::latency_histogram),
        reconcile_duration: Family::new_with_constructor(
            rkube_telemetry::metrics::latency_histogram,
        ),
        reconcile_errors: Family::default(),
        informer_events: Family::default(),
        informer_relists: Family::default(),
    };
    macro_rules! reg {
        ($name:expr, $help:expr, $metric:expr) => {
            if let Err(e) = rkube_telemetry::metrics::register($name, $help, $metric.clone()) {
                tracing::warn!(metric = $name, error = %e, "metric not registered");
            }
        };
    }
    reg!(
        "rkube_workqueue_depth",
        "Keys waiting in the work queue.",
        f.depth
    );
    reg!(
        "rkube_workqueue_adds",
        "Keys added to the work queue.",
        f.adds
    );
    reg!(
        "rkube_workqueue_retries",
        "Rate-limited re-adds of keys whose reconcile failed.",
        f.retries
    );
    reg!(
        "rkube_workqueue_queue_duration_seconds",
        "How long a key waited in the queue before a worker took it.",
        f.queue_duration
    );
    reg!(
        "rkube_controller_reconcile_duration_seconds",
        "How long one reconcile took.",
        f.reconcile_duration
    );
    reg!(
        "rkube_controller_reconcile_errors",
        "Reconciles that returned an error.",
        f.reconcile_errors
    );
    reg!(
        "rkube_informer_events",
        "Watch events an informer applied to its cache.",
        f.informer_events
    );
    reg!(
        "rkube_informer_relists",
        "Full lists an informer made (start, and after its watch expired).",
        f.informer_relists
    );
    f
});

fn name(n: &str) -> Name {
    Name {
        name: n.to_string(),
    }
}

/// One work queue's metrics.
pub(crate) struct QueueMetrics {
    pub depth: Gauge,
    pub adds: Counter,
    pub retries: Counter,
    pub queue_duration: Histogram,
}

impl QueueMetrics {
    pub fn for_queue(queue: &str) -> Self {
        let f = &*FAMILIES;
        let l = name(queue);
        QueueMetrics {
            depth: f.depth.get_or_create(&l).clone(),
            adds: f.adds.get_or_create(&l).clone(),
            retries: f.retries.get_or_create(&l).clone(),
            queue_duration: f.queue_duration.get_or_create(&l).clone(),
        }
    }
}

/// One controller's metrics.
pub(crate) struct ControllerMetrics {
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Counter,
}

impl ControllerMetrics {
    pub fn for_controller(controller: &str) -> Self {
        let f = &*FAMILIES;
        let l = name(controller);
        ControllerMetrics {
            reconcile_duration: f.reconcile_duration.get_or_create(&l).clone(),
            reconcile_errors: f.reconcile_errors.get_or_create(&l).clone(),
        }
    }
}

/// One informer's metrics.
pub(crate) struct InformerMetrics {
    pub events: Counter,
    pub relists: Counter,
}

impl InformerMetrics {
    pub fn for_resource(resource: &str) -> Self {
        let f = &*FAMILIES;
        let l = ResourceLabel {
            resource: resource.to_string(),
        };
        InformerMetrics {
            events: f.informer_events.get_or_create(&l).clone(),
            relists: f.informer_relists.get_or_create(&l).clone(),
        }
    }
}
