//! Installing the process-wide telemetry pipeline: the global `tracing` subscriber, the
//! OpenTelemetry tracer provider with its OTLP/gRPC exporter, and the global W3C propagator.
//! This module owns that global state and its teardown; it must never be called from library
//! code, only from a binary's `main` (or a test that owns its process).
//!
//! Two filters, on purpose: `--log-level` decides which *logs* reach stderr, while spans and
//! their events are exported at `info` and above whatever the log level, so that quieting logs
//! never breaks the one-trace-per-pod-start story. The exporter's own transport crates (h2,
//! hyper, tonic, tower, opentelemetry) are never exported, or every export would trace itself.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{Error, LogFormat, Result, TelemetryArgs};

/// Targets whose spans and events are never exported (they carry the export itself).
const NOT_EXPORTED: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry-otlp",
    "opentelemetry_otlp",
];

/// Installs logging and (when an OTLP endpoint is configured) span export for this process.
///
/// `service_name` becomes the OpenTelemetry `service.name` resource attribute, which is how
/// Jaeger names the process (`rkube-apiserver`, `rkube-kubelet`, ...).
///
/// Spans are batched on a background thread and sent every few seconds over a gRPC connection
/// that lives on a small Tokio runtime of its own, so this works inside or outside the
/// caller's runtime and flushing never waits on a runtime the caller is blocking. Keep the
/// returned guard alive for the life of the process and shut it down (or drop it) at the end
/// so the last batch is sent.
///
/// A process has one global subscriber: a second call returns
/// [`Error::AlreadyInitialized`] and changes nothing.
pub fn init(service_name: &str, args: &TelemetryArgs) -> Result<TelemetryGuard> {
    let log_filter = EnvFilter::builder()
        .parse(log_directives(args.log_filter()))
        .map_err(|source| Error::InvalidLogFilter {
            filter: args.log_filter().to_owned(),
            source,
        })?;

    let exporter = match args.otlp_endpoint() {
        Some(endpoint) => Some(Exporter::start(service_name, endpoint)?),
        None => None,
    };

    let otel_layer = exporter.as_ref().map(|exporter| {
        tracing_opentelemetry::layer()
            .with_tracer(exporter.provider.tracer("rkube"))
            .with_filter(export_filter())
    });
    let ansi = args.log_format == LogFormat::Text && std::io::stderr().is_terminal();
    let subscriber = tracing_subscriber::registry()
        .with(fmt_layer(args.log_format, std::io::stderr, ansi).with_filter(log_filter))
        .with(otel_layer);

    if let Err(err) = subscriber.try_init() {
        if let Some(exporter) = exporter {
            // Nothing was recorded through it; failing to shut it down changes nothing.
            let _ = exporter.shutdown();
        }
        return Err(Error::AlreadyInitialized(err));
    }

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(exporter) = &exporter {
        opentelemetry::global::set_tracer_provider(exporter.provider.clone());
    }
    Ok(TelemetryGuard { exporter })
}

/// Keeps span export running; flushes and stops it on [`shutdown`](Self::shutdown) or drop.
///
/// Shutting down blocks the calling thread until the last batch is sent or about five seconds
/// have passed (an unreachable collector). It does not need the caller's runtime to make
/// progress, so it is safe in `async fn main` on any runtime flavour.
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    exporter: Option<Exporter>,
}

impl TelemetryGuard {
    /// Whether spans are being exported (an OTLP endpoint was configured).
    pub fn is_exporting(&self) -> bool {
        self.exporter.is_some()
    }

    /// Flushes buffered spans and stops the exporter, reporting any failure.
    pub fn shutdown(mut self) -> Result<()> {
        match self.exporter.take() {
            Some(exporter) => exporter.shutdown(),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(exporter) = self.exporter.take() {
            if let Err(err) = exporter.shutdown() {
                // The log layer is still installed; there is nowhere else to report it.
                tracing::warn!(error = %err, "span export did not shut down cleanly");
            }
        }
    }
}

/// The tracer provider and the runtime its OTLP/gRPC connection runs on.
#[derive(Debug)]
struct Exporter {
    provider: SdkTracerProvider,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Exporter {
    fn start(service_name: &str, endpoint: &str) -> Result<Self> {
        // tonic spawns the channel's connection onto the runtime current when it is built;
        // give it one that outlives nothing but this exporter.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(Error::ExportRuntime)?;
        let built = {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
        };
        let span_exporter = match built {
            Ok(span_exporter) => span_exporter,
            Err(source) => {
                runtime.shutdown_background();
                return Err(Error::BuildExporter {
                    endpoint: endpoint.to_owned(),
                    source,
                });
            }
        };
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(span_exporter)
            .build();
        Ok(Self {
            provider,
            runtime: Some(runtime),
        })
    }

    /// Flushes and stops the provider; dropping `self` afterwards stops the runtime.
    fn shutdown(self) -> Result<()> {
        self.provider.shutdown().map_err(Error::Shutdown)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // Not a plain drop: dropping a runtime blocks, which panics inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The user's filter, with OpenTelemetry's own chatter (it logs at `info` when a provider is
/// installed) kept to warnings unless the filter names those crates itself. Export failures
/// are warnings and errors, so they still show.
fn log_directives(filter: &str) -> String {
    if filter.contains("opentelemetry") {
        filter.to_owned()
    } else {
        format!("{filter},opentelemetry=warn")
    }
}

/// What the OpenTelemetry layer sees: `info` and above, minus the export machinery.
fn export_filter() -> Targets {
    NOT_EXPORTED.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |targets, target| targets.with_target(*target, LevelFilter::OFF),
    )
}

/// The stderr log layer, generic over its writer so tests can capture its output.
pub(crate) fn fmt_layer<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(ansi).boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}

#[cfg(test)]
mod tests;
