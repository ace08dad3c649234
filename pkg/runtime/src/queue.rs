//! The work queue between event handlers and reconcile workers, with client-go's
//! semantics:
//!
//! - **dedupe**: a key added while it waits is not queued twice;
//! - **one at a time per key**: a key handed out by [`WorkQueue::get`] is not handed out
//!   again until [`WorkQueue::done`]; adding it meanwhile marks it dirty, and `done` queues
//!   it again, so the change is reconciled after the running reconcile;
//! - **delays**: [`WorkQueue::add_after`] queues a key later (an earlier pending time wins);
//! - **rate-limited retries**: [`WorkQueue::add_rate_limited`] delays a key by the larger
//!   of its own exponential back-off (5 ms doubling to 1000 s, client-go's default) and an
//!   overall token bucket (10 per second, burst 100); [`WorkQueue::forget`] resets the key's
//!   back-off after a success;
//! - **shutdown**: [`WorkQueue::shut_down`] refuses new keys (and drops delayed ones);
//!   `get` still hands out what was queued and then returns `None`;
//!   [`WorkQueue::drained`] waits until every key handed out is done.
//!
//! Time is tokio's, so tests can pause it. The queue never runs work itself.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics;

/// The delay before a key's `n`th retry (`n` from 0) and the overall budget.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// First retry delay; doubles with every further failure of the key.
    pub base_delay: Duration,
    /// The per-key delay never exceeds this.
    pub max_delay: Duration,
    /// Sustained retries per second over all keys (the token bucket's refill).
    pub qps: f64,
    /// Retries allowed at once before the bucket delays them.
    pub burst: u32,
}

impl Default for RateLimit {
    /// client-go's `DefaultControllerRateLimiter`.
    fn default() -> Self {
        RateLimit {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1000),
            qps: 10.0,
            burst: 100,
        }
    }
}

impl RateLimit {
    /// The per-key back-off for a key that failed `failures` times before.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u64.saturating_pow(failures.min(63));
        let nanos = (self.base_delay.as_nanos() as u64).saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max_delay)
    }
}

/// The overall token bucket: each retry takes a token; without one it waits for the next.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Reserves a token; returns how long until it is available.
    fn reserve(&mut self, limit: &RateLimit, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.qps).min(limit.burst as f64);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || limit.qps <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / limit.qps)
        }
    }
}

struct State<T> {
    queue: VecDeque<T>,
    /// Keys that need processing: queued, or added while being processed.
    dirty: HashSet<T>,
    processing: HashSet<T>,
    /// Delayed keys by due time (and a sequence number, to keep equal times apart).
    waiting: BTreeMap<(Instant, u64), T>,
    waiting_index: HashMap<T, (Instant, u64)>,
    seq: u64,
    failures: HashMap<T, u32>,
    bucket: Bucket,
    /// When each queued key was queued (queue latency metric).
    queued_at: HashMap<T, Instant>,
    shutting_down: bool,
}

struct Inner<T> {
    name: String,
    limit: RateLimit,
    state: Mutex<State<T>>,
    /// Wakes `get` (new key, earlier due time, shutdown) and `drained` (a key done).
    changed: Notify,
    metrics: metrics::QueueMetrics,
}

