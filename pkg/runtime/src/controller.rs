//! The controller loop: informers → work queue → reconcile workers.
//!
//! Expected flow: build a [`Controller`] over the informer of the objects it reconciles
//! (the *primary*), say what else wakes it ([`Controller::owns`] for objects it created,
//! [`Controller::watches`] for anything else, with a mapping to primary keys), then
//! [`Controller::run`] with a reconcile function and an error policy. `run` waits until
//! every informer involved has synced, starts the workers and returns once the shutdown
//! token fired and the reconciles in flight finished.
//!
//! Guarantees: reconcile is called with a key, never told *why* (it must be idempotent:
//! read the current state from the caches, compare, write conditionally); two reconciles of
//! one key never run at once; a key changed during its reconcile is reconciled again
//! afterwards; an error is retried with the queue's per-key back-off unless the error
//! policy says otherwise; a panic is logged and retried the same way (the worker and the
//! key survive it); a success forgets the key's back-off.
//!
//! Every reconcile runs in a span named `<controller>.reconcile` that continues the trace
//! the primary object carries in `tracing.k8s.io/traceparent`, and is counted in
//! `rkube_controller_reconcile_duration_seconds` / `_errors` and the queue's metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::informer::{error_chain, Informer};
use crate::metrics::ControllerMetrics;
use crate::object::{controller_of, ObjectKey, Resource};
use crate::queue::{RateLimit, WorkQueue};
use crate::store::{Change, Store};

/// What to do with a key after its reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    requeue: Requeue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requeue {
    Never,
    After(Duration),
    RateLimited,
}

impl Action {
    /// Nothing more to do until something changes.
    pub fn await_change() -> Self {
        Action {
            requeue: Requeue::Never,
        }
    }

    /// Reconcile again after `delay` (e.g. to check a deadline), whatever happens.
    pub fn requeue(delay: Duration) -> Self {
        Action {
            requeue: Requeue::After(delay),
        }
    }

    /// Retry with the key's exponential back-off (the default for errors).
    pub fn retry() -> Self {
        Action {
            requeue: Requeue::RateLimited,
        }
    }
}

/// The default error policy: log and retry with back-off.
pub fn retry_with_backoff<E: std::error::Error, C>(key: &ObjectKey, err: &E, _ctx: &C) -> Action {
    tracing::debug!(%key, error = %error_chain(err), "reconcile failed; retrying with back-off");
    Action::retry()
}

/// A controller under construction; see the module documentation.
pub struct Controller<K: Resource> {
    name: String,
    primary: Store<K>,
    queue: WorkQueue<ObjectKey>,
    workers: usize,
    resync: Option<Duration>,
    /// Sync waits of every informer involved.
    synced: Vec<BoxFuture<'static, ()>>,
}

impl<K: Resource> Controller<K> {
    /// A controller named `name` (its metrics' and span's name) reconciling the objects of
    /// `primary`; any change of one queues its key.
    pub fn new(name: &str, primary: &Informer<K>) -> Self {
        Self::with_rate_limit(name, primary, RateLimit::default())
    }

    pub fn with_rate_limit(name: &str, primary: &Informer<K>, limit: RateLimit) -> Self {
        let queue = WorkQueue::with_rate_limit(name, limit);
        let q = queue.clone();
        primary.add_handler(move |c: &Change<K>| q.add(c.key()));
        let p = primary.clone();
        Controller {
            name: name.to_string(),
            primary: primary.store(),
            queue,
            workers: 1,
            resync: None,
            synced: vec![Box::pin(async move { p.wait_synced().await })],
        }
    }

    /// Also reconcile `K` objects whose *controlled* objects in `child` change (the owner
    /// named by the child's controller owner reference, in the child's namespace; before
    /// and after an update, so a released child wakes its former owner).
    pub fn owns<C: Resource>(mut self, child: &Informer<C>) -> Self {
        let q = self.queue.clone();
        child.add_handler(move |c: &Change<C>| {
            let owners = |obj: &C| {
                let meta = obj.metadata();
                if let Some(r) = controller_of(meta) {
                    if r.kind == K::KIND && r.api_version == K::API_VERSION {
                        q.add(ObjectKey::new(
                            meta.namespace.clone().unwrap_or_default(),
                            r.name.clone(),
                        ));
                    }
                }
            };
            if let Change::Updated { old, .. } = c {
                owners(old);
            }
            owners(c.object());
        });
        self.wait_for(child);
        self
    }

