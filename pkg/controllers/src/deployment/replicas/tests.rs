use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
    RollingUpdateDeployment,
};

use super::*;

fn ios(s: &str) -> IntOrString {
    match s.parse() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(s.into()),
    }
}

/// A Deployment of `replicas` with the given strategy ("Recreate", or maxSurge and
/// maxUnavailable as written in a manifest).
pub(crate) fn deployment(replicas: i32, surge: &str, unavailable: &str) -> Deployment {
    let strategy = if surge == "Recreate" {
        DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        }
    } else {
        DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(ios(surge)),
                max_unavailable: Some(ios(unavailable)),
            }),
        }
    };
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(strategy),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ReplicaSet with `spec` replicas, `available` of them available.
pub(crate) fn rs(spec: i32, available: i32) -> ReplicaSet {
    ReplicaSet {
        spec: Some(ReplicaSetSpec {
            replicas: Some(spec),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas: spec,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn percentages_scale_with_the_requested_rounding() {
    // (value, total, round up, result)
    let cases = [
        ("3", 10, true, Ok(3)),
        ("25%", 10, true, Ok(3)),
        ("25%", 10, false, Ok(2)),
        ("25%", 4, true, Ok(1)),
        ("25%", 4, false, Ok(1)),
        ("25%", 1, true, Ok(1)),
        ("25%", 1, false, Ok(0)),
        ("100%", 7, false, Ok(7)),
        ("0%", 7, true, Ok(0)),
        ("33%", 3, true, Ok(1)),
        ("33%", 3, false, Ok(0)),
        ("abc", 3, false, Err(BadValue("abc".into()))),
        ("%", 3, false, Err(BadValue("%".into()))),
    ];
    for (v, total, up, want) in cases {
        assert_eq!(
            scaled_value(&ios(v), total, up),
            want,
            "{v} of {total}, up={up}"
        );
    }
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down_and_are_never_both_zero() {
    // (replicas, maxSurge, maxUnavailable, surge, unavailable)
    let cases = [
        (10, "25%", "25%", 3, 2),
        (4, "25%", "25%", 1, 1),
        (1, "25%", "25%", 1, 0),
        (3, "0", "1", 0, 1),
        (3, "1", "0", 1, 0),
        (3, "0%", "10%", 0, 1),
        (0, "25%", "25%", 0, 1),
        (5, "2", "3", 2, 3),
    ];
    for (replicas, s, u, want_s, want_u) in cases {
        assert_eq!(
            resolve_fenceposts(Some(&ios(s)), Some(&ios(u)), replicas),
            Ok((want_s, want_u)),
            "{replicas} replicas, {s}/{u}"
        );
    }
    assert_eq!(resolve_fenceposts(None, None, 3), Ok((0, 1)));
}

#[test]
fn recreate_neither_surges_nor_allows_unavailability_and_unavailability_is_capped() {
    let recreate = deployment(3, "Recreate", "");
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    let d = deployment(3, "0", "5");
    assert_eq!(max_unavailable(&d), 3, "never more than spec.replicas");
    assert_eq!(max_unavailable(&deployment(0, "1", "1")), 0);
    assert!(
        is_rolling(&Deployment::default()),
        "RollingUpdate is the default"
    );
}

#[test]
fn the_new_replicaset_grows_as_far_as_the_surge_allows() {
    // (deployment, old replicas, new replicas, new size)
    let cases = [
        // 10 replicas, surge 3: 10 old + 0 new may grow to 13 in all.
        (deployment(10, "25%", "25%"), 10, 0, 3),
        (deployment(10, "25%", "25%"), 8, 3, 5),
        (deployment(10, "25%", "25%"), 10, 3, 3),
        // Never past spec.replicas.
        (deployment(10, "25%", "25%"), 0, 8, 10),
        (deployment(3, "0", "1"), 3, 0, 0),
        (deployment(3, "0", "1"), 2, 0, 1),
        (deployment(3, "Recreate", ""), 3, 0, 3),
    ];
    for (d, old, new, want) in cases {
        let (o, n) = (rs(old, old), rs(new, 0));
        assert_eq!(
            new_rs_new_replicas(&d, &[&o, &n], &n),
            want,
            "{old} old, {new} new"
        );
    }
}

#[test]
fn scaling_events_are_spread_in_proportion_to_the_previous_sizes() {
    let mut d = deployment(20, "0", "1");
    d.status = Some(DeploymentStatus {
        replicas: Some(10),
        ..Default::default()
    });
    // (rs replicas, its max-replicas annotation, to add, already added, proportion)
    let cases = [
        // 10 → 20: an RS of 4 out of 10 doubles.
        (4, Some(10), 10, 0, 4),
        // ...but never past what is left.
        (4, Some(10), 10, 8, 2),
        // Without the annotation, the Deployment's status.replicas is the base.
        (6, None, 10, 0, 6),
        (0, Some(10), 10, 0, 0),
        (4, Some(10), 0, 0, 0),
        (4, Some(10), 10, 10, 0),
    ];
    for (size, annotated, to_add, added, want) in cases {
        assert_eq!(
            proportion(size, annotated, &d, to_add, added),
            want,
            "{size} {annotated:?} {to_add} {added}"
        );
    }
    // 20 → 5: shrinking takes its share away, bounded below by what is left to remove.
    let shrink = deployment(5, "0", "1");
    assert_eq!(proportion(8, Some(20), &shrink, -15, 0), -6);
    assert_eq!(proportion(8, Some(20), &shrink, -15, -12), -3);
    assert_eq!(proportion(8, Some(20), &deployment(0, "0", "1"), -8, 0), -8);
}
