use k8s_openapi::api::apps::v1::ReplicaSetCondition;

use super::*;
use crate::deployment::replicas::tests::{deployment, rs};

const NOW: i64 = 100_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// A deployment of `replicas` (maxSurge 1, maxUnavailable 1) with a progress deadline of
/// 60 s, at generation 2.
fn d(replicas: i32) -> Deployment {
    let mut d = deployment(replicas, "1", "1");
    d.metadata.name = Some("web".into());
    d.metadata.generation = Some(2);
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60);
    d
}

fn named(mut r: ReplicaSet, name: &str) -> ReplicaSet {
    r.metadata.name = Some(name.into());
    r
}

fn progressing_cond(reason: &str, status: &str, updated_ago: i64) -> DeploymentCondition {
    condition(PROGRESSING, status, reason, "", at(NOW - updated_ago))
}

fn with_conditions(conditions: Vec<DeploymentCondition>) -> DeploymentStatus {
    DeploymentStatus {
        conditions: Some(conditions),
        ..Default::default()
    }
}

#[test]
fn the_status_sums_the_replicasets() {
    let old = rs(2, 2);
    let new = rs(3, 1);
    let s = calculate(
        &[&old, &new],
        Some(&new),
        &d(4),
        &DeploymentStatus::default(),
        at(NOW),
    );
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(5), Some(3), Some(3), Some(3), Some(2))
    );
    // No new ReplicaSet: nothing is updated (and zero counts are omitted).
    let s = calculate(&[&old], None, &d(4), &DeploymentStatus::default(), at(NOW));
    assert_eq!((s.updated_replicas, s.unavailable_replicas), (None, None));
}

#[test]
fn available_means_at_most_max_unavailable_missing() {
    // (replicas, available pods, status, reason)
    let cases = [
        (4, 3, "True", MIN_AVAILABLE),
        (4, 4, "True", MIN_AVAILABLE),
        (4, 2, "False", MIN_UNAVAILABLE),
        (0, 0, "True", MIN_AVAILABLE),
    ];
    for (replicas, avail, status, reason) in cases {
        let r = rs(replicas, avail);
        let s = calculate(
            &[&r],
            Some(&r),
            &d(replicas),
            &DeploymentStatus::default(),
            at(NOW),
        );
        let c = get(&s, AVAILABLE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            (status, Some(reason)),
            "{avail}/{replicas}"
        );
    }
}

#[test]
fn setting_a_condition_keeps_times_unless_something_changed() {
    let mut s = DeploymentStatus::default();
    set(
        &mut s,
        condition(PROGRESSING, "True", RS_UPDATED, "a", at(10)),
    );
    // Same status and reason: untouched, message and times included.
    set(
        &mut s,
        condition(PROGRESSING, "True", RS_UPDATED, "b", at(20)),
    );
    let c = get(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c.message.as_deref(), c.last_update_time.clone()),
        (Some("a"), Some(Time(at(10))))
    );
    // Same status, new reason: replaced, transition time kept.
    set(
        &mut s,
        condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "c", at(30)),
    );
    let c = get(&s, PROGRESSING).unwrap();
    assert_eq!(c.last_transition_time, Some(Time(at(10))));
    assert_eq!(c.last_update_time, Some(Time(at(30))));
    // New status: a new transition.
    set(
        &mut s,
        condition(PROGRESSING, "False", TIMED_OUT, "d", at(40)),
    );
    assert_eq!(
        get(&s, PROGRESSING).unwrap().last_transition_time,
        Some(Time(at(40)))
    );
    assert_eq!(s.conditions.as_ref().unwrap().len(), 1);
    remove(&mut s, PROGRESSING);
    assert_eq!(s.conditions, None);
}

#[test]
fn a_rollout_is_complete_progressing_or_timed_out() {
    let done = DeploymentStatus {
        observed_generation: Some(2),
        replicas: Some(3),
        updated_replicas: Some(3),
        available_replicas: Some(3),
        ..Default::default()
    };
    assert!(complete(&d(3), &done));
    assert!(!complete(
        &d(3),
        &DeploymentStatus {
            observed_generation: Some(1),
            ..done.clone()
        }
    ));
    assert!(!complete(
        &d(3),
        &DeploymentStatus {
            replicas: Some(4),
            ..done.clone()
        }
    ));
    // (old, new, progressing)
    let s = |replicas, updated, ready, available| DeploymentStatus {
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        ..Default::default()
    };
    let cases = [
        (s(4, 1, 3, 3), s(4, 2, 3, 3), true),
        (s(4, 1, 3, 3), s(3, 1, 3, 3), true),
        (s(4, 1, 3, 3), s(4, 1, 4, 3), true),
        (s(4, 1, 3, 3), s(4, 1, 3, 4), true),
        (s(4, 1, 3, 3), s(4, 1, 3, 3), false),
        (s(4, 2, 3, 3), s(4, 1, 2, 2), false),
    ];
    for (old, new, want) in cases {
        assert_eq!(progressing(&old, &new), want, "{old:?} -> {new:?}");
    }
    // (condition, timed out)
    let cases = [
        (progressing_cond(RS_UPDATED, "True", 61), true),
        (progressing_cond(RS_UPDATED, "True", 60), false),
        (progressing_cond(NEW_RS_AVAILABLE, "True", 600), false),
        (progressing_cond(TIMED_OUT, "False", 0), true),
        (progressing_cond(RESUMED, "Unknown", 61), true),
    ];
    for (c, want) in cases {
        let reason = c.reason.clone();
        assert_eq!(
            timed_out(&d(3), &with_conditions(vec![c]), at(NOW)),
            want,
            "{reason:?}"
        );
    }
    let mut no_deadline = d(3);
    no_deadline.spec.as_mut().unwrap().progress_deadline_seconds = None;
    let late = with_conditions(vec![progressing_cond(RS_UPDATED, "True", 600)]);
    assert!(!timed_out(&no_deadline, &late, at(NOW)));
}

