use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{
    Container, Event, NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use rkube_api::taints::{NOT_READY, NO_EXECUTE, NO_SCHEDULE, UNREACHABLE, UNSCHEDULABLE};
use rkube_client::ListParams;

use super::eviction::{decide, Decision};
use super::health::{desired_taints, silent_conditions};
use super::*;
use crate::testing::{eventually, Harness};

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn node_with(ready: Option<&str>, taints: Vec<Taint>, cordoned: bool) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints).filter(|t| !t.is_empty()),
            unschedulable: cordoned.then_some(true),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            conditions: ready.map(|r| {
                vec![NodeCondition {
                    type_: "Ready".into(),
                    status: r.into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    }
}

fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: added.map(|s| Time(ts(s))),
    }
}

fn keys(t: &[Taint]) -> Vec<String> {
    let mut v: Vec<String> = t
        .iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    v.sort();
    v
}

#[test]
fn taints_follow_the_ready_condition_and_cordoning() {
    let other = taint("dedicated", NO_SCHEDULE, None);
    // (ready, existing taints, cordoned, wanted taints or None when nothing changes)
    type Case<'a> = (Option<&'a str>, Vec<Taint>, bool, Option<Vec<&'a str>>);
    let cases: Vec<Case> = vec![
        (Some("True"), vec![], false, None),
        (
            Some("False"),
            vec![],
            false,
            Some(vec![
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/not-ready:NoSchedule",
            ]),
        ),
        (
            Some("Unknown"),
            vec![other.clone()],
            false,
            Some(vec![
                "dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule",
            ]),
        ),
        (
            None,
            vec![
                taint(UNREACHABLE, NO_SCHEDULE, None),
                taint(UNREACHABLE, NO_EXECUTE, Some(0)),
            ],
            false,
            None,
        ),
        (
            Some("True"),
            vec![
                taint(UNREACHABLE, NO_SCHEDULE, None),
                taint(UNREACHABLE, NO_EXECUTE, Some(0)),
                other.clone(),
            ],
            false,
            Some(vec!["dedicated:NoSchedule"]),
        ),
        (
            Some("True"),
            vec![],
            true,
            Some(vec!["node.kubernetes.io/unschedulable:NoSchedule"]),
        ),
        (
            Some("True"),
            vec![taint(UNSCHEDULABLE, NO_SCHEDULE, None)],
            false,
            Some(vec![]),
        ),
    ];
    for (i, (ready, existing, cordoned, want)) in cases.into_iter().enumerate() {
        let got = desired_taints(&node_with(ready, existing, cordoned), ts(10));
        assert_eq!(
            got.as_deref().map(keys),
            want.map(|w| w.iter().map(|s| s.to_string()).collect()),
            "case {i}"
        );
    }
}

#[test]
fn a_kept_noexecute_taint_keeps_its_time_added_and_a_new_one_gets_now() {
    let n = node_with(
        Some("False"),
        vec![taint(NOT_READY, NO_EXECUTE, Some(3))],
        false,
    );
    let t = desired_taints(&n, ts(50)).unwrap();
    let ne = t.iter().find(|t| t.effect == NO_EXECUTE).unwrap();
    assert_eq!(ne.time_added, Some(Time(ts(3))));
    let n = node_with(Some("False"), vec![], false);
    let t = desired_taints(&n, ts(50)).unwrap();
    let ne = t.iter().find(|t| t.effect == NO_EXECUTE).unwrap();
    assert_eq!(ne.time_added, Some(Time(ts(50))));
    assert!(t
        .iter()
        .find(|t| t.effect == NO_SCHEDULE)
        .unwrap()
        .time_added
        .is_none());
}

#[test]
fn a_silent_node_gets_unknown_conditions_once() {
    let n = node_with(Some("True"), vec![], false);
    let c = silent_conditions(&n, ts(1)).unwrap();
    let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("Unknown", Some("NodeStatusUnknown"))
    );
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let mem = c.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
    assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    assert_eq!(c.len(), 4);
    let mut again = n.clone();
    again.status.as_mut().unwrap().conditions = Some(c);
    assert!(
        silent_conditions(&again, ts(2)).is_none(),
        "already Unknown: nothing to write"
    );
}

