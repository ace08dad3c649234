//! The store's Prometheus metrics (`rkube_store_*`). Cheap to clone: every
//! handle shares the same underlying series.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct StoreMetrics {
    pub term: Gauge,
    pub is_leader: Gauge,
    pub leader_id: Gauge,
    pub commit_index: Gauge,
    pub applied_index: Gauge,
    pub revision: Gauge,
    pub compact_revision: Gauge,
    pub watchers: Gauge,
    pub proposals_total: Counter,
    pub proposals_failed_total: Counter,
    pub proposal_seconds: Histogram,
    pub fsync_seconds: Histogram,
    pub batch_commands: Histogram,
}

fn latency() -> Histogram {
    // 100µs .. ~13s
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            term: Gauge::default(),
            is_leader: Gauge::default(),
            leader_id: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            revision: Gauge::default(),
            compact_revision: Gauge::default(),
            watchers: Gauge::default(),
            proposals_total: Counter::default(),
            proposals_failed_total: Counter::default(),
            proposal_seconds: latency(),
            fsync_seconds: latency(),
            // 1 .. 512
            batch_commands: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
        }
    }
}

impl StoreMetrics {
    /// Registers every series under the `rkube_store_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("rkube_store");
        r.register("raft_term", "Current Raft term", self.term.clone());
        r.register(
            "raft_is_leader",
            "1 when this replica is the Raft leader",
            self.is_leader.clone(),
        );
        r.register(
            "raft_leader_id",
            "Raft id of the known leader (0 = none)",
            self.leader_id.clone(),
        );
        r.register(
            "raft_commit_index",
            "Highest committed log index known here",
            self.commit_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "Highest log index applied to the state machine",
            self.applied_index.clone(),
        );
        r.register("revision", "Current store revision", self.revision.clone());
        r.register(
            "compact_revision",
            "Oldest revision still readable",
            self.compact_revision.clone(),
        );
        r.register("watchers", "Open watch streams", self.watchers.clone());
        r.register(
            "proposals",
            "Write proposals handled by this replica",
            self.proposals_total.clone(),
        );
        r.register(
            "proposals_failed",
            "Write proposals that failed",
            self.proposals_failed_total.clone(),
        );
        r.register(
            "proposal_duration_seconds",
            "Time from proposal to applied result",
            self.proposal_seconds.clone(),
        );
        r.register(
            "wal_fsync_duration_seconds",
            "Raft log group-commit (fsync) latency",
            self.fsync_seconds.clone(),
        );
        r.register(
            "proposal_batch_commands",
            "Client commands per Raft log entry proposed by this leader",
            self.batch_commands.clone(),
        );
    }
}
