//! rkube-controller-manager: the Deployment, ReplicaSet, garbage collector, namespace,
//! service account, node lifecycle and node IPAM controllers, active/standby by the
//! `kube-system/kube-controller-manager` Lease. Logic lives in pkg/controllers; the
//! process's shape (flags, telemetry, health server, signals, drain) in pkg/component.

use clap::Parser;
use rkube_component::{ComponentArgs, Context, LeaderElectionArgs, Spec};

#[derive(Parser)]
#[command(
    version,
    about = "rkube's controller manager: Deployments, ReplicaSets, garbage collection, namespaces, service accounts, nodes"
)]
struct Cli {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    election: LeaderElectionArgs,
    #[command(flatten)]
    controllers: rkube_controllers::Config,
}

const SPEC: Spec = Spec {
    name: "rkube-controller-manager",
    default_listen: "127.0.0.1:10257",
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = rkube_controllers::validate(&cli.controllers) {
        eprintln!(
            "rkube-controller-manager: {}",
            rkube_component::error_chain(&e)
        );
        return std::process::ExitCode::from(64);
    }
    let (election, config) = (cli.election, cli.controllers);
    rkube_component::main(SPEC, cli.component, move |ctx: Context| async move {
        let client = ctx.client.clone();
        let name = ctx.name.clone();
        ctx.run_elected(&election, "kube-controller-manager", move |token| {
            rkube_controllers::run(client.clone(), config.clone(), name.clone(), token)
        })
        .await
    })
    .await
}
