//! `rkube`: the operator's tool for a local rkube cluster. This main only parses flags (the
//! option types of `rkube_ops`, `rkube_lb` and `rkube_bench` carry them), sets up telemetry,
//! calls the library and turns the outcome into output and an exit code.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error (bad flags, or a request the existing
//! cluster cannot satisfy), 64 bad configuration (telemetry flags, the balancer's CA).

use std::process::ExitCode;

use clap::{parser::ValueSource, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rkube",
    version,
    about = "Run and inspect a local rkube cluster",
    long_about = "Run and inspect a local rkube cluster: every component is a separate \
                  background process on this machine, with its data, logs and pid files \
                  under one directory (--dir, default ./.rkube).",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: rkube_telemetry::TelemetryArgs,
}

// The option types carry their subcommand's description and flags.
#[derive(Subcommand)]
enum Command {
    Up(rkube_ops::UpOptions),
    Status(rkube_ops::StatusOptions),
    Down(rkube_ops::DownOptions),
    Lb(rkube_lb::LbOptions),
    /// Benchmarks (they start and stop their own processes; no cluster needed).
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    Store(rkube_bench::StoreBenchOptions),
    Api(rkube_bench::api::ApiBenchOptions),
    Podstartup(rkube_bench::podstartup::PodStartupOptions),
    Controllers(rkube_bench::controllers::ControllersBenchOptions),
    Scheduler(rkube_bench::scheduler::SchedulerBenchOptions),
}

/// Each library's error knows the exit code it means (`exit_code`).
macro_rules! finish {
    ($result:expr $(,)?) => {
        match $result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e, e.exit_code()),
        }
    };
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let lb = matches!(cli.command, Command::Lb(_));
    // The balancer's log is its record; the commands print their results and log warnings.
    if !lb && matches.value_source("log_level") == Some(ValueSource::DefaultValue) {
        cli.telemetry.log_level = "warn".to_string();
    }
    let service = if lb { "rkube-lb" } else { "rkube" };
    let _telemetry = match rkube_telemetry::init(service, &cli.telemetry) {
        Ok(guard) => guard,
        Err(e) => return fail(&e, 64),
    };
    let progress: rkube_bench::Progress = std::sync::Arc::new(|line| eprintln!("{line}"));
    match cli.command {
        Command::Up(mut o) => {
            o.telemetry = rkube_ops::components::Telemetry {
                log_format: clap::ValueEnum::to_possible_value(&cli.telemetry.log_format)
                    .map(|v| v.get_name().to_string()),
                otlp_endpoint: cli.telemetry.otlp_endpoint().map(str::to_string),
            };
            finish!(rkube_ops::up(&o).await.map(drop))
        }
        Command::Status(o) => finish!(rkube_ops::status(&o.dir).await.map(|r| show(&r, o.output))),
        Command::Down(o) => finish!(rkube_ops::down(&o.dir, o.purge)
            .await
            .map(|r| out(&r.render()))),
        Command::Lb(o) => finish!(rkube_lb::serve_until_signalled(o).await),
        Command::Bench(Bench::Store(o)) => finish!(rkube_bench::run_store(o.clone(), progress)
            .await
            .map(|r| show(&r, o.output))),
        Command::Bench(Bench::Api(o)) => finish!(rkube_bench::api::run_api(o.clone(), progress)
            .await
            .map(|r| show(&r, o.output))),
        Command::Bench(Bench::Podstartup(o)) => {
            finish!(rkube_bench::podstartup::run_podstartup(o.clone(), progress)
                .await
                .map(|r| show(&r, o.output)))
        }
        Command::Bench(Bench::Controllers(o)) => finish!(
            rkube_bench::controllers::run_controllers(o.clone(), progress)
                .await
                .map(|r| show(&r, o.output))
        ),
        Command::Bench(Bench::Scheduler(o)) => {
            finish!(rkube_bench::scheduler::run_scheduler(o.clone(), progress)
                .await
                .map(|r| show(&r, o.output)))
        }
    }
}

fn fail(e: &dyn std::error::Error, code: u8) -> ExitCode {
    eprintln!("error: {}", rkube_ops::error_chain(e));
    ExitCode::from(code)
}

fn show(report: &impl rkube_ops::Report, output: rkube_ops::Output) {
    out(&report.render_as(output));
}

/// Writes to stdout, ignoring a closed pipe (`rkube status | head -1`) instead of panicking.
fn out(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
