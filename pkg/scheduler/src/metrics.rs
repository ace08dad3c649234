//! The scheduler's metrics under kube-scheduler's own names (so dashboards and alerts
//! written for kube-scheduler read them unchanged), registered once per process in
//! pkg/telemetry's registry:
//!
//! - `scheduler_pending_pods{queue="active|backoff|unschedulable"}`
//! - `scheduler_scheduling_attempt_duration_seconds{result,profile}` (filter and score
//!   of one attempt; result `scheduled`, `unschedulable` or `error`)
//! - `scheduler_schedule_attempts_total{result,profile}`
//! - `scheduler_pod_scheduling_sli_duration_seconds{attempts}`: from the pod's first
//!   entry into the queue to its successful Binding.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
    profile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptsLabel {
    attempts: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Families {
    pending: Family<QueueLabel, Gauge>,
    attempt_duration: Histograms<ResultLabels>,
    attempts: Family<ResultLabels, Counter>,
    sli: Histograms<AttemptsLabel>,
}

fn sli_histogram() -> Histogram {
    // 10 ms doubling to ~164 s, kube-scheduler's range for this metric.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.01, 2.0, 15,
    ))
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let f = Families {
        pending: Family::default(),
        attempt_duration: Family::new_with_constructor(rkube_telemetry::metrics::latency_histogram),
        attempts: Family::default(),
        sli: Family::new_with_constructor(sli_histogram),
    };
    let mut r = rkube_telemetry::metrics::registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    r.register(
        "scheduler_pending_pods",
        "Number of pending pods, by the queue type.",
        f.pending.clone(),
    );
    r.register(
        "scheduler_scheduling_attempt_duration_seconds",
        "Scheduling attempt latency in seconds (scheduling algorithm + binding start).",
        f.attempt_duration.clone(),
    );
    r.register(
        "scheduler_schedule_attempts",
        "Number of attempts to schedule pods, by the result.",
        f.attempts.clone(),
    );
    r.register(
        "scheduler_pod_scheduling_sli_duration_seconds",
        "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue until it is bound.",
        f.sli.clone(),
    );
    f
});

pub(crate) fn pending(active: usize, backoff: usize, unschedulable: usize) {
    let f = &*FAMILIES;
    for (queue, n) in [
        ("active", active),
        ("backoff", backoff),
        ("unschedulable", unschedulable),
    ] {
        f.pending.get_or_create(&QueueLabel { queue }).set(n as i64);
    }
}

pub(crate) fn attempt(result: &'static str, profile: &str, took: Duration) {
    let labels = ResultLabels {
        result,
        profile: profile.to_string(),
    };
    let f = &*FAMILIES;
    f.attempt_duration
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    f.attempts.get_or_create(&labels).inc();
}

pub(crate) fn scheduled(attempts: u32, since_first_queued: Duration) {
    let label = AttemptsLabel {
        attempts: attempts.min(15).to_string(),
    };
    FAMILIES
        .sli
        .get_or_create(&label)
        .observe(since_first_queued.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_carry_kube_schedulers_names_and_labels() {
        pending(3, 2, 1);
        attempt("scheduled", "default-scheduler", Duration::from_millis(2));
        scheduled(1, Duration::from_millis(150));
        let text = rkube_telemetry::metrics::encode();
        for want in [
            // Values aside: the queue's tests set these gauges too, in parallel.
            "scheduler_pending_pods{queue=\"active\"}",
            "scheduler_pending_pods{queue=\"backoff\"}",
            "scheduler_pending_pods{queue=\"unschedulable\"}",
            "scheduler_scheduling_attempt_duration_seconds_count{result=\"scheduled\",profile=\"default-scheduler\"}",
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"}",
            "scheduler_pod_scheduling_sli_duration_seconds_count{attempts=\"1\"}",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
