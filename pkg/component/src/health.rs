//! The component's plain-HTTP health and metrics server: `/healthz` and `/livez` (the
//! process is alive and not shutting down), `/readyz` (every readiness check passes;
//! `?verbose` lists them as Kubernetes does: `[+]informers-synced ok`), `/metrics`.
//!
//! Readiness checks are registered by the component ([`Health::add_check`]); until it
//! registers any, the component is ready once it started. During shutdown every
//! endpoint but `/metrics` answers 503, so load balancers and probes stop sending work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

type Check = Box<dyn Fn() -> bool + Send + Sync>;

/// Readiness checks shared by the component and its health server. Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
    shutting_down: CancellationToken,
}

impl Health {
    pub(crate) fn new(shutting_down: CancellationToken) -> Self {
        Health {
            checks: Default::default(),
            shutting_down,
        }
    }

    /// Adds a readiness check named `name` (shown by `/readyz?verbose`).
    pub fn add_check(&self, name: &str, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_string(), Box::new(check)));
    }

    /// Each check's name and whether it passes now.
    pub fn report(&self) -> Vec<(String, bool)> {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, c)| (n.clone(), c()))
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        !self.shutting_down.is_cancelled() && self.report().iter().all(|(_, ok)| *ok)
    }
}

async fn livez(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.shutting_down.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok")
    }
}

async fn readyz(
    State(h): State<Health>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let report = h.report();
    let mut body = String::new();
    for (name, ok) in &report {
        body.push_str(&format!(
            "[{}]{name} {}\n",
            if *ok { '+' } else { '-' },
            if *ok { "ok" } else { "failed" }
        ));
    }
    if h.shutting_down.is_cancelled() {
        body.push_str("[-]shutdown failed: shutting down\n");
    }
    let ready = h.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if q.contains_key("verbose") || !ready {
        body.push_str(if ready {
            "readyz check passed\n"
        } else {
            "readyz check failed\n"
        });
        (status, body)
    } else {
        (status, "ok".to_string())
    }
}

/// The server's routes over `health`.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(livez))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(health)
        .merge(rkube_telemetry::metrics::router())
}

/// Serves [`router`] on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Health,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(health))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// Binds the health server's address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
