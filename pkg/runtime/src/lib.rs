//! What every rkube component shares to act on cluster state: the machinery of
//! client-go's `tools/cache` and kube-runtime, over [`rkube_client`]'s gRPC door (every
//! apiserver endpoint, failover, watches that resume).
//!
//! Map of the modules, bottom up:
//!
//! - [`object`]: the [`Resource`] bound every typed piece uses, and [`ObjectKey`]
//!   (`namespace/name`), the key of caches and work queues.
//! - [`watcher`]: one resource's list-then-watch as an explicit state machine, advanced one
//!   [`Watcher::step`] at a time: paged list, watch from the list's resourceVersion,
//!   bookmarks, relist on 410. Every error is retryable; back-off is the caller's layer.
//! - [`store`]: the reflector store. One [`store::Writer`] applies watcher events; many
//!   read-only [`Store`] handles read `Arc<K>`s and indexes (namespace, labels, owner UID,
//!   `spec.nodeName`, custom functions), or take a cheap frozen [`store::Snapshot`]. The
//!   writer turns events into [`Change`]s, so a relist delivers only what really changed.
//! - [`informer`]: shared informers. One watch per resource and selection per process
//!   ([`InformerFactory`]), many handlers; handlers only enqueue.
//! - [`queue`]: the work queue: dedupes keys, never hands out a key that is being
//!   processed, per-item exponential back-off plus an overall token bucket, delayed adds.
//! - [`expectations`]: creates and deletes in flight per owner, so a stale cache never
//!   makes a controller act twice.
//! - [`controller`]: [`Controller::run`] ties an informer, a queue and a reconcile function
//!   together, with metrics and one span per reconcile that continues the object's trace.
//! - [`leader`]: Lease (coordination.k8s.io/v1) leader election, released on clean shutdown.
//! - [`events`]: an event recorder that writes core/v1 Events without blocking its caller,
//!   aggregating repeats and rate-limiting per object as Kubernetes does.
//! - [`trace`]: the `tracing.k8s.io/traceparent` annotation: read it to continue an
//!   object's trace, write it so objects a component creates carry the trace on.
//!
//! This crate never reaches the store or the apiserver's internals: everything goes
//! through the API, as any outside client's would.

pub mod controller;
pub mod events;
pub mod expectations;
pub mod informer;
pub mod leader;
mod metrics;
pub mod object;
pub mod queue;
pub mod store;
pub mod trace;
pub mod watcher;

pub use controller::{Action, Controller};
pub use events::{EventType, Recorder, Reporter};
pub use expectations::Expectations;
pub use informer::{Informer, InformerFactory, Selection};
pub use leader::{LeaderElector, LeaseConfig};
pub use object::{ObjectKey, Resource};
pub use queue::WorkQueue;
pub use store::{Change, Store};
pub use watcher::Watcher;

/// Re-exported so components name one client.
pub use rkube_client as client;
