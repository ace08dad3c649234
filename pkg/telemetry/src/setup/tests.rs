use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn contents(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).expect("log output is UTF-8")
    }
}

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn capture(format: LogFormat, emit: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber =
        tracing_subscriber::registry().with(fmt_layer(format, move || writer.clone(), false));
    tracing::subscriber::with_default(subscriber, emit);
    buffer.contents()
}

#[test]
fn json_log_format_writes_one_valid_json_object_per_line() {
    let output = capture(LogFormat::Json, || {
        let span = tracing::info_span!("kubelet.sync_pod", pod = "default/web-0");
        let _entered = span.enter();
        tracing::info!(attempt = 2, "pod \"web-0\" started\nwith a newline");
        tracing::warn!("second line");
    });

    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 2, "output: {output}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("valid JSON");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["message"], "pod \"web-0\" started\nwith a newline");
    assert_eq!(first["attempt"], 2);
    assert_eq!(first["span"]["name"], "kubelet.sync_pod");
    assert_eq!(first["span"]["pod"], "default/web-0");
    assert!(first["timestamp"].is_string());
    let second: serde_json::Value = serde_json::from_str(lines[1]).expect("valid JSON");
    assert_eq!(second["level"], "WARN");
}

#[test]
fn text_log_format_writes_human_readable_lines() {
    let output = capture(LogFormat::Text, || {
        tracing::info!(node = "n1", "node ready")
    });
    assert!(output.contains("INFO"), "output: {output}");
    assert!(
        output.contains("node ready node=\"n1\""),
        "output: {output}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(output.trim()).is_err());
}

#[test]
fn the_export_filter_drops_the_exporters_own_transport() {
    use tracing::Level;
    let filter = export_filter();
    assert!(filter.would_enable("rkube_scheduler", &Level::INFO));
    assert!(!filter.would_enable("rkube_scheduler", &Level::DEBUG));
    assert!(!filter.would_enable("h2::proto", &Level::ERROR));
    assert!(!filter.would_enable("opentelemetry_sdk", &Level::WARN));
}

#[test]
fn init_rejects_an_invalid_log_filter() {
    let args = TelemetryArgs {
        log_level: "rkube_store=loud".to_owned(),
        ..TelemetryArgs::default()
    };
    assert!(matches!(
        init("rkube-test", &args),
        Err(Error::InvalidLogFilter { .. })
    ));
}

#[test]
fn opentelemetry_chatter_is_kept_to_warnings_unless_asked_for() {
    assert_eq!(log_directives("debug"), "debug,opentelemetry=warn");
    assert_eq!(
        log_directives("info,opentelemetry_sdk=debug"),
        "info,opentelemetry_sdk=debug"
    );
}
