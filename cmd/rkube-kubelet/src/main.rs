//! rkube-kubelet: registers its Node, keeps its Lease, and runs the pods bound to it in a
//! CRI runtime (containerd). Logic lives in pkg/kubelet; the process's shape (flags,
//! telemetry, health server, signals, drain) in pkg/component.

use clap::Parser;
use rkube_component::{ComponentArgs, Context, Spec};

#[derive(Parser)]
#[command(
    version,
    about = "rkube's kubelet: runs the pods bound to its node in containerd through CRI"
)]
struct Cli {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    kubelet: rkube_kubelet::Config,
}

const SPEC: Spec = Spec {
    name: "rkube-kubelet",
    default_listen: "127.0.0.1:10248",
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = cli.kubelet;
    rkube_component::main(SPEC, cli.component, move |ctx: Context| {
        rkube_kubelet::run(ctx, config)
    })
    .await
}
