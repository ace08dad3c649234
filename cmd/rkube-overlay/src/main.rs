//! rkube-overlay: the node's VXLAN overlay agent (flannel's design): one per node, no
//! leader election. Logic lives in pkg/overlay; the process's shape (flags, telemetry,
//! health server, signals, drain) in pkg/component.

use clap::Parser;
use rkube_component::{ComponentArgs, Context, Spec};

#[derive(Parser)]
#[command(
    version,
    about = "rkube's overlay agent: joins this node's pod subnet to the other nodes' over VXLAN"
)]
struct Cli {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    overlay: rkube_overlay::agent::Config,
}

const SPEC: Spec = Spec {
    name: "rkube-overlay",
    default_listen: "127.0.0.1:10267",
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = cli.overlay;
    rkube_component::main(SPEC, cli.component, move |ctx: Context| async move {
        rkube_overlay::agent::run(
            ctx.client.clone(),
            config,
            ctx.health.clone(),
            ctx.shutdown.clone(),
        )
        .await
        .map_err(Into::into)
    })
    .await
}
