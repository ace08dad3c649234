//! A watch that survives the loss of its apiserver.
//!
//! Expected flow: [`Client::watch`] connects (a bad request, or a
//! resourceVersion already compacted, fails right there); [`Watch::next`]
//! yields events in revision order. When the stream breaks (the endpoint
//! died, its store lost quorum, the server closed it), the watch reconnects
//! through the client's failover, asking for every change after the last
//! resourceVersion it delivered.
//!
//! Guarantees: no event is delivered twice and none is skipped across a
//! resume, because the store serves a watch from any revision still in its
//! history, in order; bookmarks move the resume point while nothing matches.
//!
//! Ends with an error (after which `next` returns `None`) when resuming is
//! not possible: 410 Gone when the resume point was compacted, or when the
//! stream broke before its initial ADDED events were complete (there is no
//! revision to resume from); the caller relists and watches from the list's
//! resourceVersion, as client-go's reflector does. A reconnect that finds no
//! endpoint before the client's deadline ends with [`Error::Unavailable`].

use std::time::{Duration, Instant};

use rkube_api::status::Status;
use rkube_proto::api as pb;
use serde_json::Value;

use crate::client::Idempotence;
use crate::error::{Error, Failure, Result};
use crate::{Client, Gvr};

/// Options of a watch.
#[derive(Debug, Clone)]
pub struct WatchParams {
    pub label_selector: String,
    pub field_selector: String,
    /// "" or "0": the current objects first, as ADDED events, then
    /// [`Event::InitialEventsEnd`]; anything else: every change after that
    /// revision (a list's resourceVersion, typically).
    pub resource_version: String,
    /// Progress bookmarks while nothing changes (they keep resumes cheap).
    pub bookmarks: bool,
    /// The watch ends (`next` returns `None`) after this long; `None`: never.
    pub timeout: Option<Duration>,
}

impl Default for WatchParams {
    fn default() -> Self {
        WatchParams {
            label_selector: String::new(),
            field_selector: String::new(),
            resource_version: String::new(),
            bookmarks: true,
            timeout: None,
        }
    }
}

impl WatchParams {
    /// Every change after `resource_version`.
    pub fn from_version(resource_version: impl Into<String>) -> Self {
        WatchParams {
            resource_version: resource_version.into(),
            ..Default::default()
        }
    }
}

/// One watch event, objects as Kubernetes JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// Every change up to `resource_version` has been delivered.
    Bookmark {
        resource_version: String,
    },
    /// The initial ADDED events are complete (state as of `resource_version`).
    InitialEventsEnd {
        resource_version: String,
    },
}

impl Event {
    /// The object of an ADDED, MODIFIED or DELETED event.
    pub fn object(&self) -> Option<&Value> {
        match self {
            Event::Added(o) | Event::Modified(o) | Event::Deleted(o) => Some(o),
            _ => None,
        }
    }
}

/// A resumable watch; see the module documentation.
pub struct Watch {
    client: Client,
    gvr: Gvr,
    namespace: String,
    params: WatchParams,
    /// The revision every delivered change is at or below; `None` while the
    /// initial events of a watch without a resourceVersion are coming.
    position: Option<String>,
    stream: Option<(usize, tonic::Streaming<pb::WatchEvent>)>,
    ends_at: Option<Instant>,
    ended: bool,
    resumes: u64,
}

impl Client {
    /// Watches `gvr` in `namespace` ("" = everywhere). Fails here when the
    /// request is refused (bad selector, 410 for a compacted resourceVersion)
    /// or no endpoint answers before the deadline.
    pub async fn watch(&self, gvr: &Gvr, namespace: &str, params: WatchParams) -> Result<Watch> {
        let initial = params.resource_version.is_empty() || params.resource_version == "0";
        let mut w = Watch {
            client: self.clone(),
            gvr: gvr.clone(),
            namespace: namespace.to_string(),
            position: (!initial).then(|| params.resource_version.clone()),
            ends_at: params.timeout.map(|t| Instant::now() + t),
            params,
            stream: None,
            ended: false,
            resumes: 0,
        };
        w.connect().await?;
        Ok(w)
    }
}

fn gone(message: &str) -> Error {
    Error::Api(Status::expired(message))
}

