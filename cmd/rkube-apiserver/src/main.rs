//! rkube-apiserver: one replica of rkube's control-plane store and API.

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "rkube's API server: one replica of the Raft-replicated cluster store and its APIs"
)]
struct Cli {
    #[command(flatten)]
    options: rkube_apiserver::Options,
    #[command(flatten)]
    telemetry: rkube_telemetry::TelemetryArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let guard = match rkube_telemetry::init("rkube-apiserver", &cli.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("rkube-apiserver: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let res = rkube_apiserver::run(cli.options, shutdown, |_, _| {}).await;
    let _ = guard.shutdown();
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "apiserver stopped");
            eprintln!("rkube-apiserver: {e}");
            std::process::ExitCode::from(match e {
                rkube_apiserver::Error::Config(_) => 64,
                _ => 1,
            })
        }
    }
}

/// First SIGTERM/SIGINT drains; a second one exits at once.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    let mut int = signal(SignalKind::interrupt()).expect("signal handler");
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("shutting down (send the signal again to exit at once)");
            shutdown.cancel();
        } else {
            std::process::exit(130);
        }
    }
}
