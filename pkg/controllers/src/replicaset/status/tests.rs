use k8s_openapi::api::apps::v1::ReplicaSetSpec;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

const NOW: i64 = 10_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn rs(min_ready: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(2),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(3),
            min_ready_seconds: Some(min_ready),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(
                        [("app", "web"), ("tier", "front")]
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .into(),
                    ),
                    ..Default::default()
                }),
                spec: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A pod with `labels`, ready since `ready_ago` seconds when given.
fn pod(labels: &[(&str, &str)], ready_ago: Option<i64>) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    p.status = Some(PodStatus {
        conditions: ready_ago.map(|a| {
            vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(at(NOW - a))),
                ..Default::default()
            }]
        }),
        ..Default::default()
    });
    Arc::new(p)
}

const FULL: &[(&str, &str)] = &[("app", "web"), ("tier", "front"), ("extra", "x")];
const PARTIAL: &[(&str, &str)] = &[("app", "web")];

#[test]
fn status_counts_pods_as_kubernetes_does() {
    // (name, minReadySeconds, pods, replicas, fully labeled, ready, available)
    type Case = (&'static str, i32, Vec<Arc<Pod>>, i32, i32, i32, i32);
    let cases: Vec<Case> = vec![
        ("no pods", 0, vec![], 0, 0, 0, 0),
        (
            "labels beyond the template still count as fully labeled",
            0,
            vec![pod(FULL, None), pod(PARTIAL, None)],
            2,
            1,
            0,
            0,
        ),
        (
            "ready is available without minReadySeconds",
            0,
            vec![pod(FULL, Some(1)), pod(FULL, None)],
            2,
            2,
            1,
            1,
        ),
        (
            "ready but not long enough",
            30,
            vec![
                pod(FULL, Some(10)),
                pod(FULL, Some(31)),
                pod(FULL, Some(30)),
            ],
            3,
            3,
            3,
            1,
        ),
    ];
    for (name, min_ready, pods, replicas, labeled, ready, available) in cases {
        let s = calculate(&rs(min_ready), &pods, None, at(NOW));
        let n = |v: Option<i32>| v.unwrap_or(0);
        assert_eq!(
            (
                s.replicas,
                n(s.fully_labeled_replicas),
                n(s.ready_replicas),
                n(s.available_replicas)
            ),
            (replicas, labeled, ready, available),
            "{name}"
        );
        assert!(
            s.ready_replicas != Some(0) && s.available_replicas != Some(0),
            "{name}: zero counts are omitted"
        );
    }
}

#[test]
fn a_failure_sets_the_replica_failure_condition_until_a_round_succeeds() {
    let failure = Failure {
        reason: "FailedCreate",
        message: "pods \"web-\" is forbidden: quota".into(),
    };
    let mut r = rs(0);
    let s = calculate(&r, &[], Some(&failure), at(NOW));
    let c = &s.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
        ("ReplicaFailure", "True", Some("FailedCreate"))
    );
    assert_eq!(c.message.as_deref(), Some(failure.message.as_str()));
    r.status = Some(s.clone());
    // Another failure keeps the first condition (its time included).
    let again = calculate(
        &r,
        &[],
        Some(&Failure {
            reason: "FailedDelete",
            message: "other".into(),
        }),
        at(NOW + 60),
    );
    assert_eq!(again.conditions, s.conditions);
    // A round without failure removes it.
    assert_eq!(calculate(&r, &[], None, at(NOW)).conditions, None);
}

#[test]
fn status_is_written_only_when_something_changed() {
    let mut r = rs(0);
    let pods = vec![pod(FULL, Some(5))];
    let s = calculate(&r, &pods, None, at(NOW));
    assert!(needs_update(&r, &s), "never written");
    let mut written = s.clone();
    written.observed_generation = r.metadata.generation;
    r.status = Some(written);
    assert!(!needs_update(&r, &calculate(&r, &pods, None, at(NOW))));
    r.metadata.generation = Some(3);
    assert!(
        needs_update(&r, &calculate(&r, &pods, None, at(NOW))),
        "a new generation to observe"
    );
    r.metadata.generation = Some(2);
    assert!(needs_update(&r, &calculate(&r, &[], None, at(NOW))));
}

#[test]
fn the_next_check_is_when_the_first_ready_pod_turns_available() {
    let pods = vec![pod(FULL, Some(10)), pod(FULL, Some(25)), pod(FULL, None)];
    assert_eq!(
        next_availability_check(&rs(30), &pods, at(NOW)),
        Some(5_001)
    );
    assert_eq!(next_availability_check(&rs(0), &pods, at(NOW)), None);
    assert_eq!(
        next_availability_check(&rs(5), &pods, at(NOW)),
        None,
        "all ready pods already available"
    );
}
