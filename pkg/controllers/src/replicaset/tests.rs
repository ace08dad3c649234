//! The ReplicaSet controller against an in-process apiserver, and the test support the
//! Deployment controller's tests share (objects, a pretend kubelet, event checkers).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSetSpec;
use k8s_openapi::api::core::v1::{
    Container, Event, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, ObjectMeta, Time,
};
use rkube_client::{ListParams, PatchType, TypedEvent, WatchParams};
use rkube_runtime::store::Writer;
use rkube_runtime::watcher::Event as WatchEvent;
use rkube_runtime::Resource;
use rkube_telemetry::propagation::TRACEPARENT_ANNOTATION;
use serde_json::json;
use tokio::task::JoinHandle;

use super::*;
use crate::testing::{eventually, Harness};

pub(crate) const WAIT: Duration = Duration::from_secs(30);
pub(crate) const NS: &str = "default";

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A pod template with `labels` and one container running `image`.
pub(crate) fn template(l: &[(&str, &str)], image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(l)),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

pub(crate) fn replicaset(name: &str, replicas: i32, l: &[(&str, &str)]) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: MetaSelector {
                match_labels: Some(labels(l)),
                ..Default::default()
            },
            template: Some(template(l, "busybox")),
            ..Default::default()
        }),
        status: None,
    }
}

/// An orphan pod with `labels`.
pub(crate) fn orphan(name: &str, l: &[(&str, &str)]) -> Pod {
    let t = template(l, "busybox");
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            labels: Some(labels(l)),
            ..Default::default()
        },
        spec: t.spec,
        status: None,
    }
}

pub(crate) type ControllerTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
pub(crate) type StartFn = fn(Context) -> ControllerTask;

/// Starts `controllers` on an in-process apiserver; returns the harness and their
/// tasks (stop with [`stop`]).
pub(crate) async fn start(
    controllers: &[StartFn],
    args: &[&str],
) -> (Harness, Vec<JoinHandle<()>>) {
    let h = Harness::start().await;
    let ctx = h.context(args);
    let tasks = controllers
        .iter()
        .map(|c| tokio::spawn(c(ctx.clone())))
        .collect();
    ctx.factory.start(h.shutdown.clone());
    (h, tasks)
}

pub(crate) fn replicaset_controller(
    ctx: Context,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(run(ctx))
}

pub(crate) async fn stop(h: Harness, tasks: Vec<JoinHandle<()>>) {
    h.shutdown.cancel();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("a controller stops within 10 s of shutdown")
            .unwrap();
    }
    h.stop().await;
}

/// The active pods `owner_uid` controls, by name.
pub(crate) async fn owned_pods(client: &Client, owner_uid: &str) -> Vec<Pod> {
    let mut pods: Vec<Pod> = Api::<Pod>::namespaced(client, NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            pods::is_active(p) && controller_of(&p.metadata).is_some_and(|r| r.uid == owner_uid)
        })
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

pub(crate) fn name_of<K: Resource>(o: &K) -> String {
    o.metadata().name.clone().unwrap_or_default()
}

pub(crate) fn uid_of<K: Resource>(o: &K) -> String {
    o.metadata().uid.clone().unwrap_or_default()
}

/// Marks the pod Running and Ready through `pods/status`, as a kubelet would.
pub(crate) async fn set_ready(client: &Client, name: &str) {
    let api: Api<Pod> = Api::namespaced(client, NS);
    loop {
        let mut pod = match api.get(name).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return,
            Err(e) => panic!("reading pod {name}: {e}"),
        };
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(now())),
                ..Default::default()
            }]),
            ..pod.status.unwrap_or_default()
        });
        match api.update_status(&pod, &WriteParams::default()).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) if e.is_not_found() => return,
            Err(e) => panic!("marking pod {name} ready: {e}"),
        }
    }
}

/// A pretend kubelet: marks every new pod of the namespace ready (those whose labels
/// `skip` selects stay unready). Stops with the returned task.
pub(crate) fn kubelet(client: &Client, skip: Option<(&str, &str)>) -> JoinHandle<()> {
    let (client, skip) = (
        client.clone(),
        skip.map(|(k, v)| (k.to_string(), v.to_string())),
    );
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(&client, NS);
        let mut w = api.watch(WatchParams::default()).await.unwrap();
        while let Some(ev) = w.next().await {
            let pod = match ev {
                Ok(TypedEvent::Added(p)) | Ok(TypedEvent::Modified(p)) => p,
                Ok(_) => continue,
                Err(e) => panic!("the pretend kubelet's watch failed: {e}"),
            };
            let skipped = skip.as_ref().is_some_and(|(k, v)| {
                pod.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v)
            });
            if pods::is_active(&pod) && !pods::is_ready(&pod) && !skipped {
                set_ready(&client, &name_of(&pod)).await;
            }
        }
    })
}