/// A work queue of keys; see the module documentation. Cheap to clone; clones share it.
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// A queue named `name` (the `name` label of its metrics) with client-go's default
    /// rate limits.
    pub fn new(name: &str) -> Self {
        Self::with_rate_limit(name, RateLimit::default())
    }

    pub fn with_rate_limit(name: &str, limit: RateLimit) -> Self {
        let bucket = Bucket {
            tokens: limit.burst as f64,
            at: Instant::now(),
        };
        WorkQueue {
            inner: Arc::new(Inner {
                name: name.to_string(),
                limit,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    waiting: BTreeMap::new(),
                    waiting_index: HashMap::new(),
                    seq: 0,
                    failures: HashMap::new(),
                    bucket,
                    queued_at: HashMap::new(),
                    shutting_down: false,
                }),
                changed: Notify::new(),
                metrics: metrics::QueueMetrics::for_queue(name),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `key` now, unless it is already waiting (or the queue is shutting down).
    pub fn add(&self, key: T) {
        let mut st = self.state();
        if self.insert(&mut st, key) {
            drop(st);
            self.inner.changed.notify_waiters();
        }
    }

    /// Returns whether a waiter should be woken.
    fn insert(&self, st: &mut State<T>, key: T) -> bool {
        if st.shutting_down || st.dirty.contains(&key) {
            return false;
        }
        self.inner.metrics.adds.inc();
        st.dirty.insert(key.clone());
        if let Some(at) = st.waiting_index.remove(&key) {
            st.waiting.remove(&at);
        }
        if st.processing.contains(&key) {
            // `done` queues it again.
            return false;
        }
        st.queued_at.insert(key.clone(), Instant::now());
        st.queue.push_back(key);
        self.inner.metrics.depth.set(st.queue.len() as i64);
        true
    }

    /// Queues `key` once `delay` has passed (at once for a zero delay). A key already
    /// delayed keeps the earlier of its two due times.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut st = self.state();
        if st.shutting_down {
            return;
        }
        let due = Instant::now() + delay;
        if let Some(&(at, seq)) = st.waiting_index.get(&key) {
            if at <= due {
                return;
            }
            st.waiting.remove(&(at, seq));
        }
        st.seq += 1;
        let slot = (due, st.seq);
        st.waiting.insert(slot, key.clone());
        st.waiting_index.insert(key, slot);
        drop(st);
        self.inner.changed.notify_waiters();
    }

    /// Queues `key` after its back-off: the larger of its exponential delay and the
    /// overall bucket's. Counts a retry.
    pub fn add_rate_limited(&self, key: T) {
        let delay = {
            let mut st = self.state();
            let failures = st.failures.entry(key.clone()).or_insert(0);
            let per_item = self.inner.limit.backoff(*failures);
            *failures = failures.saturating_add(1);
            let overall = st.bucket.reserve(&self.inner.limit, Instant::now());
            per_item.max(overall)
        };
        self.inner.metrics.retries.inc();
        self.add_after(key, delay);
    }

    /// Forgets `key`'s failures (after a success), so its next retry starts from the base
    /// delay.
    pub fn forget(&self, key: &T) {
        self.state().failures.remove(key);
    }

    /// How many times `key` was retried since it was last forgotten.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.state().failures.get(key).copied().unwrap_or(0)
    }

    /// Keys queued now (not counting delayed or processing ones).
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next key to process; waits for one. `None` once the queue is shut down and
    /// nothing queued is left. Call [`WorkQueue::done`] when finished with the key.
    pub async fn get(&self) -> Option<T> {
        loop {
            // Register interest before looking, so a notification between the look and
            // the wait is not lost.
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut st = self.state();
                self.promote_due(&mut st);
                if let Some(key) = st.queue.pop_front() {
                    st.processing.insert(key.clone());
                    st.dirty.remove(&key);
                    if let Some(at) = st.queued_at.remove(&key) {
                        self.inner
                            .metrics
                            .queue_duration
                            .observe(at.elapsed().as_secs_f64());
                    }
                    self.inner.metrics.depth.set(st.queue.len() as i64);
                    return Some(key);
                }
                if st.shutting_down {
                    return None;
                }
                st.waiting.keys().next().map(|(at, _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Moves delayed keys whose time has come into the queue.
    fn promote_due(&self, st: &mut State<T>) {
        let now = Instant::now();
        while let Some((&slot, _)) = st.waiting.iter().next() {
            if slot.0 > now {
                break;
            }
            let key = st.waiting.remove(&slot).expect("present");
            st.waiting_index.remove(&key);
            self.insert(st, key);
        }
    }

    /// Marks `key` as processed. If it was added meanwhile, it is queued again.
    pub fn done(&self, key: &T) {
        let mut st = self.state();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queued_at.insert(key.clone(), Instant::now());
            st.queue.push_back(key.clone());
            self.inner.metrics.depth.set(st.queue.len() as i64);
        }
        drop(st);
        self.inner.changed.notify_waiters();
    }

    /// Refuses new keys and drops delayed ones; `get` hands out what is queued, then
    /// returns `None`.
    pub fn shut_down(&self) {
        let mut st = self.state();
        st.shutting_down = true;
        st.waiting.clear();
        st.waiting_index.clear();
        drop(st);
        self.inner.changed.notify_waiters();
    }

    /// Shuts down and drops what is still queued: `get` returns `None` at once. What is
    /// being processed finishes ([`WorkQueue::drained`]).
    pub fn shut_down_now(&self) {
        let mut st = self.state();
        st.queue.clear();
        // Keys being processed are not queued again by `done` either.
        st.dirty.clear();
        st.queued_at.clear();
        self.inner.metrics.depth.set(0);
        drop(st);
        self.shut_down();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.state().shutting_down
    }

    /// Waits until no key is being processed.
    pub async fn drained(&self) {
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().processing.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests;
