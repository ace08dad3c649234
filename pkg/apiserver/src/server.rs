//! Wiring: open the store, serve the API and peer addresses, stop on the token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use rkube_store::peer::PeerService;
use rkube_store::service::StoreService;
use rkube_store::{Store, StoreMetrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::options::Options;
use crate::watch_cache::WatchCache;

/// Why a replica could not start or stopped with a failure. Messages include their
/// source's, since the binary prints only the top one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(#[source] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] rkube_store::Error),
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("the Raft peer server failed: {0}")]
    PeerServe(#[source] tonic::transport::Error),
    #[error("the Raft peer server task failed: {0}")]
    PeerTask(#[source] tokio::task::JoinError),
}

/// A configuration the replica cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Options(#[from] crate::options::OptionsError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    TokenFile(#[from] crate::auth::authn::TokenFileError),
}

macro_rules! config_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Config(e.into())
            }
        }
    )*};
}

config_error_from!(
    crate::options::OptionsError,
    crate::tls::TlsError,
    crate::auth::authn::TokenFileError
);

/// Runs one apiserver replica until `shutdown` is cancelled. Calls `ready`
/// with the bound (api, peer) addresses once both listen.
pub async fn run(
    opts: Options,
    shutdown: CancellationToken,
    ready: impl FnOnce(SocketAddr, SocketAddr),
) -> Result<(), Error> {
    let config = opts.store_config()?;
    let tls = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(
            cert,
            key,
            opts.client_ca_file.as_deref(),
        )?),
        _ => None,
    };
    let pipeline = Arc::new(pipeline(&opts)?);
    let api = TcpListener::bind(&opts.api_listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.api_listen.clone(),
            source,
        })?;
    let peer = TcpListener::bind(&opts.peer_listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.peer_listen.clone(),
            source,
        })?;
    let (api_addr, peer_addr) = (
        api.local_addr().expect("bound"),
        peer.local_addr().expect("bound"),
    );

    let metrics = StoreMetrics::default();
    let cache_metrics = crate::watch_cache::CacheMetrics::default();
    {
        let mut registry = rkube_telemetry::metrics::registry().lock().unwrap();
        metrics.register(&mut registry);
        cache_metrics.register(&mut registry);
    }

    let store = Store::open(config, metrics).await?;
    let peer_task = {
        let token = shutdown.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let incoming = peer_incoming(peer);
            tonic::transport::Server::builder()
                .layer(rkube_telemetry::propagation::TraceLayer::grpc())
                .add_service(PeerService::new(store))
                .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                .await
        })
    };
    tracing::info!(api = %api_addr, peer = %peer_addr, id = store.id(), "apiserver replica started");
    ready(api_addr, peer_addr);

    let cache = opts.watch_cache.then(|| {
        Arc::new(WatchCache::new(
            store.clone(),
            opts.watch_cache_config(),
            cache_metrics,
            shutdown.child_token(),
        ))
    });
    let mut registry = crate::registry::Registry::new(store.clone());
    if let Some(cache) = &cache {
        registry = registry.with_watch_cache(cache.clone());
    }
    let namespaces = opts.create_system_namespaces.then(|| {
        let (registry, token) = (registry.clone(), shutdown.clone());
        tokio::spawn(async move { registry.ensure_system_namespaces(&token).await })
    });
    let svc = StoreService::new(store.clone());
    let grpc = tonic::service::Routes::new(svc.kv())
        .add_service(svc.watch())
        .add_service(svc.maintenance())
        .add_service(crate::grpc::ResourcesService::new(registry.clone()).into_server())
        .into_axum_router()
        .layer(rkube_telemetry::propagation::TraceLayer::grpc());
    let health_store = store.clone();
    let app = grpc
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let store = health_store.clone();
                async move { readiness(&store).await }
            }),
        )
        .merge(rkube_telemetry::metrics::router())
        .merge(crate::auth::whoami_router())
        .merge(
            crate::rest::router(registry.clone())
                .layer(rkube_telemetry::propagation::TraceLayer::http()),
        )
        .fallback(crate::rest::fallback)
        .layer(axum::middleware::from_fn_with_state(
            pipeline,
            crate::auth::layer,
        ));
    // The one shutdown path: stop Raft as soon as shutdown starts, before the API port
    // drains (a replica whose peer server is already closed must not keep a Raft node
    // running: it would stop hearing the leader, campaign, and disrupt the others while
    // it exits), then end the watch cache's streams so the drain does not wait for them.
    let stopping = {
        let (store, token) = (store.clone(), shutdown.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            store.shutdown().await;
            if let Some(cache) = cache {
                cache.stop().await;
            }
        })
    };
    let served = crate::tls::serve(
        api,
        tls,
        app,
        shutdown.clone(),
        std::time::Duration::from_secs(5),
    )
    .await;

    // The API server can also stop on its own (an accept error): stop everything else.
    shutdown.cancel();
    let _ = stopping.await;
    if let Some(task) = namespaces {
        let _ = task.await;
    }
    let peer_res = peer_task.await;
    served.map_err(Error::Serve)?;
    match peer_res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::PeerServe(e)),
        Err(e) => Err(Error::PeerTask(e)),
    }
}

/// Authentication from the flags: client certificates when a client CA is
/// set, tokens when a token file is; authorization allows everything (RBAC
/// replaces it later).
fn pipeline(opts: &Options) -> Result<crate::auth::Pipeline, Error> {
    use crate::auth::authn::{Authenticator, TokenFile, Union, X509};
    let mut authenticators: Vec<Box<dyn Authenticator>> = Vec::new();
    if opts.client_ca_file.is_some() {
        authenticators.push(Box::new(X509));
    }
    if let Some(path) = &opts.token_auth_file {
        let tokens = TokenFile::load(path)?;
        tracing::info!(path = %path.display(), tokens = tokens.len(), "bearer tokens loaded");
        authenticators.push(Box::new(tokens));
    }
    if authenticators.is_empty() && !opts.anonymous_auth {
        tracing::warn!(
            "no authenticator configured (--client-ca-file, --token-auth-file) and \
             --anonymous-auth=false: every request except /healthz, /livez, /readyz and /version gets 401"
        );
    }
    Ok(crate::auth::Pipeline::new(
        Box::new(Union::new(authenticators)),
        opts.anonymous_auth,
        Box::new(crate::auth::AlwaysAllow),
    ))
}

/// Ready when a leader is known and this replica has applied what it knows to be committed.
async fn readiness(store: &Store) -> (StatusCode, String) {
    let st = store.status().await;
    match st.leader {
        None => (StatusCode::SERVICE_UNAVAILABLE, "no leader\n".into()),
        Some(_) if st.applied_index < st.commit_index => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "catching up: applied {} of {}\n",
                st.applied_index, st.commit_index
            ),
        ),
        Some(l) => (
            StatusCode::OK,
            format!("ok (leader {l}, role {})\n", st.role),
        ),
    }
}

/// The Raft peer server's connections. `Server::tcp_nodelay` applies only to
/// sockets tonic binds itself; these come from our own listener, so the
/// incoming stream sets `TCP_NODELAY`. Without it a follower's reply to
/// AppendEntries (headers, data and trailers written separately) can sit
/// behind Nagle's algorithm until the leader's delayed ACK, ~40 ms: under load
/// that stalled every write in flight every ~165 ms.
fn peer_incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod peer_socket_tests {
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_peer_connections_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = super::peer_incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY must be set");
    }
}
