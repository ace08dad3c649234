use serde_json::json;

use super::*;
use crate::framework::state::{AffinityState, SpreadState};
use crate::testing::{info, node, node_info, pod};

#[test]
fn node_unschedulable_keeps_pods_off_cordoned_nodes_unless_tolerated() {
    let cordoned = node_info(
        node("n", "1", "1Gi", json!({"spec": {"unschedulable": true}})),
        vec![],
    );
    let open = node_info(node("n", "1", "1Gi", json!({})), vec![]);
    let tolerating = json!({"spec": {"tolerations": [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}});
    let cases = [
        (&cordoned, json!({}), Err(ERR_UNSCHEDULABLE)),
        (&cordoned, tolerating, Ok(())),
        (&open, json!({}), Ok(())),
    ];
    for (n, extra, want) in cases {
        let got = node_unschedulable(&info(pod("p", "", "", extra)), n);
        assert_eq!(
            got.map_err(|u| u.reasons[0].clone()),
            want.map_err(String::from)
        );
    }
}

#[test]
fn node_name_fits_only_the_named_node() {
    let n = node_info(node("n1", "1", "1Gi", json!({})), vec![]);
    let cases = [
        (json!({}), true),
        (json!({"spec": {"nodeName": "n1"}}), true),
        (json!({"spec": {"nodeName": "n2"}}), false),
    ];
    for (extra, fits) in cases {
        assert_eq!(node_name(&info(pod("p", "", "", extra)), &n).is_ok(), fits);
    }
}

#[test]
fn taint_toleration_names_the_first_untolerated_hard_taint() {
    let tainted = |taints: serde_json::Value| {
        node_info(
            node("n", "1", "1Gi", json!({"spec": {"taints": taints}})),
            vec![],
        )
    };
    let cases = [
        (
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            json!({}),
            Err("node(s) had untolerated taint {dedicated: x}"),
        ),
        (
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            json!({"spec": {"tolerations": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
            Ok(()),
        ),
        (
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            json!({"spec": {"tolerations": [{"key": "dedicated", "value": "y", "effect": "NoSchedule"}]}}),
            Err("node(s) had untolerated taint {dedicated: x}"),
        ),
        (
            json!([{"key": "gone", "effect": "NoExecute"}]),
            json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
            Ok(()),
        ),
        (
            json!([{"key": "gone", "effect": "NoExecute"}]),
            json!({}),
            Err("node(s) had untolerated taint {gone: }"),
        ),
        // PreferNoSchedule only lowers the score.
        (
            json!([{"key": "soft", "effect": "PreferNoSchedule"}]),
            json!({}),
            Ok(()),
        ),
    ];
    for (taints, extra, want) in cases {
        let got = taint_toleration(&info(pod("p", "", "", extra)), &tainted(taints));
        assert_eq!(
            got.map_err(|u| u.reasons[0].clone()),
            want.map_err(String::from)
        );
    }
}

#[test]
fn node_affinity_checks_the_node_selector_and_required_terms() {
    let n = node_info(
        node(
            "n1",
            "1",
            "1Gi",
            json!({"metadata": {"labels": {"disk": "ssd", "gen": "5"}}}),
        ),
        vec![],
    );
    let req = |terms: serde_json::Value| {
        json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
    };
    let cases = [
        (json!({"spec": {"nodeSelector": {"disk": "ssd"}}}), true),
        (json!({"spec": {"nodeSelector": {"disk": "hdd"}}}), false),
        (json!({"spec": {"nodeSelector": {"other": "x"}}}), false),
        (
            req(
                json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]}]),
            ),
            true,
        ),
        (
            req(
                json!([{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]),
            ),
            false,
        ),
        (
            req(json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}])),
            true,
        ),
        (
            req(json!([{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}])),
            true,
        ),
        (
            req(json!([{"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["4"]}]}])),
            false,
        ),
        // Terms are ORed.
        (
            req(json!([
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
            ])),
            true,
        ),
        // An empty term matches nothing.
        (req(json!([{}])), false),
    ];
    for (extra, fits) in cases {
        let got = node_affinity(&info(pod("p", "", "", extra.clone())), &n);
        assert_eq!(got.is_ok(), fits, "{extra}");
        if !fits {
            assert_eq!(got.unwrap_err().reasons, [ERR_NODE_AFFINITY]);
        }
    }
}

#[test]
fn node_ports_refuse_a_host_port_already_taken_on_the_same_address_and_protocol() {
    let with_port = |name: &str, port: i32, proto: &str, ip: &str| {
        pod(
            name,
            "",
            "",
            json!({"spec": {"containers": [{"name": "c", "image": "i",
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": proto, "hostIP": ip}]}]}}),
        )
    };
    let n = node_info(
        node("n", "1", "1Gi", json!({})),
        vec![with_port("a", 8080, "TCP", "")],
    );
    let cases = [
        (with_port("p", 8080, "TCP", ""), false),
        (with_port("p", 8080, "TCP", "10.0.0.1"), false),
        (with_port("p", 8080, "UDP", ""), true),
        (with_port("p", 8081, "TCP", ""), true),
        (pod("p", "", "", json!({})), true),
    ];
    for (p, fits) in cases {
        assert_eq!(node_ports(&info(p), &n).is_ok(), fits);
    }
    let specific = node_info(
        node("n", "1", "1Gi", json!({})),
        vec![with_port("a", 9000, "TCP", "10.0.0.1")],
    );
    assert!(node_ports(&info(with_port("p", 9000, "TCP", "10.0.0.2")), &specific).is_ok());
}

#[test]
fn node_resources_fit_counts_placed_and_assumed_pods_against_allocatable() {
    let full = |pods| node_info(node("n", "2", "2Gi", json!({})), pods);
    let cases: Vec<(Vec<_>, _, Vec<&str>)> = vec![
        (vec![], pod("p", "2", "2Gi", json!({})), vec![]),
        (
            vec![],
            pod("p", "2500m", "1Gi", json!({})),
            vec!["Insufficient cpu"],
        ),
        (
            vec![pod("a", "1500m", "1Gi", json!({}))],
            pod("p", "1", "1500Mi", json!({})),
            vec!["Insufficient cpu", "Insufficient memory"],
        ),
        // A pod that requests nothing fits wherever a pod slot is free.
        (
            vec![pod("a", "2", "2Gi", json!({}))],
            pod("p", "", "", json!({})),
            vec![],
        ),
        (
            vec![],
            pod(
                "p",
                "",
                "",
                json!({"spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"ephemeral-storage": "20Gi", "example.com/gpu": "1"}}}]}}),
            ),
            vec![
                "Insufficient ephemeral-storage",
                "Insufficient example.com/gpu",
            ],
        ),
    ];
    for (placed, p, want) in cases {
        let got = node_resources_fit(&info(p), &full(placed));
        assert_eq!(got.err().map(|u| u.reasons).unwrap_or_default(), want);
    }
    let one_slot = node_info(
        node(
            "n",
            "2",
            "2Gi",
            json!({"status": {"allocatable": {"pods": "1"}}}),
        ),
        vec![pod("a", "", "", json!({}))],
    );
    assert_eq!(
        node_resources_fit(&info(pod("p", "", "", json!({}))), &one_slot)
            .unwrap_err()
            .reasons,
        [ERR_TOO_MANY_PODS]
    );
}

fn zone_nodes(placed: &[(&str, &str, usize)]) -> Vec<NodeInfo> {
    // (node, zone, matching pods on it)
    placed
        .iter()
        .map(|(n, z, count)| {
            let pods = (0..*count)
                .map(|i| {
                    pod(
                        &format!("{n}-{i}"),
                        "",
                        "",
                        json!({"metadata": {"labels": {"app": "web"}}}),
                    )
                })
                .collect();
            node_info(
                node(n, "4", "4Gi", json!({"metadata": {"labels": {"zone": z}}})),
                pods,
            )
        })
        .collect()
}

fn spread_pod(key: &str, skew: i32, when: &str) -> crate::nodeinfo::PodInfo {
    let p = pod(
        "new",
        "",
        "",
        json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"topologySpreadConstraints": [{"maxSkew": skew, "topologyKey": key,
            "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
    );
    (*info(p)).clone()
}

#[test]
fn topology_spread_keeps_the_skew_within_max_skew_across_domains() {
    let nodes = zone_nodes(&[
        ("a1", "a", 2),
        ("a2", "a", 0),
        ("b1", "b", 1),
        ("c1", "c", 1),
    ]);
    let p = spread_pod("zone", 1, "DoNotSchedule");
    let state = SpreadState::compute(&p, &nodes, true);
    // zone a has 2, b 1, c 1: min 1; placing in a gives skew 2 > 1.
    let fits: Vec<bool> = nodes
        .iter()
        .map(|n| pod_topology_spread(&p, n, &state).is_ok())
        .collect();
    assert_eq!(fits, [false, false, true, true]);
    let looser = spread_pod("zone", 2, "DoNotSchedule");
    let state = SpreadState::compute(&looser, &nodes, true);
    assert!(nodes
        .iter()
        .all(|n| pod_topology_spread(&looser, n, &state).is_ok()));
    // A node without the key cannot be judged.
    let mut unlabelled = zone_nodes(&[("x", "a", 0)]);
    unlabelled.push(node_info(node("y", "4", "4Gi", json!({})), vec![]));
    let state = SpreadState::compute(&p, &unlabelled, true);
    assert_eq!(
        pod_topology_spread(&p, &unlabelled[1], &state)
            .unwrap_err()
            .reasons,
        [ERR_SPREAD_LABEL]
    );
    // Soft constraints never filter.
    let soft = spread_pod("zone", 1, "ScheduleAnyway");
    let state = SpreadState::compute(&soft, &nodes, true);
    assert!(nodes
        .iter()
        .all(|n| pod_topology_spread(&soft, n, &state).is_ok()));
}

#[test]
fn topology_spread_min_domains_counts_missing_domains_as_empty() {
    let nodes = zone_nodes(&[("a1", "a", 1), ("b1", "b", 1)]);
    let mut p = spread_pod("zone", 1, "DoNotSchedule");
    let mut pod = (*p.pod).clone();
    pod.spec
        .as_mut()
        .unwrap()
        .topology_spread_constraints
        .as_mut()
        .unwrap()[0]
        .min_domains = Some(3);
    p = (*info(pod)).clone();
    let state = SpreadState::compute(&p, &nodes, true);
    // Two domains of three: the global minimum is 0, so 1 + 1 - 0 > 1 everywhere.
    assert!(nodes
        .iter()
        .all(|n| pod_topology_spread(&p, n, &state).is_err()));
}

fn affinity_pod(
    kind: &str,
    app: &str,
    key: &str,
    labels: serde_json::Value,
) -> crate::nodeinfo::PodInfo {
    let p = pod(
        "new",
        "",
        "",
        json!({
        "metadata": {"labels": labels},
        "spec": {"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}}}),
    );
    (*info(p)).clone()
}

#[test]
fn inter_pod_affinity_and_anti_affinity_follow_the_topology_of_matching_pods() {
    let db = pod("db", "", "", json!({"metadata": {"labels": {"app": "db"}}}));
    let nodes = vec![
        node_info(
            node(
                "n1",
                "4",
                "4Gi",
                json!({"metadata": {"labels": {"zone": "a"}}}),
            ),
            vec![db],
        ),
        node_info(
            node(
                "n2",
                "4",
                "4Gi",
                json!({"metadata": {"labels": {"zone": "a"}}}),
            ),
            vec![],
        ),
        node_info(
            node(
                "n3",
                "4",
                "4Gi",
                json!({"metadata": {"labels": {"zone": "b"}}}),
            ),
            vec![],
        ),
    ];
    let judge = |p: &crate::nodeinfo::PodInfo, others: bool| -> Vec<Result<(), String>> {
        let state = AffinityState::compute(p, &nodes, others);
        nodes
            .iter()
            .map(|n| inter_pod_affinity(p, n, &state).map_err(|u| u.reasons[0].clone()))
            .collect()
    };
    let near = affinity_pod("podAffinity", "db", "zone", json!({}));
    assert_eq!(
        judge(&near, false),
        [Ok(()), Ok(()), Err(ERR_AFFINITY.to_string())]
    );
    let same_host = affinity_pod("podAffinity", "db", "kubernetes.io/hostname", json!({}));
    assert_eq!(
        judge(&same_host, false),
        [Ok(()), Err(ERR_AFFINITY.into()), Err(ERR_AFFINITY.into())]
    );
    let away = affinity_pod("podAntiAffinity", "db", "zone", json!({}));
    assert_eq!(
        judge(&away, false),
        [
            Err(ERR_ANTI_AFFINITY.into()),
            Err(ERR_ANTI_AFFINITY.into()),
            Ok(())
        ]
    );
    // The first pod of a self-affine group may go anywhere.
    let first = affinity_pod("podAffinity", "cache", "zone", json!({"app": "cache"}));
    assert!(judge(&first, false).iter().all(Result::is_ok));
    let lonely = affinity_pod("podAffinity", "cache", "zone", json!({}));
    assert!(judge(&lonely, false).iter().all(Result::is_err));
}

#[test]
fn a_placed_pods_anti_affinity_keeps_matching_pods_out_of_its_domain() {
    let guard = pod(
        "guard",
        "",
        "",
        json!({"spec": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}}),
    );
    let nodes = vec![
        node_info(node("n1", "4", "4Gi", json!({})), vec![guard]),
        node_info(node("n2", "4", "4Gi", json!({})), vec![]),
    ];
    let web = info(pod(
        "w",
        "",
        "",
        json!({"metadata": {"labels": {"app": "web"}}}),
    ));
    let state = AffinityState::compute(&web, &nodes, true);
    assert_eq!(
        inter_pod_affinity(&web, &nodes[0], &state)
            .unwrap_err()
            .reasons,
        [ERR_EXISTING_ANTI_AFFINITY]
    );
    assert!(inter_pod_affinity(&web, &nodes[1], &state).is_ok());
    let other = info(pod(
        "o",
        "",
        "",
        json!({"metadata": {"labels": {"app": "other"}}}),
    ));
    let state = AffinityState::compute(&other, &nodes, true);
    assert!(inter_pod_affinity(&other, &nodes[0], &state).is_ok());
}
