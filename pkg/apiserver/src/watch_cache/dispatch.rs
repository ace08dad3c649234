//! Fan-out of one resource's changes to its watchers: what each watcher selects
//! ([`Filter`]), which event a change is for a watcher ([`transition`]: selector
//! transitions included), and the set of watchers indexed so that a change is offered
//! only to the watchers that can select it ([`Watchers`]). Delivery never waits: a
//! watcher whose buffer is full is ended (410) rather than holding anyone up. No I/O, no
//! locking: the cache calls this under its own lock.
//!
//! Index: a watcher whose field selector requires `spec.nodeName=<node>` (a kubelet's
//! pods, or the scheduler's unbound ones with `<node>` empty) is filed under that node;
//! else a watcher of one namespace under its namespace; else with the unindexed ones.
//! A change to an object is offered to the unindexed watchers, those of its namespace,
//! and those of its node now and before the change (so the old node's watcher sees it
//! leave). 10 000 kubelets cost one lookup per change, not 10 000 selector checks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_api::registry::ResourceInfo;
use rkube_api::selectors::{FieldSelector, LabelSelector};
use rkube_api::status::Status;
use tokio::sync::mpsc;

use super::object::{EventType, Object};
use super::WatchEvent;

/// The field the watcher index files kubelets' watches by.
pub const NODE_FIELD: &str = "spec.nodeName";

/// What one watcher selects: a namespace (or all), labels and fields.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The namespace's key prefix (`/registry/pods/<ns>/`), `None` for every namespace.
    prefix: Option<Bytes>,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// `fields` must already be converted for `info` (`FieldSelector::for_resource`).
    pub fn new(
        info: &ResourceInfo,
        namespace: Option<&str>,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> Self {
        let namespace = namespace
            .filter(|ns| info.namespaced && !ns.is_empty())
            .map(str::to_string);
        Self {
            prefix: namespace
                .as_deref()
                .map(|ns| Bytes::from(info.key_prefix(Some(ns)))),
            namespace,
            labels,
            fields,
        }
    }

    /// Whether `o` is selected: in the namespace (by its key, as the store's ranges
    /// select), and matching both selectors.
    pub fn matches(&self, o: &Object) -> bool {
        self.prefix.as_ref().is_none_or(|p| o.key().starts_with(p))
            && self.labels.matches(o.labels())
            && self.fields.matches(o.fields())
    }

    /// The key prefix of what this filter can select.
    pub fn prefix(&self, info: &ResourceInfo) -> Bytes {
        self.prefix
            .clone()
            .unwrap_or_else(|| Bytes::from(info.key_prefix(None)))
    }

    /// Where the watcher index files a watcher with this filter.
    fn index_key(&self) -> IndexKey {
        if let Some(node) = self.fields.requires_exact_match(NODE_FIELD) {
            IndexKey::Node(node.to_string())
        } else if let Some(ns) = &self.namespace {
            IndexKey::Namespace(ns.clone())
        } else {
            IndexKey::Unindexed
        }
    }
}

/// One change to one object, as the cache applies it.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Created (`prev` none) or updated.
    Put {
        object: &'a Object,
        prev: Option<&'a Object>,
    },
    /// Deleted; `object` is its last state at the deletion's revision.
    Delete { object: &'a Object },
}

impl<'a> Change<'a> {
    pub fn object(&self) -> &'a Object {
        match *self {
            Change::Put { object, .. } | Change::Delete { object } => object,
        }
    }

    fn prev(&self) -> Option<&'a Object> {
        match *self {
            Change::Put { prev, .. } => prev,
            Change::Delete { .. } => None,
        }
    }
}