/// Watches `api` and checks `check` against the objects after every change from the
/// first complete list on; what it reports are violations. Returns once the watch is
/// open, so every later change is checked.
pub(crate) struct Checker {
    violations: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<usize>>,
    task: JoinHandle<()>,
}

impl Checker {
    pub(crate) async fn start<K: Resource + std::fmt::Debug>(
        api: Api<K>,
        check: impl Fn(&BTreeMap<String, K>) -> Option<String> + Send + 'static,
    ) -> Checker {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Mutex::new(0));
        let mut w = api.watch(WatchParams::default()).await.unwrap();
        let (v, n) = (violations.clone(), events.clone());
        let task = tokio::spawn(async move {
            let mut objects = BTreeMap::new();
            // The watch starts with what exists, one object at a time: check from the
            // first complete state on.
            let mut listed = false;
            while let Some(ev) = w.next().await {
                match ev {
                    Ok(TypedEvent::Added(o)) | Ok(TypedEvent::Modified(o)) => {
                        objects.insert(name_of(&o), o);
                    }
                    Ok(TypedEvent::Deleted(o)) => {
                        objects.remove(&name_of(&o));
                    }
                    Ok(TypedEvent::InitialEventsEnd { .. }) => {
                        listed = true;
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        v.lock().unwrap().push(format!("the watch failed: {e}"));
                        return;
                    }
                }
                if !listed {
                    continue;
                }
                *n.lock().unwrap() += 1;
                if let Some(msg) = check(&objects) {
                    v.lock().unwrap().push(msg);
                }
            }
        });
        Checker {
            violations,
            events,
            task,
        }
    }

    pub(crate) fn events(&self) -> usize {
        *self.events.lock().unwrap()
    }

    /// Stops watching; panics with the violations seen, if any.
    pub(crate) fn finish(self, what: &str) {
        self.task.abort();
        let v = self.violations.lock().unwrap();
        assert!(v.is_empty(), "{what} was violated:\n{}", v.join("\n"));
    }
}

