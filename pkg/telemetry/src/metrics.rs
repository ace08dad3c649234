//! Prometheus metrics: the one process-wide registry, its text exposition and the
//! `GET /metrics` route. Components own their metrics (they create and update them); this
//! module only holds them and serves them. It never invents metrics of its own.
//!
//! Names follow `rkube_<component>_<what>_<unit>` (`rkube_apiserver_request_duration_seconds`).
//! Counters are registered *without* `_total`: the encoder appends it, as OpenMetrics asks.
//! Register each metric once per process, typically from a `LazyLock` in the owning crate;
//! several instances of a component in one process (tests) then share its metrics.
//!
//! ```
//! use std::sync::LazyLock;
//! use prometheus_client::metrics::counter::Counter;
//!
//! static BINDS: LazyLock<Counter> = LazyLock::new(|| {
//!     let counter = Counter::default();
//!     rkube_telemetry::metrics::register(
//!         "rkube_doc_binds",
//!         "Pods bound to a node",
//!         counter.clone(),
//!     )
//!     .expect("registered once");
//!     counter
//! });
//!
//! BINDS.inc();
//! assert!(rkube_telemetry::metrics::encode().contains("rkube_doc_binds_total 1"));
//! ```

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// The content type of [`encode`]'s output (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What went wrong registering a metric.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name does not follow `rkube_<component>_<what>_<unit>` in lower snake case.
    #[error("metric name {name:?} must match rkube_<component>_<what>_<unit> (lowercase, digits, underscores, no _total suffix)")]
    InvalidName { name: String },

    /// A metric of that name is already registered in this process.
    #[error("metric {name:?} is already registered")]
    AlreadyRegistered { name: String },
}

/// `Result` with this module's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);
static NAMES: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

/// The process-wide registry, for what [`register`] does not cover (collectors, labelled
/// sub-registries). Prefer [`register`], which checks names and duplicates.
pub fn registry() -> &'static Mutex<Registry> {
    &REGISTRY
}

/// Adds `metric` to the process-wide registry under `name` (see the module docs for naming).
///
/// The metric is shared: keep a clone (metrics are `Arc`s inside) and update that.
pub fn register(name: &str, help: &str, metric: impl Metric) -> Result<()> {
    if !is_valid_name(name) {
        return Err(Error::InvalidName {
            name: name.to_owned(),
        });
    }
    if !NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned())
    {
        return Err(Error::AlreadyRegistered {
            name: name.to_owned(),
        });
    }
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .register(name, help, metric);
    Ok(())
}

fn is_valid_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("rkube_") else {
        return false;
    };
    // At least a component and a quantity: rkube_<component>_<what>.
    rest.split('_').filter(|part| !part.is_empty()).count() >= 2
        && !rest.starts_with('_')
        && !rest.ends_with('_')
        && !rest.contains("__")
        && !name.ends_with("_total")
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Bucket bounds in seconds for request and operation latencies: 100µs doubling up to ~3.3s
/// (16 buckets), which covers a local Raft commit as well as a slow image pull's start.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 16)
}

/// A histogram with [`latency_buckets`]; observe durations in seconds
/// (`histogram.observe(elapsed.as_secs_f64())`). Also usable as a `Family` constructor:
/// `Family::<Labels, Histogram>::new_with_constructor(latency_histogram)`.
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Every registered metric in the OpenMetrics text format ([`CONTENT_TYPE_OPENMETRICS`]).
pub fn encode() -> String {
    let mut text = String::new();
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        // Writing to a String cannot fail, so this is a metric refusing to encode itself.
        tracing::error!(error = %err, "encoding metrics failed; the exposition is incomplete");
    }
    text
}

/// A router serving `GET /metrics`; merge it into a component's health/metrics server.
pub fn router() -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(serve_metrics))
}

async fn serve_metrics() -> impl IntoResponse {
    ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], encode())
}

#[cfg(test)]
mod tests;
