//! The reflector store: what a watcher has seen, indexed, readable from anywhere.
//!
//! One [`Writer`] applies [`watcher::Event`]s; any number of [`Store`] handles read.
//! Objects are kept as `Arc<K>` in persistent maps (`imbl`), so a [`Snapshot`] — a frozen
//! view of every object and index — costs O(1) to take and never blocks the writer, and
//! readers never see a half-applied event.
//!
//! Indexes map an index value to the keys of the objects that have it. Every store keeps
//! [`INDEX_NAMESPACE`], [`INDEX_LABEL`] (values `key=value`) and [`INDEX_OWNER`] (owner
//! UIDs); [`index_pod_node_name`] indexes pods by `spec.nodeName`; any function of the
//! object can be added with [`Store::add_index`].
//!
//! The writer reports what each event changed as [`Change`]s: a relist is diffed against
//! what the store held, so an object whose resourceVersion did not change produces no
//! change, a vanished one produces `Deleted`. Together with the watcher's resumption this
//! is what makes handlers see each change once.
//!
//! Guarantees: readers see events in the order the watch delivered them, each applied
//! whole. `has_synced` turns true at the first complete list and stays true.
//! Never: mutate a cached object (they are shared); copy it first.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use imbl::{HashMap as PMap, OrdSet};
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

use crate::object::{resource_version, ObjectKey, Resource};
use crate::watcher::Event;

/// Index of objects by namespace.
pub const INDEX_NAMESPACE: &str = "namespace";
/// Index of objects by each of their labels, as `key=value`.
pub const INDEX_LABEL: &str = "label";
/// Index of objects by the UID of each of their owners.
pub const INDEX_OWNER: &str = "owner-uid";
/// Index of pods by `spec.nodeName` ("" for unscheduled pods).
pub const INDEX_NODE_NAME: &str = "spec.nodeName";

/// Computes the index values of an object.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// The `spec.nodeName` index function for pods ([`INDEX_NODE_NAME`]).
pub fn index_pod_node_name() -> IndexFn<Pod> {
    Arc::new(|p: &Pod| {
        vec![p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()]
    })
}

fn default_indexes<K: Resource>() -> Vec<(String, IndexFn<K>)> {
    vec![
        (
            INDEX_NAMESPACE.to_string(),
            Arc::new(|o: &K| vec![o.metadata().namespace.clone().unwrap_or_default()]),
        ),
        (
            INDEX_LABEL.to_string(),
            Arc::new(|o: &K| {
                o.metadata()
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            }),
        ),
        (
            INDEX_OWNER.to_string(),
            Arc::new(|o: &K| {
                o.metadata()
                    .owner_references
                    .iter()
                    .flatten()
                    .map(|r| r.uid.clone())
                    .collect()
            }),
        ),
    ]
}

type Index = PMap<String, OrdSet<ObjectKey>>;

/// A what-changed report of one applied event.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

impl<K: Resource> Change<K> {
    /// The object as it is now (or was last, for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(self.object().as_ref())
    }
}

/// A frozen view of the store: every object and index as of one moment.
pub struct Snapshot<K> {
    objects: PMap<ObjectKey, Arc<K>>,
    indexes: PMap<String, Index>,
    resource_version: String,
}

impl<K> Clone for Snapshot<K> {
    fn clone(&self) -> Self {
        Snapshot {
            objects: self.objects.clone(),
            indexes: self.indexes.clone(),
            resource_version: self.resource_version.clone(),
        }
    }
}

impl<K: Resource> Snapshot<K> {
    fn empty() -> Self {
        Snapshot {
            objects: PMap::new(),
            indexes: PMap::new(),
            resource_version: String::new(),
        }
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.objects.get(key).cloned()
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.objects.values().cloned().collect()
    }

    pub fn keys(&self) -> Vec<ObjectKey> {
        self.objects.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The objects whose `index` has `value`, in key order. An unknown index gives none.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        self.indexes
            .get(index)
            .and_then(|i| i.get(value))
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| self.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The keys whose `index` has `value`, in key order.
    pub fn keys_by_index(&self, index: &str, value: &str) -> Vec<ObjectKey> {
        self.indexes
            .get(index)
            .and_then(|i| i.get(value))
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The resourceVersion the store has seen everything up to ("" before the first list).
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }

    fn index_insert(&mut self, name: &str, f: &IndexFn<K>, key: &ObjectKey, obj: &K) {
        let index = self.indexes.entry(name.to_string()).or_default();
        for v in f(obj) {
            index.entry(v).or_default().insert(key.clone());
        }
    }

    fn index_remove(&mut self, name: &str, f: &IndexFn<K>, key: &ObjectKey, obj: &K) {
        let Some(index) = self.indexes.get_mut(name) else {
            return;
        };
        for v in f(obj) {
            if let Some(keys) = index.get_mut(&v) {
                keys.remove(key);
                if keys.is_empty() {
                    index.remove(&v);
                }
            }
        }
    }
}

struct Shared<K> {
    snapshot: RwLock<Snapshot<K>>,
    indexers: RwLock<Vec<(String, IndexFn<K>)>>,
    synced: watch::Sender<bool>,
}

/// A read handle of the store. Cheap to clone.
pub struct Store<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Resource> Store<K> {
    /// A frozen view of everything (O(1)).
    pub fn snapshot(&self) -> Snapshot<K> {
        self.shared
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.shared
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.snapshot().list()
    }

    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        self.snapshot().by_index(index, value)
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a first complete list has been applied.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until [`Store::has_synced`].
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        // Only fails if the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Adds an index computed by `f` over every object, now and from now on. Replaces an
    /// index of the same name.
    pub fn add_index(&self, name: &str, f: IndexFn<K>) {
        let mut indexers = self
            .shared
            .indexers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut snap = self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        indexers.retain(|(n, _)| n != name);
        snap.indexes.remove(name);
        snap.indexes.insert(name.to_string(), Index::new());
        let objects: Vec<_> = snap
            .objects
            .iter()
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in objects {
            snap.index_insert(name, &f, &k, &o);
        }
        indexers.push((name.to_string(), f));
    }
}

/// The store's only writer; see the module documentation.
pub struct Writer<K> {
    store: Store<K>,
    /// Objects of a list in progress, applied as one replacement at `InitDone`.
    relist: Option<HashMap<ObjectKey, Arc<K>>>,
}

impl<K: Resource> Default for Writer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource> Writer<K> {
    /// A writer of an empty store with the default indexes.
    pub fn new() -> Self {
        Writer {
            store: Store {
                shared: Arc::new(Shared {
                    snapshot: RwLock::new(Snapshot::empty()),
                    indexers: RwLock::new(default_indexes()),
                    synced: watch::Sender::new(false),
                }),
            },
            relist: None,
        }
    }

