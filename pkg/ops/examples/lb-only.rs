//! A stand-in for the `rkube` binary in `tests/supervisor.rs` (linked into a bin dir as
//! `rkube`): it knows only the `lb` subcommand, and runs the real load balancer
//! (`rkube_lb`), so the supervisor tests start, probe and stop a real one.

use clap::Parser;

#[derive(Parser)]
enum Cli {
    Lb(rkube_lb::LbOptions),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let Cli::Lb(opts) = Cli::parse();
    match rkube_lb::serve_until_signalled(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-only: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
