//! The status manager: pod workers hand it the status they computed; a writer task writes
//! them to the apiserver (`pods/status`). Guarantees: the newest status of each pod is the
//! one written (a newer one replaces a pending one); a status equal to the last one
//! written is not written again; a failed write is retried until a newer one arrives or
//! the pod is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use rkube_client::{Client, Gvr, PatchType, WriteParams};
use rkube_runtime::ObjectKey;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Parallel writes at most.
const WRITERS: usize = 8;

#[derive(Default)]
struct State {
    /// key → (uid, newest status not yet written).
    pending: HashMap<ObjectKey, (String, PodStatus)>,
    /// uid → the last status written.
    written: HashMap<String, PodStatus>,
}

#[derive(Clone, Default)]
pub struct StatusManager {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

/// A merge patch that sets the pod's status to `status` exactly: the top-level fields it
/// does not have are removed (null). Pure.
pub fn status_patch(status: &PodStatus) -> Value {
    let mut v = serde_json::to_value(status).expect("statuses encode");
    let obj = v.as_object_mut().expect("a status is an object");
    for field in [
        "phase",
        "reason",
        "message",
        "conditions",
        "hostIP",
        "hostIPs",
        "podIP",
        "podIPs",
        "startTime",
        "qosClass",
        "containerStatuses",
    ] {
        obj.entry(field).or_insert(Value::Null);
    }
    serde_json::json!({ "status": v })
}

impl StatusManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `status` for the pod at `key` (uid `uid`) unless it was already written.
    pub fn set(&self, key: ObjectKey, uid: String, status: PodStatus) {
        let mut st = self.lock();
        if st.written.get(&uid) == Some(&status) {
            st.pending.remove(&key);
            return;
        }
        st.pending.insert(key, (uid, status));
        drop(st);
        self.wake.notify_one();
    }

    /// Forgets a deleted pod.
    pub fn forget(&self, uid: &str) {
        let mut st = self.lock();
        st.written.remove(uid);
        st.pending.retain(|_, (u, _)| u != uid);
    }

    /// How many statuses wait to be written.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Writes queued statuses until `shutdown`.
    pub async fn run(self, client: Client, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            loop {
                let batch: Vec<(ObjectKey, String, PodStatus)> = {
                    let mut st = self.lock();
                    st.pending.drain().map(|(k, (u, s))| (k, u, s)).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let failed = futures::stream::iter(batch)
                    .map(|(key, uid, status)| {
                        let client = client.clone();
                        async move {
                            let result = write(&client, &key, &status).await;
                            (key, uid, status, result)
                        }
                    })
                    .buffer_unordered(WRITERS)
                    .filter_map(|(key, uid, status, result)| {
                        let me = self.clone();
                        async move {
                            match result {
                                Ok(()) => {
                                    me.lock().written.insert(uid, status);
                                    None
                                }
                                Err(e) if e.is_not_found() => None,
                                Err(e) => {
                                    tracing::warn!(pod = %key, error = %rkube_component::error_chain(&e), "cannot write the pod's status; retrying");
                                    Some((key, uid, status))
                                }
                            }
                        }
                    })
                    .collect::<Vec<_>>()
                    .await;
                if !failed.is_empty() {
                    {
                        let mut st = self.lock();
                        for (key, uid, status) in failed {
                            // A newer status queued meanwhile wins.
                            st.pending.entry(key).or_insert((uid, status));
                        }
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

async fn write(client: &Client, key: &ObjectKey, status: &PodStatus) -> rkube_client::Result<()> {
    let body = serde_json::to_vec(&status_patch(status)).expect("JSON values encode");
    client
        .patch(
            &Gvr::of::<Pod>(),
            &key.namespace,
            &key.name,
            "status",
            PatchType::Merge,
            &body,
            &WriteParams::default(),
        )
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_removes_what_the_status_no_longer_has() {
        let status = PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        };
        let p = status_patch(&status);
        assert_eq!(p["status"]["phase"], "Running");
        assert!(p["status"]["reason"].is_null());
        assert!(p["status"].as_object().unwrap().contains_key("reason"));
    }

    #[test]
    fn only_the_newest_unwritten_status_waits() {
        let m = StatusManager::default();
        let key = ObjectKey::new("ns", "p");
        let s = |phase: &str| PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        };
        m.set(key.clone(), "u".into(), s("Pending"));
        m.set(key.clone(), "u".into(), s("Running"));
        assert_eq!(m.pending(), 1);
        assert_eq!(m.lock().pending[&key].1, s("Running"));
        m.lock().pending.clear();
        m.lock().written.insert("u".into(), s("Running"));
        m.set(key.clone(), "u".into(), s("Running"));
        assert_eq!(m.pending(), 0, "an unchanged status is not written again");
        m.forget("u");
        m.set(key, "u".into(), s("Running"));
        assert_eq!(m.pending(), 1);
    }
}
