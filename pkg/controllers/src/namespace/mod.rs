//! The namespace controller: a deleted namespace (deletionTimestamp set, phase
//! `Terminating`) is emptied — every object of every namespaced resource discovery names
//! is deleted — and then its `kubernetes` finalizer is removed through
//! `namespaces/<name>/finalize`, after which the apiserver deletes it (once its other
//! finalizers are gone too). Status conditions say what the last pass found, as
//! Kubernetes' do (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, ...).
//!
//! Primary objects: namespaces (key = name). Content is not watched: a pass that leaves
//! objects behind (finalizers, pods terminating) comes back after half the expected wait,
//! as Kubernetes does; every namespace is also looked at every 5 minutes.
//!
//! Never: touch a namespace that is not being deleted, or remove the finalizer while
//! anything is left in it.

pub mod conditions;
pub mod content;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_client::{Api, Gvr, PatchType, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::{Action, Controller, ObjectKey, Selection, Store};
use serde_json::json;

use crate::discovery::{self, ApiResource};
use crate::Context;
use conditions::Totals;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// Kubernetes' `--namespace-sync-period`.
const RESYNC: Duration = Duration::from_secs(300);
/// Attempts at a write that conflicts with another writer before the reconcile fails.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading namespace {name} failed")]
    Read {
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("writing namespace {name} ({what}) failed")]
    Write {
        name: String,
        what: &'static str,
        #[source]
        source: rkube_client::Error,
    },
    #[error("namespace {name} kept changing while it was finalized")]
    Contended { name: String },
    #[error("deleting the content of namespace {name} failed: {messages:?}")]
    Content { name: String, messages: Vec<String> },
}

struct State {
    ctx: Context,
    namespaces: Store<Namespace>,
}

/// Runs the controller until the context's shutdown.
pub async fn run(ctx: Context) {
    let namespaces = ctx.factory.informer::<Namespace>(Selection::all());
    let controller = Controller::new("namespace", &namespaces)
        .workers(ctx.config.concurrent_namespace_syncs)
        .resync_every(RESYNC);
    let state = Arc::new(State {
        ctx: ctx.clone(),
        namespaces: namespaces.store(),
    });
    controller
        .run(reconcile, retry_with_backoff, state, ctx.shutdown().clone())
        .await;
}

fn now() -> Time {
    Time(rkube_runtime::object::now())
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let cached = st.namespaces.get(&key);
    if cached.is_none_or(|ns| ns.metadata.deletion_timestamp.is_none()) {
        return Ok(Action::await_change());
    }
    let api: Api<Namespace> = Api::cluster(&st.ctx.client);
    let name = key.name.clone();
    // Other writers edit a terminating namespace too: work from its newest state.
    let ns = match api.get(&name).await {
        Ok(ns) => ns,
        Err(e) if e.is_not_found() => return Ok(Action::await_change()),
        Err(source) => return Err(Error::Read { name, source }),
    };
    let Some(deleted_at) = ns.metadata.deletion_timestamp.clone() else {
        return Ok(Action::await_change());
    };
    let ns = ensure_terminating(&api, ns).await?;
    if !finalizers(&ns).iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let (resources, discovery_error) = match discovery::discover(&st.ctx.client).await {
        Ok(r) => (r.all, None),
        Err(e) => (Vec::new(), Some(error_chain(&e))),
    };
    let deletable: Vec<ApiResource> = resources
        .into_iter()
        .filter(|r| r.namespaced && r.supports(&["list", "delete"]))
        .collect();
    let mut pass = content::delete_all(&st.ctx.client, &deletable, &name, deleted_at.0).await;
    pass.totals.discovery_error = discovery_error;
    update_conditions(&api, &ns, &pass.totals).await;
    let mut messages = pass.totals.delete_errors.clone();
    messages.extend(pass.totals.discovery_error.clone());
    if !messages.is_empty() {
        return Err(Error::Content { name, messages });
    }
    if pass.estimate > 0 {
        tracing::debug!(namespace = %name, estimate = pass.estimate, "content remains; looking again later");
        return Ok(Action::requeue(Duration::from_secs(
            (pass.estimate / 2 + 1) as u64,
        )));
    }
    finalize(&api, &name).await?;
    Ok(Action::await_change())
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

/// Sets phase `Terminating` when the apiserver has not (an older one, or a race).
async fn ensure_terminating(api: &Api<Namespace>, ns: Namespace) -> Result<Namespace, Error> {
    if ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating") {
        return Ok(ns);
    }
    let mut next = ns.clone();
    next.status
        .get_or_insert_with(NamespaceStatus::default)
        .phase = Some("Terminating".into());
    let name = ns.metadata.name.clone().unwrap_or_default();
    api.update_status(&next, &WriteParams::default())
        .await
        .map_err(|source| Error::Write {
            name,
            what: "status",
            source,
        })
}

/// Writes the conditions of this pass when they changed. A failure only delays them to
/// the next pass (Kubernetes logs it too).
async fn update_conditions(api: &Api<Namespace>, ns: &Namespace, totals: &Totals) {
    let existing = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let Some(merged) = conditions::merge(&existing, conditions::conditions(totals, &now())) else {
        return;
    };
    let mut next = ns.clone();
    next.status
        .get_or_insert_with(NamespaceStatus::default)
        .conditions = Some(merged);
    if let Err(e) = api.update_status(&next, &WriteParams::default()).await {
        tracing::warn!(namespace = ?ns.metadata.name, error = %e, "could not update the namespace's conditions");
    }
}

/// Removes [`FINALIZER`] through `namespaces/<name>/finalize`, from the newest state.
async fn finalize(api: &Api<Namespace>, name: &str) -> Result<(), Error> {
    for _ in 0..CONFLICT_RETRIES {
        let ns = match api.get(name).await {
            Ok(ns) => ns,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(source) => {
                return Err(Error::Read {
                    name: name.to_string(),
                    source,
                })
            }
        };
        let mut rest: Vec<String> = finalizers(&ns)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        rest.sort();
        rest.dedup();
        let patch = json!({
            "metadata": {"resourceVersion": ns.metadata.resource_version},
            "spec": {"finalizers": rest},
        });
        let body = serde_json::to_vec(&patch).expect("JSON values encode");
        let result = api
            .client()
            .patch(
                &Gvr::of::<Namespace>(),
                "",
                name,
                "finalize",
                PatchType::Merge,
                &body,
                &WriteParams::default(),
            )
            .await;
        match result {
            Ok(_) => {
                tracing::info!(namespace = name, "namespace emptied and finalized");
                return Ok(());
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(source) => {
                return Err(Error::Write {
                    name: name.to_string(),
                    what: "finalize",
                    source,
                })
            }
        }
    }
    Err(Error::Contended {
        name: name.to_string(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
