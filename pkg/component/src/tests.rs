use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    args: ComponentArgs,
}

const SPEC: Spec = Spec {
    name: "rkube-test-component",
    default_listen: "127.0.0.1:0",
};

fn args(extra: &[&str]) -> ComponentArgs {
    let mut argv = vec![
        "test",
        "--apiserver",
        "127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
    ];
    argv.extend_from_slice(extra);
    Flags::parse_from(argv).args
}

/// The status code of `GET path` on `addr` (0 when nothing answers).
async fn get(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn readiness_follows_the_components_checks_and_shutdown_drains_its_tasks() {
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let task_finished = Arc::new(AtomicBool::new(false));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (r, t) = (ready.clone(), task_finished.clone());
    let serving = tokio::spawn(serve(
        SPEC,
        args(&[]),
        move |ctx: Context| async move {
            ctx.health
                .add_check("informers-synced", move || r.load(Ordering::SeqCst));
            let token = ctx.shutdown.clone();
            // A task the skeleton must wait for: it finishes its work after the signal.
            ctx.tasks.spawn(async move {
                token.cancelled().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                t.store(true, Ordering::SeqCst);
            });
            addr_tx.send(ctx.listen).unwrap();
            ctx.shutdown.cancelled().await;
            Ok(())
        },
        shutdown.clone(),
    ));
    let addr = tokio::time::timeout(Duration::from_secs(10), addr_rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(get(addr, "/healthz").await, 200);
    assert_eq!(
        get(addr, "/readyz").await,
        503,
        "the check does not pass yet"
    );
    ready.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").await, 200);
    assert_eq!(get(addr, "/metrics").await, 200);
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        task_finished.load(Ordering::SeqCst),
        "serve waited for the task"
    );
    assert_eq!(get(addr, "/healthz").await, 0, "the health server stopped");
}

#[tokio::test]
async fn a_body_that_ignores_shutdown_is_cut_off_after_the_grace_period() {
    let shutdown = CancellationToken::new();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let serving = tokio::spawn(serve(
        SPEC,
        args(&["--shutdown-grace-period", "200ms"]),
        move |_ctx: Context| async move {
            s.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        },
        shutdown.clone(),
    ));
    wait_for("the body to start", || started.load(Ordering::SeqCst)).await;
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(Error::GraceExpired(d)) if d == Duration::from_millis(200)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_failing_body_stops_the_component_with_its_error() {
    let result = serve(
        SPEC,
        args(&[]),
        |_ctx: Context| async move { Err::<(), BoxError>("cannot reach the runtime".into()) },
        CancellationToken::new(),
    )
    .await;
    match result {
        Err(e @ Error::Body(_)) => assert!(error_chain(&e).contains("cannot reach the runtime")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_flags_are_a_config_error_before_anything_starts() {
    let no_server = Flags::parse_from(["test", "--listen", "127.0.0.1:0"]).args;
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let result = serve(
        SPEC,
        ComponentArgs {
            kubeconfig: None,
            ..no_server
        },
        move |_ctx: Context| async move {
            r.store(true, Ordering::SeqCst);
            Ok(())
        },
        CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(result, Err(Error::Config(ConfigError::NoApiserver))),
        "{result:?}"
    );
    assert!(!ran.load(Ordering::SeqCst));
    let half = args(&["--client-certificate", "/nonexistent.crt"]);
    assert!(matches!(
        half.client_config(),
        Err(ConfigError::HalfIdentity)
    ));
    let missing = args(&["--certificate-authority", "/nonexistent/ca.crt"]);
    let Err(e) = missing.client_config() else {
        panic!("a missing CA file is an error")
    };
    assert!(error_chain(&e).contains("/nonexistent/ca.crt"), "{e}");
}

#[tokio::test]
async fn several_apiservers_become_the_clients_endpoints() {
    let a = Flags::parse_from([
        "t",
        "--apiserver",
        "127.0.0.1:1,127.0.0.1:2",
        "--apiserver",
        "127.0.0.1:3",
    ])
    .args;
    let c = a.client_config().unwrap();
    assert_eq!(c.endpoints, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
    assert!(c.tls.is_none());
}
