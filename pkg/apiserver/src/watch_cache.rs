//! The watch cache: per resource, one store watch feeding an in-memory copy of the
//! current objects and a window of recent events, shared by every watcher of that
//! resource on this replica (both front doors) and by lists that accept any state
//! (`resourceVersion=0`).
//!
//! Expected flow: the first watch (or `resourceVersion=0` list) of a resource builds its
//! cache from a local read of the store, at the revision the watch resumes from when the
//! store still has it, and starts one store watch from the next revision. Each store
//! event is decoded once into an [`Object`] (its JSON with `resourceVersion`, labels and
//! selectable fields), applied to the current objects, kept in the window and offered to
//! the watchers that may select it (see [`dispatch`]); every watcher gets the same `Arc`.
//!
//! Guarantees: a watcher gets every change after its start that its selectors see, once,
//! in revision order, with selector transitions as ADDED/DELETED, exactly as a watch on
//! the store would; registering a watcher and taking its initial state or window replay
//! happen under one lock, so nothing falls between them. The cache is fed by this
//! replica's own applied state, which only moves forward, so Raft leader changes do not
//! concern it.
//!
//! Limits: a watcher whose buffer ([`CacheConfig::watcher_buffer`] events) is full is
//! ended with 410 Expired; it resumes from its last resourceVersion like any broken
//! watch. A watch from a revision older than the window is not served here (the
//! registry falls back to a watch on the store, which answers 410 if the store compacted
//! it too). If the store watch breaks it is restarted from the cache's revision; if that
//! revision was compacted meanwhile (this replica fell far behind, or installed a
//! snapshot), the cache is rebuilt from a fresh read and every watcher that would miss
//! events is ended with 410.
//!
//! This module must never write to the store, and never block on a watcher: delivery is
//! `try_send` under the cache's lock.

mod dispatch;
mod object;
mod stream;
mod window;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use rkube_store::{EventKind, KeyRange, RangeOp, Store, WatchBatch, WatchRequest};
use tokio::sync::{mpsc, OnceCell};
use tokio_util::sync::CancellationToken;

pub use dispatch::{transition, Change, Filter};
pub use object::{decode_stored, DecodeError, EventType, Object};
pub use stream::WatchStream;

use dispatch::{Watcher, Watchers};
use window::{Revisioned, Window};

/// One event of a watch, before either front door renders it. Objects are shared: the
/// doors send their bytes as they are.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Added(Arc<Object>),
    Modified(Arc<Object>),
    Deleted(Arc<Object>),
    /// Every change up to `revision` has been sent. `initial_events_end` marks the end
    /// of the initial ADDED events (always sent after them; the REST door drops it, as
    /// Kubernetes sends it only with `sendInitialEvents`).
    Bookmark {
        revision: i64,
        initial_events_end: bool,
    },
}

impl WatchEvent {
    pub fn new(kind: EventType, object: Arc<Object>) -> Self {
        match kind {
            EventType::Added => WatchEvent::Added(object),
            EventType::Modified => WatchEvent::Modified(object),
            EventType::Deleted => WatchEvent::Deleted(object),
        }
    }

    /// Kubernetes' event type: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`.
    pub fn type_name(&self) -> &'static str {
        match self.object() {
            Some((kind, _)) => kind.as_str(),
            None => "BOOKMARK",
        }
    }

    /// The type and object of an object event; `None` for a bookmark.
    pub fn object(&self) -> Option<(EventType, &Arc<Object>)> {
        match self {
            WatchEvent::Added(o) => Some((EventType::Added, o)),
            WatchEvent::Modified(o) => Some((EventType::Modified, o)),
            WatchEvent::Deleted(o) => Some((EventType::Deleted, o)),
            WatchEvent::Bookmark { .. } => None,
        }
    }
}

/// How the cache behaves (`--watch-cache-*` flags).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Events kept per resource for watches resuming from a revision.
    pub window_events: usize,
    /// Events buffered per watcher; a watcher that falls further behind is ended (410).
    pub watcher_buffer: usize,
    /// A watcher that asked for bookmarks gets one after this long without events.
    pub bookmark_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            window_events: 10_000,
            watcher_buffer: 1000,
            bookmark_interval: Duration::from_secs(10),
        }
    }
}

