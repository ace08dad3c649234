//! Generated code for the `.proto` files under `proto/`, exposed as `pb`-style
//! modules. Hand-written conversions live next to the types that use them, not here.
#![allow(clippy::all)]

/// The store's client-facing API (`rkube.store.v1`).
pub mod store {
    tonic::include_proto!("rkube.store.v1");
}

/// The Kubernetes API for rkube's components (`rkube.api.v1`): Kubernetes JSON
/// in protobuf envelopes, served by the apiserver beside the REST door.
pub mod api {
    tonic::include_proto!("rkube.api.v1");
}

/// Raft traffic between store replicas (`rkube.raft.v1`).
pub mod raft {
    tonic::include_proto!("rkube.raft.v1");
}
