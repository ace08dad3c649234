//! The telemetry flags shared by every rkube binary. This module only parses and validates
//! them; it installs nothing (that is [`crate::init`]'s job).

use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors and `jq`.
    Json,
}

/// Telemetry flags; flatten them into a binary's flags with `#[command(flatten)]`, preferably
/// as its last field (they set the help heading "Telemetry" for the flags that follow).
///
/// Precedence for each value is: command-line flag, then environment variable, then default.
/// An empty `RUST_LOG` or `OTEL_EXPORTER_OTLP_ENDPOINT` counts as unset.
// `about = None`: without it clap would print this doc comment as the binary's description.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Telemetry", about = None, long_about = None)]
pub struct TelemetryArgs {
    /// Format of log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Which logs to write: a level (error, warn, info, debug, trace) or tracing filter
    /// directives such as `info,rkube_store=debug`. RUST_LOG is used when this flag is absent.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info",
        value_parser = parse_log_filter,
        global = true
    )]
    pub log_level: String,

    /// OTLP/gRPC collector to export spans to, e.g. http://127.0.0.1:4317 (Jaeger's OTLP port).
    /// When unset, no spans leave the process.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_parser = parse_otlp_endpoint,
        global = true
    )]
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryArgs {
    /// Text logs at `info`, no exporter; ignores the environment.
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

impl TelemetryArgs {
    /// The log filter directives, `info` when the flag or `RUST_LOG` is empty.
    pub fn log_filter(&self) -> &str {
        match self.log_level.trim() {
            "" => "info",
            filter => filter,
        }
    }

    /// The OTLP endpoint, if one is configured and not empty.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|endpoint| !endpoint.is_empty())
    }
}

fn parse_log_filter(filter: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| format!("not a tracing filter: {e}"))
}

fn parse_otlp_endpoint(endpoint: &str) -> Result<String, String> {
    if endpoint.trim().is_empty() {
        // `OTEL_EXPORTER_OTLP_ENDPOINT=` switches export off, as unset does.
        return Ok(String::new());
    }
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("not a URI: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(endpoint.to_owned()),
        _ => Err("expected http://HOST:PORT or https://HOST:PORT".to_owned()),
    }
}

#[cfg(test)]
mod tests;
