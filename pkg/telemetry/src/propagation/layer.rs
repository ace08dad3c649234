//! A tower layer that runs every server request inside a span continuing the caller's trace.
//! It owns only span creation and the span's outcome fields; it never alters requests or
//! responses.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tracing::{Instrument, Span};

use super::{grpc_server_span, http_server_span};

/// Wraps each request in a server span whose parent is the caller's `traceparent`.
///
/// - [`TraceLayer::grpc`] for tonic servers: `Server::builder().layer(TraceLayer::grpc())`.
///   Spans are named `package.Service/Method` and record the `grpc-status` of error replies.
/// - [`TraceLayer::http`] for axum/hyper: spans are named `METHOD path` and record the status.
#[derive(Debug, Clone, Copy)]
pub struct TraceLayer {
    protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    Http,
}

impl TraceLayer {
    /// For gRPC servers (tonic).
    pub fn grpc() -> Self {
        Self {
            protocol: Protocol::Grpc,
        }
    }

    /// For HTTP servers (axum, hyper).
    pub fn http() -> Self {
        Self {
            protocol: Protocol::Http,
        }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            protocol: self.protocol,
        }
    }
}

/// The service [`TraceLayer`] produces.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    protocol: Protocol,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let protocol = self.protocol;
        let span = match protocol {
            Protocol::Grpc => grpc_server_span(request.uri().path(), request.headers()),
            Protocol::Http => {
                http_server_span(request.method(), request.uri().path(), request.headers())
            }
        };
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let result = future.instrument(span.clone()).await;
            match &result {
                Ok(response) => record_response(&span, protocol, response),
                Err(_) => {
                    span.record("otel.status_code", "error");
                }
            }
            result
        })
    }
}

fn record_response<B>(span: &Span, protocol: Protocol, response: &http::Response<B>) {
    match protocol {
        Protocol::Grpc => {
            // A successful call reports its status in trailers, after the body; an error
            // reply is "trailers-only" and carries grpc-status in its headers, seen here.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i64>().ok());
            if let Some(code) = code {
                span.record("rpc.grpc.status_code", code);
                if code != 0 {
                    span.record("otel.status_code", "error");
                }
            }
        }
        Protocol::Http => {
            let status = response.status();
            span.record("http.response.status_code", i64::from(status.as_u16()));
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
    }
}