    /// A read handle.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Applies one watcher event; returns what it changed.
    pub fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        match event {
            Event::Init => {
                self.relist = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(obj) => {
                let key = ObjectKey::of(&obj);
                self.relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key, Arc::new(obj));
                Vec::new()
            }
            Event::InitDone { resource_version } => {
                let listed = self.relist.take().unwrap_or_default();
                let changes = self.replace(listed, resource_version);
                self.store.shared.synced.send_replace(true);
                changes
            }
            Event::Apply(obj) => {
                let rv = resource_version(&obj).to_string();
                self.upsert(Arc::new(obj), rv).into_iter().collect()
            }
            Event::Delete(obj) => {
                let rv = resource_version(&obj).to_string();
                self.remove(Arc::new(obj), rv).into_iter().collect()
            }
            Event::Bookmark { resource_version } => {
                self.write(|snap, _| snap.resource_version = resource_version);
                Vec::new()
            }
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut Snapshot<K>, &[(String, IndexFn<K>)]) -> R) -> R {
        let indexers = self
            .store
            .shared
            .indexers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut snap = self
            .store
            .shared
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut snap, &indexers)
    }

    fn upsert(&self, obj: Arc<K>, rv: String) -> Option<Change<K>> {
        self.write(|snap, indexers| {
            if !rv.is_empty() {
                snap.resource_version = rv;
            }
            put(snap, indexers, obj)
        })
    }

    fn remove(&self, obj: Arc<K>, rv: String) -> Option<Change<K>> {
        self.write(|snap, indexers| {
            if !rv.is_empty() {
                snap.resource_version = rv;
            }
            let key = ObjectKey::of(obj.as_ref());
            let old = snap.objects.remove(&key)?;
            for (name, f) in indexers {
                snap.index_remove(name, f, &key, &old);
            }
            Some(Change::Deleted(obj))
        })
    }

    /// Replaces the contents with a complete list, reporting the differences.
    fn replace(&self, listed: HashMap<ObjectKey, Arc<K>>, rv: String) -> Vec<Change<K>> {
        self.write(|snap, indexers| {
            let mut changes = Vec::new();
            let gone: Vec<ObjectKey> = snap
                .objects
                .keys()
                .filter(|k| !listed.contains_key(*k))
                .cloned()
                .collect();
            for key in gone {
                let old = snap.objects.remove(&key).expect("listed above");
                for (name, f) in indexers {
                    snap.index_remove(name, f, &key, &old);
                }
                changes.push(Change::Deleted(old));
            }
            let mut listed: Vec<_> = listed.into_iter().collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, obj) in listed {
                changes.extend(put(snap, indexers, obj));
            }
            snap.resource_version = rv;
            changes
        })
    }
}

/// Inserts or replaces `obj`; no change when the stored copy has its resourceVersion.
fn put<K: Resource>(
    snap: &mut Snapshot<K>,
    indexers: &[(String, IndexFn<K>)],
    obj: Arc<K>,
) -> Option<Change<K>> {
    let key = ObjectKey::of(obj.as_ref());
    if let Some(old) = snap.objects.get(&key).cloned() {
        let same = !resource_version(old.as_ref()).is_empty()
            && resource_version(old.as_ref()) == resource_version(obj.as_ref());
        if same {
            return None;
        }
        for (name, f) in indexers {
            snap.index_remove(name, f, &key, &old);
        }
        for (name, f) in indexers {
            snap.index_insert(name, f, &key, &obj);
        }
        snap.objects.insert(key, obj.clone());
        return Some(Change::Updated { old, new: obj });
    }
    for (name, f) in indexers {
        snap.index_insert(name, f, &key, &obj);
    }
    snap.objects.insert(key, obj.clone());
    Some(Change::Added(obj))
}

#[cfg(test)]
mod tests;
