//! rkube's scheduler: binds each pending pod to a node, as kube-scheduler does — filter
//! the nodes that cannot run it, score the rest, assume the best and post a Binding.
//!
//! Map of the modules, bottom up:
//!
//! - [`resources`]: what a pod requests and a node offers (pure).
//! - [`nodeinfo`]: a pod and a node as the plugins read them (pure data).
//! - [`framework`]: the filter and score plugins, profiles, one scheduling attempt (pure).
//! - [`config`]: the `KubeSchedulerConfiguration` file → profiles and back-off.
//! - [`cache`]: nodes and placed pods, with assumed pods counted until confirmed.
//! - [`queue`]: the active, back-off and unschedulable sub-queues.
//! - `scheduler`: informers → cache and queue; the loop; asynchronous bindings; events.
//! - `metrics`: kube-scheduler's metric names.
//!
//! Never: read the store or the apiserver's internals — everything goes through the API
//! (informers, pods/binding, events, the pod's status), as any outside scheduler's would.

pub mod cache;
pub mod config;
pub mod framework;
mod metrics;
pub mod nodeinfo;
pub mod queue;
pub mod resources;
mod scheduler;

use std::path::PathBuf;

pub use config::{ConfigError, Settings};
pub use scheduler::{run, scheduler_name, MAX_BINDINGS_IN_FLIGHT};

#[cfg(test)]
pub(crate) mod testing;

/// The schedulerName of pods that name none, and of the default profile.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The scheduler's own flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Config {
    /// A KubeSchedulerConfiguration file (apiVersion kubescheduler.config.k8s.io/v1, YAML
    /// or JSON): profiles, plugins, weights, percentageOfNodesToScore, back-off
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Config {
    /// The settings the flags name: the file's, or Kubernetes' defaults without one.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        match &self.config {
            Some(path) => config::load(path),
            None => Ok(Settings::default()),
        }
    }
}
