use clap::Parser;
use std::time::{Duration, Instant};

/// The scratch binary.
#[derive(Parser, Debug)]
struct Flags {
    #[command(flatten)]
    telemetry: rkube_telemetry::TelemetryArgs,
}

fn main() {
    let rt = if std::env::var("CT").is_ok() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Runtime::new().unwrap()
    };
    rt.block_on(amain());
    eprintln!("runtime dropped");
}

async fn amain() {
    let flags = Flags::parse();
    eprintln!("{flags:?}");
    let guard = rkube_telemetry::init("scratch", &flags.telemetry).unwrap();
    for i in 0..3 {
        let span = tracing::info_span!("scratch.op", i);
        let _e = span.enter();
        tracing::info!("hello");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    if std::env::var("EXPLICIT").is_ok() {
        let r = guard.shutdown();
        eprintln!("shutdown: {r:?} in {:?}", t.elapsed());
    } else {
        drop(guard);
        eprintln!("dropped in {:?}", t.elapsed());
    }
}
