//! rkube's Kubernetes resource layer: which resources exist and how their
//! objects are defaulted, validated, patched, selected and printed. Pure
//! functions over k8s-openapi types and their JSON; no I/O (the apiserver's
//! handlers and the store sit above this crate).
//!
//! The crate has two parts. Without features it is the small part every client of the
//! apiserver shares, with nothing heavier than k8s-openapi's types; the `server` feature
//! (on by default, and what the apiserver asks for) adds the resource table and
//! everything it drives, with the OpenAPI generator (schemars), the protobuf
//! descriptors (prost-reflect), YAML and patches. `rkube-client` depends on the small
//! part only.
//!
//! The small part (leaves first):
//! - [`field`]: field paths and field errors with Kubernetes' messages, Go's quoting.
//! - [`names`]: format checks of names, labels, ports, IPs; `generateName`.
//! - [`quantity`]: resource quantities (`500m`, `1Gi`) parsed for comparison and sums.
//! - [`status`]: Kubernetes `Status` errors (code, reason, message, details with causes).
//! - [`selectors`]: label and field selectors: parsing and matching.
//! - [`defaults`]: Kubernetes' defaulters per kind, and a pod's QoS class.
//! - [`taints`]: whether a toleration tolerates a taint; the well-known taint keys.
//!
//! The `server` part:
//! - [`strict`]: decoding into k8s-openapi types; unknown and duplicate field detection for
//!   `fieldValidation`.
//! - [`convert`]: conversion between served versions and the stored form (events).
//! - [`validation`]: `ObjectMeta` rules and each kind's checks, with Kubernetes' messages.
//! - [`table`]: `meta.k8s.io/v1` Table output with kubectl's columns per kind.
//! - `patch`: JSON patch, merge patch and strategic merge patch.
//! - `kinds`: one entry per served kind, tying the above together: its type, defaults,
//!   what writes keep, validation, field labels, printer and stored form.
//! - [`registry`]: the resource table (group, version, kind, plural, scope, verbs, short
//!   names, subresources, etcd key prefixes, the kind's entry), kubectl-style name
//!   resolution, and `ResourceInfo`'s methods, the one door to a kind's behaviour.
//! - [`discovery`]: the discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`, and
//!   the aggregated `apidiscovery.k8s.io/v2` form) built from the registry.
//! - [`openapi`]: the OpenAPI v2 and v3 documents (kubectl `apply`, `explain`, validation),
//!   generated from the types and the registry, and how they are served.
//! - [`protobuf`]: Kubernetes' protobuf request bodies decoded into their JSON form.
//! - [`yaml`]: YAML request bodies decoded into their JSON form.
//!
//! Modules depend on each other in that order, never back: `tests/module_graph.rs` fails
//! on a cycle between top-level modules, on a leaf that uses the crate, and on the small
//! part using the `server` part.

pub mod defaults;
pub mod field;
pub mod names;
pub mod quantity;
pub mod selectors;
pub mod status;
pub mod taints;

#[cfg(feature = "server")]
pub mod convert;
#[cfg(feature = "server")]
pub mod discovery;
#[cfg(feature = "server")]
pub(crate) mod kinds;
#[cfg(feature = "server")]
pub mod openapi;
#[cfg(feature = "server")]
pub mod patch;
#[cfg(feature = "server")]
pub mod protobuf;
#[cfg(feature = "server")]
pub mod registry;
#[cfg(feature = "server")]
pub mod strict;
#[cfg(feature = "server")]
pub mod table;
#[cfg(feature = "server")]
pub mod validation;
#[cfg(feature = "server")]
pub mod yaml;

#[cfg(feature = "server")]
pub use registry::ResourceInfo;
pub use status::Status;
