//! Test support for the controllers: an in-process apiserver, a client of it, a
//! [`Context`] over it, and waiting for a condition with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use clap::Parser;
use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Client, Config as ClientConfig};
use tokio_util::sync::CancellationToken;

use crate::{Config, Context};

pub struct Harness {
    pub api: TestApiserver,
    pub client: Client,
    pub shutdown: CancellationToken,
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    config: Config,
}

/// The controller-manager's configuration from flags (defaults plus `args`).
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["test"];
    argv.extend_from_slice(args);
    Flags::parse_from(argv).config
}

impl Harness {
    pub async fn start() -> Harness {
        let api = TestApiserver::start().await;
        let mut c = ClientConfig::new([api.addr.clone()]);
        c.deadline = Duration::from_secs(10);
        Harness {
            client: Client::new(c).expect("client"),
            api,
            shutdown: CancellationToken::new(),
        }
    }

    /// A context for controllers under test, with `args` as controller-manager flags.
    pub fn context(&self, args: &[&str]) -> Context {
        Context::new(
            self.client.clone(),
            config(args),
            "test",
            self.shutdown.clone(),
        )
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.api.stop().await;
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
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
