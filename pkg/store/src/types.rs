//! The store's data model: keys with revisions, transactions, events, and the
//! openraft type configuration. Plain data; no I/O.

use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A replica's Raft identity.
pub type NodeId = u64;

/// What every member of the cluster knows about another: where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Raft peer traffic.
    pub peer_address: String,
    /// Clients (KV/Watch/Maintenance, and later the Kubernetes API).
    pub api_address: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.peer_address)
    }
}

openraft::declare_raft_types!(
    /// openraft's type configuration for rkube's store.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// A key with its value and revisions, as etcd's mvccpb.KeyValue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// Writes since creation: 1 for a new key.
    pub version: i64,
}

/// A half-open key range `[key, end)`. An empty `end` means the single key;
/// `end == [0]` means every key from `key` on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub key: Bytes,
    pub end: Bytes,
}

impl KeyRange {
    pub fn single(key: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            end: Bytes::new(),
        }
    }

    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let key: Bytes = prefix.into();
        let end = prefix_end(&key);
        Self { key, end }
    }

    pub fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            return k == &self.key[..];
        }
        k >= &self.key[..] && (self.end[..] == [0] || k < &self.end[..])
    }
}

/// The smallest key greater than every key with this prefix (etcd's rule);
/// `[0]` (everything) when no such key exists.
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end.into();
        }
    }
    Bytes::from_static(&[0])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    NotEqual,
    Greater,
    Less,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The key's mod revision (0 when absent).
    Mod(i64),
    /// The key's create revision (0 when absent).
    Create(i64),
    /// The key's version (0 when absent).
    Version(i64),
    /// The key's value (a compare on an absent key is false).
    Value(Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: Bytes,
    pub result: CompareResult,
    pub target: CompareTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeOp {
    pub range: KeyRange,
    pub limit: i64,
    /// 0 = the revision the operation runs at.
    pub revision: i64,
    pub keys_only: bool,
    pub count_only: bool,
}

impl RangeOp {
    pub fn get(key: impl Into<Bytes>) -> Self {
        Self {
            range: KeyRange::single(key),
            limit: 0,
            revision: 0,
            keys_only: false,
            count_only: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Range(RangeOp),
    Put {
        key: Bytes,
        value: Bytes,
        prev_kv: bool,
    },
    Delete {
        range: KeyRange,
        prev_kv: bool,
    },
}

/// Compares, then either `success` or `failure`, applied atomically at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            success: vec![Op::Put {
                key: key.into(),
                value: value.into(),
                prev_kv: false,
            }],
            ..Default::default()
        }
    }

    pub fn has_writes(&self) -> bool {
        self.success
            .iter()
            .chain(&self.failure)
            .any(|op| !matches!(op, Op::Range(_)))
    }
}

/// An entry of the replicated log's application payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Txn(Txn),
    /// Drop history up to and including this revision.
    Compact {
        revision: i64,
    },
    /// Several commands proposed together (see `proposer`): each is applied
    /// on its own, in order, as if it had its own log entry.
    Batch(Vec<Command>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    Range(RangeResult),
    Put {
        prev_kv: Option<KeyValue>,
    },
    Delete {
        deleted: i64,
        prev_kvs: Vec<KeyValue>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
    pub responses: Vec<OpResult>,
}

/// What applying one log entry produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Blank and membership entries.
    #[default]
    None,
    Txn(TxnResult),
    Compacted {
        revision: i64,
    },
    /// The command was refused by the state machine (the same on every replica).
    Rejected(String),
    /// One result per command of a `Command::Batch`, in order.
    Batch(Vec<CommandResult>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// For a delete: the key, an empty value and mod_revision = the deleting revision.
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// All events of one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEvents {
    pub revision: i64,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(&prefix_end(b"/registry/pods/")[..], b"/registry/pods0");
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff\xff")[..], &[0]);
    }

    #[test]
    fn key_range_contains_follows_etcd_rules() {
        let r = KeyRange::prefix(&b"/a/"[..]);
        assert!(r.contains(b"/a/x"));
        assert!(!r.contains(b"/b"));
        let all = KeyRange {
            key: Bytes::from_static(b"m"),
            end: Bytes::from_static(&[0]),
        };
        assert!(all.contains(b"zzz"));
        assert!(!all.contains(b"a"));
        assert!(KeyRange::single(&b"k"[..]).contains(b"k"));
        assert!(!KeyRange::single(&b"k"[..]).contains(b"k2"));
    }
}
