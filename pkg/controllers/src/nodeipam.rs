//! Node IPAM: every node gets `spec.podCIDR` / `spec.podCIDRs` — a `/--node-cidr-mask-size`
//! subnet (default /24) of `--cluster-cidr` (default 10.244.0.0/16) — that the overlay and
//! the node's CNI configuration use. Kubernetes' range allocator, IPv4.
//!
//! Expected flow: on start, the subnets of nodes that already have one are marked used
//! (whatever allocated them); a node without one gets the lowest free subnet, written by a
//! patch conditional on the node's resourceVersion; a deleted node's subnet is released.
//! A full range is an event (`CIDRNotAvailable`) and a retry later, never a crash; a
//! subnet outside the cluster CIDR (set by hand) is left alone.
//!
//! The allocator ([`Allocator`]) is pure and tested with tables of cases; the controller
//! owns it behind a mutex because only this controller's reconciles touch it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use rkube_client::{Api, PatchType, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::{
    Action, Controller, EventType, ObjectKey, Recorder, Selection, Store, WorkQueue,
};

use crate::Context;

/// An IPv4 CIDR, `a.b.c.d/len`, with its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub base: u32,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, IpamError> {
        let bad = |why: &'static str| IpamError::BadCidr {
            text: s.to_string(),
            why,
        };
        let (ip, len) = s.split_once('/').ok_or(bad("not a.b.c.d/len"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let len: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
        if len > 32 {
            return Err(bad("prefix length over 32"));
        }
        let base = u32::from(ip) & mask(len);
        Ok(Cidr { base, len })
    }

    fn contains(&self, other: &Cidr) -> bool {
        other.len >= self.len && other.base & mask(self.len) == self.base
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.len)
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// Why the IPAM flags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("{text:?} is not an IPv4 CIDR: {why}")]
    BadCidr { text: String, why: &'static str },
    #[error("--node-cidr-mask-size {node_len} must be between the cluster CIDR's /{cluster_len} and /32")]
    MaskSize { node_len: u8, cluster_len: u8 },
    #[error("{cluster} holds too many /{node_len} subnets to track (at most 2^20)")]
    TooManySubnets { cluster: String, node_len: u8 },
}

/// Hands out the node-sized subnets of a cluster range; see the module documentation.
#[derive(Debug)]
pub struct Allocator {
    cluster: Cidr,
    node_len: u8,
    used: BTreeSet<u32>,
}

impl Allocator {
    pub fn new(cluster: Cidr, node_len: u8) -> Result<Allocator, IpamError> {
        if node_len < cluster.len || node_len > 32 {
            return Err(IpamError::MaskSize {
                node_len,
                cluster_len: cluster.len,
            });
        }
        if node_len - cluster.len > 20 {
            return Err(IpamError::TooManySubnets {
                cluster: cluster.to_string(),
                node_len,
            });
        }
        Ok(Allocator {
            cluster,
            node_len,
            used: BTreeSet::new(),
        })
    }

    fn count(&self) -> u32 {
        1 << (self.node_len - self.cluster.len)
    }

    fn index_of(&self, c: &Cidr) -> Option<u32> {
        (c.len == self.node_len && self.cluster.contains(c))
            .then(|| (c.base - self.cluster.base) >> (32 - self.node_len as u32))
    }

    fn subnet(&self, i: u32) -> Cidr {
        Cidr {
            base: self.cluster.base + (i << (32 - self.node_len as u32)),
            len: self.node_len,
        }
    }

    /// Marks `c` used; false when it is not one of this range's subnets.
    pub fn occupy(&mut self, c: &Cidr) -> bool {
        match self.index_of(c) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    /// The lowest free subnet, now marked used; `None` when the range is full.
    pub fn allocate(&mut self) -> Option<Cidr> {
        let free = (0..self.count()).find(|i| !self.used.contains(i))?;
        self.used.insert(free);
        Some(self.subnet(free))
    }

    pub fn release(&mut self, c: &Cidr) {
        if let Some(i) = self.index_of(c) {
            self.used.remove(&i);
        }
    }

    pub fn free(&self) -> u32 {
        self.count() - self.used.len() as u32
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("assigning {cidr} to node {node} failed")]
    Assign {
        node: String,
        cidr: String,
        #[source]
        source: rkube_client::Error,
    },
}

struct State {
    ctx: Context,
    nodes: Store<Node>,
    allocator: Mutex<Allocator>,
    /// Which subnet each node holds, as this controller knows it (for release on delete).
    held: Mutex<std::collections::HashMap<String, Cidr>>,
    /// Nodes that found the range full, queued again when a subnet is released.
    waiting: Mutex<BTreeSet<String>>,
    queue: WorkQueue<ObjectKey>,
    recorder: Recorder,
}

fn node_cidr(node: &Node) -> Option<Cidr> {
    let spec = node.spec.as_ref()?;
    let s = spec
        .pod_cidrs
        .as_ref()
        .and_then(|v| v.first().cloned())
        .or_else(|| spec.pod_cidr.clone())?;
    Cidr::parse(&s).ok()
}

/// Runs the controller until the context's shutdown. Bad CIDR flags are logged and the
/// controller does not start (the flags were validated at start-up; see [`validate`]).
pub async fn run(ctx: Context) {
    let allocator = match allocator(&ctx.config) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM not started");
            return;
        }
    };
    let nodes = ctx.factory.informer::<Node>(Selection::all());
    let controller = Controller::new("nodeipam", &nodes);
    let state = Arc::new(State {
        recorder: ctx.recorder("node-controller"),
        ctx: ctx.clone(),
        nodes: nodes.store(),
        allocator: Mutex::new(allocator),
        held: Mutex::new(Default::default()),
        waiting: Mutex::new(BTreeSet::new()),
        queue: controller.queue(),
    });
    // Before anything is allocated, learn every subnet already in use.
    let (s, informer) = (state.clone(), nodes.clone());
    let token = ctx.shutdown().clone();
    tokio::select! {
        _ = informer.wait_synced() => {}
        _ = token.cancelled() => return,
    }
    for node in s.nodes.list() {
        if let Some(c) = node_cidr(&node) {
            let name = node.metadata.name.clone().unwrap_or_default();
            if s.allocator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .occupy(&c)
            {
                s.held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, c);
            }
        }
    }
    controller
        .run(reconcile, retry_with_backoff, state, token)
        .await;
}

