//! A real apiserver replica inside a test process, for the component tests of the crates
//! above (runtime, controllers, scheduler, kubelet): its own temporary data directory,
//! loopback ports, anonymous access allowed (authorization allows everything), and a
//! `start` that returns once the replica leads and the system namespaces exist.
//!
//! Test support only: nothing in a component's binary uses it (the layering test keeps
//! component crates from linking this crate outside their dev-dependencies).

use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    options: crate::Options,
}

/// A free loopback port (bound, then released).
fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running in-process replica; stops when [`TestApiserver::stop`] is called or the
/// test's runtime ends.
pub struct TestApiserver {
    /// The API address (`127.0.0.1:PORT`), plain HTTP/2 and HTTP/1.1.
    pub addr: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestApiserver {
    /// A replica with default settings.
    pub async fn start() -> TestApiserver {
        Self::start_with(&[]).await
    }

    /// A replica with extra `rkube-apiserver` flags (e.g. `--history-revisions=50`).
    pub async fn start_with(extra: &[&str]) -> TestApiserver {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let (api, peer) = (port(), port());
        let mut argv = vec![
            "rkube-apiserver".to_string(),
            "--name=a1".into(),
            "--id=1".into(),
            format!("--data-dir={}", dir.path().display()),
            format!("--api-listen=127.0.0.1:{api}"),
            format!("--peer-listen=127.0.0.1:{peer}"),
            format!("--initial-member=id=1,name=a1,peer=127.0.0.1:{peer},api=127.0.0.1:{api}"),
            "--anonymous-auth=true".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args = Args::parse_from(argv);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = crate::run(args.options, token, |_, _| {}).await {
                panic!("the in-process apiserver failed: {e}");
            }
        });
        let t = TestApiserver {
            addr: format!("127.0.0.1:{api}"),
            shutdown,
            task,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for path in ["/readyz", "/api/v1/namespaces/kube-node-lease"] {
            while t.get(path).await != 200 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the in-process apiserver did not answer {path} with 200 within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        t
    }

    /// The status code of a plain `GET path` (0 when nothing answers).
    pub async fn get(&self, path: &str) -> u16 {
        let Ok(mut s) = tokio::net::TcpStream::connect(&self.addr).await else {
            return 0;
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.addr
        );
        if s.write_all(req.as_bytes()).await.is_err() {
            return 0;
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out)
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the replica and waits for it (at most 20 s).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}
