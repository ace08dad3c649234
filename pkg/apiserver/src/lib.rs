//! rkube-apiserver's library: one replica of the replicated store plus the
//! servers in front of it.
//!
//! - the API address serves the store's gRPC API (`rkube.store.v1`) and plain
//!   HTTP `GET /healthz`, `/readyz` and `/metrics` on the same port (the
//!   Kubernetes REST API joins them there later);
//! - the peer address serves Raft traffic between replicas only.
//!
//! [`run`] takes its options and a shutdown token, so a test can run a replica
//! in-process on `127.0.0.1:0`.

mod options;
pub mod registry;
pub mod rest;
mod server;
pub mod tls;

pub use options::{parse_member, Options};
pub use server::{run, Error};
