//! A stand-in for the `rkube` binary in `tests/supervisor.rs` (linked into a bin dir as
//! `rkube`): it knows only the `lb` subcommand, with the telemetry flags every binary has,
//! and runs the real load balancer (`rkube_lb`), so the supervisor tests start, probe and
//! stop a real one.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: rkube_telemetry::TelemetryArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    Lb(rkube_lb::LbOptions),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _telemetry = rkube_telemetry::init("rkube-lb", &cli.telemetry);
    let Command::Lb(opts) = cli.command;
    match rkube_lb::serve_until_signalled(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-only: {}", rkube_ops::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
