use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::deployment::replicas::max_surge;
use crate::deployment::replicas::tests::{deployment, rs};

fn set(name: &str, created: i64, spec: i32, available: i32) -> ReplicaSet {
    let mut r = rs(spec, available);
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    r
}

#[test]
fn the_new_replicaset_grows_within_the_surge_and_shrinks_to_the_size() {
    // (deployment, old (spec), new (spec), target)
    let cases = [
        (deployment(4, "1", "1"), 4, 0, Some(1)),
        (deployment(4, "1", "1"), 3, 1, Some(2)),
        (deployment(4, "1", "1"), 4, 1, None),
        (deployment(4, "25%", "25%"), 0, 4, None),
        (deployment(4, "25%", "25%"), 0, 6, Some(4)),
        (deployment(10, "50%", "0"), 10, 0, Some(5)),
        (deployment(3, "0", "1"), 3, 0, None),
    ];
    for (d, old, new, want) in cases {
        let (o, n) = (set("old", 1, old, old), set("new", 2, new, 0));
        assert_eq!(
            new_rs_target(&d, &[&o, &n], &n),
            want,
            "{old} old, {new} new"
        );
    }
}

#[test]
fn old_replicasets_shrink_within_the_unavailability_unhealthy_first() {
    // (case, deployment, old sets (name, spec, available), new (spec, available), plan)
    type Case = (
        &'static str,
        Deployment,
        Vec<(&'static str, i32, i32)>,
        (i32, i32),
        Vec<(&'static str, i32)>,
    );
    let cases: Vec<Case> = vec![
        (
            "surge taken, new pod not yet available: one old may go",
            deployment(4, "1", "1"),
            vec![("a", 4, 4)],
            (1, 0),
            vec![("a", 3)],
        ),
        (
            "nothing more may become unavailable",
            deployment(4, "1", "1"),
            vec![("a", 3, 3)],
            (2, 0),
            vec![],
        ),
        (
            "new pods available: old ones follow",
            deployment(4, "1", "1"),
            vec![("a", 3, 3)],
            (2, 2),
            vec![("a", 1)],
        ),
        (
            "unavailable old pods go first, oldest ReplicaSet first",
            deployment(6, "0", "2"),
            vec![("a", 2, 0), ("b", 4, 4)],
            (0, 0),
            vec![("a", 0)],
        ),
        (
            "then available ones, oldest ReplicaSet first",
            deployment(6, "0", "3"),
            vec![("a", 2, 1), ("b", 4, 4)],
            (0, 0),
            vec![("a", 0), ("b", 3)],
        ),
        (
            "maxUnavailable 0: only once new pods are available",
            deployment(3, "1", "0"),
            vec![("a", 3, 3)],
            (1, 0),
            vec![],
        ),
        (
            "maxUnavailable 0, a new pod available",
            deployment(3, "1", "0"),
            vec![("a", 3, 3)],
            (1, 1),
            vec![("a", 2)],
        ),
        (
            // Seen under kill -9 of the controller-manager: the old set's spec was just
            // lowered (6 -> 5) and its status still counts the sixth pod as available.
            // Pods above the spec are about to go: they must not pay for more scale-down
            // (5 -> 2 would leave 4 available of 6 with maxUnavailable 1).
            "an old set's status counting more available pods than its spec",
            deployment(6, "2", "1"),
            vec![("a", 5, 6)],
            (3, 2),
            vec![("a", 3)],
        ),
        (
            "no old pods",
            deployment(3, "1", "1"),
            vec![("a", 0, 0)],
            (3, 3),
            vec![],
        ),
    ];
    for (name, d, old, (new_spec, new_avail), want) in cases {
        let olds: Vec<ReplicaSet> = old
            .iter()
            .enumerate()
            .map(|(i, (n, s, a))| set(n, i as i64, *s, *a))
            .collect();
        let new = set("new", 100, new_spec, new_avail);
        let mut all: Vec<&ReplicaSet> = olds.iter().collect();
        all.push(&new);
        let want: Vec<(String, i32)> = want.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        assert_eq!(old_rs_plan(&d, &all, &new), want, "{name}");
    }
}

/// Runs a whole rollout with the planners, pods turning available as soon as they are
/// wanted, checking the bounds after every step.
#[test]
fn a_simulated_rollout_never_breaks_its_bounds_and_completes() {
    for (replicas, surge, unavailable) in [
        (10, "25%", "25%"),
        (10, "0", "1"),
        (10, "1", "0"),
        (5, "100%", "0"),
        (7, "30%", "70%"),
        (1, "25%", "25%"),
        (3, "2", "3"),
    ] {
        let d = deployment(replicas, surge, unavailable);
        let (max_total, min_avail) = (replicas + max_surge(&d), replicas - max_unavailable(&d));
        let mut old = set("old", 1, replicas, replicas);
        let mut new = set("new", 2, 0, 0);
        let case = format!("{replicas} replicas, surge {surge}, unavailable {unavailable}");
        for step in 0.. {
            assert!(step < 100, "{case}: no end after 100 steps");
            let all = [&old, &new];
            if let Some(to) = new_rs_target(&d, &all, &new) {
                new = set("new", 2, to, replicas::available(&new));
            } else {
                let plan = old_rs_plan(&d, &all, &new);
                if plan.is_empty() {
                    // Nothing to do until pods become available: they do.
                    if replicas::available(&new) == spec_replicas(&new) && spec_replicas(&old) == 0
                    {
                        break;
                    }
                    new = set("new", 2, spec_replicas(&new), spec_replicas(&new));
                }
                for (_, to) in plan {
                    // The old pods go at once: what remains is available.
                    old = set("old", 1, to, to.min(replicas::available(&old)));
                }
            }
            let total = spec_replicas(&old) + spec_replicas(&new);
            let avail = replicas::available(&old) + replicas::available(&new);
            assert!(
                total <= max_total,
                "{case}, step {step}: {total} pods wanted, at most {max_total}"
            );
            assert!(
                avail >= min_avail,
                "{case}, step {step}: {avail} available, at least {min_avail}"
            );
        }
        assert_eq!(
            (spec_replicas(&old), spec_replicas(&new)),
            (0, replicas),
            "{case}"
        );
    }
}
