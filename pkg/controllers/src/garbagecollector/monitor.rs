//! Monitors: one list-then-watch per monitored resource, feeding the graph builder.
//!
//! The garbage collector follows resources it learns from discovery, so it cannot use the
//! runtime's typed informers (one k8s-openapi type each); a monitor is the same state
//! machine over the raw client — list (paged; the first from any replica's state, later
//! ones the newest), watch from the list's resourceVersion, resume from the last event
//! after a broken watch, relist after 410 — and keeps nothing but the metadata the graph
//! needs. A relist is one [`Change::Replace`], which tells the graph what vanished
//! meanwhile. Errors are logged and retried with back-off; never returned.

use rkube_client::{Client, Event, ListParams, WatchParams};
use rkube_runtime::watcher::Backoff;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::graph::{Change, Identity, Observed};
use super::object::Meta;
use crate::discovery::ApiResource;

/// Objects per list page.
const PAGE: i64 = 500;

/// The graph's view of one object of `resource`; `None` for an object without a UID.
pub fn observe(resource: &ApiResource, obj: &Value) -> Option<Observed> {
    let meta = Meta::of(obj)?;
    if meta.uid.is_empty() {
        return None;
    }
    Some(Observed {
        resource: resource.gvr.clone(),
        identity: Identity {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
        },
        deleting: meta.deleting(),
        finalizers: meta.finalizers().to_vec(),
        owners: meta.owner_references.unwrap_or_default(),
    })
}

/// One resource's monitor.
pub struct Monitor {
    pub client: Client,
    pub resource: ApiResource,
    pub changes: mpsc::Sender<Change>,
}

impl Monitor {
    /// Runs until `shutdown` (or until the graph builder is gone).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        let mut listed_once = false;
        // Where to watch from; `None`: list first.
        let mut position: Option<String> = None;
        loop {
            let from = match position.take() {
                Some(rv) => rv,
                None => match self.list(listed_once).await {
                    Ok((objects, rv)) => {
                        listed_once = true;
                        let replace = Change::Replace {
                            resource: self.resource.gvr.clone(),
                            objects,
                        };
                        if self.changes.send(replace).await.is_err() {
                            return;
                        }
                        rv
                    }
                    Err(e) => {
                        self.warn("list", &e);
                        if !pause(&mut backoff, &shutdown).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let watch = self
                .client
                .watch(
                    &self.resource.gvr,
                    "",
                    WatchParams::from_version(from.clone()),
                )
                .await;
            let mut watch = match watch {
                Ok(w) => w,
                Err(e) => {
                    if !e.is_gone() {
                        self.warn("watch", &e);
                        position = Some(from);
                        if !pause(&mut backoff, &shutdown).await {
                            return;
                        }
                    }
                    continue;
                }
            };
            backoff.reset();
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = watch.next() => e,
                };
                let change = match event {
                    Some(Ok(Event::Added(o) | Event::Modified(o))) => {
                        observe(&self.resource, &o).map(Change::Upsert)
                    }
                    Some(Ok(Event::Deleted(o))) => observe(&self.resource, &o).map(Change::Deleted),
                    Some(Ok(Event::Bookmark { .. } | Event::InitialEventsEnd { .. })) => None,
                    Some(Err(e)) if e.is_gone() => break,
                    Some(Err(e)) => {
                        self.warn("watch", &e);
                        position = Some(watch.resource_version().unwrap_or(&from).to_string());
                        if !pause(&mut backoff, &shutdown).await {
                            return;
                        }
                        break;
                    }
                    None => {
                        // The server ended the watch: go on from where it got to.
                        position = Some(watch.resource_version().unwrap_or(&from).to_string());
                        break;
                    }
                };
                if let Some(change) = change {
                    if self.changes.send(change).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Every object of the resource, and the resourceVersion the list was read at.
    async fn list(&self, newest: bool) -> Result<(Vec<Observed>, String), rkube_client::Error> {
        let mut objects = Vec::new();
        let mut params = ListParams {
            limit: PAGE,
            resource_version: if newest { "" } else { "0" }.to_string(),
            ..Default::default()
        };
        loop {
            let page = self.client.list(&self.resource.gvr, "", &params).await?;
            objects.extend(page.items.iter().filter_map(|o| observe(&self.resource, o)));
            if page.continue_token.is_empty() {
                return Ok((objects, page.resource_version));
            }
            params.continue_token = page.continue_token;
        }
    }

    fn warn(&self, what: &str, e: &rkube_client::Error) {
        tracing::warn!(
            resource = %self.resource.qualified_name(),
            error = %e,
            "garbage collector: {what} failed; retrying"
        );
    }
}

/// Waits out the back-off; false when shut down meanwhile.
async fn pause(backoff: &mut Backoff, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(backoff.next_delay()) => true,
    }
}
