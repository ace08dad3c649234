//! W3C trace context across gRPC and HTTP. Each test installs a thread-local subscriber with
//! an OpenTelemetry layer exporting to memory, and runs on a current-thread runtime, so every
//! span, client and server side, is seen by that subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use rkube_telemetry::propagation::{
    self, Context, OpenTelemetrySpanExt, TraceInterceptor, TraceLayer,
};
use tonic::metadata::MetadataMap;
use tower::ServiceExt;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Finished spans, kept in memory.
#[derive(Debug, Clone, Default)]
struct Finished(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Finished {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Finished {
    fn named(&self, name: &str) -> Vec<SpanData> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}

fn otel_subscriber_and_spans() -> (impl tracing::Subscriber + Send + Sync, Finished) {
    let finished = Finished::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(finished.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("propagation-test")));
    (subscriber, finished)
}

fn otel_subscriber() -> impl tracing::Subscriber + Send + Sync {
    otel_subscriber_and_spans().0
}

fn ids(cx: &Context) -> (TraceId, SpanId) {
    let span = cx.span();
    let span_context = span.span_context();
    (span_context.trace_id(), span_context.span_id())
}

fn span_ids(span: &tracing::Span) -> (TraceId, SpanId) {
    ids(&span.context())
}

#[test]
fn context_injected_into_grpc_metadata_is_extracted_with_the_same_trace_id() {
    let _default = tracing::subscriber::set_default(otel_subscriber());

    let client = tracing::info_span!("scheduler.bind");
    let mut metadata = MetadataMap::new();
    client.in_scope(|| propagation::inject(&mut metadata));
    let (client_trace, client_span) = span_ids(&client);
    assert_ne!(client_trace, TraceId::INVALID);

    let traceparent = metadata.get("traceparent").expect("traceparent sent");
    assert_eq!(
        traceparent.to_str().unwrap(),
        format!("00-{client_trace}-{client_span}-01")
    );

    let extracted = propagation::extract(metadata.as_ref());
    assert_eq!(ids(&extracted), (client_trace, client_span));

    let server = propagation::grpc_server_span("/rkube.v1.Objects/Bind", metadata.as_ref());
    let (server_trace, server_span) = span_ids(&server);
    assert_eq!(server_trace, client_trace);
    assert_ne!(server_span, client_span);
}

#[test]
fn context_injected_into_http_headers_continues_in_the_http_server_span() {
    let _default = tracing::subscriber::set_default(otel_subscriber());

    let client = tracing::info_span!("kubectl.get");
    let mut headers = HeaderMap::new();
    client.in_scope(|| propagation::inject_http(&mut headers));

    let server = propagation::http_server_span(&http::Method::GET, "/api/v1/pods", &headers);
    assert_eq!(span_ids(&server).0, span_ids(&client).0);
}

#[test]
fn a_request_without_traceparent_starts_a_new_trace_rather_than_joining_the_servers_span() {
    let _default = tracing::subscriber::set_default(otel_subscriber());

    let serve = tracing::info_span!("apiserver.serve");
    let request = serve.in_scope(|| propagation::server_span("Get", &HeaderMap::new()));
    let (request_trace, _) = span_ids(&request);
    assert_ne!(request_trace, TraceId::INVALID);
    assert_ne!(request_trace, span_ids(&serve).0);
}

#[test]
fn a_traceparent_annotation_round_trips_into_a_continuing_span() {
    let _default = tracing::subscriber::set_default(otel_subscriber());

    let create = tracing::info_span!("apiserver.create_pod");
    let annotation = create
        .in_scope(propagation::current_traceparent)
        .expect("a traceparent inside a span");

    let kubelet = tracing::info_span!("kubelet.run_pod");
    kubelet
        .set_parent(propagation::context_from_traceparent(&annotation))
        .unwrap();
    assert_eq!(span_ids(&kubelet).0, span_ids(&create).0);

    assert!(!propagation::context_from_traceparent("garbage")
        .span()
        .span_context()
        .is_valid());
}

#[test]
fn nothing_is_injected_outside_any_span() {
    let _default = tracing::subscriber::set_default(otel_subscriber());
    let mut metadata = MetadataMap::new();
    propagation::inject(&mut metadata);
    assert!(metadata.is_empty());
    assert_eq!(propagation::current_traceparent(), None);
}

/// Records the trace id of the span each request is handled in; refuses non-empty exports so
/// the test can see an error status.
struct Recorder(Arc<Mutex<Vec<TraceId>>>);

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let (trace_id, _) = span_ids(&tracing::Span::current());
        self.0.lock().unwrap().push(trace_id);
        if !request.get_ref().resource_spans.is_empty() {
            return Err(tonic::Status::invalid_argument("refused by the test"));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

const EXPORT_SPAN: &str = "opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// Waits until `count` spans named `name` have finished (server spans end on the server task).
async fn finished_spans(finished: &Finished, name: &str, count: usize) -> Vec<SpanData> {
    loop {
        let spans = finished.named(name);
        if spans.len() >= count {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn trace_context_crosses_a_tonic_call_through_the_interceptor_and_the_server_layer() {
    let (subscriber, finished) = otel_subscriber_and_spans();
    let _default = tracing::subscriber::set_default(subscriber);
    tokio::time::timeout(Duration::from_secs(10), async {
        let handled = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(TraceLayer::grpc())
                .add_service(TraceServiceServer::new(Recorder(handled.clone())))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = TraceServiceClient::with_interceptor(channel, TraceInterceptor);

        let call = tracing::info_span!("controller.sync");
        client
            .export(ExportTraceServiceRequest::default())
            .instrument(call.clone())
            .await
            .unwrap();

        let refused = tracing::info_span!("controller.refused");
        let status = client
            .export(ExportTraceServiceRequest {
                resource_spans: vec![Default::default()],
            })
            .instrument(refused.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);

        let (call_trace, call_span) = span_ids(&call);
        let handled = handled.lock().unwrap().clone();
        assert_eq!(handled, vec![call_trace, span_ids(&refused).0]);

        let servers = finished_spans(&finished, EXPORT_SPAN, 2).await;
        let ok = servers
            .iter()
            .find(|span| span.span_context.trace_id() == call_trace)
            .expect("server span of the first call");
        assert_eq!(ok.span_kind, SpanKind::Server);
        assert_eq!(ok.parent_span_id, call_span);
        assert!(ok.parent_span_is_remote);
        assert_eq!(attribute(ok, "rpc.system"), Some("grpc".into()));
        assert_eq!(
            attribute(ok, "rpc.service"),
            Some("opentelemetry.proto.collector.trace.v1.TraceService".into())
        );
        assert_eq!(attribute(ok, "rpc.method"), Some("Export".into()));
        assert_eq!(ok.status, Status::Unset);

        let failed = servers
            .iter()
            .find(|span| span.span_context.trace_id() == span_ids(&refused).0)
            .expect("server span of the refused call");
        assert_eq!(
            attribute(failed, "rpc.grpc.status_code"),
            Some(Value::I64(tonic::Code::InvalidArgument as i64))
        );
        assert!(
            matches!(failed.status, Status::Error { .. }),
            "{:?}",
            failed.status
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn the_http_trace_layer_runs_handlers_in_a_span_continuing_the_callers_trace() {
    let (subscriber, finished) = otel_subscriber_and_spans();
    let _default = tracing::subscriber::set_default(subscriber);
    tokio::time::timeout(Duration::from_secs(10), async {
        let app = axum::Router::new()
            .route(
                "/api/v1/pods",
                axum::routing::get(|| async { span_ids(&tracing::Span::current()).0.to_string() }),
            )
            .layer(TraceLayer::http());

        let client = tracing::info_span!("kubectl.get");
        let mut request = Request::get("/api/v1/pods").body(Body::empty()).unwrap();
        client.in_scope(|| propagation::inject_http(request.headers_mut()));

        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            span_ids(&client).0.to_string()
        );

        let server = finished_spans(&finished, "GET /api/v1/pods", 1).await;
        assert_eq!(server[0].span_kind, SpanKind::Server);
        assert_eq!(server[0].parent_span_id, span_ids(&client).1);
        assert_eq!(
            attribute(&server[0], "http.response.status_code"),
            Some(Value::I64(200))
        );
    })
    .await
    .expect("test timed out");
}
