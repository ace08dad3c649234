//! rkube's controllers, one module each, run by `rkube-controller-manager` while it holds
//! the `kube-controller-manager` Lease. Each follows the same shape (pkg/runtime):
//! informers from one shared [`InformerFactory`] → handlers that only enqueue → a
//! [`rkube_runtime::Controller`] whose reconcile reads the caches and writes
//! conditionally through the API.
//!
//! Map of the modules:
//! - [`config`]: the controller-manager's flags (which controllers, concurrency, timings,
//!   CIDRs).
//! - [`serviceaccount`]: every namespace gets its `default` ServiceAccount.
//! - [`replicaset`]: every ReplicaSet has `spec.replicas` pods from its template.
//! - [`deployment`]: Deployments roll ReplicaSets out (RollingUpdate, Recreate), keep
//!   their history and report progress.
//! - [`ownership`], [`pods`]: what the workload controllers share: claiming objects by
//!   controller reference, and what they read off a pod.
//! - [`nodeipam`]: every node gets a pod CIDR from the cluster CIDR.
//! - [`nodelifecycle`]: silent nodes turn Ready=Unknown and get tainted; pods leave
//!   NoExecute-tainted nodes when their tolerations run out.
//! - [`discovery`]: the resources the apiserver serves, as its discovery says.
//! - [`garbagecollector`]: objects whose owners are gone are deleted; foreground and
//!   orphan deletions are carried out.
//! - [`namespace`]: a deleted namespace is emptied, then finalized.
//!
//! [`run`] starts every enabled controller over one informer factory and returns when
//! the shutdown token fired and they all stopped. Never: reach the store or the
//! apiserver's internals; everything goes through the API as any client's would.

pub mod config;
pub mod deployment;
pub mod discovery;
pub mod garbagecollector;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod ownership;
pub mod pods;
pub mod replicaset;
pub mod serviceaccount;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rkube_client::Client;
use rkube_runtime::{InformerFactory, Recorder, Reporter};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// What every controller gets: the client, the shared informers, the flags, and a way
/// to make its event recorder.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub factory: InformerFactory,
    pub config: Arc<Config>,
    /// This controller-manager instance (events' `reportingInstance`).
    pub instance: String,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        instance: &str,
        shutdown: CancellationToken,
    ) -> Self {
        Context {
            factory: InformerFactory::new(client.clone()),
            client,
            config: Arc::new(config),
            instance: instance.to_string(),
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// An event recorder reporting as `component` (Kubernetes' names:
    /// `replicaset-controller`, `deployment-controller`, ...). Its writer runs until
    /// shutdown.
    pub fn recorder(&self, component: &str) -> Recorder {
        let (recorder, writer) = Recorder::new(
            self.client.clone(),
            Reporter {
                component: component.to_string(),
                instance: self.instance.clone(),
            },
        );
        self.tasks.spawn(writer.run(self.shutdown.clone()));
        recorder
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}

type Start = fn(Context) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every controller and how to start it. Adding a controller is one row here, one
/// module, and its name in [`config::ALL`].
const CONTROLLERS: &[(&str, Start)] = &[
    ("serviceaccount", |ctx| Box::pin(serviceaccount::run(ctx))),
    ("replicaset", |ctx| Box::pin(replicaset::run(ctx))),
    ("deployment", |ctx| Box::pin(deployment::run(ctx))),
    ("nodeipam", |ctx| Box::pin(nodeipam::run(ctx))),
    ("nodelifecycle", |ctx| Box::pin(nodelifecycle::run(ctx))),
    ("garbagecollector", |ctx| {
        Box::pin(garbagecollector::run(ctx))
    }),
    ("namespace", |ctx| Box::pin(namespace::run(ctx))),
];

/// Why the controllers could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown controllers in --controllers: {0:?} (known: {known:?})", known = config::ALL)]
    UnknownControllers(Vec<String>),
    #[error("node IPAM")]
    NodeIpam(#[source] nodeipam::IpamError),
}

/// Checks the flags before anything starts.
pub fn validate(config: &Config) -> Result<(), Error> {
    let unknown = config.unknown();
    if !unknown.is_empty() {
        return Err(Error::UnknownControllers(unknown));
    }
    nodeipam::validate(config).map_err(Error::NodeIpam)?;
    Ok(())
}

/// Runs every enabled controller until `shutdown`; returns once they all stopped.
pub async fn run(client: Client, config: Config, instance: String, shutdown: CancellationToken) {
    let ctx = Context::new(client, config, &instance, shutdown.clone());
    let mut started = Vec::new();
    for (name, start) in CONTROLLERS {
        if ctx.config.enabled(name) {
            ctx.tasks.spawn(start(ctx.clone()));
            started.push(*name);
        }
    }
    tracing::info!(controllers = ?started, "controllers started");
    ctx.factory.start(shutdown.clone());
    shutdown.cancelled().await;
    ctx.tasks.close();
    ctx.tasks.wait().await;
    ctx.factory.join().await;
    tracing::info!("controllers stopped");
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn every_controller_name_has_exactly_one_row_and_every_row_a_name() {
        let mut rows: Vec<&str> = CONTROLLERS.iter().map(|(n, _)| *n).collect();
        rows.sort();
        let mut names: Vec<&str> = config::ALL.to_vec();
        names.sort();
        assert_eq!(rows, names);
    }
}