/// The event a watcher with `filter` gets for `change`, if any. An object entering the
/// selection is ADDED, one leaving it DELETED (with its new state), as Kubernetes'
/// watch cache reports selector transitions. Pure.
pub fn transition(filter: &Filter, change: &Change<'_>) -> Option<EventType> {
    match *change {
        Change::Delete { object } => filter.matches(object).then_some(EventType::Deleted),
        Change::Put { object, prev: None } => filter.matches(object).then_some(EventType::Added),
        Change::Put {
            object,
            prev: Some(prev),
        } => match (filter.matches(prev), filter.matches(object)) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexKey {
    Node(String),
    Namespace(String),
    Unindexed,
}

/// Why a watcher's sending side ended, read by its stream once the buffer is drained.
pub type EndSlot = Arc<Mutex<Option<Status>>>;

/// One registered watcher: its filter and the sending side of its buffer.
#[derive(Debug)]
pub struct Watcher {
    pub filter: Filter,
    /// The first revision it may receive (it has everything before from elsewhere).
    pub start: i64,
    pub bookmarks: bool,
    pub tx: mpsc::Sender<Result<WatchEvent, Status>>,
    pub ended: EndSlot,
    /// When it was last sent anything (bookmarks go to watchers idle for a while).
    pub last_sent: Instant,
}

impl Watcher {
    /// Ends the watcher: its stream delivers what is buffered, then `status` if any.
    fn end(self, status: Option<Status>) {
        *self.ended.lock().expect("end slot") = status;
        // Dropping `tx` closes the buffer.
    }
}

/// What a dispatch did, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dispatched {
    /// Events put into watchers' buffers.
    pub sent: u64,
    /// Watchers ended for a full buffer.
    pub slow: u64,
}

/// Every watcher of one resource, indexed (see the module documentation).
#[derive(Debug, Default)]
pub struct Watchers {
    all: HashMap<u64, (Watcher, IndexKey)>,
    by_node: HashMap<String, HashSet<u64>>,
    by_namespace: HashMap<String, HashSet<u64>>,
    unindexed: HashSet<u64>,
    /// Reused between dispatches.
    scratch: Vec<u64>,
}

impl Watchers {
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn insert(&mut self, id: u64, w: Watcher) {
        let key = w.filter.index_key();
        match &key {
            IndexKey::Node(n) => self.by_node.entry(n.clone()).or_default().insert(id),
            IndexKey::Namespace(ns) => self.by_namespace.entry(ns.clone()).or_default().insert(id),
            IndexKey::Unindexed => self.unindexed.insert(id),
        };
        self.all.insert(id, (w, key));
    }

    pub fn remove(&mut self, id: u64) -> Option<Watcher> {
        let (w, key) = self.all.remove(&id)?;
        fn unfile(m: &mut HashMap<String, HashSet<u64>>, k: &str, id: u64) {
            if let Some(set) = m.get_mut(k) {
                set.remove(&id);
                if set.is_empty() {
                    m.remove(k);
                }
            }
        }
        match key {
            IndexKey::Node(n) => unfile(&mut self.by_node, &n, id),
            IndexKey::Namespace(ns) => unfile(&mut self.by_namespace, &ns, id),
            IndexKey::Unindexed => {
                self.unindexed.remove(&id);
            }
        }
        Some(w)
    }

    /// The watchers that may select `change`: each once.
    fn candidates(&mut self, namespace: &str, change: &Change<'_>) -> Vec<u64> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.extend(self.unindexed.iter().copied());
        if let Some(set) = self.by_namespace.get(namespace) {
            out.extend(set.iter().copied());
        }
        let node = change.object().field(NODE_FIELD);
        if let Some(set) = self.by_node.get(node) {
            out.extend(set.iter().copied());
        }
        if let Some(prev) = change.prev().map(|p| p.field(NODE_FIELD)) {
            if prev != node {
                if let Some(set) = self.by_node.get(prev) {
                    out.extend(set.iter().copied());
                }
            }
        }
        out
    }

    /// Offers `change` (of `revision`, to an object of `namespace`) to every watcher
    /// that may select it. A watcher whose buffer is full is ended with `slow(watcher)`;
    /// one whose stream is gone is dropped.
    pub fn dispatch(
        &mut self,
        revision: i64,
        namespace: &str,
        change: &Change<'_>,
        object: &Arc<Object>,
        now: Instant,
        slow: impl Fn(&Watcher) -> Status,
    ) -> Dispatched {
        let candidates = self.candidates(namespace, change);
        let mut done = Dispatched::default();
        let mut gone = Vec::new();
        for &id in &candidates {
            let Some((w, _)) = self.all.get_mut(&id) else {
                continue;
            };
            if revision < w.start {
                continue;
            }
            let Some(kind) = transition(&w.filter, change) else {
                continue;
            };
            match w.tx.try_send(Ok(WatchEvent::new(kind, object.clone()))) {
                Ok(()) => {
                    w.last_sent = now;
                    done.sent += 1;
                }
                Err(mpsc::error::TrySendError::Full(_)) => gone.push((id, true)),
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push((id, false)),
            }
        }
        self.scratch = candidates;
        for (id, full) in gone {
            if let Some(w) = self.remove(id) {
                if full {
                    let status = slow(&w);
                    w.end(Some(status));
                    done.slow += 1;
                }
            }
        }
        done
    }

    /// Sends a bookmark at `revision` to every watcher that asked for bookmarks, has
    /// been sent nothing for `idle`, and starts at or before `revision + 1` (announcing
    /// a revision before its start would move it backwards). A full buffer is not idle:
    /// skipped.
    pub fn bookmark_idle(&mut self, revision: i64, idle: Duration, now: Instant) {
        let mut gone = Vec::new();
        for (id, (w, _)) in self.all.iter_mut() {
            if !w.bookmarks || now.duration_since(w.last_sent) < idle || revision < w.start - 1 {
                continue;
            }
            let bm = WatchEvent::Bookmark {
                revision,
                initial_events_end: false,
            };
            match w.tx.try_send(Ok(bm)) {
                Ok(()) => w.last_sent = now,
                Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.remove(id);
        }
    }

    /// Ends every watcher `which` picks, with `status` after what it has buffered (none:
    /// its stream just ends); returns how many.
    pub fn end_where(
        &mut self,
        which: impl Fn(&Watcher) -> bool,
        status: Option<&Status>,
    ) -> usize {
        let ids: Vec<u64> = self
            .all
            .iter()
            .filter(|(_, (w, _))| which(w))
            .map(|(id, _)| *id)
            .collect();
        for &id in &ids {
            if let Some(w) = self.remove(id) {
                w.end(status.cloned());
            }
        }
        ids.len()
    }

    /// Bucket sizes (unindexed, namespaces, nodes), for tests.
    #[cfg(test)]
    pub fn buckets(&self) -> (usize, usize, usize) {
        (
            self.unindexed.len(),
            self.by_namespace.values().map(HashSet::len).sum(),
            self.by_node.values().map(HashSet::len).sum(),
        )
    }
}
