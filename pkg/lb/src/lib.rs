//! `rkube lb`: the TCP load balancer in front of the apiservers, so kubectl has one address
//! that survives the loss of any replica (what kind does with haproxy).
//!
//! Design notes:
//!
//! - **TCP, not HTTP.** Each client connection is spliced to one apiserver byte for byte;
//!   TLS ends at the apiserver, so client certificates reach it and the balancer holds no
//!   key. A connection stays on the backend it was given for its whole life.
//! - **Choosing a backend.** Round robin over the backends whose last health check passed.
//!   A failed connect marks that backend unhealthy at once and the next one is tried, so a
//!   replica killed between two checks costs one refused connect on loopback, not a failed
//!   request. When no backend is known healthy (at start, or all checks failing), every
//!   backend is tried in order rather than refusing the client.
//! - **Health.** Every `--health-interval`, each backend is asked `GET /readyz` over TLS,
//!   trusting `--backend-ca` (200 = healthy: it knows a leader and has applied what it knows
//!   is committed), or, without a CA, only whether it accepts a TCP connection. A replica
//!   cut off from its quorum stops being ready and gets no new connections.
//!
//! The balancer owns no cluster state and never touches the apiservers' processes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rkube_ops::{parse_duration, tls};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What starting the balancer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--backend-ca` cannot be read or holds no usable certificate (bad configuration).
    #[error("cannot use --backend-ca {}", path.display())]
    BackendCa {
        path: PathBuf,
        #[source]
        source: rkube_ops::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the flags point at something unusable (exit code 64), as opposed to a
    /// failure of the machine.
    pub fn is_config(&self) -> bool {
        matches!(self, Error::BackendCa { .. })
    }

    /// The `rkube lb` command's exit code for this error: 64 for bad configuration, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.is_config() {
            64
        } else {
            1
        }
    }
}

/// Why a backend is believed unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("connect failed")]
    Connect(#[source] std::io::Error),
    #[error("connect timed out")]
    ConnectTimedOut,
    #[error("TLS connect failed")]
    TlsConnect(#[source] std::io::Error),
    #[error("/readyz answered {0}")]
    NotReady(u16),
    #[error("/readyz failed")]
    Readyz(#[source] std::io::Error),
    #[error("health check timed out")]
    CheckTimedOut,
}

/// `rkube lb`'s flags (the `rkube` binary flattens them; `rkube up` builds them).
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Run the TCP load balancer in front of the apiservers (`rkube up` starts it as a \
             background process; kubectl reaches the cluster through it)",
    long_about = None
)]
pub struct LbOptions {
    /// Address to accept client connections on.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// An apiserver's API address (repeat once per replica).
    #[arg(long = "backend", value_name = "HOST:PORT", required = true)]
    pub backends: Vec<SocketAddr>,
    /// CA of the backends' serving certificates: health checks are `GET /readyz` over TLS.
    /// Without it a backend is healthy when it accepts a TCP connection.
    #[arg(long, value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,
    /// How often each backend is checked.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// How long a connect (and a health check) to one backend may take.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

/// How a backend's health is judged.
#[derive(Clone)]
pub enum HealthCheck {
    /// It accepts a TCP connection.
    Tcp,
    /// `GET /readyz` over TLS answers 200.
    Readyz(Arc<rustls::ClientConfig>),
}

/// A running balancer's configuration.
#[derive(Clone)]
pub struct LbConfig {
    pub backends: Vec<SocketAddr>,
    pub health: HealthCheck,
    pub health_interval: Duration,
    pub connect_timeout: Duration,
}

impl LbConfig {
    pub fn from_options(opts: &LbOptions) -> Result<Self, Error> {
        let health = match &opts.backend_ca {
            Some(ca) => HealthCheck::Readyz(tls::client_config(ca, None, &[b"http/1.1"]).map_err(
                |source| Error::BackendCa {
                    path: ca.clone(),
                    source,
                },
            )?),
            None => HealthCheck::Tcp,
        };
        Ok(LbConfig {
            backends: opts.backends.clone(),
            health,
            health_interval: opts.health_interval,
            connect_timeout: opts.connect_timeout,
        })
    }
}

/// The backends and what the balancer currently believes about them.
pub struct Backends {
    addrs: Vec<SocketAddr>,
    healthy: Vec<AtomicBool>,
    /// Round-robin cursor.
    next: AtomicUsize,
}

impl Backends {
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        let healthy = addrs.iter().map(|_| AtomicBool::new(true)).collect();
        Backends {
            addrs,
            healthy,
            next: AtomicUsize::new(0),
        }
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs[i]
    }

    pub fn is_healthy(&self, i: usize) -> bool {
        self.healthy[i].load(Ordering::Relaxed)
    }

