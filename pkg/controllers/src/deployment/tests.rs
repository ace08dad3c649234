//! The Deployment controller against an in-process apiserver, with the ReplicaSet
//! controller running beside it and a pretend kubelet marking pods ready as a kubelet
//! would (through `pods/status`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStatus, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as MetaSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rkube_client::{Api, ListParams, PatchType, WriteParams};
use rkube_telemetry::propagation::TRACEPARENT_ANNOTATION;
use serde_json::json;

use super::*;
use crate::pods;
use crate::replicaset::tests::{
    events_for, kubelet, labels, name_of, owned_pods, replicaset_controller, start, stop, template,
    uid_of, Checker, ControllerTask, NS, WAIT,
};
use crate::testing::eventually;

fn deployment_controller(ctx: Context) -> ControllerTask {
    Box::pin(run(ctx))
}

const BOTH: &[crate::replicaset::tests::StartFn] = &[replicaset_controller, deployment_controller];

fn timeout<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(180), f)
}

/// A Deployment `name` of `replicas` pods labelled app=`name`, running `image`, rolling
/// with maxSurge/maxUnavailable as given ("Recreate" for that strategy).
fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    surge: &str,
    unavailable: &str,
) -> Deployment {
    let ios = |s: &str| match s.parse() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(s.into()),
    };
    let strategy = if surge == "Recreate" {
        DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        }
    } else {
        DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(ios(surge)),
                max_unavailable: Some(ios(unavailable)),
            }),
        }
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: MetaSelector {
                match_labels: Some(labels(&[("app", name)])),
                ..Default::default()
            },
            template: template(&[("app", name)], image),
            strategy: Some(strategy),
            ..Default::default()
        }),
        status: None,
    }
}

fn deployments(client: &Client) -> Api<Deployment> {
    Api::namespaced(client, NS)
}

async fn create(client: &Client, d: &Deployment) -> Deployment {
    deployments(client)
        .create(d, &WriteParams::default())
        .await
        .unwrap()
}

async fn get(client: &Client, name: &str) -> Deployment {
    deployments(client).get(name).await.unwrap()
}

async fn patch(client: &Client, name: &str, body: serde_json::Value) {
    deployments(client)
        .patch(name, PatchType::Merge, &body, &WriteParams::default())
        .await
        .unwrap();
}

async fn set_image(client: &Client, name: &str, image: &str) {
    patch(
        client,
        name,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}),
    )
    .await;
}

/// The Deployment's ReplicaSets (controlled by it), oldest revision first.
async fn replicasets_of(client: &Client, d: &Deployment) -> Vec<ReplicaSet> {
    let mut rss: Vec<ReplicaSet> = Api::<ReplicaSet>::namespaced(client, NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| {
            controller_of(&rs.metadata).is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref())
        })
        .collect();
    rss.sort_by_key(revision::revision);
    rss
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

/// What `kubectl rollout status` waits for (kubectl 1.32's DeploymentStatusViewer).
fn rolled_out(d: &Deployment) -> bool {
    let s = d.status.clone().unwrap_or_default();
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let n = |v: Option<i32>| v.unwrap_or(0);
    d.metadata.generation <= s.observed_generation
        && n(s.updated_replicas) >= want
        && n(s.replicas) <= n(s.updated_replicas)
        && n(s.available_replicas) >= n(s.updated_replicas)
}

async fn wait_rolled_out(client: &Client, name: &str) -> Deployment {
    eventually(&format!("{name} rolled out"), WAIT, || async {
        rolled_out(&get(client, name).await)
    })
    .await;
    get(client, name).await
}

