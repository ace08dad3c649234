//! rkube's replicated, durable key-value store: the part of the apiserver that
//! replaces etcd.
//!
//! - [`types`]: the data model (keys, revisions, transactions, events) and openraft's type config.
//! - [`mvcc`]: the pure state machine: apply commands, read at a revision, history window.
//! - `log_store`: the durable Raft log, vote and committed pointer, over
//!   `wal` (a segmented write-ahead log, fsynced by group commit).
//! - `state_machine`: openraft's state machine over [`mvcc`], with durable snapshots.
//! - `network` / `peer`: Raft traffic over tonic gRPC, client and server side.
//! - `forward`: a follower's stream of forwarded writes to the leader.
//! - `store`: the handle the apiserver uses: writes forwarded to the leader,
//!   linearizable reads by read index, watches, membership.
//! - `service`: the client-facing gRPC API (`rkube.store.v1`).

pub mod error;
mod forward;
pub mod log_store;
pub mod metrics;
pub mod mvcc;
pub mod network;
pub mod peer;
pub mod proposer;
pub mod service;
pub mod state_machine;
pub mod store;
pub mod types;
pub mod wal;

pub use error::{Error, Result};
pub use metrics::StoreMetrics;
pub use store::{Status, Store, StoreConfig, WatchBatch, WatchRequest};
pub use types::*;