fn pod_tolerating(tols: Vec<Toleration>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            tolerations: Some(tols),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tol(key: &str, secs: Option<i64>) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(NO_EXECUTE.into()),
        toleration_seconds: secs,
        value: None,
    }
}

#[test]
fn evictions_follow_tolerations_and_when_the_taint_was_added() {
    let unreachable = vec![
        taint(UNREACHABLE, NO_EXECUTE, Some(100)),
        taint(UNREACHABLE, NO_SCHEDULE, None),
    ];
    let cases: Vec<(&str, Vec<Toleration>, Vec<Taint>, Decision)> = vec![
        (
            "no NoExecute taint",
            vec![],
            vec![taint(UNREACHABLE, NO_SCHEDULE, None)],
            Decision::Keep,
        ),
        (
            "untolerated: now",
            vec![],
            unreachable.clone(),
            Decision::EvictAt(Timestamp::UNIX_EPOCH),
        ),
        (
            "300 s after the taint",
            vec![tol(UNREACHABLE, Some(300))],
            unreachable.clone(),
            Decision::EvictAt(ts(400)),
        ),
        (
            "the shortest toleration wins",
            vec![tol(UNREACHABLE, Some(300)), tol(UNREACHABLE, Some(30))],
            unreachable.clone(),
            Decision::EvictAt(ts(130)),
        ),
        (
            "for ever",
            vec![tol(UNREACHABLE, None)],
            unreachable.clone(),
            Decision::Keep,
        ),
        (
            "another key's toleration does not help",
            vec![tol(NOT_READY, None)],
            unreachable.clone(),
            Decision::EvictAt(Timestamp::UNIX_EPOCH),
        ),
        (
            "a taint without timeAdded counts from now",
            vec![tol(UNREACHABLE, Some(5))],
            vec![taint(UNREACHABLE, NO_EXECUTE, None)],
            Decision::EvictAt(ts(1005)),
        ),
    ];
    for (why, tols, taints, want) in cases {
        assert_eq!(
            decide(&pod_tolerating(tols), &taints, ts(1000)),
            want,
            "{why}"
        );
    }
}

// --- against an in-process apiserver -------------------------------------------------

fn lease(name: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            renew_time: Some(MicroTime(rkube_runtime::object::now())),
            lease_duration_seconds: Some(40),
            ..Default::default()
        }),
    }
}

fn test_pod(name: &str, node: &str, tolerations: Vec<Toleration>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "c".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            tolerations: Some(tolerations),
            ..Default::default()
        }),
        status: Some(PodStatus::default()),
    }
}

