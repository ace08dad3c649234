use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

const NOW: i64 = 1_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// A pod description: name, node ("" = unscheduled), phase, ready since (seconds ago),
/// created (seconds ago), restarts, deletion cost.
#[derive(Clone, Copy)]
struct P {
    name: &'static str,
    node: &'static str,
    phase: &'static str,
    ready_ago: Option<i64>,
    created_ago: i64,
    restarts: i32,
    cost: Option<i32>,
}

const BASE: P = P {
    name: "",
    node: "n1",
    phase: "Running",
    ready_ago: Some(1000),
    created_ago: 2000,
    restarts: 0,
    cost: None,
};

fn pod(p: P) -> Arc<Pod> {
    let mut pod = Pod::default();
    pod.metadata.name = Some(p.name.into());
    pod.metadata.uid = Some(format!("uid-{}", p.name));
    pod.metadata.creation_timestamp = Some(Time(at(NOW - p.created_ago)));
    if let Some(c) = p.cost {
        pod.metadata.annotations = Some([(DELETION_COST.to_string(), c.to_string())].into());
    }
    pod.spec = Some(PodSpec {
        node_name: Some(p.node.to_string()).filter(|n| !n.is_empty()),
        ..Default::default()
    });
    pod.status = Some(PodStatus {
        phase: Some(p.phase.into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if p.ready_ago.is_some() {
                "True"
            } else {
                "False"
            }
            .into(),
            last_transition_time: p.ready_ago.map(|a| Time(at(NOW - a))),
            ..Default::default()
        }]),
        container_statuses: Some(vec![ContainerStatus {
            restart_count: p.restarts,
            ..Default::default()
        }]),
        ..Default::default()
    });
    Arc::new(pod)
}

fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
    pods.iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect()
}

#[test]
fn surplus_pods_are_deleted_in_kubernetes_order() {
    // (rule, the pod deleted first, the one kept)
    let cases: Vec<(&str, P, P)> = vec![
        (
            "unscheduled before scheduled",
            P {
                name: "a",
                node: "",
                phase: "Pending",
                ready_ago: None,
                ..BASE
            },
            P {
                name: "b",
                phase: "Pending",
                ready_ago: None,
                ..BASE
            },
        ),
        (
            "pending before running",
            P {
                name: "a",
                phase: "Pending",
                ready_ago: None,
                ..BASE
            },
            P {
                name: "b",
                ready_ago: None,
                ..BASE
            },
        ),
        (
            "unknown before running",
            P {
                name: "a",
                phase: "Unknown",
                ready_ago: None,
                ..BASE
            },
            P {
                name: "b",
                ready_ago: None,
                ..BASE
            },
        ),
        (
            "pending before unknown",
            P {
                name: "a",
                phase: "Pending",
                ready_ago: None,
                ..BASE
            },
            P {
                name: "b",
                phase: "Unknown",
                ready_ago: None,
                ..BASE
            },
        ),
        (
            "not ready before ready",
            P {
                name: "a",
                ready_ago: None,
                ..BASE
            },
            P { name: "b", ..BASE },
        ),
        (
            "lower deletion cost first",
            P {
                name: "a",
                cost: Some(-5),
                ..BASE
            },
            P {
                name: "b",
                cost: Some(10),
                ..BASE
            },
        ),
        (
            "ready for less time first",
            P {
                name: "a",
                ready_ago: Some(10),
                ..BASE
            },
            P {
                name: "b",
                ready_ago: Some(1000),
                ..BASE
            },
        ),
        (
            "more restarts first",
            P {
                name: "a",
                restarts: 4,
                ..BASE
            },
            P {
                name: "b",
                restarts: 1,
                ..BASE
            },
        ),
        (
            "newer first",
            P {
                name: "a",
                created_ago: 100,
                ..BASE
            },
            P {
                name: "b",
                created_ago: 100_000,
                ..BASE
            },
        ),
        (
            "readiness outranks age",
            P {
                name: "a",
                ready_ago: None,
                created_ago: 100_000,
                ..BASE
            },
            P {
                name: "b",
                created_ago: 10,
                ..BASE
            },
        ),
        (
            "similar ages tie-break by uid",
            P {
                name: "a",
                created_ago: 1100,
                ..BASE
            },
            P {
                name: "b",
                created_ago: 1200,
                ..BASE
            },
        ),
    ];
    for (rule, first, kept) in cases {
        for order in [[first, kept], [kept, first]] {
            let pods: Vec<_> = order.into_iter().map(pod).collect();
            let chosen = pods_to_delete(&pods, &pods, 1, at(NOW));
            assert_eq!(names(&chosen), [first.name], "{rule}");
        }
    }
}