/// `rkube_apiserver_watch_cache_*`, labelled by group, version and resource.
#[derive(Clone, Default)]
pub struct CacheMetrics {
    objects: Family<Labels, Gauge>,
    watchers: Family<Labels, Gauge>,
    events_dispatched: Family<Labels, Counter>,
    slow_watchers_terminated: Family<Labels, Counter>,
    resyncs: Family<Labels, Counter>,
    store_fallbacks: Family<Labels, Counter>,
}

type Labels = Vec<(String, String)>;

fn labels(info: &ResourceInfo) -> Labels {
    vec![
        ("group".into(), info.group.into()),
        ("version".into(), info.version.into()),
        ("resource".into(), info.plural.into()),
    ]
}

impl CacheMetrics {
    /// Registers every series under `rkube_apiserver_watch_cache_`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let r = registry.sub_registry_with_prefix("rkube_apiserver_watch_cache");
        r.register(
            "objects",
            "Objects held by the watch cache",
            self.objects.clone(),
        );
        r.register(
            "watchers",
            "Watches served by the watch cache",
            self.watchers.clone(),
        );
        r.register(
            "events_dispatched",
            "Events put into watchers' buffers",
            self.events_dispatched.clone(),
        );
        r.register(
            "slow_watchers_terminated",
            "Watchers ended with 410 because their buffer was full",
            self.slow_watchers_terminated.clone(),
        );
        r.register(
            "resyncs",
            "Rebuilds from a fresh read after the store compacted the cache's next revision",
            self.resyncs.clone(),
        );
        r.register(
            "store_fallbacks",
            "Watches from a revision older than the window, served by the store instead",
            self.store_fallbacks.clone(),
        );
    }

    /// Counts a watch of `info` served by the store instead of the cache.
    pub fn store_fallback(&self, info: &ResourceInfo) {
        self.store_fallbacks.get_or_create(&labels(info)).inc();
    }
}

/// One resource's series.
#[derive(Clone)]
struct ResourceMetrics {
    objects: Gauge,
    watchers: Gauge,
    events_dispatched: Counter,
    slow_watchers_terminated: Counter,
    resyncs: Counter,
}

impl ResourceMetrics {
    fn new(m: &CacheMetrics, info: &ResourceInfo) -> Self {
        let l = labels(info);
        Self {
            objects: m.objects.get_or_create(&l).clone(),
            watchers: m.watchers.get_or_create(&l).clone(),
            events_dispatched: m.events_dispatched.get_or_create(&l).clone(),
            slow_watchers_terminated: m.slow_watchers_terminated.get_or_create(&l).clone(),
            resyncs: m.resyncs.get_or_create(&l).clone(),
        }
    }
}

/// Why the cache could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {resource} from the store to build its watch cache")]
    InitialRead {
        resource: String,
        #[source]
        source: rkube_store::Error,
    },
    #[error("the watch cache is stopped")]
    Stopped,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current objects as ADDED events and a bookmark, then every change after them.
    InitialState,
    /// Every change after this revision.
    After(i64),
}

/// A watch from a revision that has left the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("revision {requested} is older than the watch cache's window (it starts after {floor})")]
pub struct TooOld {
    pub requested: i64,
    pub floor: i64,
}

type ResourceId = (&'static str, &'static str, &'static str);

/// Every resource's cache on this replica, built on first use.
pub struct WatchCache {
    store: Arc<Store>,
    config: CacheConfig,
    metrics: CacheMetrics,
    resources: Mutex<HashMap<ResourceId, Arc<OnceCell<Arc<ResourceCache>>>>>,
    shutdown: CancellationToken,
    feeders: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl WatchCache {
    /// A cache over `store`; its store watches stop when `shutdown` is cancelled (see
    /// also [`WatchCache::stop`]).
    pub fn new(
        store: Arc<Store>,
        config: CacheConfig,
        metrics: CacheMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            config,
            metrics,
            resources: Mutex::default(),
            shutdown,
            feeders: Mutex::default(),
        }
    }

    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// The cache of `info`, built now if it does not exist yet: at revision `at` when
    /// given and the store can still read it (so the watch that asks can be served),
    /// else at the store's current revision.
    pub async fn resource(
        &self,
        info: &ResourceInfo,
        at: Option<i64>,
    ) -> Result<Arc<ResourceCache>, Error> {
        if self.shutdown.is_cancelled() {
            return Err(Error::Stopped);
        }
        let cell = self
            .resources
            .lock()
            .expect("resources")
            .entry((info.group, info.version, info.plural))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let cache = Arc::new(
                ResourceCache::build(&self.store, *info, at, &self.config, &self.metrics).await?,
            );
            let feeder = tokio::spawn(
                cache
                    .clone()
                    .feed(self.store.clone(), self.shutdown.clone()),
            );
            self.feeders.lock().expect("feeders").push(feeder);
            Ok(cache)
        })
        .await
        .cloned()
    }

    /// Stops every store watch and waits for the feeders to end; their watchers' streams
    /// end (without an error: clients re-watch elsewhere).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let feeders = std::mem::take(&mut *self.feeders.lock().expect("feeders"));
        for f in feeders {
            let _ = f.await;
        }
    }
}

