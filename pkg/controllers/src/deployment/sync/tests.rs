use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::deployment::replicas::tests::{deployment, rs};

/// A ReplicaSet `name` created at `created` (seconds) with `spec` replicas (`available`
/// of them available), sized for `desired`/`max` when given.
fn set(
    name: &str,
    created: i64,
    spec: i32,
    available: i32,
    sized: Option<(i32, i32)>,
) -> ReplicaSet {
    let mut r = rs(spec, available);
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    if let Some((want, max)) = sized {
        revision::set_replicas_annotations(&mut r, want, max);
    }
    r
}

fn scale(name: &str, to: i32) -> Step {
    Step::Scale(name.into(), to)
}

fn resize(name: &str, to: i32) -> Step {
    Step::Resize(name.into(), to)
}

#[test]
fn scaling_events_follow_kubernetes() {
    // (case, deployment, new, old, plan)
    type Case = (
        &'static str,
        Deployment,
        Option<ReplicaSet>,
        Vec<ReplicaSet>,
        Vec<Step>,
    );
    let cases: Vec<Case> = vec![
        (
            "the only active ReplicaSet takes the new size",
            deployment(5, "1", "1"),
            Some(set("new", 20, 3, 3, Some((3, 4)))),
            vec![set("old", 10, 0, 0, None)],
            vec![scale("new", 5)],
        ),
        (
            "already that size",
            deployment(3, "1", "1"),
            Some(set("new", 20, 3, 3, Some((3, 4)))),
            vec![],
            vec![],
        ),
        (
            "none active: the new one grows",
            deployment(2, "1", "1"),
            Some(set("new", 20, 0, 0, None)),
            vec![set("old", 10, 0, 0, None)],
            vec![scale("new", 2)],
        ),
        (
            "none active and no new one: the newest old one grows",
            deployment(2, "1", "1"),
            None,
            vec![set("older", 10, 0, 0, None), set("old", 15, 0, 0, None)],
            vec![scale("old", 2)],
        ),
        (
            "a saturated new ReplicaSet: old ones go",
            deployment(3, "1", "1"),
            Some(set("new", 20, 3, 3, Some((3, 4)))),
            vec![set("old", 10, 1, 1, Some((3, 4)))],
            vec![scale("old", 0)],
        ),
        (
            "mid-rollout 10 -> 20 (surge 2 -> 4): shares double, largest first",
            deployment(20, "20%", "0"),
            Some(set("new", 20, 4, 0, Some((10, 12)))),
            vec![set("old", 10, 8, 8, Some((10, 12)))],
            vec![resize("old", 16), resize("new", 8)],
        ),
        (
            "mid-rollout 10 -> 5: shares shrink, the leftover from the largest",
            deployment(5, "0", "1"),
            Some(set("new", 20, 3, 0, Some((10, 10)))),
            vec![set("old", 10, 6, 6, Some((10, 10)))],
            vec![resize("old", 3), resize("new", 2)],
        ),
        (
            "to zero",
            deployment(0, "1", "1"),
            Some(set("new", 20, 2, 0, Some((4, 5)))),
            vec![set("old", 10, 3, 3, Some((4, 5)))],
            vec![resize("old", 0), resize("new", 0)],
        ),
        (
            "equal sizes growing: the newer first",
            deployment(8, "0", "1"),
            Some(set("new", 20, 2, 0, Some((4, 4)))),
            vec![set("old", 10, 2, 2, Some((4, 4)))],
            vec![resize("new", 4), resize("old", 4)],
        ),
        (
            "Recreate does not spread",
            deployment(8, "Recreate", ""),
            Some(set("new", 20, 2, 0, Some((4, 4)))),
            vec![set("old", 10, 2, 2, Some((4, 4)))],
            vec![],
        ),
    ];
    for (name, d, new, old, want) in cases {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        assert_eq!(scale_plan(&d, new.as_ref(), &old_refs), want, "{name}");
    }
}

#[test]
fn a_scaling_event_is_an_active_replicaset_sized_for_another_count() {
    let d = deployment(5, "1", "1");
    let cases = [
        (vec![set("a", 1, 3, 3, Some((3, 4)))], true),
        (vec![set("a", 1, 5, 5, Some((5, 6)))], false),
        (vec![set("a", 1, 0, 0, Some((3, 4)))], false),
        (vec![set("a", 1, 3, 3, None)], false),
    ];
    for (rss, want) in cases {
        assert_eq!(is_scaling_event(&d, &rss), want);
    }
}
