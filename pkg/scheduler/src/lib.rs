//! rkube's scheduler: binds each pending pod to a node, as kube-scheduler does.
//!
//! Map of the modules:
//!
//! - [`resources`]: what a pod requests and a node offers (pure).
//! - [`nodeinfo`]: a pod and a node as the plugins read them (pure data).
//! - [`framework`]: the filter and score plugins, profiles, one scheduling attempt (pure).

pub mod framework;
pub mod nodeinfo;
pub mod resources;

#[cfg(test)]
pub(crate) mod testing;

/// The schedulerName of pods that name none, and of the default profile.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
