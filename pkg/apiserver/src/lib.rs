//! rkube-apiserver's library: one replica of the replicated store plus the
//! servers in front of it.
//!
//! - the API address (TLS with `--tls-cert-file`, plain HTTP otherwise) serves
//!   the Kubernetes REST API, the store's gRPC API (`rkube.store.v1`),
//!   `/healthz`, `/livez`, `/readyz` and `/metrics` on one port;
//! - the peer address serves Raft traffic between replicas only.
//!
//! Every request on the API port passes [`auth`] first (authentication, then
//! authorization), whichever front door it is for; writes then pass
//! [`admission`] (mutating, validation, validating) inside the [`registry`].
//! Watches of both doors are fanned out by the [`watch_cache`].
//!
//! [`run`] takes its options and a shutdown token, so a test can run a replica
//! in-process on `127.0.0.1:0`.

pub mod admission;
pub mod auth;
pub mod grpc;
mod options;
pub mod registry;
pub mod rest;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod watch_cache;

pub use options::{parse_member, MemberError, Options, OptionsError};
pub use server::{run, Error};
