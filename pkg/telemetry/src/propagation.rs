//! W3C trace context (`traceparent`, `tracestate`) across process boundaries.
//!
//! This module owns moving an OpenTelemetry context in and out of carriers: gRPC metadata
//! (client: [`inject`], [`TraceInterceptor`]), HTTP headers (client: [`inject_http`]; server:
//! [`extract`]), the server spans that continue a remote trace ([`server_span`],
//! [`grpc_server_span`], [`http_server_span`], [`TraceLayer`]) and the bare `traceparent` string
//! that rides in the `tracing.k8s.io/traceparent` annotation ([`current_traceparent`],
//! [`context_from_traceparent`]).
//!
//! It always speaks W3C trace context, independent of the global propagator, so it works the
//! same before [`crate::init`] runs and in tests. It never fails: a missing or malformed
//! header means "no remote parent" and the server span starts a new trace. Without the
//! OpenTelemetry layer installed (no OTLP endpoint) nothing is injected and spans are plain
//! `tracing` spans.

use std::collections::HashMap;

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::field::Empty;
use tracing::Span;

pub use opentelemetry::Context;
pub use tracing_opentelemetry::OpenTelemetrySpanExt;

mod layer;

pub use layer::{TraceLayer, Traced};

/// The annotation that carries a pod's creating request's `traceparent` (the Kubernetes
/// proposal's name), so the scheduler and kubelet can continue that trace.
pub const TRACEPARENT_ANNOTATION: &str = "tracing.k8s.io/traceparent";

/// The W3C header (and gRPC metadata key) holding the trace and parent span ids.
pub const TRACEPARENT_HEADER: &str = "traceparent";

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// Writes the current `tracing` span's trace context into outgoing gRPC metadata.
pub fn inject(metadata: &mut MetadataMap) {
    inject_context(&Span::current().context(), metadata);
}

/// Writes `cx`'s trace context into outgoing gRPC metadata.
pub fn inject_context(cx: &Context, metadata: &mut MetadataMap) {
    propagator().inject_context(cx, &mut MetadataInjector(metadata));
}

/// Writes the current `tracing` span's trace context into outgoing HTTP headers.
pub fn inject_http(headers: &mut HeaderMap) {
    inject_http_context(&Span::current().context(), headers);
}

/// Writes `cx`'s trace context into outgoing HTTP headers.
pub fn inject_http_context(cx: &Context, headers: &mut HeaderMap) {
    propagator().inject_context(cx, &mut HeaderInjector(headers));
}

/// Reads the remote trace context from incoming HTTP headers, or gRPC metadata
/// (`request.metadata().as_ref()`). Returns an empty context when there is none.
pub fn extract(headers: &HeaderMap) -> Context {
    // Not `propagator().extract(..)`: that falls back to `Context::current()`, which would
    // make a request without trace context a child of whatever span the server is inside.
    propagator().extract_with_context(&Context::new(), &HeaderExtractor(headers))
}

/// The current span's `traceparent`, for the `tracing.k8s.io/traceparent` annotation.
/// `None` when the current span is not part of an exported trace.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = HashMap::new();
    propagator().inject_context(&Span::current().context(), &mut carrier);
    carrier.remove(TRACEPARENT_HEADER)
}

/// The context a `traceparent` value (e.g. from the pod annotation) names; empty if malformed.
/// Continue it with `span.set_parent(cx)` ([`OpenTelemetrySpanExt::set_parent`]).
pub fn context_from_traceparent(traceparent: &str) -> Context {
    let carrier = HashMap::from([(TRACEPARENT_HEADER.to_owned(), traceparent.to_owned())]);
    propagator().extract_with_context(&Context::new(), &carrier)
}

/// A server span named `name` (the OpenTelemetry span name) whose parent is the remote context
/// in `headers`, or the root of a new trace when there is none.
///
/// Enter it (or `.instrument()` the handler with it) before creating child spans.
pub fn server_span(name: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "server",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
    );
    adopt_remote_parent(&span, headers);
    span
}

/// A server span for the gRPC method at `path` (`/package.Service/Method`), named
/// `package.Service/Method` as OpenTelemetry's RPC conventions ask.
pub fn grpc_server_span(path: &str, headers: &HeaderMap) -> Span {
    let name = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
    );
    adopt_remote_parent(&span, headers);
    span
}

/// A server span for an HTTP request, named `METHOD path`.
pub fn http_server_span(method: &http::Method, path: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{method} {path}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method.as_str(),
        url.path = path,
        http.response.status_code = Empty,
    );
    adopt_remote_parent(&span, headers);
    span
}

/// Makes the remote context (or, without one, a fresh trace) the OpenTelemetry parent, so a
/// request never joins the trace of whatever long-lived span the server task happens to run in.
fn adopt_remote_parent(span: &Span, headers: &HeaderMap) {
    // Fails only when no OpenTelemetry layer is installed or the span is disabled: then there
    // is no trace to continue.
    let _ = span.set_parent(extract(headers));
}

/// A tonic client interceptor that sends the current span's trace context with every call:
/// `FooClient::with_interceptor(channel, TraceInterceptor)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject(request.metadata_mut());
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator only produces valid ASCII keys and values; skip anything else
        // rather than fail the call.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
