//! Shared informers: one watch per resource and selection per process, many handlers.
//!
//! An [`Informer`] runs a [`Watcher`] into a [`store::Writer`] and tells every handler what
//! each event changed ([`Change`]). Handlers must only enqueue (they run on the informer's
//! task, in order, and a slow handler holds up every other handler of that informer). A
//! handler added to an informer that already holds objects first receives an `Added` for
//! each of them, so late handlers miss nothing.
//!
//! [`InformerFactory::informer`] hands out the same informer for the same resource type
//! and [`Selection`], so a controller-manager with five controllers interested in pods
//! still opens one pod watch. Informers start with [`InformerFactory::start`] (those
//! requested later start at once) and run until the shutdown token fires; errors are
//! logged and retried with back-off ([`watcher::Backoff`]), never returned.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use rkube_client::{Client, Gvr};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::InformerMetrics;
use crate::object::Resource;
use crate::store::{self, Change, IndexFn, Store};
use crate::watcher::{self, Backoff, Watcher};

/// Which objects of a resource an informer follows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    /// "" = every namespace.
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
}

impl Selection {
    /// Every object of the resource.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.to_string();
        self
    }

    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = selector.to_string();
        self
    }

    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = selector.to_string();
        self
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

struct Inner<K> {
    gvr: Gvr,
    selection: Selection,
    store: Store<K>,
    /// Taken by the task that runs the informer.
    writer: Mutex<Option<store::Writer<K>>>,
    /// Held while applying an event and telling handlers, and while adding a handler, so
    /// a new handler sees the store exactly once: replayed, then live.
    handlers: Mutex<Vec<Handler<K>>>,
    lists: AtomicU64,
}