#[test]
fn progressing_moves_with_the_rollout() {
    let new = named(rs(3, 1), "web-abc");
    let old = named(rs(1, 1), "web-old");
    let before = DeploymentStatus {
        observed_generation: Some(2),
        replicas: Some(4),
        updated_replicas: Some(2),
        ready_replicas: Some(2),
        available_replicas: Some(2),
        conditions: Some(vec![progressing_cond(RS_UPDATED, "True", 30)]),
        ..Default::default()
    };
    // More updated pods: progress, lastUpdateTime renewed, transition time kept.
    let s = rollout_status(&[&old, &new], Some(&new), &d(3), &before, at(NOW));
    let c = get(&s, PROGRESSING).unwrap();
    assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" is progressing.")
    );
    assert_eq!(c.last_update_time, Some(Time(at(NOW))));
    assert_eq!(c.last_transition_time, Some(Time(at(NOW - 30))));
    // Nothing moved for longer than the deadline: timed out.
    let stuck = DeploymentStatus {
        conditions: Some(vec![progressing_cond(RS_UPDATED, "True", 61)]),
        ..s.clone()
    };
    let s2 = rollout_status(&[&old, &new], Some(&new), &d(3), &stuck, at(NOW));
    let c = get(&s2, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(TIMED_OUT))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has timed out progressing.")
    );
    // Everything updated and available: complete.
    let all_new = named(rs(3, 3), "web-abc");
    let s3 = rollout_status(&[&all_new], Some(&all_new), &d(3), &stuck, at(NOW));
    let c = get(&s3, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some(NEW_RS_AVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has successfully progressed.")
    );
    // Once complete, it stays so.
    assert_eq!(
        get(
            &rollout_status(&[&all_new], Some(&all_new), &d(3), &s3, at(NOW + 999)),
            PROGRESSING
        ),
        get(&s3, PROGRESSING)
    );
    // Without a deadline there is no Progressing condition.
    let mut no_deadline = d(3);
    no_deadline.spec.as_mut().unwrap().progress_deadline_seconds = None;
    assert!(get(
        &rollout_status(&[&all_new], Some(&all_new), &no_deadline, &stuck, at(NOW)),
        PROGRESSING
    )
    .is_none());
}

#[test]
fn a_replica_failure_is_carried_up_from_the_new_replicaset_first() {
    let failing = |name: &str, msg: &str| {
        let mut r = named(rs(1, 0), name);
        r.status.as_mut().unwrap().conditions = Some(vec![ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(msg.into()),
            last_transition_time: Some(Time(at(NOW - 5))),
        }]);
        r
    };
    let (old, new) = (failing("old", "old failed"), failing("new", "new failed"));
    let s = rollout_status(
        &[&old, &new],
        Some(&new),
        &d(1),
        &DeploymentStatus::default(),
        at(NOW),
    );
    assert_eq!(
        get(&s, REPLICA_FAILURE).unwrap().message.as_deref(),
        Some("new failed")
    );
    let fine = named(rs(1, 0), "new");
    let s = rollout_status(
        &[&old, &fine],
        Some(&fine),
        &d(1),
        &DeploymentStatus::default(),
        at(NOW),
    );
    assert_eq!(
        get(&s, REPLICA_FAILURE).unwrap().message.as_deref(),
        Some("old failed")
    );
    let s = rollout_status(&[&fine], Some(&fine), &d(1), &s, at(NOW));
    assert!(
        get(&s, REPLICA_FAILURE).is_none(),
        "gone once no ReplicaSet fails"
    );
}

#[test]
fn a_stuck_rollout_is_looked_at_again_when_its_deadline_passes() {
    let stuck = with_conditions(vec![progressing_cond(RS_UPDATED, "True", 20)]);
    assert_eq!(recheck_in_ms(&d(3), &stuck, at(NOW)), Some(41_000));
    let late = with_conditions(vec![progressing_cond(RS_UPDATED, "True", 90)]);
    assert_eq!(recheck_in_ms(&d(3), &late, at(NOW)), Some(1_000));
    let over = with_conditions(vec![progressing_cond(TIMED_OUT, "False", 0)]);
    assert_eq!(recheck_in_ms(&d(3), &over, at(NOW)), None);
    assert_eq!(
        recheck_in_ms(&d(3), &DeploymentStatus::default(), at(NOW)),
        None
    );
}

#[test]
fn pausing_and_resuming_show_in_progressing() {
    let mut paused = d(3);
    paused.spec.as_mut().unwrap().paused = Some(true);
    let mut s = with_conditions(vec![progressing_cond(RS_UPDATED, "True", 10)]);
    paused_conditions(&paused, &mut s, at(NOW));
    let c = get(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        ("Unknown", Some(PAUSED), Some("Deployment is paused"))
    );
    let mut resumed = d(3);
    resumed.spec.as_mut().unwrap().paused = Some(false);
    paused_conditions(&resumed, &mut s, at(NOW + 5));
    let c = get(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        ("Unknown", Some(RESUMED), Some("Deployment is resumed"))
    );
    assert_eq!(
        c.last_update_time,
        Some(Time(at(NOW + 5))),
        "the deadline starts afresh"
    );
    // An exceeded deadline is not hidden by pausing.
    let mut over = with_conditions(vec![progressing_cond(TIMED_OUT, "False", 10)]);
    paused_conditions(&paused, &mut over, at(NOW));
    assert_eq!(
        get(&over, PROGRESSING).unwrap().reason.as_deref(),
        Some(TIMED_OUT)
    );
}
