//! rkube-overlay: a flannel-style VXLAN overlay, one agent per node. See
//! docs/architecture.md ("The overlay"). [`plan`] is the pure part: what the kernel must
//! hold for the other nodes and the steps to get there.

pub mod agent;
pub mod kernel;
pub mod masquerade;
pub mod plan;
