//! Telemetry for every rkube process: logs, traces and metrics, set up one way.
//!
//! This crate owns how an rkube binary reports what it does. It never decides *what* to
//! report: components create their own spans, events and metrics, and this crate only
//! installs the machinery that carries them out of the process.
//!
//! - [`TelemetryArgs`]: the `--log-format`, `--log-level` and `--otlp-endpoint` flags each
//!   binary flattens into its own clap parser.
//! - [`init`]: installs the global `tracing` subscriber (text or JSON logs on stderr) and,
//!   when an OTLP endpoint is configured, an OpenTelemetry layer exporting spans over
//!   OTLP/gRPC. Returns a [`TelemetryGuard`] that flushes spans when the process ends.
//! - [`propagation`]: W3C trace context across gRPC metadata and HTTP headers (client
//!   interceptor, server tower layer, helpers for handlers and for the
//!   `tracing.k8s.io/traceparent` annotation).
//! - [`metrics`]: the process-wide Prometheus registry, its text encoding and the
//!   `GET /metrics` router.
//!
//! ```no_run
//! # async fn main_body() -> anyhow::Result<()> {
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Flags {
//!     #[command(flatten)]
//!     telemetry: rkube_telemetry::TelemetryArgs,
//! }
//!
//! let flags = Flags::parse();
//! let guard = rkube_telemetry::init("rkube-scheduler", &flags.telemetry)?;
//! // ... run the component ...
//! guard.shutdown()?;
//! # Ok(())
//! # }
//! ```

mod args;
mod error;
pub mod metrics;
pub mod propagation;
mod setup;

pub use args::{LogFormat, TelemetryArgs};
pub use error::{Error, Result};
pub use setup::{init, TelemetryGuard};
