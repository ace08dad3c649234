//! `init` end to end: spans reach an OTLP/gRPC receiver. This binary owns its process's global
//! subscriber, so everything that calls `init` lives in this one test.

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use rkube_telemetry::{init, Error, TelemetryArgs};
use tokio::sync::mpsc;

/// A minimal OTLP collector: forwards every export request to the test.
struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Runs the receiver on a runtime of its own, so the test's runtime may block while flushing.
fn start_receiver() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Receiver(tx)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        })
    });
    (addr, rx)
}

/// The `service.name` resource attribute and the span names of one export request.
fn service_and_spans(request: &ExportTraceServiceRequest) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|value| match value {
                Value::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                found.push((service.clone(), span.name.clone()));
            }
        }
    }
    found
}

// A current-thread runtime on purpose: flushing must not depend on the caller's runtime.
#[tokio::test]
async fn init_exports_spans_to_an_otlp_receiver_and_refuses_to_install_twice() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, mut exports) = start_receiver();
        let args = TelemetryArgs {
            otlp_endpoint: Some(format!("http://{addr}")),
            ..TelemetryArgs::default()
        };
        let guard = init("rkube-telemetry-test", &args).expect("first init succeeds");
        assert!(guard.is_exporting());

        {
            let span =
                tracing::info_span!("telemetry_test.exported", otel.name = "test.exported_span");
            let _entered = span.enter();
            tracing::info!("inside the exported span");
        }

        // A second init must neither panic nor replace the first pipeline.
        let again = init("rkube-telemetry-test-again", &TelemetryArgs::default());
        assert!(
            matches!(again, Err(Error::AlreadyInitialized(_))),
            "second init: {again:?}"
        );

        // The propagator init installed globally is W3C trace context.
        let fields: Vec<String> = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.fields().map(str::to_owned).collect()
        });
        assert!(
            fields.iter().any(|field| field == "traceparent"),
            "{fields:?}"
        );

        // Shutting down flushes the batch the span is waiting in.
        guard.shutdown().expect("shutdown flushes cleanly");

        let mut seen = Vec::new();
        while let Some(request) = exports.recv().await {
            seen.extend(service_and_spans(&request));
            if seen.iter().any(|(_, name)| name == "test.exported_span") {
                break;
            }
        }
        assert!(
            seen.contains(&(
                "rkube-telemetry-test".to_owned(),
                "test.exported_span".to_owned()
            )),
            "exported spans: {seen:?}"
        );
    })
    .await
    .expect("test timed out");
}