fn condition(s: &DeploymentStatus, type_: &str) -> Option<(String, String, String)> {
    progress::get(s, type_).map(|c| {
        (
            c.status.clone(),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rolls_out_a_hashed_replicaset_and_reports_it() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut d = deployment("web", 3, "nginx:1", "25%", "25%");
        d.metadata.annotations = Some(
            [
                (TRACEPARENT_ANNOTATION.to_string(), tp.to_string()),
                (
                    "kubernetes.io/change-cause".to_string(),
                    "first".to_string(),
                ),
            ]
            .into(),
        );
        create(&h.client, &d).await;
        let d = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(rss.len(), 1);
        let rs = &rss[0];
        let hash = rs.metadata.labels.as_ref().unwrap()[template::HASH_LABEL].clone();
        assert_eq!(name_of(rs), format!("web-{hash}"));
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(
            spec.selector.match_labels,
            Some(labels(&[("app", "web"), (template::HASH_LABEL, &hash)]))
        );
        assert_eq!(spec.replicas, Some(3));
        for (key, want) in [
            (revision::REVISION, "1"),
            (revision::DESIRED_REPLICAS, "3"),
            (revision::MAX_REPLICAS, "4"),
            ("kubernetes.io/change-cause", "first"),
            (TRACEPARENT_ANNOTATION, tp),
        ] {
            assert_eq!(
                annotation(&rs.metadata, key).as_deref(),
                Some(want),
                "{key}"
            );
        }
        assert_eq!(
            annotation(&d.metadata, revision::REVISION).as_deref(),
            Some("1")
        );
        let pods = owned_pods(&h.client, &uid_of(rs)).await;
        assert_eq!(pods.len(), 3);
        for p in &pods {
            assert_eq!(
                rkube_runtime::trace::traceparent(&p.metadata),
                Some(tp),
                "pods carry the trace"
            );
            assert_eq!(
                p.metadata.labels.as_ref().unwrap()[template::HASH_LABEL],
                hash
            );
        }
        let s = d.status.clone().unwrap();
        assert_eq!(
            (
                s.replicas,
                s.updated_replicas,
                s.ready_replicas,
                s.available_replicas,
                s.unavailable_replicas
            ),
            (Some(3), Some(3), Some(3), Some(3), None)
        );
        assert_eq!(
            condition(&s, progress::AVAILABLE).unwrap(),
            (
                "True".into(),
                "MinimumReplicasAvailable".into(),
                "Deployment has minimum availability.".into()
            )
        );
        eventually(
            "Progressing reports the new ReplicaSet available",
            WAIT,
            || async {
                let s = get(&h.client, "web").await.status.unwrap_or_default();
                condition(&s, progress::PROGRESSING)
                    == Some((
                        "True".into(),
                        "NewReplicaSetAvailable".into(),
                        format!("ReplicaSet \"web-{hash}\" has successfully progressed."),
                    ))
            },
        )
        .await;
        let scaled = events_for(&h.client, "web", "ScalingReplicaSet").await;
        assert_eq!(
            scaled,
            [(
                "Normal".to_string(),
                format!("Scaled up replica set web-{hash} from 0 to 3")
            )]
        );
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_deployment_scales_its_replicaset_without_a_rollout() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        create(&h.client, &deployment("web", 2, "nginx:1", "1", "0")).await;
        wait_rolled_out(&h.client, "web").await;
        for n in [5, 1] {
            // `kubectl scale` writes the same field through deployments/scale (the e2e
            // kubectl test drives that door).
            patch(&h.client, "web", json!({"spec": {"replicas": n}})).await;
            // Right after a scale-down the old counts still pass for rolled out (as
            // for kubectl); wait for the new ones.
            eventually(&format!("status shows {n}"), WAIT, || async {
                let d = get(&h.client, "web").await;
                let s = d.status.clone().unwrap_or_default();
                rolled_out(&d) && s.replicas == Some(n) && s.available_replicas == Some(n)
            })
            .await;
            let d = get(&h.client, "web").await;
            let rss = replicasets_of(&h.client, &d).await;
            assert_eq!(rss.len(), 1, "scaling is no rollout");
            assert_eq!(rss[0].spec.as_ref().unwrap().replicas, Some(n));
            assert_eq!(
                annotation(&rss[0].metadata, revision::DESIRED_REPLICAS),
                Some(n.to_string())
            );
            eventually(&format!("{n} pods"), WAIT, || async {
                owned_pods(&h.client, &uid_of(&rss[0])).await.len() == n as usize
            })
            .await;
        }
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

/// Counts per ReplicaSet owner among the active pods: (all, ready).
fn pod_counts(pods: &BTreeMap<String, Pod>) -> (usize, usize) {
    let active: Vec<&Pod> = pods.values().filter(|p| pods::is_active(p)).collect();
    (
        active.len(),
        active.iter().filter(|p| pods::is_ready(p)).count(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_never_breaks_max_surge_or_max_unavailable() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        // 8 replicas, 25%/25%: at most 10 pods wanted, at least 6 available.
        create(&h.client, &deployment("web", 8, "nginx:1", "25%", "25%")).await;
        let d = wait_rolled_out(&h.client, "web").await;
        eventually("8 ready pods", WAIT, || async {
            let pods =
                owned_pods(&h.client, &uid_of(&replicasets_of(&h.client, &d).await[0])).await;
            pods.iter().filter(|p| pods::is_ready(p)).count() == 8
        })
        .await;
        let wanted = Checker::start(Api::<ReplicaSet>::namespaced(&h.client, NS), |rss| {
            let total: i32 = rss.values().map(replicas::spec_replicas).sum();
            (total > 10).then(|| format!("the ReplicaSets want {total} pods, at most 10"))
        })
        .await;
        let available = Checker::start(Api::<Pod>::namespaced(&h.client, NS), |pods| {
            let (_, ready) = pod_counts(pods);
            (ready < 6).then(|| format!("{ready} pods ready, at least 6"))
        })
        .await;
        set_image(&h.client, "web", "nginx:2").await;
        let d = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(rss.len(), 2);
        assert_eq!(
            (image_of(&rss[1]), rss[1].spec.as_ref().unwrap().replicas),
            ("nginx:2".into(), Some(8))
        );
        assert_eq!(rss[0].spec.as_ref().unwrap().replicas, Some(0));
        assert_eq!(
            annotation(&d.metadata, revision::REVISION).as_deref(),
            Some("2")
        );
        eventually("the old pods are gone", WAIT, || async {
            owned_pods(&h.client, &uid_of(&rss[0])).await.is_empty()
        })
        .await;
        // 8 new pods created and readied, 8 old ones deleted: 24 pod events at least.
        eventually("the checkers saw the rollout", WAIT, || async {
            available.events() >= 24 && wanted.events() >= 4
        })
        .await;
        wanted.finish("maxSurge");
        available.finish("maxUnavailable");
        let scaled = events_for(&h.client, "web", "ScalingReplicaSet").await;
        let (old, new) = (name_of(&rss[0]), name_of(&rss[1]));
        for want in [
            format!("Scaled up replica set {new} from 0 to 2"),
            format!("Scaled down replica set {old} from 8 to "),
        ] {
            assert!(
                scaled.iter().any(|(_, m)| m.starts_with(&want)),
                "{want}: {scaled:?}"
            );
        }
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        create(&h.client, &deployment("web", 3, "nginx:1", "Recreate", "")).await;
        let d = wait_rolled_out(&h.client, "web").await;
        let old_uid = uid_of(&replicasets_of(&h.client, &d).await[0]);
        let checker = Checker::start(Api::<Pod>::namespaced(&h.client, NS), move |pods| {
            let owners: std::collections::BTreeSet<String> = pods
                .values()
                .filter_map(|p| controller_of(&p.metadata).map(|r| r.uid.clone()))
                .collect();
            (owners.len() > 1 && owners.contains(&old_uid))
                .then(|| format!("old and new pods at once: {owners:?}"))
        })
        .await;
        set_image(&h.client, "web", "nginx:2").await;
        let d = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(image_of(&rss[1]), "nginx:2");
        assert_eq!(owned_pods(&h.client, &uid_of(&rss[1])).await.len(), 3);
        eventually("the checker saw the rollout", WAIT, || async {
            checker.events() >= 9
        })
        .await;
        checker.finish("Recreate's order");
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_scales_but_rolls_nothing_out_until_resumed() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        create(&h.client, &deployment("web", 2, "nginx:1", "1", "0")).await;
        wait_rolled_out(&h.client, "web").await;
        patch(&h.client, "web", json!({"spec": {"paused": true}})).await;
        set_image(&h.client, "web", "nginx:2").await;
        patch(&h.client, "web", json!({"spec": {"replicas": 3}})).await;
        eventually("the paused state is observed", WAIT, || async {
            let d = get(&h.client, "web").await;
            let s = d.status.clone().unwrap_or_default();
            s.observed_generation == d.metadata.generation
                && condition(&s, progress::PROGRESSING)
                    .is_some_and(|c| c.1 == "DeploymentPaused" && c.2 == "Deployment is paused")
                && s.replicas == Some(3)
        })
        .await;
        let d = get(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(rss.len(), 1, "nothing rolled out while paused");
        assert_eq!(
            (image_of(&rss[0]), rss[0].spec.as_ref().unwrap().replicas),
            ("nginx:1".into(), Some(3))
        );
        patch(&h.client, "web", json!({"spec": {"paused": false}})).await;
        let d = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(rss.len(), 2);
        assert_eq!(
            (image_of(&rss[1]), rss[1].spec.as_ref().unwrap().replicas),
            ("nginx:2".into(), Some(3))
        );
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_makes_the_old_replicaset_the_newest_revision() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        create(&h.client, &deployment("web", 2, "nginx:1", "1", "0")).await;
        wait_rolled_out(&h.client, "web").await;
        set_image(&h.client, "web", "nginx:2").await;
        let d = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(
            rss.iter().map(revision::revision).collect::<Vec<_>>(),
            [1, 2]
        );
        // What `kubectl rollout undo` sends: the old ReplicaSet's template (without its
        // hash label) and its annotations but the controller's own, as a JSON patch.
        let mut t = rss[0].spec.as_ref().unwrap().template.clone().unwrap();
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .remove(template::HASH_LABEL);
        let body = json!([
            {"op": "replace", "path": "/spec/template", "value": t},
            {"op": "replace", "path": "/metadata/annotations", "value": {revision::REVISION: "2"}},
        ]);
        deployments(&h.client)
            .patch("web", PatchType::Json, &body, &WriteParams::default())
            .await
            .unwrap();
        eventually("revision 3 rolled out", WAIT, || async {
            let d = get(&h.client, "web").await;
            rolled_out(&d) && annotation(&d.metadata, revision::REVISION).as_deref() == Some("3")
        })
        .await;
        let d = get(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(
            rss.len(),
            2,
            "no third ReplicaSet: the old one is new again"
        );
        let back = &rss[1];
        assert_eq!(
            (image_of(back), revision::revision(back)),
            ("nginx:1".into(), 3)
        );
        assert_eq!(
            annotation(&back.metadata, revision::REVISION_HISTORY).as_deref(),
            Some("1")
        );
        assert_eq!(back.spec.as_ref().unwrap().replicas, Some(2));
        assert_eq!(rss[0].spec.as_ref().unwrap().replicas, Some(0));
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_replicasets_beyond_the_history_limit_are_deleted() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        let mut d = deployment("web", 1, "nginx:1", "1", "0");
        d.spec.as_mut().unwrap().revision_history_limit = Some(1);
        create(&h.client, &d).await;
        wait_rolled_out(&h.client, "web").await;
        for image in ["nginx:2", "nginx:3"] {
            set_image(&h.client, "web", image).await;
            wait_rolled_out(&h.client, "web").await;
        }
        let d = get(&h.client, "web").await;
        eventually("revision 1 pruned", WAIT, || async {
            replicasets_of(&h.client, &d)
                .await
                .iter()
                .map(revision::revision)
                .collect::<Vec<_>>()
                == [2, 3]
        })
        .await;
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_without_progress_exceeds_its_deadline() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        // No kubelet: pods never become ready.
        let mut d = deployment("web", 2, "nginx:1", "1", "0");
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
        create(&h.client, &d).await;
        eventually("ProgressDeadlineExceeded", WAIT, || async {
            let s = get(&h.client, "web").await.status.unwrap_or_default();
            condition(&s, progress::PROGRESSING).is_some_and(|(status, reason, msg)| {
                status == "False"
                    && reason == "ProgressDeadlineExceeded"
                    && msg.starts_with("ReplicaSet \"web-")
                    && msg.ends_with("\" has timed out progressing.")
            })
        })
        .await;
        let s = get(&h.client, "web").await.status.unwrap_or_default();
        assert_eq!(
            condition(&s, progress::AVAILABLE).map(|c| c.1),
            Some("MinimumReplicasUnavailable".to_string())
        );
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_orphan_replicaset_is_adopted_as_the_new_one() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        // An orphan with the Deployment's template and selector.
        let d = deployment("web", 2, "nginx:1", "1", "0");
        let orphan = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-by-hand".into()),
                namespace: Some(NS.into()),
                labels: Some(labels(&[("app", "web")])),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(2),
                selector: d.spec.as_ref().unwrap().selector.clone(),
                template: Some(d.spec.as_ref().unwrap().template.clone()),
                ..Default::default()
            }),
            status: None,
        };
        Api::<ReplicaSet>::namespaced(&h.client, NS)
            .create(&orphan, &WriteParams::default())
            .await
            .unwrap();
        let d = create(&h.client, &d).await;
        let d2 = wait_rolled_out(&h.client, "web").await;
        let rss = replicasets_of(&h.client, &d2).await;
        assert_eq!(rss.iter().map(name_of).collect::<Vec<_>>(), ["web-by-hand"]);
        assert_eq!(revision::revision(&rss[0]), 1);
        assert_eq!(uid_of(&d), uid_of(&d2));
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicaset_name_taken_by_another_template_is_stepped_around() {
    timeout(async {
        let (h, tasks) = start(BOTH, &[]).await;
        let k = kubelet(&h.client, None);
        let mut d = deployment("web", 1, "nginx:1", "1", "0");
        d.spec.as_mut().unwrap().paused = Some(true);
        let d = create(&h.client, &d).await;
        // The name the Deployment's new ReplicaSet would get, taken by another one.
        let hash = template::template_hash(&d.spec.as_ref().unwrap().template, None);
        let mut squatter =
            crate::replicaset::tests::replicaset(&format!("web-{hash}"), 0, &[("app", "other")]);
        squatter.metadata.namespace = Some(NS.into());
        Api::<ReplicaSet>::namespaced(&h.client, NS)
            .create(&squatter, &WriteParams::default())
            .await
            .unwrap();
        patch(&h.client, "web", json!({"spec": {"paused": false}})).await;
        let d = wait_rolled_out(&h.client, "web").await;
        assert_eq!(d.status.as_ref().unwrap().collision_count, Some(1));
        let rss = replicasets_of(&h.client, &d).await;
        assert_eq!(rss.len(), 1);
        let second = template::template_hash(&d.spec.as_ref().unwrap().template, Some(1));
        assert_eq!(name_of(&rss[0]), format!("web-{second}"));
        k.abort();
        stop(h, tasks).await;
    })
    .await
    .expect("test timed out");
}
