//! The ServiceAccount controller: every active namespace has a ServiceAccount named
//! `default` (pods that name none run as it). Recreated when deleted; nothing is created
//! in a namespace that is terminating.
//!
//! Primary objects: namespaces (key = namespace name). A deleted `default`
//! ServiceAccount wakes its namespace.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{Api, WriteParams};
use rkube_runtime::controller::retry_with_backoff;
use rkube_runtime::{Action, Controller, ObjectKey, Selection, Store};

use crate::Context;

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating ServiceAccount {namespace}/default failed")]
    Create {
        namespace: String,
        #[source]
        source: rkube_client::Error,
    },
}

struct State {
    ctx: Context,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
}

/// Runs the controller until the context's shutdown.
pub async fn run(ctx: Context) {
    let namespaces = ctx.factory.informer::<Namespace>(Selection::all());
    let accounts = ctx
        .factory
        .informer::<ServiceAccount>(Selection::all().fields(&format!("metadata.name={DEFAULT}")));
    let controller = Controller::new("serviceaccount", &namespaces)
        .watches(&accounts, |sa: &ServiceAccount| {
            vec![ObjectKey::cluster(
                sa.metadata.namespace.clone().unwrap_or_default(),
            )]
        })
        .workers(2);
    let state = Arc::new(State {
        ctx: ctx.clone(),
        namespaces: namespaces.store(),
        accounts: accounts.store(),
    });
    controller
        .run(reconcile, retry_with_backoff, state, ctx.shutdown().clone())
        .await;
}

async fn reconcile(key: ObjectKey, st: Arc<State>) -> Result<Action, Error> {
    let Some(ns) = st.namespaces.get(&key) else {
        return Ok(Action::await_change());
    };
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating
        || st
            .accounts
            .get(&ObjectKey::new(&key.name, DEFAULT))
            .is_some()
    {
        return Ok(Action::await_change());
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            namespace: Some(key.name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<ServiceAccount>::namespaced(&st.ctx.client, &key.name)
        .create(&sa, &WriteParams::default())
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        // Our cache was behind, or the namespace started terminating meanwhile.
        Err(e) if e.is_already_exists() || e.code() == 403 || e.is_not_found() => {
            Ok(Action::await_change())
        }
        Err(source) => Err(Error::Create {
            namespace: key.name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rkube_client::DeleteParams;

    use super::*;
    use crate::testing::{eventually, Harness};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_namespace_gets_a_default_service_account_and_keeps_it() {
        let h = Harness::start().await;
        let ctx = h.context(&[]);
        let task = tokio::spawn(run(ctx.clone()));
        ctx.factory.start(h.shutdown.clone());
        let namespaces: Api<Namespace> = Api::cluster(&h.client);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some("team-a".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&ns, &WriteParams::default())
            .await
            .unwrap();
        let sas = |ns: &str| Api::<ServiceAccount>::namespaced(&h.client, ns);
        for ns in ["default", "kube-system", "team-a"] {
            let api = sas(ns);
            eventually(
                &format!("{ns}/default exists"),
                Duration::from_secs(15),
                || {
                    let api = api.clone();
                    async move { api.get(DEFAULT).await.is_ok() }
                },
            )
            .await;
        }
        // Deleted: it comes back (with a new UID).
        let old = sas("team-a").get(DEFAULT).await.unwrap();
        sas("team-a")
            .delete(DEFAULT, &DeleteParams::default())
            .await
            .unwrap();
        let api = sas("team-a");
        eventually(
            "team-a/default is recreated",
            Duration::from_secs(15),
            || {
                let (api, uid) = (api.clone(), old.metadata.uid.clone());
                async move {
                    api.get(DEFAULT)
                        .await
                        .is_ok_and(|sa| sa.metadata.uid != uid)
                }
            },
        )
        .await;
        h.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        h.stop().await;
    }
}
