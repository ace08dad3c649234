//! A real rkube-apiserver replica running inside the test process (its own data directory,
//! loopback ports, anonymous access), and helpers to wait for conditions with deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use clap::Parser;
use rkube_client::{Client, Config, Gvr, ListParams};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    options: rkube_apiserver::Options,
}

/// A free loopback port (bound and released; good enough on a test machine).
fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct TestApi {
    pub addr: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestApi {
    /// One replica keeping `history` revisions of watch history.
    pub async fn start(history: usize) -> TestApi {
        let dir = tempfile::tempdir().expect("temp dir");
        let (api, peer) = (port(), port());
        let args = Args::parse_from([
            "rkube-apiserver".to_string(),
            "--name=a1".into(),
            "--id=1".into(),
            format!("--data-dir={}", dir.path().display()),
            format!("--api-listen=127.0.0.1:{api}"),
            format!("--peer-listen=127.0.0.1:{peer}"),
            format!("--initial-member=id=1,name=a1,peer=127.0.0.1:{peer},api=127.0.0.1:{api}"),
            "--anonymous-auth=true".into(),
            format!("--history-revisions={history}"),
        ]);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = rkube_apiserver::run(args.options, token, |_, _| {}).await {
                panic!("in-process apiserver failed: {e}");
            }
        });
        let t = TestApi {
            addr: format!("127.0.0.1:{api}"),
            shutdown,
            task,
            _dir: dir,
        };
        let client = t.client();
        eventually(
            "the apiserver answers lists",
            Duration::from_secs(30),
            || {
                let c = client.clone();
                async move {
                    c.list(
                        &Gvr::new("", "v1", "namespaces"),
                        "",
                        &ListParams::default(),
                    )
                    .await
                    .is_ok_and(|l| l.items.len() >= 3)
                }
            },
        )
        .await;
        t
    }

    pub fn client(&self) -> Client {
        let mut c = Config::new([self.addr.clone()]);
        c.deadline = Duration::from_secs(10);
        Client::new(c).expect("client")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// Waits until `check` is true, polling every 20 ms; panics naming `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
