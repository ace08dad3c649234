//! rkube's client of the apiserver, for rkube's own components: the
//! `rkube.api.v1.Resources` gRPC service, with every apiserver endpoint and
//! failover between them.
//!
//! - [`Client`] (`client.rs`): the raw calls (Kubernetes JSON in and out) and
//!   the failover rules: reads go to the next endpoint on any failure that did
//!   not come from the API pipeline; writes move on only when they certainly
//!   did not reach a server (the connection was never made); everything
//!   within one deadline.
//! - [`Watch`] (`watch.rs`): a watch that resumes from its last
//!   resourceVersion on another endpoint, and ends with 410 Gone when it
//!   cannot (the caller relists). One step at a time ([`Watch::next`]), so
//!   reflectors and informers can be built over it.
//! - [`Api`] (`typed.rs`): the same calls typed with k8s-openapi's types.
//! - [`Error`] (`error.rs`): the server's Kubernetes `Status`, or why no
//!   answer came.
//! - [`channel`] (`connect.rs`): one endpoint's lazily connecting gRPC
//!   channel over TCP or TLS (rustls), for callers of other rkube services.
//!
//! This crate never decides what a request means; the apiserver does. It only
//! decides where to send it and whether sending it again is safe.

mod client;
mod connect;
mod error;
mod typed;
mod watch;

pub use client::{Client, Config, DeleteParams, ListParams, ObjectList, PatchType, WriteParams};
pub use connect::{channel, InvalidAddress};
pub use error::{Error, Result};
pub use rkube_api::status::{Reason, Status};
pub use typed::{Api, TypedEvent, TypedWatch};
pub use watch::{Event, Watch, WatchParams};

/// Which resource a call is about: group, version and plural name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gvr {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl Gvr {
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Gvr {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
        }
    }

    /// The resource of a k8s-openapi type (`Gvr::of::<Pod>()` is `v1 pods`).
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self::new(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
    }

    fn to_ref(&self, namespace: &str, name: &str) -> rkube_proto::api::ResourceRef {
        rkube_proto::api::ResourceRef {
            group: self.group.clone(),
            version: self.version.clone(),
            resource: self.resource.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}
