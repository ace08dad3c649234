//! The namespace controller against an in-process apiserver: a deleted namespace is
//! emptied and then goes; content held by a finalizer keeps it terminating, with the
//! conditions saying why, until the finalizer is removed.

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Pod, PodSpec, PodTemplateSpec, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use rkube_client::{DeleteParams, PatchType};

use super::*;
use crate::testing::{eventually, Harness};

const WITHIN: Duration = Duration::from_secs(20);

/// Runs `body` against an apiserver with the namespace controller running, within a
/// minute.
async fn with_controller<F, Fut>(body: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = Harness>,
{
    let h = Harness::start().await;
    let ctx = h.context(&[]);
    let controller = tokio::spawn(run(ctx.clone()));
    ctx.factory.start(h.shutdown.clone());
    let h = tokio::time::timeout(Duration::from_secs(60), body(h))
        .await
        .expect("the test finishes within a minute");
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops")
        .unwrap();
    h.stop().await;
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

async fn create_namespace(h: &Harness, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::cluster(&h.client)
        .create(&ns, &WriteParams::default())
        .await
        .unwrap();
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), "web".to_string())])
}

async fn fill(h: &Harness, ns: &str) {
    let w = WriteParams::default();
    let c = &h.client;
    Api::<ConfigMap>::namespaced(c, ns)
        .create(
            &ConfigMap {
                metadata: meta(ns, "cfg"),
                ..Default::default()
            },
            &w,
        )
        .await
        .unwrap();
    Api::<Secret>::namespaced(c, ns)
        .create(
            &Secret {
                metadata: meta(ns, "creds"),
                ..Default::default()
            },
            &w,
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(c, ns)
        .create(
            &ServiceAccount {
                metadata: meta(ns, "robot"),
                ..Default::default()
            },
            &w,
        )
        .await
        .unwrap();
    let spec = PodSpec {
        containers: vec![Container {
            name: "c".into(),
            image: Some("rkube.local/busybox:1.35".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    Api::<Pod>::namespaced(c, ns)
        .create(
            &Pod {
                metadata: meta(ns, "solo"),
                spec: Some(spec.clone()),
                ..Default::default()
            },
            &w,
        )
        .await
        .unwrap();
    Api::<Deployment>::namespaced(c, ns)
        .create(
            &Deployment {
                metadata: meta(ns, "web"),
                spec: Some(DeploymentSpec {
                    selector: LabelSelector {
                        match_labels: Some(labels()),
                        ..Default::default()
                    },
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels()),
                            ..Default::default()
                        }),
                        spec: Some(spec),
                    },
                    ..Default::default()
                }),
                ..Default::default()
            },
            &w,
        )
        .await
        .unwrap();
}

/// How many objects of the usual kinds are left in `ns`.
async fn objects_in(h: &Harness, ns: &str) -> usize {
    let p = rkube_client::ListParams::default();
    let c = &h.client;
    Api::<ConfigMap>::namespaced(c, ns)
        .list(&p)
        .await
        .unwrap()
        .items
        .len()
        + Api::<Secret>::namespaced(c, ns)
            .list(&p)
            .await
            .unwrap()
            .items
            .len()
        + Api::<ServiceAccount>::namespaced(c, ns)
            .list(&p)
            .await
            .unwrap()
            .items
            .len()
        + Api::<Pod>::namespaced(c, ns)
            .list(&p)
            .await
            .unwrap()
            .items
            .len()
        + Api::<Deployment>::namespaced(c, ns)
            .list(&p)
            .await
            .unwrap()
            .items
            .len()
}

async fn namespace_gone(h: &Harness, name: &str) {
    let api: Api<Namespace> = Api::cluster(&h.client);
    eventually(&format!("namespace {name} is gone"), WITHIN, || {
        let api = api.clone();
        async move { matches!(api.get(name).await, Err(e) if e.is_not_found()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_it_and_then_it_disappears() {
    with_controller(|h| async move {
        create_namespace(&h, "team").await;
        fill(&h, "team").await;
        assert_eq!(objects_in(&h, "team").await, 5);
        // A namespace not being deleted is left alone.
        create_namespace(&h, "stays").await;
        fill(&h, "stays").await;

        let api: Api<Namespace> = Api::cluster(&h.client);
        let marked = api.delete("team", &DeleteParams::default()).await.unwrap();
        assert_eq!(
            marked.status.and_then(|s| s.phase).as_deref(),
            Some("Terminating")
        );
        namespace_gone(&h, "team").await;
        assert_eq!(objects_in(&h, "team").await, 0);
        assert_eq!(objects_in(&h, "stays").await, 5);
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_held_by_a_finalizer_keeps_the_namespace_terminating_and_says_why() {
    with_controller(|h| async move {
        create_namespace(&h, "held").await;
        let mut cm = ConfigMap {
            metadata: meta("held", "keep"),
            ..Default::default()
        };
        cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        let cms: Api<ConfigMap> = Api::namespaced(&h.client, "held");
        cms.create(&cm, &WriteParams::default()).await.unwrap();
        Api::<Secret>::namespaced(&h.client, "held")
            .create(
                &Secret {
                    metadata: meta("held", "creds"),
                    ..Default::default()
                },
                &WriteParams::default(),
            )
            .await
            .unwrap();

        let api: Api<Namespace> = Api::cluster(&h.client);
        api.delete("held", &DeleteParams::default()).await.unwrap();
        let condition = |ns: &Namespace, typ: &str| {
            ns.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == typ).cloned())
        };
        eventually("the conditions name what remains", WITHIN, || {
            let api = api.clone();
            async move {
                let Ok(ns) = api.get("held").await else {
                    return false;
                };
                let remaining = condition(&ns, conditions::CONTENT_REMAINING);
                let finalizers = condition(&ns, conditions::FINALIZERS_REMAINING);
                remaining.is_some_and(|c| {
                    c.status == "True"
                        && c.message.as_deref()
                            == Some("Some resources are remaining: configmaps. has 1 resource instances")
                }) && finalizers.is_some_and(|c| {
                    c.status == "True"
                        && c.message.as_deref()
                            == Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
                })
            }
        })
        .await;
        let ns = api.get("held").await.unwrap();
        assert_eq!(
            ns.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Terminating")
        );
        assert_eq!(finalizers(&ns), ["kubernetes"]);
        assert!(Api::<Secret>::namespaced(&h.client, "held")
            .get("creds")
            .await
            .is_err_and(|e| e.is_not_found()));
        let c = condition(&ns, conditions::CONTENT_FAILURE).unwrap();
        assert_eq!(c.status, "False");

        // Released: the configmap goes, and the namespace after it (the next pass comes
        // after half of Kubernetes' 15 s estimate).
        cms.patch(
            "keep",
            PatchType::Merge,
            &json!({"metadata": {"finalizers": null}}),
            &WriteParams::default(),
        )
        .await
        .unwrap();
        namespace_gone(&h, "held").await;
        h
    })
    .await;
}