/// The allocator the flags describe (also used to validate them at start-up).
pub fn allocator(config: &crate::Config) -> Result<Allocator, IpamError> {
    Allocator::new(
        Cidr::parse(&config.cluster_cidr)?,
        config.node_cidr_mask_size,
    )
}

/// Checks the IPAM flags when the controller is enabled.
pub fn validate(config: &crate::Config) -> Result<(), IpamError> {
    if config.allocate_node_cidrs && config.enabled("nodeipam") {
        allocator(config)?;
    }
    Ok(())
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let Some(node) = st.nodes.get(&key) else {
        // Deleted: release what it held.
        if let Some(c) = st
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.name)
        {
            st.allocator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .release(&c);
            tracing::info!(node = %key.name, cidr = %c, "released the node's pod CIDR");
            let waiting =
                std::mem::take(&mut *st.waiting.lock().unwrap_or_else(PoisonError::into_inner));
            for name in waiting {
                st.queue.add(ObjectKey::cluster(name));
            }
        }
        return Ok(Action::await_change());
    };
    if !st.ctx.config.allocate_node_cidrs {
        return Ok(Action::await_change());
    }
    if let Some(c) = node_cidr(&node) {
        // Assigned (by us or anyone): remember it.
        if st
            .allocator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .occupy(&c)
        {
            st.held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.name.clone(), c);
        }
        return Ok(Action::await_change());
    }
    let Some(cidr) = st
        .allocator
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allocate()
    else {
        st.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.name.clone());
        st.recorder.publish_for(
            node.as_ref(),
            EventType::Normal,
            "CIDRNotAvailable",
            &format!("Node {} status is now: CIDRNotAvailable", key.name),
        );
        tracing::warn!(node = %key.name, "no pod CIDR left for the node");
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]},
    });
    let api: Api<Node> = Api::cluster(&st.ctx.client);
    match api
        .patch(&key.name, PatchType::Merge, &patch, &WriteParams::default())
        .await
    {
        Ok(_) => {
            st.held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.name.clone(), cidr);
            tracing::info!(node = %key.name, %cidr, "assigned a pod CIDR");
            Ok(Action::await_change())
        }
        Err(source) => {
            st.allocator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .release(&cidr);
            if source.is_conflict() || source.is_not_found() {
                // Changed or gone meanwhile: the informer brings the news and a new reconcile.
                return Ok(Action::await_change());
            }
            st.recorder.publish_for(
                node.as_ref(),
                EventType::Warning,
                "CIDRAssignmentFailed",
                &format!(
                    "Node {} failed to get the pod CIDR {cidr}: {source}",
                    key.name
                ),
            );
            Err(Error::Assign {
                node: key.name,
                cidr: cidr.to_string(),
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests;
