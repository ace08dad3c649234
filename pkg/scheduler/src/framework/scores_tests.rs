use serde_json::json;

use super::*;
use crate::framework::state::{AffinityState, SpreadState};
use crate::testing::{info, node, node_info, pod};

#[test]
fn least_allocated_prefers_the_emptier_node_and_most_allocated_the_fuller() {
    let empty = node_info(node("e", "4", "4Gi", json!({})), vec![]);
    let half = node_info(
        node("h", "4", "4Gi", json!({})),
        vec![pod("a", "2", "2Gi", json!({}))],
    );
    let p = info(pod("p", "1", "1Gi", json!({})));
    let cases = [
        (Strategy::LeastAllocated, &empty, 75),
        (Strategy::LeastAllocated, &half, 25),
        (Strategy::MostAllocated, &empty, 25),
        (Strategy::MostAllocated, &half, 75),
    ];
    for (s, n, want) in cases {
        assert_eq!(resources_fit(&p, n, s, [1, 1]), want);
    }
    // Weights: cpu only.
    let cpu_heavy = node_info(
        node("c", "4", "4Gi", json!({})),
        vec![pod("a", "3", "", json!({}))],
    );
    assert_eq!(
        resources_fit(&p, &cpu_heavy, Strategy::LeastAllocated, [1, 0]),
        0
    );
    // Pods without requests count defaults, so they still spread.
    let besteffort = info(pod("b", "", "", json!({})));
    assert!(
        resources_fit(&besteffort, &empty, Strategy::LeastAllocated, [1, 1])
            > resources_fit(&besteffort, &half, Strategy::LeastAllocated, [1, 1])
    );
}

#[test]
fn balanced_allocation_prefers_even_cpu_and_memory_use() {
    let n = node_info(node("n", "4", "4Gi", json!({})), vec![]);
    let cases = [
        (pod("p", "2", "2Gi", json!({})), 100),
        (pod("p", "4", "0", json!({})), 50),
        (pod("p", "2", "0", json!({})), 75),
    ];
    for (p, want) in cases {
        assert_eq!(balanced_allocation(&info(p), &n), want);
    }
}

#[test]
fn preferred_node_affinity_sums_the_weights_of_matching_terms() {
    let p = info(pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}
        ]}}}}),
    ));
    let labelled = |labels| {
        node_info(
            node("n", "1", "1Gi", json!({"metadata": {"labels": labels}})),
            vec![],
        )
    };
    let raw: Vec<i64> = [
        labelled(json!({"disk": "ssd", "zone": "a"})),
        labelled(json!({"disk": "ssd"})),
        labelled(json!({"zone": "a"})),
        labelled(json!({})),
    ]
    .iter()
    .map(|n| node_affinity(&p, n))
    .collect();
    assert_eq!(raw, [15, 10, 5, 0]);
    let mut s = raw;
    normalize_default(&mut s, false);
    assert_eq!(s, [100, 66, 33, 0]);
}

#[test]
fn untolerated_prefer_no_schedule_taints_lower_the_score() {
    let tainted = |taints| {
        node_info(
            node("n", "1", "1Gi", json!({"spec": {"taints": taints}})),
            vec![],
        )
    };
    let nodes = [
        tainted(json!([])),
        tainted(json!([{"key": "a", "effect": "PreferNoSchedule"}])),
        tainted(
            json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]),
        ),
    ];
    let p = info(pod("p", "", "", json!({})));
    let mut s: Vec<i64> = nodes.iter().map(|n| taint_toleration(&p, n)).collect();
    assert_eq!(s, [0, 1, 2]);
    normalize_default(&mut s, true);
    assert_eq!(s, [100, 50, 0]);
    let tolerant = info(pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
    ));
    assert_eq!(taint_toleration(&tolerant, &nodes[2]), 1);
}

#[test]
fn soft_topology_spread_and_default_spreading_prefer_domains_with_fewer_matching_pods() {
    let owned = |name: &str| {
        pod(
            name,
            "",
            "",
            json!({"metadata": {"labels": {"app": "web"}, "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": true}]}}),
        )
    };
    let nodes = vec![
        node_info(
            node("n1", "4", "4Gi", json!({})),
            vec![owned("a"), owned("b")],
        ),
        node_info(node("n2", "4", "4Gi", json!({})), vec![owned("c")]),
        node_info(node("n3", "4", "4Gi", json!({})), vec![]),
    ];
    let p = info(owned("new"));
    let state = SpreadState::compute(&p, &nodes, true);
    assert!(state.system_default);
    let raw: Vec<Option<i64>> = nodes
        .iter()
        .map(|n| topology_spread(&p, n, &state, 3))
        .collect();
    let s = normalize_spread(&raw);
    assert!(s[2] > s[1] && s[1] > s[0], "{s:?}");
    assert_eq!(s[2], 100);
    // Without default spreading there is nothing to score.
    let none = SpreadState::compute(&p, &nodes, false);
    assert_eq!(none.soft().count(), 0);
}

#[test]
fn preferred_inter_pod_affinity_scores_both_ways_and_normalises_min_max() {
    let db = pod("db", "", "", json!({"metadata": {"labels": {"app": "db"}}}));
    let nodes = vec![
        node_info(node("n1", "4", "4Gi", json!({})), vec![db]),
        node_info(node("n2", "4", "4Gi", json!({})), vec![]),
    ];
    let near = info(pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}}]}}}}),
    ));
    let state = AffinityState::compute(&near, &nodes, false);
    let mut s: Vec<i64> = nodes
        .iter()
        .map(|n| inter_pod_affinity(n, &state))
        .collect();
    assert_eq!(s, [50, 0]);
    normalize_min_max(&mut s);
    assert_eq!(s, [100, 0]);
    let far = info(pod(
        "p",
        "",
        "",
        json!({"spec": {"affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}}]}}}}),
    ));
    let state = AffinityState::compute(&far, &nodes, false);
    let mut s: Vec<i64> = nodes
        .iter()
        .map(|n| inter_pod_affinity(n, &state))
        .collect();
    normalize_min_max(&mut s);
    assert_eq!(s, [0, 100]);
}
