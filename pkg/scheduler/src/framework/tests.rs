use rand::SeedableRng;
use serde_json::json;

use super::*;
use crate::testing::{info, node, node_info, pod};

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

#[test]
fn the_number_of_nodes_to_find_follows_kubernetes_adaptive_percentage() {
    let cases = [
        (50, None, 50),
        (99, Some(10), 99),
        (1000, None, 420),
        (5000, None, 500),
        (100_000, None, 5000),
        (1000, Some(100), 1000),
        (1000, Some(1), 100),
        (5000, Some(50), 2500),
    ];
    for (all, pct, want) in cases {
        assert_eq!(num_feasible_nodes_to_find(all, pct), want, "{all} {pct:?}");
    }
}

#[test]
fn failed_scheduling_is_worded_as_kubernetes_words_it() {
    let e = FitError {
        num_all_nodes: 3,
        reasons: [
            ("Insufficient cpu".to_string(), 2),
            (
                "node(s) had untolerated taint {dedicated: x}".to_string(),
                1,
            ),
        ]
        .into(),
    };
    assert_eq!(
        e.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: x}, 2 Insufficient cpu. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    assert_eq!(
        FitError::default().to_string(),
        "no nodes available to schedule pods"
    );
}

#[test]
fn schedule_picks_the_best_feasible_node_and_counts_reasons_for_the_rest() {
    let nodes = vec![
        node_info(node("small", "1", "1Gi", json!({})), vec![]),
        node_info(
            node("busy", "4", "4Gi", json!({})),
            vec![pod("a", "3", "", json!({}))],
        ),
        node_info(node("free", "4", "4Gi", json!({})), vec![]),
        node_info(
            node(
                "tainted",
                "8",
                "8Gi",
                json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
            ),
            vec![],
        ),
    ];
    let profile = Profile::default();
    let attempt = Attempt {
        profile: &profile,
        start: 0,
        others_have_terms: false,
        spread: None,
    };
    let p = info(pod("p", "2", "1Gi", json!({})));
    let out = schedule(&p, &nodes, &attempt, &mut rng());
    assert_eq!(out.result.unwrap().node, "free");
    let big = info(pod("p", "6", "1Gi", json!({})));
    let err = schedule(&big, &nodes, &attempt, &mut rng())
        .result
        .unwrap_err();
    assert_eq!(err.num_all_nodes, 4);
    assert_eq!(err.reasons["Insufficient cpu"], 3);
    assert_eq!(
        err.reasons["node(s) had untolerated taint {dedicated: x}"],
        1
    );
}

#[test]
fn most_allocated_packs_where_least_allocated_spreads() {
    let nodes = vec![
        node_info(
            node("a", "4", "4Gi", json!({})),
            vec![pod("x", "2", "2Gi", json!({}))],
        ),
        node_info(node("b", "4", "4Gi", json!({})), vec![]),
    ];
    let p = info(pod("p", "1", "1Gi", json!({})));
    let spread = Profile::default();
    let pack = Profile {
        fit_strategy: scores::Strategy::MostAllocated,
        scores: vec![(Plugin::NodeResourcesFit, 1)],
        ..Profile::default()
    };
    let pick = |profile: &Profile| {
        let attempt = Attempt {
            profile,
            start: 0,
            others_have_terms: false,
            spread: None,
        };
        schedule(&p, &nodes, &attempt, &mut rng())
            .result
            .unwrap()
            .node
    };
    assert_eq!(pick(&spread), "b");
    assert_eq!(pick(&pack), "a");
}

#[test]
fn filtering_stops_once_enough_feasible_nodes_are_found_and_the_start_rotates() {
    let nodes: Vec<_> = (0..1000)
        .map(|i| node_info(node(&format!("n{i}"), "4", "4Gi", json!({})), vec![]))
        .collect();
    let profile = Profile::default();
    let attempt = Attempt {
        profile: &profile,
        start: 990,
        others_have_terms: false,
        spread: None,
    };
    let out = schedule(
        &info(pod("p", "1", "1Gi", json!({}))),
        &nodes,
        &attempt,
        &mut rng(),
    );
    assert_eq!(out.processed, 420);
    let d = out.result.unwrap();
    assert_eq!(d.feasible, 420);
    // The chosen node is among those looked at: n990..n999 and n0..n409.
    let i: usize = d.node[1..].parse().unwrap();
    assert!(!(410..990).contains(&i), "{}", d.node);
}

#[test]
fn nodes_the_cache_knows_only_by_their_pods_are_skipped() {
    let mut ghost = crate::nodeinfo::NodeInfo::new("ghost");
    ghost.add_pod(info(pod("a", "", "", json!({}))));
    let nodes = vec![
        ghost,
        node_info(node("real", "1", "1Gi", json!({})), vec![]),
    ];
    let profile = Profile::default();
    let attempt = Attempt {
        profile: &profile,
        start: 0,
        others_have_terms: false,
        spread: None,
    };
    let out = schedule(
        &info(pod("p", "", "", json!({}))),
        &nodes,
        &attempt,
        &mut rng(),
    );
    assert_eq!(out.result.unwrap().node, "real");
}
