//! The scheduling queue, as Kubernetes' priority queue has it: three sub-queues.
//!
//! - **active**: pods ready for an attempt, highest `spec.priority` first, then oldest;
//! - **back-off**: pods that failed recently and wait out their back-off (1 s doubling per
//!   attempt up to 10 s by default) before they are active again;
//! - **unschedulable**: pods no node fitted. They stay until something changes that could
//!   make one fit — a node added or changed, a placed pod deleted, an assumption dropped
//!   ([`SchedulingQueue::move_all`]) — and then go to back-off (if still backing off) or
//!   active; and at the latest after 5 minutes.
//!
//! A pod handed out by [`SchedulingQueue::pop`] is *in flight* until
//! [`SchedulingQueue::done`]. If a move request happened while it was in flight, a failure
//! sends it to back-off instead of unschedulable (the event that could have helped is not
//! lost). Time is tokio's, so tests can pause it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use rkube_runtime::ObjectKey;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Span;

use crate::metrics;

/// How long pods back off, and how long unschedulable pods wait at most.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(300),
        }
    }
}

/// A pod in the queue, with its attempt history.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub key: ObjectKey,
    pub pod: Arc<Pod>,
    /// Attempts so far (1 during the first).
    pub attempts: u32,
    /// When the pod was first queued (for the end-to-end scheduling latency).
    pub first_queued: Instant,
    /// When it last became active (for ordering and the queue wait).
    pub timestamp: Instant,
    /// When it last failed.
    failed_at: Instant,
    /// The scheduling cycle it was popped in.
    pub cycle: u64,
    /// The span of the current attempt (continues the pod's trace) and its queue-wait
    /// child, which ends when the pod is popped.
    pub span: Span,
    pub wait_span: Span,
}

impl QueuedPod {
    fn new(key: ObjectKey, pod: Arc<Pod>) -> QueuedPod {
        let now = Instant::now();
        QueuedPod {
            key,
            pod,
            attempts: 0,
            first_queued: now,
            timestamp: now,
            failed_at: now,
            cycle: 0,
            span: Span::none(),
            wait_span: Span::none(),
        }
    }

    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    /// Starts a new attempt's spans, continuing the pod's trace.
    fn activate(&mut self) {
        self.timestamp = Instant::now();
        let span = tracing::info_span!(
            "scheduler.schedule_pod",
            pod = %self.key,
            attempt = self.attempts + 1,
            node = tracing::field::Empty,
            result = tracing::field::Empty,
        );
        rkube_runtime::trace::continue_trace(&span, &self.pod.metadata);
        self.wait_span = tracing::info_span!(parent: &span, "scheduler.queue_wait");
        self.span = span;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active((Reverse<i32>, Instant, u64)),
    Backoff((Instant, u64)),
    Unschedulable,
    InFlight,
}

#[derive(Debug, Default)]
struct Inner {
    active: BTreeMap<(Reverse<i32>, Instant, u64), ObjectKey>,
    backoff: BTreeMap<(Instant, u64), ObjectKey>,
    pods: HashMap<ObjectKey, (Where, QueuedPod)>,
    /// Pods in flight whose object changed meanwhile (the newest object).
    updated_in_flight: HashMap<ObjectKey, Arc<Pod>>,
    seq: u64,
    cycle: u64,
    move_request_cycle: u64,
    closed: bool,
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SchedulingQueue {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    config: QueueConfig,
}

impl SchedulingQueue {
    pub fn new(config: QueueConfig) -> SchedulingQueue {
        SchedulingQueue {
            inner: Arc::default(),
            notify: Arc::new(Notify::new()),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn backoff_of(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(31));
        self.config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }

    fn push_active(&self, inner: &mut Inner, mut qp: QueuedPod) {
        qp.activate();
        inner.seq += 1;
        let k = (Reverse(qp.priority()), qp.timestamp, inner.seq);
        inner.active.insert(k, qp.key.clone());
        inner.pods.insert(qp.key.clone(), (Where::Active(k), qp));
        self.notify.notify_one();
    }

    fn push_backoff(&self, inner: &mut Inner, qp: QueuedPod) {
        let until = qp.failed_at + self.backoff_of(qp.attempts);
        if until <= Instant::now() {
            return self.push_active(inner, qp);
        }
        inner.seq += 1;
        let k = (until, inner.seq);
        inner.backoff.insert(k, qp.key.clone());
        inner.pods.insert(qp.key.clone(), (Where::Backoff(k), qp));
        self.notify.notify_one();
    }

    fn take(inner: &mut Inner, key: &ObjectKey) -> Option<QueuedPod> {
        let (at, qp) = inner.pods.remove(key)?;
        match at {
            Where::Active(k) => {
                inner.active.remove(&k);
            }
            Where::Backoff(k) => {
                inner.backoff.remove(&k);
            }
            Where::Unschedulable | Where::InFlight => {}
        }
        Some(qp)
    }

    fn report(inner: &Inner) {
        let unschedulable = inner
            .pods
            .values()
            .filter(|(w, _)| *w == Where::Unschedulable)
            .count();
        metrics::pending(inner.active.len(), inner.backoff.len(), unschedulable);
    }

    /// A pending pod appeared or changed. New pods become active; a changed pod in the
    /// unschedulable queue is tried again if its spec or labels changed; others just
    /// carry the newer object.
    pub fn add_or_update(&self, key: ObjectKey, pod: Arc<Pod>) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        match inner.pods.get_mut(&key) {
            None => {
                let qp = QueuedPod::new(key, pod);
                self.push_active(&mut inner, qp);
            }
            Some((Where::InFlight, _)) => {
                inner.updated_in_flight.insert(key, pod);
            }
            Some((Where::Unschedulable, qp)) => {
                let changed =
                    qp.pod.spec != pod.spec || qp.pod.metadata.labels != pod.metadata.labels;
                qp.pod = pod;
                if changed {
                    let qp = Self::take(&mut inner, &key).expect("present");
                    self.push_backoff(&mut inner, qp);
                }
            }
            Some((_, qp)) => qp.pod = pod,
        }
        Self::report(&inner);
    }

