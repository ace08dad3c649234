//! The event recorder: core/v1 Events (what `kubectl describe` and `kubectl get events`
//! show) written without ever blocking the component that reports them.
//!
//! Expected flow: a component makes one [`Recorder`] (its [`Reporter`] names it, as
//! Kubernetes' `source.component` and `source.host`), spawns [`EventWriter::run`], and
//! calls [`Recorder::publish`] from anywhere. `publish` only queues; the writer task
//! correlates and writes, as client-go's `EventCorrelator` does:
//!
//! - **spam filter**: per reporting source and object, a token bucket (burst 25, one more
//!   every 5 minutes); events beyond it are dropped;
//! - **aggregation**: when one object gets 10 or more events of one reason with *different*
//!   messages within 10 minutes, they become one event whose message starts with
//!   "(combined from similar events): ";
//! - **deduplication**: a repeat of an event already written (same object, type, reason,
//!   message, source) patches that Event's `count` and `lastTimestamp` instead of writing
//!   a new object; if the Event is gone meanwhile, a new one is written.
//!
//! Guarantees: `publish` never waits; when the queue is full the event is dropped (and
//! logged). Errors writing events are logged, never returned: events are best effort, as
//! in Kubernetes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use rkube_client::{Api, Client, PatchType, WriteParams};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::object::Resource;

/// Events queued and not yet written, at most.
const QUEUE: usize = 1000;
/// Distinct correlation keys remembered (client-go's LRU size).
const CACHE_ENTRIES: usize = 4096;
const AGGREGATE_AFTER: usize = 10;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: Duration = Duration::from_secs(300);

/// Who reports: `source.component` / `reportingComponent` and `source.host` /
/// `reportingInstance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Reporter {
    pub component: String,
    pub instance: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event to write.
#[derive(Debug, Clone)]
struct Request {
    regarding: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
}

/// Queues events for the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

/// A reference to `obj` for [`Recorder::publish`].
pub fn reference_to<K: Resource>(obj: &K) -> ObjectReference {
    let m = obj.metadata();
    ObjectReference {
        api_version: Some(K::API_VERSION.to_string()),
        kind: Some(K::KIND.to_string()),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder and the writer that must be run (spawned) for events to be written.
    pub fn new(client: Client, reporter: Reporter) -> (Recorder, EventWriter) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Recorder { tx },
            EventWriter {
                client,
                rx,
                correlator: Correlator::new(reporter),
            },
        )
    }

    /// Queues an event about `regarding`; never waits.
    pub fn publish(
        &self,
        regarding: ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let req = Request {
            regarding,
            kind,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        if let Err(e) = self.tx.try_send(req) {
            tracing::debug!(error = %e, reason, "event dropped: the event queue is full or closed");
        }
    }

    /// Queues an event about `obj`.
    pub fn publish_for<K: Resource>(&self, obj: &K, kind: EventType, reason: &str, message: &str) {
        self.publish(reference_to(obj), kind, reason, message)
    }
}

/// Writes what the [`Recorder`] queues; see the module documentation.
pub struct EventWriter {
    client: Client,
    rx: mpsc::Receiver<Request>,
    correlator: Correlator,
}

