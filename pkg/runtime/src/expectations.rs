//! Expectations: what a controller has asked for and not yet seen in its cache.
//!
//! A controller that creates three pods for a ReplicaSet must not create them again on its
//! next reconcile just because its informer has not delivered them yet. Before it writes,
//! it records what it expects ([`Expectations::expect_creations`],
//! [`Expectations::expect_deletions`]); its handlers lower the counts as the cache sees
//! the objects arrive or go ([`Expectations::creation_observed`],
//! [`Expectations::deletion_observed`]); a failed write lowers them itself
//! ([`Expectations::creation_failed`], [`Expectations::deletion_failed`]). A reconcile
//! acts only when [`Expectations::satisfied`] — nothing pending, or the record is older
//! than its time-to-live (5 minutes, as Kubernetes: a lost event must not wedge the
//! controller forever).
//!
//! Deletions are tracked by UID, so the same pod observed gone twice counts once.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::object::ObjectKey;

/// Kubernetes' `ExpectationsTimeout`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Record {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Pending creations and deletions per owner; see the module documentation.
#[derive(Debug)]
pub struct Expectations {
    ttl: Duration,
    records: Mutex<HashMap<ObjectKey, Record>>,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl Expectations {
    pub fn new(ttl: Duration) -> Self {
        Expectations {
            ttl,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> MutexGuard<'_, HashMap<ObjectKey, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `owner` is about to create `n` objects (replaces what was expected before).
    pub fn expect_creations(&self, owner: &ObjectKey, n: usize) {
        self.records().insert(
            owner.clone(),
            Record {
                adds: n as i64,
                deletes: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// `owner` is about to delete the objects with these UIDs (replaces what was expected
    /// before).
    pub fn expect_deletions(&self, owner: &ObjectKey, uids: impl IntoIterator<Item = String>) {
        self.records().insert(
            owner.clone(),
            Record {
                adds: 0,
                deletes: uids.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// The cache saw one of `owner`'s expected creations.
    pub fn creation_observed(&self, owner: &ObjectKey) {
        if let Some(r) = self.records().get_mut(owner) {
            r.adds -= 1;
        }
    }

    /// A creation failed: it will never be observed.
    pub fn creation_failed(&self, owner: &ObjectKey) {
        self.creation_observed(owner);
    }

    /// The cache saw the object with `uid` go (or start terminating).
    pub fn deletion_observed(&self, owner: &ObjectKey, uid: &str) {
        if let Some(r) = self.records().get_mut(owner) {
            r.deletes.remove(uid);
        }
    }

    /// A deletion failed: it will never be observed.
    pub fn deletion_failed(&self, owner: &ObjectKey, uid: &str) {
        self.deletion_observed(owner, uid);
    }

    /// Whether `owner`'s controller may act on its cache: nothing is pending, nothing was
    /// ever expected, or the expectation expired.
    pub fn satisfied(&self, owner: &ObjectKey) -> bool {
        match self.records().get(owner) {
            None => true,
            Some(r) => (r.adds <= 0 && r.deletes.is_empty()) || r.set_at.elapsed() > self.ttl,
        }
    }

    /// What is still pending for `owner`: (creations, deletions).
    pub fn pending(&self, owner: &ObjectKey) -> (i64, usize) {
        self.records()
            .get(owner)
            .map_or((0, 0), |r| (r.adds.max(0), r.deletes.len()))
    }

    /// Forgets `owner` (it was deleted).
    pub fn forget(&self, owner: &ObjectKey) {
        self.records().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs() -> ObjectKey {
        ObjectKey::new("default", "web")
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_hold_a_controller_back_until_its_cache_catches_up() {
        enum Op {
            Creations(usize),
            Deletions(&'static [&'static str]),
            Created,
            CreateFailed,
            Deleted(&'static str),
            Wait(u64),
        }
        use Op::*;
        // (name, ops, satisfied afterwards)
        let cases: Vec<(&str, Vec<Op>, bool)> = vec![
            ("nothing expected", vec![], true),
            ("two creations pending", vec![Creations(2), Created], false),
            (
                "every creation observed",
                vec![Creations(2), Created, Created],
                true,
            ),
            (
                "a failed create counts as seen",
                vec![Creations(2), Created, CreateFailed],
                true,
            ),
            (
                "a deletion pending",
                vec![Deletions(&["u1", "u2"]), Deleted("u1")],
                false,
            ),
            (
                "the same deletion seen twice counts once",
                vec![Deletions(&["u1", "u2"]), Deleted("u1"), Deleted("u1")],
                false,
            ),
            (
                "every deletion observed",
                vec![Deletions(&["u1", "u2"]), Deleted("u2"), Deleted("u1")],
                true,
            ),
            (
                "an unexpected deletion changes nothing",
                vec![Deletions(&["u1"]), Deleted("zz")],
                false,
            ),
            (
                "a stale expectation expires",
                vec![Creations(3), Wait(301)],
                true,
            ),
            (
                "a fresh expectation does not",
                vec![Creations(3), Wait(299)],
                false,
            ),
        ];
        for (name, ops, want) in cases {
            let e = Expectations::default();
            for op in ops {
                match op {
                    Creations(n) => e.expect_creations(&rs(), n),
                    Deletions(uids) => {
                        e.expect_deletions(&rs(), uids.iter().map(|u| u.to_string()))
                    }
                    Created => e.creation_observed(&rs()),
                    CreateFailed => e.creation_failed(&rs()),
                    Deleted(uid) => e.deletion_observed(&rs(), uid),
                    Wait(s) => tokio::time::advance(Duration::from_secs(s)).await,
                }
            }
            assert_eq!(e.satisfied(&rs()), want, "{name}");
        }
    }

    #[test]
    fn forgetting_an_owner_satisfies_it() {
        let e = Expectations::default();
        e.expect_creations(&rs(), 1);
        assert_eq!(e.pending(&rs()), (1, 0));
        e.forget(&rs());
        assert!(e.satisfied(&rs()));
    }
}
