//! A minimal component for the e2e tests: the component skeleton (flags, health server,
//! signals, drain) around a leader election whose only work is to hold the Lease.

use clap::Parser;
use rkube_component::{ComponentArgs, Context, LeaderElectionArgs, Spec};

#[derive(Parser)]
#[command(about = "Holds a Lease while it leads (an rkube e2e test component)")]
struct Cli {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    election: LeaderElectionArgs,
}

const SPEC: Spec = Spec {
    name: "lease-candidate",
    default_listen: "127.0.0.1:0",
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let election = cli.election;
    rkube_component::main(SPEC, cli.component, move |ctx: Context| async move {
        ctx.run_elected(&election, "e2e-lock", |token| async move {
            tracing::info!("leading");
            token.cancelled().await;
            tracing::info!("no longer leading");
        })
        .await
    })
    .await
}
