use k8s_openapi::jiff::Timestamp;

use super::*;

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn summary(cs: &[NamespaceCondition]) -> Vec<(String, String, String, String)> {
    cs.iter()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn row(typ: &str, status: &str, reason: &str, message: &str) -> (String, String, String, String) {
    (typ.into(), status.into(), reason.into(), message.into())
}

#[test]
fn a_clean_pass_sets_every_condition_false_with_its_reason() {
    let got = conditions(&Totals::default(), &at(100));
    assert_eq!(
        summary(&got),
        vec![
            row(
                DISCOVERY_FAILURE,
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered"
            ),
            row(
                GROUP_VERSION_PARSING_FAILURE,
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed"
            ),
            row(
                CONTENT_FAILURE,
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization"
            ),
            row(
                CONTENT_REMAINING,
                "False",
                "ContentRemoved",
                "All content successfully removed"
            ),
            row(
                FINALIZERS_REMAINING,
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished"
            ),
        ]
    );
    assert!(got.iter().all(|c| c.last_transition_time == Some(at(100))));
}

#[test]
fn what_failed_and_what_remains_are_named_as_kubernetes_names_them() {
    let t = Totals {
        discovery_error: Some("no apiserver answered".into()),
        delete_errors: vec!["b failed".into(), "a failed".into()],
        remaining: [
            ("configmaps.".to_string(), 2),
            ("deployments.apps".to_string(), 1),
            ("pods.".to_string(), 0),
        ]
        .into_iter()
        .collect(),
        finalizers: [("example.com/hold".to_string(), 2)].into_iter().collect(),
    };
    let got = summary(&conditions(&t, &at(1)));
    assert_eq!(
        got[0],
        row(
            DISCOVERY_FAILURE,
            "True",
            "DiscoveryFailed",
            "no apiserver answered"
        )
    );
    assert_eq!(got[1].1, "False");
    assert_eq!(
        got[2],
        row(
            CONTENT_FAILURE,
            "True",
            "ContentDeletionFailed",
            "Failed to delete all resource types, 2 remaining: a failed, b failed"
        )
    );
    assert_eq!(
        got[3],
        row(
            CONTENT_REMAINING,
            "True",
            "SomeResourcesRemain",
            "Some resources are remaining: configmaps. has 2 resource instances, deployments.apps has 1 resource instances"
        )
    );
    assert_eq!(
        got[4],
        row(
            FINALIZERS_REMAINING,
            "True",
            "SomeFinalizersRemain",
            "Some content in the namespace has finalizers remaining: example.com/hold in 2 resource instances"
        )
    );
}

#[test]
fn merging_keeps_transition_times_of_unchanged_statuses_and_other_conditions() {
    let other = NamespaceCondition {
        type_: "Example".into(),
        status: "True".into(),
        ..Default::default()
    };
    let remaining = Totals {
        remaining: [("configmaps.".to_string(), 1)].into_iter().collect(),
        ..Default::default()
    };
    // First pass: everything is added.
    let first = merge(
        std::slice::from_ref(&other),
        conditions(&remaining, &at(10)),
    )
    .unwrap();
    assert_eq!(first.len(), 6);
    assert_eq!(first[0], other);
    // The same pass later changes nothing.
    assert_eq!(merge(&first, conditions(&remaining, &at(20))), None);
    // Fewer remain: the message changes but not the status, so the time stays.
    let fewer = Totals {
        remaining: [("configmaps.".to_string(), 1), ("secrets.".to_string(), 1)]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let second = merge(&first, conditions(&fewer, &at(30))).unwrap();
    let c = second
        .iter()
        .find(|c| c.type_ == CONTENT_REMAINING)
        .unwrap();
    assert!(c.message.as_deref().unwrap().contains("secrets."));
    assert_eq!(c.last_transition_time, Some(at(10)));
    // All gone: the status flips, and so does the time.
    let third = merge(&second, conditions(&Totals::default(), &at(40))).unwrap();
    let c = third.iter().find(|c| c.type_ == CONTENT_REMAINING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.last_transition_time.clone()),
        ("False", Some(at(40)))
    );
    let d = third.iter().find(|c| c.type_ == DISCOVERY_FAILURE).unwrap();
    assert_eq!(d.last_transition_time, Some(at(10)));
}