impl Watch {
    /// The resourceVersion a resume would start after (`None` during the
    /// initial events).
    pub fn resource_version(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// How many times the watch reconnected after a broken stream.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// The endpoint the stream currently comes from.
    pub fn endpoint(&self) -> Option<String> {
        self.stream
            .as_ref()
            .map(|(i, _)| self.client.inner.endpoints[*i].addr.clone())
    }

    async fn connect(&mut self) -> Result<()> {
        let req = pb::WatchRequest {
            r#ref: Some(self.gvr.to_ref(&self.namespace, "")),
            options: Some(pb::ListOptions {
                label_selector: self.params.label_selector.clone(),
                field_selector: self.params.field_selector.clone(),
                resource_version: self
                    .position
                    .clone()
                    .unwrap_or_else(|| self.params.resource_version.clone()),
                ..Default::default()
            }),
            allow_bookmarks: self.params.bookmarks,
            timeout_seconds: 0,
        };
        let client = self.client.clone();
        let stream = client
            .with_failover(Idempotence::Read, |mut c| {
                let r = client.request(req.clone());
                async move { c.watch(r).await }
            })
            .await?;
        self.stream = Some((client.current_index(), stream));
        Ok(())
    }

    fn end(&mut self, e: Error) -> Option<Result<Event>> {
        self.ended = true;
        self.stream = None;
        Some(Err(e))
    }

    /// The stream broke or closed: resume elsewhere if there is a position.
    fn broken(&mut self, why: &str) -> Option<Option<Result<Event>>> {
        if let Some((i, _)) = self.stream.take() {
            self.client.advance_from(i);
        }
        tracing::debug!(reason = why, position = ?self.position, "watch stream broke; resuming");
        if self.position.is_none() {
            return Some(self.end(gone(&format!(
                "the watch broke before its initial events were complete ({why}); relist"
            ))));
        }
        self.resumes += 1;
        None
    }

    /// The next event; `None` once the watch has ended (its timeout passed,
    /// or it ended with an error that was returned before).
    pub async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if self.ended {
                return None;
            }
            if self.ends_at.is_some_and(|t| Instant::now() >= t) {
                self.ended = true;
                self.stream = None;
                return None;
            }
            if self.stream.is_none() {
                if let Err(e) = self.connect().await {
                    return self.end(e);
                }
            }
            let (_, stream) = self.stream.as_mut().expect("connected above");
            let msg = match self.ends_at {
                Some(t) => match tokio::time::timeout_at(t.into(), stream.message()).await {
                    Ok(m) => m,
                    Err(_) => continue,
                },
                None => stream.message().await,
            };
            match msg {
                Ok(Some(ev)) => {
                    if let Some(e) = self.event(ev) {
                        return Some(e);
                    }
                }
                Ok(None) => {
                    if let Some(r) = self.broken("the server closed the stream") {
                        return r;
                    }
                }
                Err(status) => match Failure::classify(&status) {
                    Failure::Api(s) if !matches!(s.code, 503 | 504) => {
                        return self.end(Error::Api(s))
                    }
                    other => {
                        if let Some(r) = self.broken(&other.detail()) {
                            return r;
                        }
                    }
                },
            }
        }
    }

    /// Converts one message and moves the resume point.
    fn event(&mut self, ev: pb::WatchEvent) -> Option<Result<Event>> {
        use pb::watch_event::Type;
        let rv = ev.resource_version.clone();
        let decoded = || -> Result<Value> {
            serde_json::from_slice(&ev.object).map_err(|e| Error::Decode(e.to_string()))
        };
        let event = match Type::try_from(ev.r#type) {
            Ok(Type::Bookmark) if ev.initial_events_end => Event::InitialEventsEnd {
                resource_version: rv.clone(),
            },
            Ok(Type::Bookmark) => Event::Bookmark {
                resource_version: rv.clone(),
            },
            Ok(t) => {
                let obj = match decoded() {
                    Ok(o) => o,
                    Err(e) => return Some(Err(e)),
                };
                match t {
                    Type::Added => Event::Added(obj),
                    Type::Modified => Event::Modified(obj),
                    _ => Event::Deleted(obj),
                }
            }
            Err(_) => return None,
        };
        let initial_phase = self.position.is_none();
        let moves = match &event {
            Event::InitialEventsEnd { .. } => true,
            _ => !initial_phase,
        };
        if moves && !rv.is_empty() {
            self.position = Some(rv);
        }
        Some(Ok(event))
    }
}
