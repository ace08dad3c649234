//! A watch served by a store watch of its own, with a task that decodes each event for
//! this watcher alone: the path when the apiserver runs without a watch cache, or when a
//! watch resumes from a revision older than the cache's window. Selection and
//! transitions are the cache's ([`transition`]), so both paths answer alike. This module
//! must never be the common path: its JSON work is per watcher.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use rkube_store::{EventKind, KeyRange, Store};
use tokio::sync::mpsc;

use super::{store_err, Result};
use crate::watch_cache::{transition, Change, Filter, Object, WatchEvent, WatchStream};

/// Starts the watch: `initial` (if any) as ADDED events and a bookmark at `start - 1`,
/// then every change from `start` on. A compacted `start` is 410 here; falling out of
/// the store's history later ends the stream with a 410 item.
#[allow(clippy::too_many_arguments)]
pub(super) fn watch(
    store: &Arc<Store>,
    info: &ResourceInfo,
    ns: Option<&str>,
    filter: Filter,
    initial: Option<Vec<Arc<Object>>>,
    start: i64,
    bookmarks: bool,
    timeout: Duration,
) -> Result<WatchStream> {
    let rx = store
        .watch(rkube_store::WatchRequest {
            range: KeyRange::prefix(Bytes::from(info.key_prefix(ns))),
            start_revision: start,
            prev_kv: true,
            progress_interval: Duration::from_secs(if bookmarks { 10 } else { 60 }),
        })
        .map_err(|e| match e {
            rkube_store::Error::Compacted { .. } => {
                Status::expired(format!("too old resource version: {} ", start - 1))
            }
            other => store_err(other),
        })?;
    let mut first = VecDeque::new();
    if let Some(items) = initial {
        first.extend(items.into_iter().map(WatchEvent::Added));
        first.push_back(WatchEvent::Bookmark {
            revision: start - 1,
            initial_events_end: true,
        });
    }
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(forward(*info, rx, filter, bookmarks, tx));
    Ok(WatchStream::new(first, out, None, timeout, None))
}

/// Store batches turned into this watcher's events, until either side goes away.
async fn forward(
    info: ResourceInfo,
    mut rx: mpsc::Receiver<rkube_store::Result<rkube_store::WatchBatch>>,
    filter: Filter,
    bookmarks: bool,
    tx: mpsc::Sender<Result<WatchEvent>>,
) {
    loop {
        let batch = tokio::select! {
            b = rx.recv() => b,
            _ = tx.closed() => return,
        };
        let Some(batch) = batch else { return };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                let s = match e {
                    rkube_store::Error::Compacted { .. } => {
                        Status::expired(format!("too old resource version: {e}"))
                    }
                    other => store_err(other),
                };
                let _ = tx.send(Err(s)).await;
                return;
            }
        };
        if batch.events.is_empty() {
            if bookmarks {
                let bm = WatchEvent::Bookmark {
                    revision: batch.revision,
                    initial_events_end: false,
                };
                if tx.send(Ok(bm)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        for ev in batch.events {
            let decode = |value: &[u8], rev: i64| {
                Object::from_stored(&info, ev.kv.key.clone(), value, rev).ok()
            };
            let (object, prev) = match ev.kind {
                EventKind::Put => (
                    decode(&ev.kv.value, ev.kv.mod_revision),
                    ev.prev_kv
                        .as_ref()
                        .and_then(|p| decode(&p.value, p.mod_revision)),
                ),
                EventKind::Delete => (
                    ev.prev_kv
                        .as_ref()
                        .and_then(|p| decode(&p.value, ev.kv.mod_revision)),
                    None,
                ),
            };
            let Some(object) = object else { continue };
            let change = match ev.kind {
                EventKind::Put => Change::Put {
                    object: &object,
                    prev: prev.as_ref(),
                },
                EventKind::Delete => Change::Delete { object: &object },
            };
            let Some(kind) = transition(&filter, &change) else {
                continue;
            };
            if tx
                .send(Ok(WatchEvent::new(kind, Arc::new(object))))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
