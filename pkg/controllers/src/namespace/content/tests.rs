use serde_json::json;

use super::*;

#[test]
fn what_remains_is_counted_with_its_finalizers() {
    let items = vec![
        json!({"metadata": {"name": "a", "finalizers": ["example.com/hold", "orphan"]}}),
        json!({"metadata": {"name": "b", "finalizers": ["example.com/hold"]}}),
        json!({"metadata": {"name": "c"}}),
    ];
    let (n, f) = tally(&items);
    assert_eq!(n, 3);
    assert_eq!(
        f,
        BTreeMap::from([
            ("example.com/hold".to_string(), 2),
            ("orphan".to_string(), 1)
        ])
    );
    assert_eq!(tally(&[]), (0, BTreeMap::new()));
}

#[test]
fn pods_are_given_their_longest_grace_period_from_the_namespace_deletion() {
    let pod = |grace: i64, phase: &str| json!({"spec": {"terminationGracePeriodSeconds": grace}, "status": {"phase": phase}});
    let t = |s: i64| Timestamp::from_second(s).unwrap();
    let cases = [
        ("no pods", vec![], 0, 0),
        (
            "a running pod, just deleted",
            vec![pod(30, "Running")],
            5,
            30,
        ),
        (
            "the longest counts",
            vec![pod(30, "Running"), pod(60, "Pending")],
            5,
            60,
        ),
        (
            "finished pods do not",
            vec![pod(90, "Succeeded"), pod(90, "Failed"), pod(10, "Running")],
            5,
            10,
        ),
        (
            "once the grace period passed, nothing",
            vec![pod(30, "Running")],
            30,
            0,
        ),
    ];
    for (what, pods, elapsed, want) in cases {
        assert_eq!(
            pod_estimate(&pods, t(1000), t(1000 + elapsed)),
            want,
            "{what}"
        );
    }
}
