use k8s_openapi::api::core::v1::PodStatus;

use super::*;
use crate::deployment::replicas::tests::rs;

fn with_uid(mut r: ReplicaSet, uid: &str) -> ReplicaSet {
    r.metadata.uid = Some(uid.into());
    r
}

fn pod(phase: &str) -> Arc<Pod> {
    Arc::new(Pod {
        status: Some(PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn old_pods_count_as_running_until_they_are_gone_or_finished() {
    let new = with_uid(rs(3, 0), "new");
    let old_empty = with_uid(rs(0, 0), "old");
    let mut old_counting = with_uid(rs(0, 0), "old");
    old_counting.status.as_mut().unwrap().replicas = 1;
    // (case, old set, pods by ReplicaSet uid, running)
    type Case<'a> = (&'a str, &'a ReplicaSet, Vec<(&'a str, Vec<Arc<Pod>>)>, bool);
    let cases: Vec<Case> = vec![
        ("nothing left", &old_empty, vec![], false),
        (
            "the old ReplicaSet still counts a pod",
            &old_counting,
            vec![],
            true,
        ),
        (
            "an old pod still running",
            &old_empty,
            vec![("old", vec![pod("Running")])],
            true,
        ),
        (
            "an old pod pending",
            &old_empty,
            vec![("old", vec![pod("Pending")])],
            true,
        ),
        (
            "an old pod unknown",
            &old_empty,
            vec![("old", vec![pod("Unknown")])],
            true,
        ),
        (
            "old pods finished",
            &old_empty,
            vec![("old", vec![pod("Succeeded"), pod("Failed")])],
            false,
        ),
        (
            "only new pods",
            &old_empty,
            vec![("new", vec![pod("Running")])],
            false,
        ),
    ];
    for (name, old, pods, want) in cases {
        let map: HashMap<String, Vec<Arc<Pod>>> =
            pods.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(old_pods_running(Some(&new), &[old], &map), want, "{name}");
    }
}