impl EventWriter {
    /// Writes events until every recorder is dropped, or until `shutdown`, after which it
    /// writes what is already queued (for at most 2 seconds).
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let req = tokio::select! {
                r = self.rx.recv() => r,
                _ = shutdown.cancelled() => break,
            };
            let Some(req) = req else { return };
            self.handle(req).await;
        }
        self.rx.close();
        let drain = async {
            while let Some(req) = self.rx.recv().await {
                self.handle(req).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }

    async fn handle(&mut self, req: Request) {
        let now = crate::object::now();
        let Some(write) = self.correlator.correlate(req, now, Instant::now()) else {
            return;
        };
        let namespace = write.event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::within(&self.client, &namespace);
        let result = match &write.action {
            WriteAction::Create => api.create(&write.event, &WriteParams::default()).await,
            WriteAction::Patch => {
                let name = write.event.metadata.name.clone().unwrap_or_default();
                let patch = serde_json::json!({
                    "count": write.event.count,
                    "lastTimestamp": write.event.last_timestamp,
                    "message": write.event.message,
                });
                match api
                    .patch(&name, PatchType::Merge, &patch, &WriteParams::default())
                    .await
                {
                    Err(e) if e.is_not_found() => {
                        // Gone (expired): write it anew under a new name.
                        let mut fresh = write.event.clone();
                        fresh.metadata.name = Some(event_name(&write.event.involved_object, now));
                        fresh.metadata.resource_version = None;
                        self.correlator
                            .renamed(&write.key, fresh.metadata.name.clone());
                        api.create(&fresh, &WriteParams::default()).await
                    }
                    other => other,
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(
                reason = write.event.reason.as_deref().unwrap_or(""),
                object = write.event.involved_object.name.as_deref().unwrap_or(""),
                error = %e,
                "writing an event failed"
            );
        }
    }
}

fn event_name(regarding: &ObjectReference, now: k8s_openapi::jiff::Timestamp) -> String {
    format!(
        "{}.{:x}",
        regarding.name.as_deref().unwrap_or("unknown"),
        now.as_nanosecond()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjectId {
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    api_version: String,
}

impl ObjectId {
    fn of(r: &ObjectReference) -> Self {
        ObjectId {
            kind: r.kind.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            uid: r.uid.clone().unwrap_or_default(),
            api_version: r.api_version.clone().unwrap_or_default(),
        }
    }
}

/// Events of one object, type and reason, whatever their message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AggregateKey {
    object: ObjectId,
    kind: EventType,
    reason: String,
}

/// What makes two events the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventKey {
    aggregate: AggregateKey,
    message: String,
}

#[derive(Debug)]
struct Written {
    name: String,
    count: i32,
    first: Time,
    last_used: Instant,
}

#[derive(Debug)]
struct Similar {
    messages: HashSet<String>,
    since: Instant,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, PartialEq)]
enum WriteAction {
    Create,
    Patch,
}

#[derive(Debug)]
struct Write {
    key: EventKey,
    action: WriteAction,
    event: Event,
}

/// The correlation rules, without I/O (see the module documentation).
#[derive(Debug)]
struct Correlator {
    reporter: Reporter,
    spam: HashMap<ObjectId, Bucket>,
    similar: HashMap<AggregateKey, Similar>,
    written: HashMap<EventKey, Written>,
}

impl Correlator {
    fn new(reporter: Reporter) -> Self {
        Correlator {
            reporter,
            spam: HashMap::new(),
            similar: HashMap::new(),
            written: HashMap::new(),
        }
    }

    /// Whether the spam filter lets one more event about `object` through.
    fn allow(&mut self, object: &ObjectId, now: Instant) -> bool {
        let b = self.spam.entry(object.clone()).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        b.tokens = (b.tokens + refill).min(SPAM_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// What to write for `req`, or nothing (filtered as spam).
    fn correlate(
        &mut self,
        req: Request,
        now: k8s_openapi::jiff::Timestamp,
        at: Instant,
    ) -> Option<Write> {
        let object = ObjectId::of(&req.regarding);
        if !self.allow(&object, at) {
            tracing::debug!(reason = %req.reason, object = %object.name, "event dropped by the spam filter");
            return None;
        }
        let aggregate = AggregateKey {
            object,
            kind: req.kind,
            reason: req.reason.clone(),
        };
        let similar = self.similar.entry(aggregate.clone()).or_insert(Similar {
            messages: HashSet::new(),
            since: at,
        });
        if at.saturating_duration_since(similar.since) > AGGREGATE_WINDOW {
            similar.messages.clear();
            similar.since = at;
        }
        similar.messages.insert(req.message.clone());
        let (key, message) = if similar.messages.len() >= AGGREGATE_AFTER {
            let key = EventKey {
                aggregate,
                message: String::new(),
            };
            (
                key,
                format!("(combined from similar events): {}", req.message),
            )
        } else {
            let key = EventKey {
                aggregate,
                message: req.message.clone(),
            };
            (key, req.message.clone())
        };
        let stamp = Time(now);
        let (action, name, count, first) = match self.written.get_mut(&key) {
            Some(w) => {
                w.count += 1;
                w.last_used = at;
                (WriteAction::Patch, w.name.clone(), w.count, w.first.clone())
            }
            None => {
                if self.written.len() >= CACHE_ENTRIES {
                    self.evict_oldest();
                }
                let name = event_name(&req.regarding, now);
                self.written.insert(
                    key.clone(),
                    Written {
                        name: name.clone(),
                        count: 1,
                        first: stamp.clone(),
                        last_used: at,
                    },
                );
                (WriteAction::Create, name, 1, stamp.clone())
            }
        };
        let namespace = req
            .regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: req.regarding,
            reason: Some(req.reason),
            message: Some(message),
            type_: Some(req.kind.as_str().to_string()),
            count: Some(count),
            first_timestamp: Some(first),
            last_timestamp: Some(stamp),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.reporter.component.clone()),
                host: Some(self.reporter.instance.clone()).filter(|h| !h.is_empty()),
            }),
            reporting_component: Some(self.reporter.component.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..Default::default()
        };
        Some(Write { key, action, event })
    }

    /// The event under `key` was written again under a new name.
    fn renamed(&mut self, key: &EventKey, name: Option<String>) {
        if let (Some(w), Some(name)) = (self.written.get_mut(key), name) {
            w.name = name;
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self
            .written
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(k, _)| k.clone())
        {
            self.written.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_ref(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn req(name: &str, reason: &str, message: &str) -> Request {
        Request {
            regarding: pod_ref(name),
            kind: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn correlator() -> Correlator {
        Correlator::new(Reporter {
            component: "test".into(),
            instance: "host-1".into(),
        })
    }

    fn now() -> k8s_openapi::jiff::Timestamp {
        crate::object::now()
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeated_event_patches_count_on_the_same_object() {
        let mut c = correlator();
        let first = c
            .correlate(req("p", "BackOff", "restarting"), now(), Instant::now())
            .unwrap();
        assert_eq!(first.action, WriteAction::Create);
        assert_eq!(first.event.count, Some(1));
        let name = first.event.metadata.name.clone().unwrap();
        assert!(name.starts_with("p."), "{name}");
        let again = c
            .correlate(req("p", "BackOff", "restarting"), now(), Instant::now())
            .unwrap();
        assert_eq!(again.action, WriteAction::Patch);
        assert_eq!(again.event.count, Some(2));
        assert_eq!(again.event.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(again.event.first_timestamp, first.event.first_timestamp);
        assert_eq!(again.event.type_.as_deref(), Some("Warning"));
        assert_eq!(
            again.event.source.as_ref().unwrap().component.as_deref(),
            Some("test")
        );
        // Another message is another event.
        let other = c
            .correlate(req("p", "BackOff", "other"), now(), Instant::now())
            .unwrap();
        assert_eq!(other.action, WriteAction::Create);
    }

    #[tokio::test(start_paused = true)]
    async fn ten_similar_events_with_different_messages_are_combined() {
        let mut c = correlator();
        let mut last = None;
        for i in 0..12 {
            last = c.correlate(
                req("p", "Failed", &format!("attempt {i}")),
                now(),
                Instant::now(),
            );
        }
        let w = last.unwrap();
        assert!(
            w.event
                .message
                .as_deref()
                .unwrap()
                .starts_with("(combined from similar events): attempt 11"),
            "{:?}",
            w.event.message
        );
        // The 10th made the combined event; the 11th and 12th counted on it.
        assert_eq!(w.action, WriteAction::Patch);
        assert_eq!(w.event.count, Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_spam_filter_lets_25_through_then_one_per_five_minutes() {
        let mut c = correlator();
        let passed = (0..40)
            .filter(|i| {
                c.correlate(req("p", "R", &format!("m{}", i % 2)), now(), Instant::now())
                    .is_some()
            })
            .count();
        assert_eq!(passed, 25);
        // Another object has its own budget.
        assert!(c
            .correlate(req("q", "R", "m"), now(), Instant::now())
            .is_some());
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(c
            .correlate(req("p", "R", "m0"), now(), Instant::now())
            .is_some());
        assert!(c
            .correlate(req("p", "R", "m0"), now(), Instant::now())
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn events_about_cluster_scoped_objects_go_to_the_default_namespace() {
        let mut c = correlator();
        let mut r = req("node-1", "NodeReady", "ready");
        r.regarding.namespace = None;
        r.regarding.kind = Some("Node".into());
        let w = c.correlate(r, now(), Instant::now()).unwrap();
        assert_eq!(w.event.metadata.namespace.as_deref(), Some("default"));
    }

    #[tokio::test]
    async fn publishing_never_blocks_even_when_nobody_writes() {
        let client = Client::new(rkube_client::Config::new(["127.0.0.1:1"])).unwrap();
        let (rec, _writer) = Recorder::new(client, Reporter::default());
        for i in 0..(QUEUE + 10) {
            rec.publish(pod_ref("p"), EventType::Normal, "R", &format!("{i}"));
        }
    }
}