/// One change as the window keeps it.
#[derive(Debug)]
struct CachedEvent {
    revision: i64,
    object: Arc<Object>,
    prev: Option<Arc<Object>>,
    deleted: bool,
}

impl CachedEvent {
    fn change(&self) -> Change<'_> {
        if self.deleted {
            Change::Delete {
                object: &self.object,
            }
        } else {
            Change::Put {
                object: &self.object,
                prev: self.prev.as_deref(),
            }
        }
    }
}

impl Revisioned for CachedEvent {
    fn revision(&self) -> i64 {
        self.revision
    }
}

#[derive(Debug)]
struct State {
    /// Every change up to here is applied (and was offered to the watchers).
    revision: i64,
    objects: BTreeMap<Bytes, Arc<Object>>,
    window: Window<CachedEvent>,
    watchers: Watchers,
}

/// The cache of one resource (one group/version/resource, every namespace).
pub struct ResourceCache {
    info: ResourceInfo,
    config: CacheConfig,
    state: Mutex<State>,
    metrics: ResourceMetrics,
    next_id: AtomicU64,
}

impl ResourceCache {
    async fn build(
        store: &Store,
        info: ResourceInfo,
        at: Option<i64>,
        config: &CacheConfig,
        metrics: &CacheMetrics,
    ) -> Result<Self, Error> {
        let (objects, revision) = read_all(store, &info, at).await?;
        let metrics = ResourceMetrics::new(metrics, &info);
        metrics.objects.set(objects.len() as i64);
        tracing::debug!(
            resource = info.plural,
            revision,
            objects = objects.len(),
            "watch cache built"
        );
        Ok(Self {
            info,
            config: config.clone(),
            state: Mutex::new(State {
                revision,
                objects,
                window: Window::new(config.window_events, revision),
                watchers: Watchers::default(),
            }),
            metrics,
            next_id: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("watch cache state")
    }

    /// The revision everything up to which has been applied.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// Starts a watch. `Err(TooOld)` when `start` is a revision the window no longer
    /// covers. The stream ends after `timeout`.
    pub fn watch(
        self: &Arc<Self>,
        start: Start,
        filter: Filter,
        bookmarks: bool,
        timeout: Duration,
    ) -> Result<WatchStream, TooOld> {
        let (tx, rx) = mpsc::channel(self.config.watcher_buffer.max(1));
        let ended = dispatch::EndSlot::default();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut first = VecDeque::new();
        {
            let mut st = self.lock();
            match start {
                Start::InitialState => {
                    first.extend(
                        st.objects
                            .values()
                            .filter(|o| filter.matches(o))
                            .map(|o| WatchEvent::Added(o.clone())),
                    );
                    first.push_back(WatchEvent::Bookmark {
                        revision: st.revision,
                        initial_events_end: true,
                    });
                }
                Start::After(rv) if rv >= st.revision => {}
                Start::After(rv) => {
                    let Some(events) = st.window.since(rv) else {
                        return Err(TooOld {
                            requested: rv,
                            floor: st.window.floor(),
                        });
                    };
                    first.extend(events.filter_map(|e| {
                        transition(&filter, &e.change())
                            .map(|kind| WatchEvent::new(kind, e.object.clone()))
                    }));
                }
            }
            let from = match start {
                Start::After(rv) => rv.max(st.revision),
                Start::InitialState => st.revision,
            };
            st.watchers.insert(
                id,
                Watcher {
                    filter,
                    start: from + 1,
                    bookmarks,
                    tx,
                    ended: ended.clone(),
                    last_sent: Instant::now(),
                },
            );
            self.metrics.watchers.set(st.watchers.len() as i64);
        }
        let registration = Unregister {
            cache: Arc::downgrade(self),
            id,
        };
        Ok(WatchStream::new(
            first,
            rx,
            Some(ended),
            timeout,
            Some(Box::new(registration)),
        ))
    }

    /// The current objects `filter` selects, in key order, at most `limit` (0: all), and
    /// the revision they are at. With a limit, also the key the next page starts after
    /// (the last one examined) when more objects exist.
    pub fn list(&self, filter: &Filter, limit: usize) -> (Vec<Arc<Object>>, i64, Option<Bytes>) {
        let st = self.lock();
        let prefix = filter.prefix(&self.info);
        let mut items = Vec::new();
        let mut last_seen: Option<&Bytes> = None;
        let mut next = None;
        for (key, o) in st.objects.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            if limit > 0 && items.len() == limit {
                next = Some(last_seen.cloned().unwrap_or_default());
                break;
            }
            if filter.matches(o) {
                items.push(o.clone());
            }
            last_seen = Some(key);
        }
        (items, st.revision, next)
    }

    /// Applies one batch of the store watch and offers each change to the watchers.
    fn apply(&self, batch: WatchBatch) {
        let info = &self.info;
        // Decoding is the expensive part: done before taking the lock, so watchers
        // come and go meanwhile.
        let decoded: Vec<(Bytes, i64, Option<Arc<Object>>)> = batch
            .events
            .into_iter()
            .filter_map(|ev| {
                let (key, revision) = (ev.kv.key, ev.kv.mod_revision);
                match ev.kind {
                    EventKind::Delete => Some((key, revision, None)),
                    EventKind::Put => {
                        match Object::from_stored(info, key.clone(), &ev.kv.value, revision) {
                            Ok(o) => Some((key, revision, Some(Arc::new(o)))),
                            Err(e) => {
                                tracing::warn!(error = %e, "watch cache: skipping an undecodable object");
                                None
                            }
                        }
                    }
                }
            })
            .collect();
        let now = Instant::now();
        let mut st = self.lock();
        let st = &mut *st;
        let (mut sent, mut slow) = (0, 0);
        for (key, revision, put) in decoded {
            let namespace = namespace_of(info, &key).to_string();
            let event = match put {
                Some(object) => {
                    let prev = st.objects.insert(key, object.clone());
                    CachedEvent {
                        revision,
                        object,
                        prev,
                        deleted: false,
                    }
                }
                None => {
                    let Some(prev) = st.objects.remove(&key) else {
                        continue;
                    };
                    CachedEvent {
                        revision,
                        object: Arc::new(prev.at_revision(info, revision)),
                        prev: Some(prev),
                        deleted: true,
                    }
                }
            };
            let slow_status = |_: &Watcher| {
                Status::expired(format!(
                    "too old resource version: the watcher fell more than {} events behind \
                     at revision {revision}; watch again from the last resourceVersion received",
                    self.config.watcher_buffer
                ))
            };
            let done = st.watchers.dispatch(
                revision,
                &namespace,
                &event.change(),
                &event.object,
                now,
                slow_status,
            );
            sent += done.sent;
            slow += done.slow;
            st.window.push(event);
        }
        st.revision = st.revision.max(batch.revision);
        self.metrics.objects.set(st.objects.len() as i64);
        self.metrics.watchers.set(st.watchers.len() as i64);
        self.metrics.events_dispatched.inc_by(sent);
        self.metrics.slow_watchers_terminated.inc_by(slow);
        if slow > 0 {
            tracing::info!(
                resource = info.plural,
                slow,
                "watch cache: ended watchers that fell too far behind"
            );
        }
    }

    fn bookmark_idle(&self) {
        let mut st = self.lock();
        let revision = st.revision;
        st.watchers
            .bookmark_idle(revision, self.config.bookmark_interval, Instant::now());
        self.metrics.watchers.set(st.watchers.len() as i64);
    }

    /// Rebuilds from a fresh read after the store compacted the next revision; ends
    /// (410) every watcher that would miss events.
    async fn resync(&self, store: &Store) -> Result<(), Error> {
        let (objects, revision) = read_all(store, &self.info, None).await?;
        let mut st = self.lock();
        let expired = Status::expired(format!(
            "too old resource version: the watch cache of {} lost its place at revision {} \
             and was rebuilt at {revision}",
            self.info.plural, st.revision
        ));
        let ended = st
            .watchers
            .end_where(|w| w.start <= revision, Some(&expired));
        tracing::warn!(
            resource = self.info.plural,
            from = st.revision,
            to = revision,
            ended,
            "watch cache rebuilt after its store watch was compacted"
        );
        st.revision = revision;
        st.objects = objects;
        st.window = Window::new(self.config.window_events, revision);
        self.metrics.objects.set(st.objects.len() as i64);
        self.metrics.watchers.set(st.watchers.len() as i64);
        self.metrics.resyncs.inc();
        Ok(())
    }

    /// Follows the store from the cache's revision until `shutdown`; restarts a broken
    /// store watch where it stopped.
    async fn feed(self: Arc<Self>, store: Arc<Store>, shutdown: CancellationToken) {
        let range = KeyRange::prefix(Bytes::from(self.info.key_prefix(None)));
        let tick = (self.config.bookmark_interval / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut backoff = Duration::from_millis(50);
        loop {
            let request = WatchRequest {
                range: range.clone(),
                start_revision: self.revision() + 1,
                prev_kv: false,
                // Progress keeps the cache's revision (and so bookmarks) moving while
                // the resource is idle.
                progress_interval: tick,
            };
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let broke = match store.watch(request) {
                Ok(mut rx) => loop {
                    let batch = tokio::select! {
                        _ = shutdown.cancelled() => break None,
                        _ = ticker.tick() => {
                            self.bookmark_idle();
                            continue;
                        }
                        b = rx.recv() => b,
                    };
                    match batch {
                        Some(Ok(batch)) => {
                            self.apply(batch);
                            backoff = Duration::from_millis(50);
                        }
                        Some(Err(e)) => break Some(e),
                        None => break Some(rkube_store::Error::Shutdown),
                    }
                },
                Err(e) => Some(e),
            };
            let Some(e) = broke else { break };
            if shutdown.is_cancelled() {
                break;
            }
            if let rkube_store::Error::Compacted { .. } = e {
                match self.resync(&store).await {
                    // Rebuilt: follow the store again at once.
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::warn!(resource = self.info.plural, error = %e, "watch cache: rebuilding failed; retrying")
                    }
                }
            } else {
                tracing::warn!(resource = self.info.plural, error = %e, "watch cache: the store watch broke; restarting it");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        let mut st = self.lock();
        st.watchers.end_where(|_| true, None);
        self.metrics.watchers.set(0);
    }
}

/// Reads every object of `info` from this replica's store (no read index: the cache
/// follows the local state), at `at` when given and readable, else now.
async fn read_all(
    store: &Store,
    info: &ResourceInfo,
    at: Option<i64>,
) -> Result<(BTreeMap<Bytes, Arc<Object>>, i64), Error> {
    let op = |revision| RangeOp {
        range: KeyRange::prefix(Bytes::from(info.key_prefix(None))),
        limit: 0,
        revision,
        keys_only: false,
        count_only: false,
    };
    let read = match at.filter(|rv| *rv > 0) {
        Some(rv) => match store.range(op(rv), true).await {
            Ok((res, _)) => Ok((res, rv)),
            // Compacted, or not reached yet here: build at the current revision.
            Err(_) => store.range(op(0), true).await,
        },
        None => store.range(op(0), true).await,
    };
    let (res, revision) = read.map_err(|source| Error::InitialRead {
        resource: info.plural.to_string(),
        source,
    })?;
    let mut objects = BTreeMap::new();
    for kv in res.kvs {
        match Object::from_stored(info, kv.key.clone(), &kv.value, kv.mod_revision) {
            Ok(o) => {
                objects.insert(kv.key, Arc::new(o));
            }
            Err(e) => tracing::warn!(error = %e, "watch cache: skipping an undecodable object"),
        }
    }
    Ok((objects, revision))
}

/// The namespace part of a namespaced object's key (`""` for cluster-scoped ones).
fn namespace_of<'a>(info: &ResourceInfo, key: &'a [u8]) -> &'a str {
    if !info.namespaced {
        return "";
    }
    let rest = key
        .strip_prefix(info.etcd_prefix.as_bytes())
        .and_then(|r| r.strip_prefix(b"/"))
        .unwrap_or_default();
    let ns = rest.split(|b| *b == b'/').next().unwrap_or_default();
    std::str::from_utf8(ns).unwrap_or_default()
}

/// Removes a watcher from its cache when its stream is dropped.
struct Unregister {
    cache: Weak<ResourceCache>,
    id: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.upgrade() {
            let mut st = cache.lock();
            st.watchers.remove(self.id);
            cache.metrics.watchers.set(st.watchers.len() as i64);
        }
    }
}