async fn taints_of(api: &Api<Node>, name: &str) -> Vec<String> {
    let n = api.get(name).await.unwrap();
    keys(&n.spec.and_then(|s| s.taints).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_tainted_its_pods_evicted_by_their_tolerations_and_it_recovers() {
    let h = Harness::start().await;
    let nodes: Api<Node> = Api::cluster(&h.client);
    let leases: Api<Lease> = Api::namespaced(&h.client, LEASE_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(&h.client, "default");
    let mut n = node_with(Some("True"), vec![], false);
    n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_heartbeat_time =
        Some(Time(rkube_runtime::object::now()));
    nodes.create(&n, &WriteParams::default()).await.unwrap();
    leases
        .create(&lease("n1"), &WriteParams::default())
        .await
        .unwrap();
    // The apiserver gives a pod without its own tolerations 300 s (DefaultTolerationSeconds).
    for (name, tols) in [
        ("immediate", vec![tol(UNREACHABLE, Some(0))]),
        ("patient", vec![tol(UNREACHABLE, Some(3))]),
        ("loyal", vec![tol(UNREACHABLE, None)]),
        ("defaulted", vec![]),
    ] {
        pods.create(&test_pod(name, "n1", tols), &WriteParams::default())
            .await
            .unwrap();
    }
    let ctx = h.context(&[
        "--node-monitor-grace-period",
        "2s",
        "--node-monitor-period",
        "500ms",
    ]);
    let task = tokio::spawn(run(ctx.clone()));
    ctx.factory.start(h.shutdown.clone());

    // Renewed: stays Ready and untainted for longer than the grace period.
    let renew = || async {
        let mut l = leases.get("n1").await.unwrap();
        l.spec.as_mut().unwrap().renew_time = Some(MicroTime(rkube_runtime::object::now()));
        leases.update(&l, &WriteParams::default()).await.unwrap();
    };
    for _ in 0..6 {
        renew().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(taints_of(&nodes, "n1").await.is_empty());
    assert_eq!(
        health::ready_status(&nodes.get("n1").await.unwrap()),
        Some("True")
    );

    // Silent: Ready=Unknown, unreachable taints, a NodeNotReady event; the pod tolerating
    // 0 s goes at once, the patient one after its 3 s; the loyal one and the one with the
    // default 300 s stay.
    let silent_at = tokio::time::Instant::now();
    eventually(
        "the node is unreachable and tainted",
        Duration::from_secs(10),
        || {
            let nodes = nodes.clone();
            async move {
                let n = nodes.get("n1").await.unwrap();
                health::ready_status(&n) == Some("Unknown")
                    && keys(&n.spec.and_then(|s| s.taints).unwrap_or_default())
                        == [
                            "node.kubernetes.io/unreachable:NoExecute",
                            "node.kubernetes.io/unreachable:NoSchedule",
                        ]
            }
        },
    )
    .await;
    assert!(
        silent_at.elapsed() >= Duration::from_millis(1500),
        "not before the grace period"
    );
    eventually(
        "the intolerant pod is evicted",
        Duration::from_secs(5),
        || {
            let pods = pods.clone();
            async move { evicted(&pods, "intolerant").await }
        },
    )
    .await;
    assert!(!evicted(&pods, "patient").await, "tolerates for 3 s");
    eventually(
        "the patient pod is evicted after its toleration",
        Duration::from_secs(10),
        || {
            let pods = pods.clone();
            async move { evicted(&pods, "patient").await }
        },
    )
    .await;
    let loyal = pods.get("loyal").await.unwrap();
    let ready = loyal
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status);
    assert_eq!(
        ready.as_deref(),
        Some("False"),
        "its Ready condition was set False"
    );
    let events: Api<Event> = Api::namespaced(&h.client, "default");
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"NodeNotReady".to_string()), "{reasons:?}");
    assert!(
        reasons.contains(&"TaintManagerEviction".to_string()),
        "{reasons:?}"
    );

    // Back: the kubelet reports Ready again, the taints go.
    renew().await;
    let mut n = nodes.get("n1").await.unwrap();
    let conditions: Vec<NodeCondition> = vec![NodeCondition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: Some("KubeletReady".into()),
        last_heartbeat_time: Some(Time(rkube_runtime::object::now())),
        ..Default::default()
    }];
    n.status.as_mut().unwrap().conditions = Some(conditions);
    nodes
        .update_status(&n, &WriteParams::default())
        .await
        .unwrap();
    eventually("the taints are removed", Duration::from_secs(10), || {
        let nodes = nodes.clone();
        async move { taints_of(&nodes, "n1").await.is_empty() }
    })
    .await;
    assert!(pods.get("loyal").await.is_ok());
    assert!(pods.get("defaulted").await.is_ok(), "300 s have not passed");
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    h.stop().await;
}

/// Evicted: deleted, or (a bound pod, deleted gracefully) marked for deletion while its
/// kubelet is away.
async fn evicted(pods: &Api<Pod>, name: &str) -> bool {
    match pods.get(name).await {
        Err(e) => e.is_not_found(),
        Ok(p) => p.metadata.deletion_timestamp.is_some(),
    }
}
