use k8s_openapi::api::apps::v1::{ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::deployment::replicas::tests::deployment;

fn with_annotations(pairs: &[(&str, &str)]) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            annotations: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn annotations_of(rs: &ReplicaSet) -> Vec<(String, String)> {
    rs.metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[test]
fn revisions_are_read_leniently() {
    let cases = [
        (vec![], 0),
        (vec![(REVISION, "7")], 7),
        (vec![(REVISION, "seven")], 0),
    ];
    for (a, want) in cases {
        assert_eq!(revision(&with_annotations(&a)), want, "{a:?}");
    }
    let rss = [
        with_annotations(&[(REVISION, "2")]),
        with_annotations(&[(REVISION, "11")]),
        with_annotations(&[]),
    ];
    assert_eq!(max_revision(&rss), 11);
    assert_eq!(max_revision(&[]), 0);
}

#[test]
fn the_new_replicaset_gets_the_next_revision_and_remembers_its_old_ones() {
    let mut d = deployment(4, "1", "1");
    d.metadata.annotations = Some(
        [
            ("kubernetes.io/change-cause", "kubectl set image"),
            (REVISION, "3"),
            (LAST_APPLIED, "{}"),
            ("tracing.k8s.io/traceparent", "00-aa-bb-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    // (name, annotations before, new revision, exists, changed, annotations after)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        i64,
        bool,
        bool,
        Vec<(&'static str, &'static str)>,
    );
    let copied = [
        ("kubernetes.io/change-cause", "kubectl set image"),
        ("tracing.k8s.io/traceparent", "00-aa-bb-01"),
    ];
    let cases: Vec<Case> = vec![
        (
            "a ReplicaSet about to be created",
            vec![],
            4,
            false,
            true,
            vec![
                (DESIRED_REPLICAS, "4"),
                (MAX_REPLICAS, "5"),
                (REVISION, "4"),
            ],
        ),
        (
            "an old ReplicaSet that is new again (rollback)",
            vec![(REVISION, "1")],
            4,
            true,
            true,
            vec![(REVISION, "4"), (REVISION_HISTORY, "1")],
        ),
        (
            "rolled back twice",
            vec![(REVISION, "2"), (REVISION_HISTORY, "1")],
            4,
            true,
            true,
            vec![(REVISION, "4"), (REVISION_HISTORY, "1,2")],
        ),
        (
            "already the newest",
            vec![(REVISION, "4")],
            4,
            true,
            true,
            vec![(REVISION, "4")],
        ),
        (
            "a higher revision is kept",
            vec![(REVISION, "9")],
            4,
            true,
            true,
            vec![(REVISION, "9")],
        ),
    ];
    for (name, before, new_rev, exists, changed, after) in cases {
        let mut rs = with_annotations(&before);
        assert_eq!(
            set_new_rs_annotations(&d, &mut rs, new_rev, exists),
            changed,
            "{name}"
        );
        let mut want: Vec<(String, String)> = after
            .iter()
            .chain(copied.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(annotations_of(&rs), want, "{name}");
        // Idempotent: a second pass changes nothing.
        assert!(
            !set_new_rs_annotations(&d, &mut rs, new_rev, exists),
            "{name} again"
        );
    }
}

#[test]
fn revision_history_drops_its_oldest_entries_to_fit() {
    let cases = [
        ("", "1", 10, "1"),
        ("1,2", "3", 10, "1,2,3"),
        ("1,2,3,4", "5", 9, "1,2,3,4,5"),
        ("1,2,3,4", "5", 8, "2,3,4,5"),
        ("10,20,30", "40", 8, "20,30,40"),
        ("10,20,30", "40", 7, "30,40"),
        ("1", "123456", 5, "1"),
    ];
    for (history, rev, max, want) in cases {
        assert_eq!(
            append_history(history, rev, max),
            want,
            "{history} + {rev} in {max}"
        );
    }
}

fn old(name: &str, rev: i64, spec: i32, status: i32, generation: i64, observed: i64) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some([(REVISION.to_string(), rev.to_string())].into()),
            generation: Some(generation),
            creation_timestamp: Some(Time(Timestamp::from_second(1_000 + rev).unwrap())),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(spec),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas: status,
            observed_generation: Some(observed),
            ..Default::default()
        }),
    }
}

#[test]
fn the_history_limit_prunes_the_lowest_revisions_that_are_scaled_down() {
    let rss = [
        old("r3", 3, 0, 0, 2, 2),
        old("r1", 1, 0, 0, 2, 2),
        old("r2", 2, 0, 0, 2, 2),
        old("r4", 4, 0, 0, 2, 2),
    ];
    let refs: Vec<&ReplicaSet> = rss.iter().collect();
    let names = |v: Vec<&ReplicaSet>| -> Vec<String> {
        v.iter()
            .map(|rs| rs.metadata.name.clone().unwrap())
            .collect()
    };
    assert_eq!(names(history_to_delete(&refs, Some(2))), ["r1", "r2"]);
    assert_eq!(
        names(history_to_delete(&refs, Some(0))),
        ["r1", "r2", "r3", "r4"]
    );
    assert!(history_to_delete(&refs, Some(4)).is_empty());
    assert!(history_to_delete(&refs, None).is_empty());
    // Still scaled up, pods left, or a generation not yet observed: kept for now.
    let busy = [
        old("spec", 1, 1, 0, 2, 2),
        old("pods", 2, 0, 1, 2, 2),
        old("unobserved", 3, 0, 0, 3, 2),
        old("r4", 4, 0, 0, 2, 2),
    ];
    let refs: Vec<&ReplicaSet> = busy.iter().collect();
    assert!(history_to_delete(&refs, Some(1)).is_empty());
    // Being deleted already: not counted.
    let mut going = old("r5", 5, 0, 0, 2, 2);
    going.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(9).unwrap()));
    let rss = [old("r1", 1, 0, 0, 2, 2), going];
    let refs: Vec<&ReplicaSet> = rss.iter().collect();
    assert!(history_to_delete(&refs, Some(1)).is_empty());
}
