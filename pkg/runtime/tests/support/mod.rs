//! The in-process apiserver replica of `rkube_apiserver::testing`, a client of it, and a
//! wait-for-condition helper with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Client, Config};

pub struct TestApi {
    inner: TestApiserver,
}

impl TestApi {
    /// One replica keeping `history` revisions of watch history in its store and as many
    /// events in its watch cache and per watcher (so a watcher that falls that far behind
    /// gets 410 and cannot resume).
    pub async fn start(history: usize) -> TestApi {
        let store = format!("--history-revisions={history}");
        let cache = format!("--watch-cache-window-events={history}");
        let buffer = format!("--watch-cache-watcher-buffer={}", history.min(1000));
        TestApi {
            inner: TestApiserver::start_with(&[&store, &cache, &buffer]).await,
        }
    }

    pub fn client(&self) -> Client {
        let mut c = Config::new([self.inner.addr.clone()]);
        c.deadline = Duration::from_secs(10);
        Client::new(c).expect("client")
    }

    pub async fn stop(self) {
        self.inner.stop().await
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