/// The events about `name` with `reason`: (type, message) each.
pub(crate) async fn events_for(client: &Client, name: &str, reason: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client, NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(name) && e.reason.as_deref() == Some(reason)
        })
        .map(|e| (e.type_.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn rs_status(client: &Client, name: &str) -> ReplicaSetStatus {
    Api::<ReplicaSet>::namespaced(client, NS)
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

async fn create_rs(client: &Client, rs: &ReplicaSet) -> ReplicaSet {
    Api::<ReplicaSet>::namespaced(client, NS)
        .create(rs, &WriteParams::default())
        .await
        .unwrap()
}

async fn scale(client: &Client, name: &str, replicas: i32) {
    Api::<ReplicaSet>::namespaced(client, NS)
        .patch(
            name,
            PatchType::Merge,
            &json!({"spec": {"replicas": replicas}}),
            &WriteParams::default(),
        )
        .await
        .unwrap();
}

async fn wait_for_pods(client: &Client, uid: &str, n: usize) -> Vec<Pod> {
    eventually(&format!("{n} pods"), WAIT, || async {
        owned_pods(client, uid).await.len() == n
    })
    .await;
    owned_pods(client, uid).await
}

fn timeout<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(120), f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicaset_creates_its_pods_from_the_template_and_counts_them() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut rs = replicaset("web", 3, &[("app", "web")]);
        rs.metadata.annotations =
            Some([(TRACEPARENT_ANNOTATION.to_string(), tp.to_string())].into());
        let rs = create_rs(&h.client, &rs).await;
        let pods = wait_for_pods(&h.client, &uid_of(&rs), 3).await;
        for p in &pods {
            assert!(name_of(p).starts_with("web-"), "{}", name_of(p));
            assert_eq!(p.metadata.labels, Some(labels(&[("app", "web")])));
            let r = controller_of(&p.metadata).unwrap();
            assert_eq!((r.kind.as_str(), r.name.as_str()), ("ReplicaSet", "web"));
            assert_eq!(r.block_owner_deletion, Some(true));
            assert_eq!(
                rkube_runtime::trace::traceparent(&p.metadata),
                Some(tp),
                "pods carry the ReplicaSet's trace"
            );
        }
        eventually("status counts 3 pods", WAIT, || async {
            let s = rs_status(&h.client, "web").await;
            s.replicas == 3
                && s.fully_labeled_replicas == Some(3)
                && s.observed_generation == Some(1)
        })
        .await;
        for p in &pods[..2] {
            set_ready(&h.client, &name_of(p)).await;
        }
        eventually("2 ready and available", WAIT, || async {
            let s = rs_status(&h.client, "web").await;
            s.ready_replicas == Some(2) && s.available_replicas == Some(2)
        })
        .await;
        eventually("SuccessfulCreate events", WAIT, || async {
            let ev = events_for(&h.client, "web", "SuccessfulCreate").await;
            ev.len() == 3
                && ev
                    .iter()
                    .all(|(t, m)| t == "Normal" && m.starts_with("Created pod: web-"))
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_never_makes_more_pods_than_wanted_and_a_deleted_pod_is_replaced() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        let rs = create_rs(&h.client, &replicaset("web", 0, &[("app", "web")])).await;
        let uid = uid_of(&rs);
        // Expectations: a reconcile woken by its own first pods, on a cache that has not
        // seen the rest yet, must not create more; one woken by its first deletions must
        // not delete more.
        let bounds = Arc::new(Mutex::new((0usize, 40usize)));
        let (b, u) = (bounds.clone(), uid.clone());
        let checker = Checker::start(Api::<Pod>::namespaced(&h.client, NS), move |pods| {
            let n = pods
                .values()
                .filter(|p| {
                    pods::is_active(p) && controller_of(&p.metadata).is_some_and(|r| r.uid == u)
                })
                .count();
            let (min, max) = *b.lock().unwrap();
            (n > max || n < min).then(|| format!("{n} pods exist, wanted {min}..={max}"))
        })
        .await;
        scale(&h.client, "web", 40).await;
        wait_for_pods(&h.client, &uid, 40).await;
        eventually("the checker saw the creates", WAIT, || async {
            checker.events() >= 40
        })
        .await;
        *bounds.lock().unwrap() = (7, 40);
        scale(&h.client, "web", 7).await;
        let pods = wait_for_pods(&h.client, &uid, 7).await;
        // 40 creates and 33 deletes at least.
        eventually("the checker saw every create and delete", WAIT, || async {
            checker.events() >= 73
        })
        .await;
        checker.finish("pods between what was and what is wanted");
        // A deleted pod is replaced by a new one.
        let gone = name_of(&pods[0]);
        Api::<Pod>::namespaced(&h.client, NS)
            .delete(&gone, &DeleteParams::default())
            .await
            .unwrap();
        eventually("the deleted pod is replaced", WAIT, || async {
            let now = owned_pods(&h.client, &uid).await;
            now.len() == 7 && now.iter().all(|p| name_of(p) != gone)
        })
        .await;
        eventually("status counts 7", WAIT, || async {
            rs_status(&h.client, "web").await.replicas == 7
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surplus_pods_are_deleted_unready_first() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        let rs = create_rs(&h.client, &replicaset("web", 3, &[("app", "web")])).await;
        let pods = wait_for_pods(&h.client, &uid_of(&rs), 3).await;
        set_ready(&h.client, &name_of(&pods[0])).await;
        set_ready(&h.client, &name_of(&pods[2])).await;
        eventually("2 ready", WAIT, || async {
            rs_status(&h.client, "web").await.ready_replicas == Some(2)
        })
        .await;
        scale(&h.client, "web", 2).await;
        let left = wait_for_pods(&h.client, &uid_of(&rs), 2).await;
        assert_eq!(
            left.iter().map(name_of).collect::<Vec<_>>(),
            [name_of(&pods[0]), name_of(&pods[2])],
            "the pod that was not ready goes"
        );
        eventually("a SuccessfulDelete event", WAIT, || async {
            events_for(&h.client, "web", "SuccessfulDelete").await
                == [(
                    "Normal".to_string(),
                    format!("Deleted pod: {}", name_of(&pods[1])),
                )]
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_orphans_are_adopted_and_pods_that_stop_matching_are_released() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        let pods_api: Api<Pod> = Api::namespaced(&h.client, NS);
        pods_api
            .create(&orphan("stray", &[("app", "web")]), &WriteParams::default())
            .await
            .unwrap();
        pods_api
            .create(&orphan("other", &[("app", "db")]), &WriteParams::default())
            .await
            .unwrap();
        let rs = create_rs(&h.client, &replicaset("web", 2, &[("app", "web")])).await;
        let uid = uid_of(&rs);
        let pods = wait_for_pods(&h.client, &uid, 2).await;
        assert!(
            pods.iter().any(|p| name_of(p) == "stray"),
            "the matching orphan was adopted: {:?}",
            pods.iter().map(name_of).collect::<Vec<_>>()
        );
        assert!(controller_of(&pods_api.get("other").await.unwrap().metadata).is_none());
        // Relabelled out of the selector: released, and replaced.
        pods_api
            .patch(
                "stray",
                PatchType::Merge,
                &json!({"metadata": {"labels": {"app": "debug"}}}),
                &WriteParams::default(),
            )
            .await
            .unwrap();
        eventually("stray released and replaced", WAIT, || async {
            let released = pods_api
                .get("stray")
                .await
                .is_ok_and(|p| controller_of(&p.metadata).is_none());
            let owned = owned_pods(&h.client, &uid).await;
            released && owned.len() == 2 && owned.iter().all(|p| name_of(p) != "stray")
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contested_orphan_is_adopted_by_exactly_one_replicaset() {
    timeout(async {
        let (h, tasks) = start(
            &[replicaset_controller],
            &["--concurrent-replicaset-syncs=2"],
        )
        .await;
        let pods_api: Api<Pod> = Api::namespaced(&h.client, NS);
        // Once a pod has a controller, it never gets another.
        let first_owner: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let checker = Checker::start(pods_api.clone(), move |pods| {
            let mut seen = first_owner.lock().unwrap();
            for (name, p) in pods {
                if let Some(r) = controller_of(&p.metadata) {
                    let first = seen.entry(name.clone()).or_insert_with(|| r.name.clone());
                    if *first != r.name {
                        return Some(format!("{name} went from {first} to {}", r.name));
                    }
                }
            }
            None
        })
        .await;
        for i in 0..8 {
            pods_api
                .create(
                    &orphan(&format!("orphan-{i}"), &[("app", "web")]),
                    &WriteParams::default(),
                )
                .await
                .unwrap();
        }
        let (ra, rb) = (
            replicaset("a", 5, &[("app", "web")]),
            replicaset("b", 5, &[("app", "web")]),
        );
        let (a, b) = futures::join!(create_rs(&h.client, &ra), create_rs(&h.client, &rb));
        wait_for_pods(&h.client, &uid_of(&a), 5).await;
        wait_for_pods(&h.client, &uid_of(&b), 5).await;
        let all = pods_api.list(&ListParams::default()).await.unwrap().items;
        let active: Vec<_> = all.iter().filter(|p| pods::is_active(p)).collect();
        assert!(
            active.iter().all(|p| controller_of(&p.metadata).is_some()),
            "every orphan was adopted or deleted as surplus"
        );
        assert_eq!(active.len(), 10);
        checker.finish("one controller per pod");
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_creates_set_replica_failure_until_they_succeed() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        // Templates' finalizers are not checked, pods' are: every create fails.
        let mut rs = replicaset("web", 20, &[("app", "web")]);
        let t = rs.spec.as_mut().unwrap().template.as_mut().unwrap();
        t.metadata.as_mut().unwrap().finalizers = Some(vec!["not a finalizer!".into()]);
        let rs = create_rs(&h.client, &rs).await;
        eventually("the ReplicaFailure condition", WAIT, || async {
            let s = rs_status(&h.client, "web").await;
            s.conditions.unwrap_or_default().iter().any(|c| {
                c.type_ == "ReplicaFailure"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("FailedCreate")
                    && c.message
                        .as_deref()
                        .is_some_and(|m| m.contains("finalizers"))
            })
        })
        .await;
        let failed = events_for(&h.client, "web", "FailedCreate").await;
        assert!(!failed.is_empty());
        assert!(
            failed
                .iter()
                .all(|(t, m)| t == "Warning" && m.starts_with("Error creating: ")),
            "{failed:?}"
        );
        assert!(owned_pods(&h.client, &uid_of(&rs)).await.is_empty());
        // Fixed: the pods come and the condition goes.
        Api::<ReplicaSet>::namespaced(&h.client, NS)
            .patch(
                "web",
                PatchType::Json,
                &json!([{"op": "remove", "path": "/spec/template/metadata/finalizers"}]),
                &WriteParams::default(),
            )
            .await
            .unwrap();
        wait_for_pods(&h.client, &uid_of(&rs), 20).await;
        eventually("the condition is gone", WAIT, || async {
            let s = rs_status(&h.client, "web").await;
            s.replicas == 20 && s.conditions.is_none()
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_turn_available_after_min_ready_seconds() {
    timeout(async {
        let (h, tasks) = start(&[replicaset_controller], &[]).await;
        let mut rs = replicaset("web", 1, &[("app", "web")]);
        rs.spec.as_mut().unwrap().min_ready_seconds = Some(4);
        let rs = create_rs(&h.client, &rs).await;
        let pods = wait_for_pods(&h.client, &uid_of(&rs), 1).await;
        set_ready(&h.client, &name_of(&pods[0])).await;
        eventually("ready, not yet available", WAIT, || async {
            let s = rs_status(&h.client, "web").await;
            s.ready_replicas == Some(1) && s.available_replicas.is_none()
        })
        .await;
        // No event wakes the controller: it must come back by itself.
        eventually("available", WAIT, || async {
            rs_status(&h.client, "web").await.available_replicas == Some(1)
        })
        .await;
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

/// A controller state over caches the test feeds by hand, so they can be stale.
fn stale_state(client: &Client, rs: &ReplicaSet) -> (Arc<State>, Writer<ReplicaSet>, Writer<Pod>) {
    let mut rss = Writer::new();
    for e in [
        WatchEvent::Init,
        WatchEvent::InitApply(rs.clone()),
        WatchEvent::InitDone {
            resource_version: "1".into(),
        },
    ] {
        rss.apply(e);
    }
    let mut pods = Writer::<Pod>::new();
    pods.store().add_index(INDEX_ORPHANS, index_orphans());
    pods.apply(WatchEvent::Init);
    pods.apply(WatchEvent::InitDone {
        resource_version: "1".into(),
    });
    let (recorder, _writer) = Recorder::new(client.clone(), Default::default());
    let state = Arc::new(State {
        client: client.clone(),
        replicasets: rss.store(),
        pods: pods.store(),
        expectations: Arc::new(Expectations::default()),
        recorder,
        burst: manage::BURST_REPLICAS,
    });
    (state, rss, pods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cache_never_makes_the_controller_create_or_delete_twice() {
    timeout(async {
        let h = Harness::start().await;
        let rs = create_rs(&h.client, &replicaset("web", 5, &[("app", "web")])).await;
        let key = ObjectKey::of(&rs);
        let (st, mut rss, mut pod_cache) = stale_state(&h.client, &rs);
        reconcile(key.clone(), st.clone()).await.unwrap();
        let created = owned_pods(&h.client, &uid_of(&rs)).await;
        assert_eq!(created.len(), 5);
        // The cache has not seen the creates: the controller waits.
        reconcile(key.clone(), st.clone()).await.unwrap();
        assert_eq!(
            owned_pods(&h.client, &uid_of(&rs)).await.len(),
            5,
            "created twice"
        );
        assert_eq!(st.expectations.pending(&key), (5, 0));
        for p in &created {
            for c in pod_cache.apply(WatchEvent::Apply(p.clone())) {
                observe(&st.expectations, &st.replicasets, &c);
            }
        }
        assert!(st.expectations.satisfied(&key));
        // Scaled down to 2: three go, and a cache that still shows five deletes no more.
        scale(&h.client, "web", 2).await;
        let smaller = Api::<ReplicaSet>::namespaced(&h.client, NS)
            .get("web")
            .await
            .unwrap();
        rss.apply(WatchEvent::Apply(smaller));
        reconcile(key.clone(), st.clone()).await.unwrap();
        assert_eq!(owned_pods(&h.client, &uid_of(&rs)).await.len(), 2);
        reconcile(key.clone(), st.clone()).await.unwrap();
        assert_eq!(
            owned_pods(&h.client, &uid_of(&rs)).await.len(),
            2,
            "deleted twice"
        );
        assert_eq!(st.expectations.pending(&key), (0, 3));
        h.stop().await;
    })
    .await
    .expect("test timed out");
}
