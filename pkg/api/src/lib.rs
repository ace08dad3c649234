//! rkube's Kubernetes resource layer: which resources exist and how their
//! objects are defaulted, validated, patched, selected and printed. Pure
//! functions over k8s-openapi types and their JSON; no I/O (the apiserver's
//! handlers and the store sit above this crate).
//!
//! - [`registry`]: the resource table (group, version, kind, plural, scope, verbs, short
//!   names, subresources, etcd key prefixes) and kubectl-style name resolution.
//! - [`discovery`]: the discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`, and
//!   the aggregated `apidiscovery.k8s.io/v2` form) built from the registry.
//! - [`status`]: Kubernetes `Status` errors (code, reason, message, details with causes).
//! - [`validation`]: field paths, names, required and immutable fields, with Kubernetes'
//!   messages; `validate_create` / `validate_update` per kind.
//! - [`defaults`]: per-kind defaulting, as Kubernetes' defaulters do.
//! - [`selectors`]: label and field selectors: parsing and matching.
//! - [`table`]: `meta.k8s.io/v1` Table output with kubectl's columns per kind.
//! - [`strict`]: decoding into k8s-openapi types; unknown and duplicate field detection for
//!   `fieldValidation`.
//! - [`openapi`]: the OpenAPI v2 and v3 documents (kubectl `apply`, `explain`, validation),
//!   generated from the types and the registry, and how they are served.
//! - [`convert`]: conversion between served versions and the stored form (events).
//! - [`quantity`]: resource quantities (`500m`, `1Gi`) parsed for comparison and sums.
//! - `patch`: JSON patch, merge patch and strategic merge patch.
//! - [`protobuf`]: Kubernetes' protobuf request bodies decoded into their JSON form.
//! - [`yaml`]: YAML request bodies decoded into their JSON form.

pub mod convert;
pub mod defaults;
pub mod discovery;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod registry;
pub mod selectors;
pub mod status;
pub mod strict;
pub mod table;
pub mod validation;
pub mod yaml;

pub use registry::ResourceInfo;
pub use status::Status;