    /// Also reconcile the primary keys `map` names for each change in `other`.
    pub fn watches<C: Resource>(
        mut self,
        other: &Informer<C>,
        map: impl Fn(&C) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self {
        let q = self.queue.clone();
        other.add_handler(move |c: &Change<C>| {
            if let Change::Updated { old, .. } = c {
                map(old).into_iter().for_each(|k| q.add(k));
            }
            map(c.object()).into_iter().for_each(|k| q.add(k));
        });
        self.wait_for(other);
        self
    }

    /// Waits for `informer` to sync before starting workers (for informers the reconcile
    /// reads without any of their changes waking it).
    pub fn reads<C: Resource>(mut self, informer: &Informer<C>) -> Self {
        self.wait_for(informer);
        self
    }

    fn wait_for<C: Resource>(&mut self, informer: &Informer<C>) {
        let i = informer.clone();
        self.synced
            .push(Box::pin(async move { i.wait_synced().await }));
    }

    /// How many reconciles may run at once (of different keys). Default 1.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Queue every cached primary key this often (a safety net for missed conditions
    /// outside the cluster's state, as Kubernetes' resync period).
    pub fn resync_every(mut self, period: Duration) -> Self {
        self.resync = Some(period);
        self
    }

    /// The controller's queue (to add keys from elsewhere, e.g. timers).
    pub fn queue(&self) -> WorkQueue<ObjectKey> {
        self.queue.clone()
    }

    /// Runs until `shutdown`; see the module documentation.
    pub async fn run<Ctx, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<Ctx>,
        shutdown: CancellationToken,
    ) where
        Ctx: Send + Sync + 'static,
        E: std::error::Error + Send + 'static,
        R: Fn(ObjectKey, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(&ObjectKey, &E, &Ctx) -> Action + Send + Sync + 'static,
    {
        let Controller {
            name,
            primary,
            queue,
            workers,
            resync,
            synced,
        } = self;
        tracing::info!(controller = %name, "waiting for caches to sync");
        tokio::select! {
            _ = futures::future::join_all(synced) => {}
            _ = shutdown.cancelled() => { queue.shut_down_now(); return; }
        }
        tracing::info!(controller = %name, workers, "caches synced; starting workers");
        let shared = Arc::new(Worker {
            name: name.clone(),
            primary: primary.clone(),
            queue: queue.clone(),
            reconcile,
            error_policy,
            ctx,
            metrics: ControllerMetrics::for_controller(&name),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (w, token) = (shared.clone(), shutdown.clone());
            tasks.spawn(async move { w.work(token).await });
        }
        if let Some(period) = resync {
            let (primary, queue, token) = (primary.clone(), queue.clone(), shutdown.clone());
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tick.tick() => {
                            for k in primary.snapshot().keys() { queue.add(k); }
                        }
                    }
                }
            });
        }
        shutdown.cancelled().await;
        queue.shut_down_now();
        while tasks.join_next().await.is_some() {}
        queue.drained().await;
        tracing::info!(controller = %name, "stopped");
    }
}

struct Worker<K: Resource, Ctx, R, P> {
    name: String,
    primary: Store<K>,
    queue: WorkQueue<ObjectKey>,
    reconcile: R,
    error_policy: P,
    ctx: Arc<Ctx>,
    metrics: ControllerMetrics,
}

impl<K, Ctx, E, R, Fut, P> Worker<K, Ctx, R, P>
where
    K: Resource,
    Ctx: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    R: Fn(ObjectKey, Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    P: Fn(&ObjectKey, &E, &Ctx) -> Action + Send + Sync + 'static,
{
    async fn work(&self, shutdown: CancellationToken) {
        loop {
            let key = tokio::select! {
                k = self.queue.get() => k,
                _ = shutdown.cancelled() => None,
            };
            let Some(key) = key else { return };
            self.process(&key).await;
            self.queue.done(&key);
        }
    }

    async fn process(&self, key: &ObjectKey) {
        let span = tracing::info_span!(
            "reconcile",
            otel.name = format!("{}.reconcile", self.name),
            controller = %self.name,
            key = %key,
            otel.status_code = Empty,
            error = Empty,
        );
        if let Some(obj) = self.primary.get(key) {
            crate::trace::continue_trace(&span, obj.metadata());
        }
        let started = tokio::time::Instant::now();
        // A panicking reconcile must not take its key (or the worker) with it: the key is
        // retried with back-off like an error, and the panic is logged.
        let result = std::panic::AssertUnwindSafe(
            (self.reconcile)(key.clone(), self.ctx.clone()).instrument(span.clone()),
        )
        .catch_unwind()
        .await;
        self.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        let action = match result {
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".to_string());
                self.metrics.reconcile_errors.inc();
                span.record("otel.status_code", "ERROR");
                span.record("error", format!("panicked: {message}"));
                tracing::error!(%key, controller = %self.name, panic = %message,
                    "reconcile panicked; retrying with back-off");
                Action::retry()
            }
            Ok(Ok(action)) => {
                if action.requeue != Requeue::RateLimited {
                    self.queue.forget(key);
                }
                action
            }
            Ok(Err(e)) => {
                self.metrics.reconcile_errors.inc();
                span.record("otel.status_code", "ERROR");
                span.record("error", error_chain(&e));
                (self.error_policy)(key, &e, &self.ctx)
            }
        };
        match action.requeue {
            Requeue::Never => {}
            Requeue::After(d) => self.queue.add_after(key.clone(), d),
            Requeue::RateLimited => self.queue.add_rate_limited(key.clone()),
        }
    }
}
