//! The error type of telemetry setup and teardown. Metric registration has its own
//! ([`crate::metrics::Error`]); trace propagation never fails (a missing or malformed
//! `traceparent` just starts a new trace).

/// What went wrong while installing or shutting down telemetry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--log-level` / `RUST_LOG` is not a valid `tracing` filter.
    #[error("invalid log filter {filter:?}")]
    InvalidLogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },

    /// The Tokio runtime that carries the OTLP/gRPC connection could not be started.
    #[error("starting the OTLP export runtime")]
    ExportRuntime(#[source] std::io::Error),

    /// The OTLP span exporter could not be built (usually a malformed endpoint).
    #[error("building the OTLP span exporter for {endpoint:?}")]
    BuildExporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },

    /// A global `tracing` subscriber (or `log` logger) is already installed in this process,
    /// typically because `init` ran before.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),

    /// Flushing or shutting down the tracer provider failed; some spans may be lost.
    #[error("shutting down the tracer provider")]
    Shutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