    /// The pod was deleted, bound or is no longer ours.
    pub fn delete(&self, key: &ObjectKey) {
        let mut inner = self.lock();
        if let Some((Where::InFlight, _)) = inner.pods.get(key) {
            // Its attempt ends with done(); nothing to requeue then.
            inner.updated_in_flight.remove(key);
            if let Some((_, qp)) = inner.pods.get_mut(key) {
                qp.attempts = u32::MAX;
            }
            return;
        }
        Self::take(&mut inner, key);
        Self::report(&inner);
    }

    /// Something changed that could make unschedulable pods fit: they go to back-off or
    /// active, and pods in flight that fail go to back-off.
    pub fn move_all(&self, event: &str) {
        let mut inner = self.lock();
        inner.move_request_cycle = inner.cycle;
        let keys: Vec<ObjectKey> = inner
            .pods
            .iter()
            .filter(|(_, (w, _))| *w == Where::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        if !keys.is_empty() {
            tracing::debug!(event, pods = keys.len(), "moving unschedulable pods");
        }
        for k in keys {
            let qp = Self::take(&mut inner, &k).expect("present");
            self.push_backoff(&mut inner, qp);
        }
        Self::report(&inner);
    }

    /// The next pod to schedule; waits for one. `None` once the queue is closed.
    pub async fn pop(&self) -> Option<QueuedPod> {
        loop {
            let notified = self.notify.notified();
            let wait = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                let now = Instant::now();
                self.flush(&mut inner, now);
                if let Some((_, key)) = inner.active.pop_first() {
                    let (_, mut qp) = inner.pods.remove(&key).expect("queued pods are indexed");
                    inner.cycle += 1;
                    qp.cycle = inner.cycle;
                    qp.attempts += 1;
                    qp.wait_span = Span::none();
                    inner.pods.insert(key, (Where::InFlight, qp.clone()));
                    Self::report(&inner);
                    return Some(qp);
                }
                let next_backoff = inner.backoff.keys().next().map(|(t, _)| *t);
                let poll = now + Duration::from_secs(1);
                next_backoff.map_or(poll, |t| t.min(poll))
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wait) => {}
            }
        }
    }

