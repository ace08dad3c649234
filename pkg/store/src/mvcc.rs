//! The replicated state: live keys, the global revision counter and a bounded
//! window of history (events of recent revisions, with previous values).
//!
//! Everything here is a pure function of the commands applied, in order: every
//! replica that applies the same log reaches the same state, revision and hash.
//! No I/O and no clocks. Reads at an older revision are answered by undoing the
//! history newer than it, so the window bounds both watch resumption and
//! consistent paginated reads.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::types::*;

/// etcd's default request limit: larger values are refused before they reach the log.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;
pub const MAX_KEY_BYTES: usize = 4096;
/// Revision of the empty store (as etcd); the first write gets revision 2.
pub const INITIAL_REVISION: i64 = 1;

/// How much one `events_since` call may return.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    pub revisions: usize,
    pub bytes: usize,
}

impl Default for ScanLimits {
    fn default() -> Self {
        Self {
            revisions: 256,
            bytes: 2 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KvState {
    kvs: BTreeMap<Bytes, KeyValue>,
    revision: i64,
    /// Reads below and watches at or below this revision are refused.
    compact_revision: i64,
    /// Events of every revision in (compact_revision, revision], oldest first.
    history: VecDeque<RevisionEvents>,
    /// Most revisions kept in history; older ones are compacted automatically.
    history_limit: usize,
}

impl KvState {
    pub fn new(history_limit: usize) -> Self {
        Self {
            kvs: BTreeMap::new(),
            revision: INITIAL_REVISION,
            compact_revision: INITIAL_REVISION,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// Evaluates a transaction without writes on the current state.
    pub fn read_txn(&self, txn: &Txn) -> TxnResult {
        debug_assert!(!txn.has_writes());
        let succeeded = txn.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let responses = ops
            .iter()
            .filter_map(|op| match op {
                Op::Range(r) => Some(OpResult::Range(self.range_current(r))),
                _ => None,
            })
            .collect();
        TxnResult {
            succeeded,
            revision: self.revision,
            responses,
        }
    }

    pub fn history_limit(&self) -> usize {
        self.history_limit
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }

    /// Applies one command. Never fails: a command the state machine cannot
    /// apply yields the same `Rejected` result on every replica.
    pub fn apply(&mut self, cmd: &Command) -> CommandResult {
        match cmd {
            Command::Txn(txn) => match validate_txn(txn) {
                Ok(()) => CommandResult::Txn(self.apply_txn(txn)),
                Err(e) => CommandResult::Rejected(e.to_string()),
            },
            Command::Compact { revision } => match self.compact(*revision) {
                Ok(()) => CommandResult::Compacted {
                    revision: self.compact_revision,
                },
                Err(e) => CommandResult::Rejected(e.to_string()),
            },
            Command::Batch(cmds) => CommandResult::Batch(
                cmds.iter()
                    .map(|c| match c {
                        Command::Batch(_) => {
                            CommandResult::Rejected("a batch may not hold another batch".into())
                        }
                        c => self.apply(c),
                    })
                    .collect(),
            ),
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let kv = self.kvs.get(&c.key);
        let ord = match &c.target {
            CompareTarget::Mod(r) => kv.map_or(0, |kv| kv.mod_revision).cmp(r),
            CompareTarget::Create(r) => kv.map_or(0, |kv| kv.create_revision).cmp(r),
            CompareTarget::Version(v) => kv.map_or(0, |kv| kv.version).cmp(v),
            CompareTarget::Value(v) => match kv {
                Some(kv) => kv.value[..].cmp(&v[..]),
                None => return false,
            },
        };
        match c.result {
            CompareResult::Equal => ord.is_eq(),
            CompareResult::NotEqual => ord.is_ne(),
            CompareResult::Greater => ord.is_gt(),
            CompareResult::Less => ord.is_lt(),
        }
    }

    fn apply_txn(&mut self, txn: &Txn) -> TxnResult {
        let succeeded = txn.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.revision + 1;
        let mut events = Vec::new();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let res = match op {
                Op::Range(r) => {
                    // Ranges inside a transaction read the transaction's own view.
                    let r = RangeOp {
                        revision: 0,
                        ..r.clone()
                    };
                    OpResult::Range(self.range_current(&r))
                }
                Op::Put {
                    key,
                    value,
                    prev_kv,
                } => {
                    let prev = self.kvs.get(key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                    };
                    self.kvs.insert(key.clone(), kv.clone());
                    events.push(Event {
                        kind: EventKind::Put,
                        kv,
                        prev_kv: prev.clone(),
                    });
                    OpResult::Put {
                        prev_kv: if *prev_kv { prev } else { None },
                    }
                }
                Op::Delete { range, prev_kv } => {
                    let keys: Vec<Bytes> = self.scan(range).map(|(k, _)| k.clone()).collect();
                    let mut prev_kvs = Vec::new();
                    for k in &keys {
                        let prev = self.kvs.remove(k).expect("scanned key is present");
                        let tomb = KeyValue {
                            key: k.clone(),
                            value: Bytes::new(),
                            create_revision: 0,
                            mod_revision: rev,
                            version: 0,
                        };
                        if *prev_kv {
                            prev_kvs.push(prev.clone());
                        }
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv: tomb,
                            prev_kv: Some(prev),
                        });
                    }
                    OpResult::Delete {
                        deleted: keys.len() as i64,
                        prev_kvs,
                    }
                }
            };
            responses.push(res);
        }
        if !events.is_empty() {
            self.revision = rev;
            self.history.push_back(RevisionEvents {
                revision: rev,
                events,
            });
            while self.history.len() > self.history_limit {
                let dropped = self.history.pop_front().expect("history is not empty");
                self.compact_revision = dropped.revision;
            }
        }
        TxnResult {
            succeeded,
            revision: self.revision,
            responses,
        }
    }

    /// Drops history up to and including `revision`.
    pub fn compact(&mut self, revision: i64) -> Result<()> {
        if revision > self.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision <= self.compact_revision {
            return Err(Error::Compacted {
                requested: revision,
                compacted: self.compact_revision,
            });
        }
        while self.history.front().is_some_and(|h| h.revision <= revision) {
            self.history.pop_front();
        }
        self.compact_revision = revision;
        Ok(())
    }

    fn scan<'a>(
        &'a self,
        range: &KeyRange,
    ) -> Box<dyn Iterator<Item = (&'a Bytes, &'a KeyValue)> + 'a> {
        if range.is_single() {
            return Box::new(self.kvs.get_key_value(&range.key).into_iter());
        }
        let upper = if range.end[..] == [0] {
            Bound::Unbounded
        } else {
            Bound::Excluded(range.end.clone())
        };
        if matches!(&upper, Bound::Excluded(e) if *e <= range.key) {
            return Box::new(std::iter::empty());
        }
        Box::new(self.kvs.range((Bound::Included(range.key.clone()), upper)))
    }

    fn range_current(&self, op: &RangeOp) -> RangeResult {
        let mut out = RangeResult::default();
        for (_, kv) in self.scan(&op.range) {
            out.count += 1;
            if op.count_only || (op.limit > 0 && out.kvs.len() as i64 >= op.limit) {
                if !op.count_only {
                    out.more = true;
                }
                continue;
            }
            out.kvs.push(strip(kv, op.keys_only));
        }
        out
    }

    /// Reads a range at `op.revision` (0 = now).
    pub fn range(&self, op: &RangeOp) -> Result<RangeResult> {
        validate_range(&op.range)?;
        validate_revision(op.revision)?;
        let rev = op.revision;
        if rev == 0 || rev == self.revision {
            return Ok(self.range_current(op));
        }
        if rev > self.revision {
            return Err(Error::FutureRevision {
                requested: rev,
                current: self.revision,
            });
        }
        if rev < self.compact_revision {
            return Err(Error::Compacted {
                requested: rev,
                compacted: self.compact_revision,
            });
        }
        // Start from the live keys and undo every revision newer than `rev`.
        let mut view: BTreeMap<Bytes, KeyValue> = self
            .scan(&op.range)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for h in self.history.iter().rev().take_while(|h| h.revision > rev) {
            for ev in h.events.iter().rev() {
                if !op.range.contains(&ev.kv.key) {
                    continue;
                }
                match &ev.prev_kv {
                    Some(prev) => view.insert(ev.kv.key.clone(), prev.clone()),
                    None => view.remove(&ev.kv.key),
                };
            }
        }
        let mut out = RangeResult {
            count: view.len() as i64,
            ..Default::default()
        };
        if op.count_only {
            return Ok(out);
        }
        let limit = if op.limit > 0 {
            op.limit as usize
        } else {
            usize::MAX
        };
        out.more = view.len() > limit;
        out.kvs = view
            .values()
            .take(limit)
            .map(|kv| strip(kv, op.keys_only))
            .collect();
        Ok(out)
    }

    /// Events of revisions `from..` whose keys fall in `range`, grouped by
    /// revision, and the newest revision scanned (where the caller continues).
    /// A call scans at most `limits.revisions` revisions and stops after the
    /// revision that takes the events' bytes past `limits.bytes` (always at
    /// least one revision, so a huge revision still goes out whole). Errors
    /// with `Compacted` when `from` left the window.
    pub fn events_since(
        &self,
        from: i64,
        range: &KeyRange,
        prev_kv: bool,
        limits: ScanLimits,
    ) -> Result<(Vec<RevisionEvents>, i64)> {
        if from <= self.compact_revision {
            return Err(Error::Compacted {
                requested: from,
                compacted: self.compact_revision,
            });
        }
        let start = self.history.partition_point(|h| h.revision < from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut end = self.revision;
        for (n, h) in self.history.range(start..).enumerate() {
            if n >= limits.revisions || bytes >= limits.bytes {
                end = h.revision - 1;
                break;
            }
            let events: Vec<Event> = h
                .events
                .iter()
                .filter(|e| range.contains(&e.kv.key))
                .map(|e| Event {
                    prev_kv: if prev_kv { e.prev_kv.clone() } else { None },
                    ..e.clone()
                })
                .collect();
            if !events.is_empty() {
                bytes += events
                    .iter()
                    .map(|e| {
                        e.kv.key.len()
                            + e.kv.value.len()
                            + e.prev_kv.as_ref().map_or(0, |p| p.value.len())
                    })
                    .sum::<usize>();
                out.push(RevisionEvents {
                    revision: h.revision,
                    events,
                });
            }
        }
        Ok((out, end))
    }

    /// SHA-256 over every live key at `revision` (0 = now), in key order.
    pub fn hash(&self, revision: i64) -> Result<(String, i64)> {
        let all = RangeOp {
            range: KeyRange {
                key: Bytes::from_static(&[0]),
                end: Bytes::from_static(&[0]),
            },
            limit: 0,
            revision,
            keys_only: false,
            count_only: false,
        };
        let res = self.range(&all)?;
        let mut h = Sha256::new();
        for kv in &res.kvs {
            for part in [&kv.key[..], &kv.value[..]] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            h.update(kv.create_revision.to_be_bytes());
            h.update(kv.mod_revision.to_be_bytes());
            h.update(kv.version.to_be_bytes());
        }
        Ok((hex::encode(h.finalize()), res.count))
    }

    /// Bytes held by values in the live keys and in history (an estimate for metrics).
    pub fn approx_bytes(&self) -> usize {
        let live: usize = self
            .kvs
            .values()
            .map(|kv| kv.key.len() + kv.value.len() + 48)
            .sum();
        let hist: usize = self
            .history
            .iter()
            .flat_map(|h| &h.events)
            .map(|e| e.kv.value.len() + e.prev_kv.as_ref().map_or(0, |p| p.value.len()) + 96)
            .sum();
        live + hist
    }
}

fn strip(kv: &KeyValue, keys_only: bool) -> KeyValue {
    if keys_only {
        KeyValue {
            value: Bytes::new(),
            ..kv.clone()
        }
    } else {
        kv.clone()
    }
}

pub fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "key is {} bytes, more than the limit of {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

pub fn validate_revision(rev: i64) -> Result<()> {
    if rev < 0 {
        return Err(Error::InvalidArgument(format!(
            "revision {rev} is negative"
        )));
    }
    Ok(())
}

pub fn validate_range(r: &KeyRange) -> Result<()> {
    validate_key(&r.key)?;
    if !r.end.is_empty() && r.end[..] != [0] && r.end <= r.key {
        return Err(Error::InvalidArgument(
            "range end must be greater than the key".into(),
        ));
    }
    Ok(())
}

/// Checks a transaction before it is proposed (and again when it is applied).
pub fn validate_txn(txn: &Txn) -> Result<()> {
    for c in &txn.compare {
        validate_key(&c.key)?;
    }
    for ops in [&txn.success, &txn.failure] {
        let deletes: Vec<&KeyRange> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Delete { range, .. } => Some(range),
                _ => None,
            })
            .collect();
        let mut put_keys = std::collections::HashSet::new();
        let mut total = 0usize;
        for op in ops {
            match op {
                Op::Range(r) => {
                    validate_range(&r.range)?;
                    validate_revision(r.revision)?;
                }
                Op::Put { key, value, .. } => {
                    validate_key(key)?;
                    if value.len() > MAX_VALUE_BYTES {
                        return Err(Error::TooLarge {
                            size: value.len(),
                            limit: MAX_VALUE_BYTES,
                        });
                    }
                    total += value.len() + key.len();
                    if !put_keys.insert(key.clone()) || deletes.iter().any(|d| d.contains(key)) {
                        return Err(Error::InvalidArgument(
                            "duplicate key given in txn request".into(),
                        ));
                    }
                }
                Op::Delete { range, .. } => validate_range(range)?,
            }
        }
        if total > MAX_VALUE_BYTES {
            return Err(Error::TooLarge {
                size: total,
                limit: MAX_VALUE_BYTES,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