#[test]
fn pods_on_crowded_nodes_go_first() {
    let a = pod(P {
        name: "a",
        node: "n1",
        ..BASE
    });
    let b = pod(P {
        name: "b",
        node: "n2",
        ..BASE
    });
    // Two more pods of the workload share n2.
    let related = [
        a.clone(),
        b.clone(),
        pod(P {
            name: "c",
            node: "n2",
            ..BASE
        }),
        pod(P {
            name: "d",
            node: "n2",
            ..BASE
        }),
    ];
    let chosen = pods_to_delete(&[a, b], &related, 1, at(NOW));
    assert_eq!(names(&chosen), ["b"]);
}

#[test]
fn asking_for_as_many_as_there_are_returns_them_all() {
    let pods = vec![pod(P { name: "a", ..BASE }), pod(P { name: "b", ..BASE })];
    assert_eq!(pods_to_delete(&pods, &pods, 5, at(NOW)).len(), 2);
    assert!(pods_to_delete(&pods, &pods, 0, at(NOW)).is_empty());
}

#[test]
fn ages_are_ranked_on_a_log2_scale() {
    let now = at(NOW);
    // (seconds ago, floor(log2(nanoseconds)))
    for (ago, want) in [(0, -1), (1, 29), (2, 30), (3, 31), (4, 31), (1000, 39)] {
        assert_eq!(log_age(at(NOW - ago), now), want, "{ago}s");
    }
    assert_eq!(
        log_age(at(NOW + 5), now),
        -1,
        "a time in the future has no age"
    );
}

#[test]
fn a_malformed_deletion_cost_counts_as_zero() {
    let mut p = (*pod(BASE)).clone();
    p.metadata.annotations = Some([(DELETION_COST.to_string(), "lots".to_string())].into());
    assert_eq!(deletion_cost(&p), 0);
}

/// The order is total over pods that differ in every key at once (ready times and creation
/// times in equal and different log2 buckets, UIDs in every order): antisymmetric and
/// transitive, so `sort_by` can never panic on it. A set like this once made the
/// ReplicaSet controller's worker panic mid-rollout ("does not correctly implement a
/// total order").
#[test]
fn the_order_is_total_over_pods_alike_and_different_in_every_key() {
    const NAMES: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    let mut pods = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let i = i as i64;
        pods.push(pod(P {
            name,
            // Same bucket for some, different for others; ready equal for some pairs.
            ready_ago: if i % 4 == 0 {
                None
            } else {
                Some(100 + (i % 3) * 40)
            },
            phase: if i % 4 == 0 { "Pending" } else { "Running" },
            created_ago: 1000 + (i % 5) * 300,
            restarts: (i % 2) as i32,
            ..BASE
        }));
    }
    let now = at(NOW);
    let cmp = |a: &Arc<Pod>, b: &Arc<Pod>| compare(a, 1, b, 1, now);
    for a in &pods {
        assert_eq!(cmp(a, a), Ordering::Equal);
        for b in &pods {
            assert_eq!(cmp(a, b), cmp(b, a).reverse(), "antisymmetric");
            for c in &pods {
                if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
                    assert_ne!(cmp(a, c), Ordering::Greater, "transitive");
                }
            }
        }
    }
    // And a large sort of such pods finishes.
    let many: Vec<Arc<Pod>> = (0..600).map(|k| pods[k % pods.len()].clone()).collect();
    assert_eq!(pods_to_delete(&many, &many, 300, now).len(), 300);
}