    /// Records a passed health check; logs the change.
    pub fn mark_healthy(&self, i: usize) {
        if !self.healthy[i].swap(true, Ordering::Relaxed) {
            tracing::info!(backend = %self.addrs[i], "backend is healthy");
        }
    }

    /// Records a failed health check or connect; logs the change with its cause.
    pub fn mark_unhealthy(&self, i: usize, why: &Unhealthy) {
        if self.healthy[i].swap(false, Ordering::Relaxed) {
            tracing::warn!(
                backend = %self.addrs[i],
                error = why as &dyn std::error::Error,
                "backend is unhealthy"
            );
        }
    }

    /// The order in which to try backends for the next connection.
    pub fn next_order(&self) -> Vec<usize> {
        let healthy: Vec<bool> = (0..self.addrs.len()).map(|i| self.is_healthy(i)).collect();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        try_order(&healthy, start)
    }
}

/// Healthy backends first, round robin from `start`; then the unhealthy ones in index
/// order as a last resort. Pure.
pub fn try_order(healthy: &[bool], start: usize) -> Vec<usize> {
    let n = healthy.len();
    let mut order: Vec<usize> = (0..n)
        .map(|k| (start + k) % n.max(1))
        .filter(|&i| healthy[i])
        .collect();
    order.extend((0..n).filter(|&i| !healthy[i]));
    order
}

/// Serves client connections on `listener` until `shutdown`, then stops accepting and closes
/// open connections (clients reconnect through a new balancer or fail over themselves).
pub async fn run(listener: TcpListener, config: LbConfig, shutdown: CancellationToken) {
    let backends = Arc::new(Backends::new(config.backends.clone()));
    let checker = tokio::spawn(health_loop(
        backends.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (client, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let backends = backends.clone();
        let timeout = config.connect_timeout;
        let token = shutdown.clone();
        conns.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = proxy(client, peer, &backends, timeout) => {}
            }
        });
    }
    while conns.join_next().await.is_some() {}
    let _ = checker.await;
}

/// Connects `client` to the first backend that accepts, then copies both ways until either
/// side closes.
async fn proxy(client: TcpStream, peer: SocketAddr, backends: &Backends, timeout: Duration) {
    let _ = client.set_nodelay(true);
    for i in backends.next_order() {
        let addr = backends.addr(i);
        let upstream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                backends.mark_unhealthy(i, &Unhealthy::Connect(e));
                continue;
            }
            Err(_) => {
                backends.mark_unhealthy(i, &Unhealthy::ConnectTimedOut);
                continue;
            }
        };
        let _ = upstream.set_nodelay(true);
        tracing::debug!(client = %peer, backend = %addr, "connection forwarded");
        let (mut client, mut upstream) = (client, upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => {
                tracing::debug!(client = %peer, backend = %addr, up, down, "connection closed")
            }
            Err(e) => {
                tracing::debug!(client = %peer, backend = %addr, error = %e, "connection ended")
            }
        }
        return;
    }
    tracing::warn!(client = %peer, "no backend accepted the connection");
}

async fn health_loop(backends: Arc<Backends>, config: LbConfig, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(config.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let checks = (0..config.backends.len()).map(|i| {
            let config = &config;
            async move {
                let addr = config.backends[i];
                let r = tokio::time::timeout(config.connect_timeout, check(addr, &config.health))
                    .await
                    .unwrap_or(Err(Unhealthy::CheckTimedOut));
                (i, r)
            }
        });
        for (i, r) in futures::future::join_all(checks).await {
            match r {
                Ok(()) => backends.mark_healthy(i),
                Err(why) => backends.mark_unhealthy(i, &why),
            }
        }
    }
}

/// One health check of the backend at `addr`.
pub async fn check(addr: SocketAddr, health: &HealthCheck) -> Result<(), Unhealthy> {
    match health {
        HealthCheck::Tcp => TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(Unhealthy::Connect),
        HealthCheck::Readyz(config) => {
            let mut stream = tls::connect(addr, config.clone())
                .await
                .map_err(Unhealthy::TlsConnect)?;
            match tls::http_get_status(&mut stream, &addr.to_string(), "/readyz").await {
                Ok(200) => Ok(()),
                Ok(code) => Err(Unhealthy::NotReady(code)),
                Err(e) => Err(Unhealthy::Readyz(e)),
            }
        }
    }
}

/// `rkube lb` as a process: binds, serves until SIGTERM or SIGINT, exits.
pub async fn serve_until_signalled(opts: LbOptions) -> Result<(), Error> {
    let config = LbConfig::from_options(&opts)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen,
            source,
        })?;
    tracing::info!(listen = %opts.listen, backends = ?opts.backends, "load balancer started");
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("load balancer stopping");
            shutdown.cancel();
        });
    }
    run(listener, config, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests;
