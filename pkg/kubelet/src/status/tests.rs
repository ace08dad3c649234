use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::jiff::Timestamp;

use super::*;

fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn pod(restart: &str, names: &[&str]) -> Pod {
    Pod {
        spec: Some(PodSpec {
            restart_policy: Some(restart.to_string()),
            containers: names
                .iter()
                .map(|n| Container {
                    name: n.to_string(),
                    image: Some("rkube.local/busybox:1.35".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running() -> ObservedContainer {
    ObservedContainer {
        latest: Some(Instance {
            id: "r".into(),
            attempt: 0,
            state: State::Running { started_at: t(10) },
            image_ref: "sha256:x".into(),
        }),
        ..Default::default()
    }
}

fn exited(code: i32) -> ObservedContainer {
    ObservedContainer {
        latest: Some(Instance {
            id: "e".into(),
            attempt: 0,
            state: State::Exited {
                exit_code: code,
                reason: String::new(),
                message: String::new(),
                started_at: Some(t(10)),
                finished_at: t(11),
            },
            image_ref: "sha256:x".into(),
        }),
        ..Default::default()
    }
}

fn backing_off(code: i32) -> ObservedContainer {
    ObservedContainer {
        waiting: Some(Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s restarting failed container".into(),
        }),
        restart_count: 1,
        ..exited(code)
    }
}

fn image_error(reason: &str) -> ObservedContainer {
    ObservedContainer {
        waiting: Some(Waiting {
            reason: reason.into(),
            message: String::new(),
        }),
        ..Default::default()
    }
}

fn observed(sandbox: bool, cs: Vec<(&str, ObservedContainer)>) -> Observed {
    Observed {
        sandbox_ready: sandbox,
        pod_ip: sandbox.then(|| "10.244.1.5".to_string()),
        host_ip: "192.168.1.2".into(),
        containers: cs.into_iter().map(|(n, c)| (n.to_string(), c)).collect(),
        deadline_exceeded: false,
    }
}

fn cond<'a>(s: &'a PodStatus, type_: &str) -> &'a PodCondition {
    s.conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

#[test]
fn phase_and_ready_follow_the_containers_and_the_restart_policy() {
    let cases: Vec<(&str, &str, Observed, &str, &str)> = vec![
        (
            "no sandbox yet",
            "Always",
            observed(false, vec![]),
            PENDING,
            "False",
        ),
        (
            "sandbox, container not created",
            "Always",
            observed(true, vec![]),
            PENDING,
            "False",
        ),
        (
            "running",
            "Always",
            observed(true, vec![("a", running())]),
            RUNNING,
            "True",
        ),
        (
            "one of two running",
            "Always",
            observed(true, vec![("a", running())]),
            PENDING,
            "False",
        ),
        (
            "exited 0, Never",
            "Never",
            observed(true, vec![("a", exited(0))]),
            SUCCEEDED,
            "False",
        ),
        (
            "exited 1, Never",
            "Never",
            observed(true, vec![("a", exited(1))]),
            FAILED,
            "False",
        ),
        (
            "exited 0, OnFailure",
            "OnFailure",
            observed(true, vec![("a", exited(0))]),
            SUCCEEDED,
            "False",
        ),
        (
            "exited 1, OnFailure",
            "OnFailure",
            observed(true, vec![("a", exited(1))]),
            RUNNING,
            "False",
        ),
        (
            "exited 0, Always",
            "Always",
            observed(true, vec![("a", exited(0))]),
            RUNNING,
            "False",
        ),
        (
            "crash loop",
            "Always",
            observed(true, vec![("a", backing_off(2))]),
            RUNNING,
            "False",
        ),
        (
            "image pull error",
            "Always",
            observed(true, vec![("a", image_error("ErrImagePull"))]),
            PENDING,
            "False",
        ),
    ];
    for (name, policy, o, want_phase, want_ready) in cases {
        let names: &[&str] = if name == "one of two running" {
            &["a", "b"]
        } else {
            &["a"]
        };
        let s = pod_status(&pod(policy, names), &o, &t(100));
        assert_eq!(s.phase.as_deref(), Some(want_phase), "{name}: phase");
        assert_eq!(cond(&s, "Ready").status, want_ready, "{name}: Ready");
        assert_eq!(
            cond(&s, "ContainersReady").status,
            want_ready,
            "{name}: ContainersReady"
        );
        assert_eq!(cond(&s, "PodScheduled").status, "True", "{name}");
        assert_eq!(cond(&s, "Initialized").status, "True", "{name}");
    }
}

#[test]
fn container_states_carry_exit_codes_reasons_and_the_last_termination() {
    let cases: Vec<(ObservedContainer, &str, Option<&str>, Option<i32>)> = vec![
        // (observed, state kind, state reason, lastState exit code)
        (running(), "running", None, None),
        (exited(0), "terminated", Some("Completed"), None),
        (exited(137), "terminated", Some("Error"), None),
        (backing_off(3), "waiting", Some("CrashLoopBackOff"), Some(3)),
        (
            image_error("ImagePullBackOff"),
            "waiting",
            Some("ImagePullBackOff"),
            None,
        ),
        (
            ObservedContainer::default(),
            "waiting",
            Some("ContainerCreating"),
            None,
        ),
    ];
    for (o, kind, reason, last_code) in cases {
        let s = container_status("a", "img", &o);
        let state = s.state.unwrap();
        let (got_kind, got_reason) = match (&state.running, &state.terminated, &state.waiting) {
            (Some(_), _, _) => ("running", None),
            (_, Some(t), _) => ("terminated", t.reason.clone()),
            (_, _, Some(w)) => ("waiting", w.reason.clone()),
            _ => ("none", None),
        };
        assert_eq!((got_kind, got_reason.as_deref()), (kind, reason), "{o:?}");
        let last = s.last_state.unwrap().terminated.map(|t| t.exit_code);
        assert_eq!(last, last_code, "{o:?}");
    }
    let mut oom = exited(137);
    if let Some(Instance {
        state: State::Exited { reason, .. },
        ..
    }) = &mut oom.latest
    {
        *reason = "OOMKilled".into();
    }
    let s = container_status("a", "img", &oom);
    assert_eq!(
        s.state.unwrap().terminated.unwrap().reason.as_deref(),
        Some("OOMKilled")
    );
}

#[test]
fn an_unchanged_pod_gets_an_equal_status() {
    let mut p = pod("Always", &["a"]);
    let o = observed(true, vec![("a", running())]);
    let first = pod_status(&p, &o, &t(100));
    p.status = Some(first.clone());
    assert_eq!(pod_status(&p, &o, &t(200)), first, "times are carried over");
    let mut stopped = o.clone();
    stopped.containers.insert("a".into(), backing_off(1));
    let second = pod_status(&p, &stopped, &t(300));
    assert_eq!(cond(&second, "Ready").last_transition_time, Some(t(300)));
    assert_eq!(
        cond(&second, "PodScheduled").last_transition_time,
        Some(t(100))
    );
    assert_eq!(second.start_time, Some(t(100)));
}

#[test]
fn a_passed_deadline_fails_the_pod_for_good() {
    let mut p = pod("Always", &["a"]);
    let mut o = observed(true, vec![("a", running())]);
    o.deadline_exceeded = true;
    let s = pod_status(&p, &o, &t(100));
    assert_eq!(s.phase.as_deref(), Some(FAILED));
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    p.status = Some(s);
    o.deadline_exceeded = false;
    let after = pod_status(&p, &o, &t(101));
    assert_eq!(after.phase.as_deref(), Some(FAILED), "terminal phases stay");
    assert_eq!(after.reason.as_deref(), Some("DeadlineExceeded"));
}
