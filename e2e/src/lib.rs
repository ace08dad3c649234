//! Test machinery for rkube's end-to-end cluster tests; the tests themselves live in `tests/`.
//!
//! - [`linearizability`]: checks a recorded client history of the replicated store against a
//!   sequential model (Wing & Gong search with Lowe's memoization, partitioned per key).
//! - [`watch_check`]: checks recorded watch streams against the committed event history.
//! - [`cluster`]: real `rkube-apiserver` processes on loopback: kill, restart, wipe, isolate.
//! - [`kvclient`]: a store client that fails over between replicas, for load in tests.
//! - [`proxy`]: a loopback TCP proxy whose traffic can be cut, for partition tests.
//! - [`kubectl`]: real kubectl releases run against a cluster, each with its own kubeconfig.
//! - [`http`]: raw HTTP/1.1 requests to the REST door, for bad input kubectl never sends.
//! - [`local`]: a cluster as users start it (`rkube up --nodes 0`: TLS, load balancer,
//!   DIR/kubeconfig), stopped with `rkube down` when dropped.
//!
//! The checkers are pure functions over recordings; the rest drives real processes and sockets.

pub mod cluster;
pub mod http;
pub mod kubectl;
pub mod kvclient;
pub mod linearizability;
pub mod local;
pub mod proxy;
pub mod watch_check;

/// Whether this process runs as root (the tests that make network namespaces or run
/// containerd need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}
