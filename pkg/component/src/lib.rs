//! The skeleton every rkube component binary stands on, so each `main.rs` is a page:
//! parse flags, call [`main`] with the component's body, return its exit code.
//!
//! What [`main`] does, in order: telemetry (logs, OTLP traces, metrics) from the common
//! flags; the API client from `--apiserver`/`--kubeconfig` and the credentials; the health
//! server (`/healthz`, `/livez`, `/readyz`, `/metrics` on `--listen`); SIGTERM/SIGINT → one
//! [`CancellationToken`] (a second signal exits at once, code 130); then the body, with a
//! [`Context`]. When the token fires, the body and every task it put in
//! [`Context::tasks`] get `--shutdown-grace-period` to finish; then the health server
//! stops and spans are flushed.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the body failed or the grace period ran
//! out, 64 for bad flags or files (EX_USAGE, before anything started), 130 on a second
//! signal.
//!
//! Map of the modules: [`args`] (the shared flags, leader election flags, durations),
//! [`health`] (readiness checks and the server), `kubeconfig` and `tls` (turning flags into
//! a client configuration).
//!
//! Never: hold component logic. Controllers live in pkg/controllers, the scheduler in
//! pkg/scheduler, and so on; this crate only starts, watches over and stops them.

pub mod args;
pub mod health;
mod kubeconfig;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

pub use args::{parse_duration, ComponentArgs, ConfigError, LeaderElectionArgs};
pub use health::Health;
use rkube_client::Client;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// Errors a component's body may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a component is, for the skeleton.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The binary's name (`rkube-scheduler`): the traces' service name and the default
    /// instance name.
    pub name: &'static str,
    /// The health server's default address (Kubernetes' port for this component).
    pub default_listen: &'static str,
}

/// Why a component stopped other than cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the component failed")]
    Body(#[source] BoxError),
    #[error("shutdown did not finish within {0:?}")]
    GraceExpired(Duration),
    #[error("the health server failed")]
    HealthServer(#[source] std::io::Error),
}

/// What the body gets: the client, the shutdown token and the places to hang its work.
#[derive(Clone)]
pub struct Context {
    /// A client of every apiserver given, with failover.
    pub client: Client,
    /// Fires on SIGTERM/SIGINT (or when the body's caller stops it).
    pub shutdown: CancellationToken,
    /// Readiness checks shown on `/readyz`.
    pub health: Health,
    /// Tasks the skeleton waits for (within the grace period) before exiting.
    pub tasks: TaskTracker,
    /// This instance's name (`--name`, default the component's).
    pub name: String,
    /// Where the health server listens (the bound address, for `--listen ...:0`).
    pub listen: SocketAddr,
}

impl Context {
    /// Runs `lead` while this instance holds the Lease `lease` (default name; the flags
    /// may rename it), or at once with `--leader-elect=false`. `lead` gets a token that
    /// fires when leadership is lost or at shutdown; when it is lost, the instance stands by
    /// and campaigns again. Returns at shutdown, after releasing the Lease.
    pub async fn run_elected<F, Fut>(
        &self,
        election: &LeaderElectionArgs,
        lease: &str,
        mut lead: F,
    ) -> Result<(), BoxError>
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if !election.leader_elect {
            tracing::info!("leader election disabled; running");
            lead(self.shutdown.clone()).await;
            return Ok(());
        }
        let identity = rkube_runtime::leader::unique_identity(&self.name);
        let config = election.lease_config(lease, &identity);
        tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), %identity, "campaigning for the lease");
        let elector = rkube_runtime::LeaderElector::new(self.client.clone(), config)?;
        elector.run(self.shutdown.clone(), lead).await;
        Ok(())
    }
}

/// The whole life of a component process; see the crate documentation. `body` runs once
/// and should return when `ctx.shutdown` fires.
pub async fn main<F, Fut>(spec: Spec, args: ComponentArgs, body: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let guard = match rkube_telemetry::init(spec.name, &args.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{}: {e}", spec.name);
            return ExitCode::from(64);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let result = serve(spec, args, body, shutdown).await;
    let code = match &result {
        Ok(()) => 0,
        Err(Error::Config(_)) => 64,
        Err(_) => 1,
    };
    if let Err(e) = &result {
        let chain = error_chain(e);
        tracing::error!(error = %chain, "{} stopped", spec.name);
        eprintln!("{}: {chain}", spec.name);
    }
    if let Err(e) = guard.shutdown() {
        eprintln!("{}: flushing traces: {e}", spec.name);
    }
    ExitCode::from(code)
}

/// [`main`] without the process-wide parts (telemetry, signals): runs until `shutdown`
/// fires and everything drained, or the body fails.
pub async fn serve<F, Fut>(
    spec: Spec,
    args: ComponentArgs,
    body: F,
    shutdown: CancellationToken,
) -> Result<(), Error>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let config = args.client_config()?;
    let client = Client::new(config).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let addr = match args.listen {
        Some(a) => a,
        None => spec
            .default_listen
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("default listen address: {e}")))?,
    };
    let listener = health::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let listen = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    let health = Health::new(shutdown.clone());
    let stop_server = CancellationToken::new();
    let server = tokio::spawn(health::serve(listener, health.clone(), stop_server.clone()));
    let name = args.name.clone().unwrap_or_else(|| spec.name.to_string());
    tracing::info!(component = spec.name, %name, %listen, endpoints = ?client.endpoints(), "starting");
    let ctx = Context {
        client,
        shutdown: shutdown.clone(),
        health,
        tasks: TaskTracker::new(),
        name,
        listen,
    };
    let tasks = ctx.tasks.clone();
    let mut body = tokio::spawn(body(ctx));
    let grace = args.shutdown_grace_period;
    let outcome = tokio::select! {
        r = &mut body => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Body(e)),
            Err(join) => Err(Error::Body(Box::new(join))),
        },
        _ = shutdown.cancelled() => {
            tracing::info!(grace = ?grace, "shutting down");
            match tokio::time::timeout(grace, &mut body).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(Error::Body(e)),
                Ok(Err(join)) => Err(Error::Body(Box::new(join))),
                Err(_) => { body.abort(); Err(Error::GraceExpired(grace)) }
            }
        }
    };
    // Whatever ended the body, everything else stops now.
    shutdown.cancel();
    tasks.close();
    let outcome = match tokio::time::timeout(grace, tasks.wait()).await {
        Ok(()) => outcome,
        Err(_) => outcome.and(Err(Error::GraceExpired(grace))),
    };
    stop_server.cancel();
    match server.await {
        Ok(Err(e)) => outcome.and(Err(Error::HealthServer(e))),
        _ => outcome,
    }?;
    tracing::info!("stopped");
    Ok(())
}

/// First SIGTERM/SIGINT cancels `shutdown`; a second exits at once.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received; shutting down (send it again to exit at once)");
            shutdown.cancel();
        } else {
            eprintln!("second signal: exiting at once");
            std::process::exit(130);
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
