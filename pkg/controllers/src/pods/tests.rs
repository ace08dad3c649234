use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// A pod in `phase`, ready since `ready_at` (seconds) when given.
pub(crate) fn pod(phase: &str, ready_at: Option<i64>) -> Pod {
    Pod {
        status: Some(PodStatus {
            phase: Some(phase.to_string()).filter(|s| !s.is_empty()),
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(at(t))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_is_active_until_it_finishes_or_is_deleted() {
    let mut deleting = pod("Running", None);
    deleting.metadata.deletion_timestamp = Some(Time(at(5)));
    let cases = [
        ("pending", pod("Pending", None), true),
        ("running", pod("Running", Some(1)), true),
        ("no phase yet", pod("", None), true),
        ("unknown", pod("Unknown", None), true),
        ("succeeded", pod("Succeeded", None), false),
        ("failed", pod("Failed", None), false),
        ("being deleted", deleting, false),
    ];
    for (name, p, want) in cases {
        assert_eq!(is_active(&p), want, "{name}");
    }
}

#[test]
fn availability_needs_readiness_for_longer_than_min_ready_seconds() {
    let mut not_ready = pod("Running", Some(100));
    not_ready
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0]
        .status = "False".into();
    // (name, pod, minReadySeconds, now, available, available in ms)
    let cases = [
        (
            "ready, no minimum",
            pod("Running", Some(100)),
            0,
            100,
            true,
            None,
        ),
        ("not ready", not_ready, 0, 200, false, None),
        ("never ready", pod("Pending", None), 5, 200, false, None),
        (
            "ready too briefly",
            pod("Running", Some(100)),
            10,
            105,
            false,
            Some(5001),
        ),
        (
            "exactly at the minimum",
            pod("Running", Some(100)),
            10,
            110,
            false,
            Some(1),
        ),
        (
            "past the minimum",
            pod("Running", Some(100)),
            10,
            111,
            true,
            None,
        ),
    ];
    for (name, p, min_ready, now, want, wait) in cases {
        assert_eq!(
            is_ready(&p),
            name != "not ready" && name != "never ready",
            "{name}"
        );
        assert_eq!(is_available(&p, min_ready, at(now)), want, "{name}");
        assert_eq!(available_in_ms(&p, min_ready, at(now)), wait, "{name}");
    }
}

#[test]
fn restarts_and_node_are_read_from_status_and_spec() {
    let mut p = pod("Running", None);
    assert_eq!((max_restarts(&p), node_name(&p)), (0, ""));
    p.status.as_mut().unwrap().container_statuses = Some(
        [3, 7, 1]
            .into_iter()
            .map(|n| ContainerStatus {
                restart_count: n,
                ..Default::default()
            })
            .collect(),
    );
    p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
        node_name: Some("n1".into()),
        ..Default::default()
    });
    assert_eq!((max_restarts(&p), node_name(&p)), (7, "n1"));
}
