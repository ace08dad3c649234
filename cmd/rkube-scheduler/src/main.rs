//! rkube-scheduler: binds pending pods to nodes (filter, score, Binding), active/standby
//! by the `kube-system/kube-scheduler` Lease. Logic lives in pkg/scheduler; the process's
//! shape (flags, telemetry, health server, signals, drain) in pkg/component.

use clap::Parser;
use rkube_component::{ComponentArgs, Context, LeaderElectionArgs, Spec};

#[derive(Parser)]
#[command(
    version,
    about = "rkube's scheduler: binds each pending pod to a node that fits it, as kube-scheduler does"
)]
struct Cli {
    #[command(flatten)]
    component: ComponentArgs,
    #[command(flatten)]
    election: LeaderElectionArgs,
    #[command(flatten)]
    scheduler: rkube_scheduler::Config,
}

const SPEC: Spec = Spec {
    name: "rkube-scheduler",
    default_listen: "127.0.0.1:10259",
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match cli.scheduler.load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rkube-scheduler: {}", rkube_component::error_chain(&e));
            return std::process::ExitCode::from(64);
        }
    };
    let election = cli.election;
    rkube_component::main(SPEC, cli.component, move |ctx: Context| async move {
        let client = ctx.client.clone();
        let name = ctx.name.clone();
        ctx.run_elected(&election, "kube-scheduler", move |token| {
            rkube_scheduler::run(client.clone(), settings.clone(), name.clone(), token)
        })
        .await
    })
    .await
}