/// One shared informer; see the module documentation. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Resource> Informer<K> {
    fn new(selection: Selection) -> Self {
        let writer = store::Writer::new();
        Informer {
            inner: Arc::new(Inner {
                gvr: Gvr::of::<K>(),
                store: writer.store(),
                writer: Mutex::new(Some(writer)),
                handlers: Mutex::new(Vec::new()),
                lists: AtomicU64::new(0),
                selection,
            }),
        }
    }

    /// The informer's cache.
    pub fn store(&self) -> Store<K> {
        self.inner.store.clone()
    }

    pub fn selection(&self) -> &Selection {
        &self.inner.selection
    }

    /// Whether `self` and `other` are the same shared informer.
    pub fn ptr_eq(&self, other: &Informer<K>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many full lists the informer has started (1 after a clean start; more after
    /// its watch expired and it relisted).
    pub fn lists(&self) -> u64 {
        self.inner.lists.load(Ordering::Relaxed)
    }

    /// Adds an index to the cache (see [`Store::add_index`]).
    pub fn add_index(&self, name: &str, f: IndexFn<K>) {
        self.inner.store.add_index(name, f);
    }

    pub fn has_synced(&self) -> bool {
        self.inner.store.has_synced()
    }

    pub async fn wait_synced(&self) {
        self.inner.store.wait_synced().await
    }

    /// Calls `handler` for every change from now on, after an `Added` for each object the
    /// cache already holds. The handler must only enqueue.
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let mut handlers = self
            .inner
            .handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for obj in self.inner.store.list() {
            handler(&Change::Added(obj));
        }
        handlers.push(Box::new(handler));
    }

    /// Runs the informer until `shutdown`. Only the first call runs; later calls return
    /// at once (the factory calls this).
    pub async fn run(&self, client: Client, shutdown: CancellationToken) {
        let Some(mut writer) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let sel = &self.inner.selection;
        let mut watcher: Watcher<K> = Watcher::new(
            client,
            watcher::Config {
                namespace: sel.namespace.clone(),
                label_selector: sel.label_selector.clone(),
                field_selector: sel.field_selector.clone(),
                ..watcher::Config::new()
            },
        );
        let resource = self.inner.gvr.resource.clone();
        let metrics = InformerMetrics::for_resource(&resource);
        let mut backoff = Backoff::default();
        loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = watcher.step() => s,
            };
            match step {
                Ok(event) => {
                    backoff.reset();
                    match &event {
                        watcher::Event::Init => {
                            self.inner.lists.fetch_add(1, Ordering::Relaxed);
                            metrics.relists.inc()
                        }
                        watcher::Event::Apply(_) | watcher::Event::Delete(_) => {
                            metrics.events.inc()
                        }
                        _ => 0,
                    };
                    let handlers = self
                        .inner
                        .handlers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    for change in writer.apply(event) {
                        for h in handlers.iter() {
                            h(&change);
                        }
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        resource = %resource,
                        selection = ?sel,
                        error = %error_chain(&e),
                        retry_in = ?delay,
                        "informer step failed"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// An error and its sources, for logs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

type StartFn = Box<dyn Fn(&TaskTracker, &Client, CancellationToken) + Send + Sync>;

/// One informer of some type, with what the factory needs to run and await it.
struct Entry {
    informer: Arc<dyn Any + Send + Sync>,
    start: StartFn,
    synced: Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>,
    has_synced: Box<dyn Fn() -> bool + Send + Sync>,
}

struct FactoryState {
    informers: HashMap<(TypeId, Selection), Entry>,
    /// Set by `start`: informers requested afterwards start at once.
    started: Option<CancellationToken>,
}

/// Hands out shared informers and runs them; see the module documentation.
#[derive(Clone)]
pub struct InformerFactory {
    client: Client,
    state: Arc<Mutex<FactoryState>>,
    tasks: TaskTracker,
}

impl InformerFactory {
    pub fn new(client: Client) -> Self {
        InformerFactory {
            client,
            state: Arc::new(Mutex::new(FactoryState {
                informers: HashMap::new(),
                started: None,
            })),
            tasks: TaskTracker::new(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The informer of `K` objects in `selection`, shared with every other caller that
    /// asks for the same.
    pub fn informer<K: Resource>(&self, selection: Selection) -> Informer<K> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (TypeId::of::<K>(), selection.clone());
        if let Some(existing) = st.informers.get(&key) {
            return existing
                .informer
                .downcast_ref::<Informer<K>>()
                .expect("entries are keyed by their type")
                .clone();
        }
        let informer = Informer::<K>::new(selection);
        let (a, b, c) = (informer.clone(), informer.clone(), informer.clone());
        let entry = Entry {
            informer: Arc::new(informer.clone()),
            start: Box::new(move |tasks, client, shutdown| {
                let (informer, client) = (a.clone(), client.clone());
                tasks.spawn(async move { informer.run(client, shutdown).await });
            }),
            synced: Box::new(move || {
                let i = b.clone();
                Box::pin(async move { i.wait_synced().await })
            }),
            has_synced: Box::new(move || c.has_synced()),
        };
        if let Some(token) = st.started.clone() {
            (entry.start)(&self.tasks, &self.client, token);
        }
        st.informers.insert(key, entry);
        informer
    }

    /// Starts every informer handed out so far, and any handed out later, until
    /// `shutdown`. A second call does nothing.
    pub fn start(&self, shutdown: CancellationToken) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.started.is_some() {
            return;
        }
        st.started = Some(shutdown.clone());
        for entry in st.informers.values() {
            (entry.start)(&self.tasks, &self.client, shutdown.clone());
        }
    }

    /// Whether every informer handed out so far has synced.
    pub fn has_synced(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.informers.values().all(|e| (e.has_synced)())
    }

    /// Waits until every informer handed out so far has synced.
    pub async fn wait_for_sync(&self) {
        let waits: Vec<_> = {
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.informers.values().map(|e| (e.synced)()).collect()
        };
        futures::future::join_all(waits).await;
    }

    /// Waits until every informer task has ended (after the shutdown token fired).
    pub async fn join(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}