    /// Back-off pods whose time came become active; pods unschedulable for too long too.
    fn flush(&self, inner: &mut Inner, now: Instant) {
        while let Some(((t, _), _)) = inner.backoff.first_key_value() {
            if *t > now {
                break;
            }
            let (_, key) = inner.backoff.pop_first().expect("not empty");
            let (_, qp) = inner.pods.remove(&key).expect("queued pods are indexed");
            self.push_active(inner, qp);
        }
        let stale: Vec<ObjectKey> = inner
            .pods
            .iter()
            .filter(|(_, (w, qp))| {
                *w == Where::Unschedulable
                    && now.saturating_duration_since(qp.failed_at) >= self.config.max_unschedulable
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            let qp = Self::take(inner, &k).expect("present");
            self.push_active(inner, qp);
        }
    }

    /// Ends an in-flight attempt. `requeue`: `None` when the pod is done with (bound or
    /// gone), `Some(true)` when no node fitted, `Some(false)` after an error (back-off).
    pub fn done(&self, key: &ObjectKey, requeue: Option<bool>) {
        let mut inner = self.lock();
        let updated = inner.updated_in_flight.remove(key);
        let Some((Where::InFlight, _)) = inner.pods.get(key) else {
            return;
        };
        let (_, mut qp) = inner.pods.remove(key).expect("present");
        let Some(unschedulable) = requeue else {
            Self::report(&inner);
            return;
        };
        if qp.attempts == u32::MAX || inner.closed {
            // Deleted while in flight.
            Self::report(&inner);
            return;
        }
        qp.failed_at = Instant::now();
        let moved = inner.move_request_cycle >= qp.cycle;
        if let Some(pod) = updated {
            qp.pod = pod;
        }
        if unschedulable && !moved {
            inner.pods.insert(key.clone(), (Where::Unschedulable, qp));
        } else {
            self.push_backoff(&mut inner, qp);
        }
        Self::report(&inner);
    }

    /// (active, back-off, unschedulable, in flight).
    pub fn lengths(&self) -> (usize, usize, usize, usize) {
        let inner = self.lock();
        let count = |w: fn(&Where) -> bool| inner.pods.values().filter(|(x, _)| w(x)).count();
        (
            inner.active.len(),
            inner.backoff.len(),
            count(|w| *w == Where::Unschedulable),
            count(|w| *w == Where::InFlight),
        )
    }

    /// Refuses new pods; `pop` returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::pod;

    fn add(q: &SchedulingQueue, name: &str, priority: i32) {
        let p = pod(name, "", "", json!({"spec": {"priority": priority}}));
        q.add_or_update(ObjectKey::new("default", name), Arc::new(p));
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("default", name)
    }

    async fn pop(q: &SchedulingQueue) -> String {
        tokio::time::timeout(Duration::from_secs(60), q.pop())
            .await
            .expect("a pod within the deadline")
            .expect("open")
            .key
            .name
    }

    #[tokio::test(start_paused = true)]
    async fn higher_priority_first_then_oldest_and_no_pod_twice() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        add(&q, "b", 10);
        add(&q, "c", 0);
        add(&q, "a", 0);
        assert_eq!(pop(&q).await, "b");
        assert_eq!(pop(&q).await, "a");
        assert_eq!(pop(&q).await, "c");
        assert_eq!(q.lengths(), (0, 0, 0, 3));
        // An in-flight pod is not queued again by an update.
        add(&q, "a", 0);
        assert_eq!(q.lengths(), (0, 0, 0, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unschedulable_pod_waits_for_a_cluster_event_then_its_back_off() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        let first = q.pop().await.unwrap();
        q.done(&first.key, Some(true));
        assert_eq!(q.lengths(), (0, 0, 1, 0));
        // Nothing changes: it stays put well past its back-off.
        assert!(tokio::time::timeout(Duration::from_secs(30), q.pop())
            .await
            .is_err());
        let start = Instant::now();
        q.move_all("NodeAdd");
        assert_eq!(pop(&q).await, "a");
        // Its 1 s back-off had long expired.
        assert!(start.elapsed() < Duration::from_millis(10));
        q.done(&key("a"), Some(true));
        q.move_all("NodeAdd");
        // Second failure: 2 s back-off from the failure.
        let start = Instant::now();
        assert_eq!(pop(&q).await, "a");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_millis(3100),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_doubles_up_to_the_maximum() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let got: Vec<Duration> = (1..=6).map(|a| q.backoff_of(a)).collect();
        let s = Duration::from_secs;
        assert_eq!(got, [s(1), s(2), s(4), s(8), s(10), s(10)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_move_request_during_an_attempt_sends_the_failure_to_back_off() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        let p = q.pop().await.unwrap();
        q.move_all("NodeAdd");
        q.done(&p.key, Some(true));
        assert_eq!(q.lengths(), (0, 1, 0, 0));
        let start = Instant::now();
        assert_eq!(pop(&q).await, "a");
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_are_retried_after_the_longest_wait_anyway() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        let p = q.pop().await.unwrap();
        q.done(&p.key, Some(true));
        let start = Instant::now();
        let again = tokio::time::timeout(Duration::from_secs(400), q.pop()).await;
        assert_eq!(again.unwrap().unwrap().key.name, "a");
        assert!(start.elapsed() >= Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_spec_retries_an_unschedulable_pod_but_a_status_change_does_not() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        let p = q.pop().await.unwrap();
        q.done(&p.key, Some(true));
        let mut same = (*p.pod).clone();
        same.status = Some(Default::default());
        q.add_or_update(key("a"), Arc::new(same));
        assert_eq!(q.lengths(), (0, 0, 1, 0));
        add(&q, "a", 5);
        assert_eq!(q.lengths().2, 0);
        assert_eq!(pop(&q).await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_deleted_in_flight_is_not_requeued() {
        let q = SchedulingQueue::new(QueueConfig::default());
        add(&q, "a", 0);
        add(&q, "b", 0);
        let p = q.pop().await.unwrap();
        q.delete(&p.key);
        q.done(&p.key, Some(false));
        q.delete(&key("b"));
        assert_eq!(q.lengths(), (0, 0, 0, 0));
    }
}
