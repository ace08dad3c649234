//! A pod's status, computed as Kubernetes computes it, from what the runtime shows
//! ([`Observed`]) and the pod's previous status. Pure: the same inputs give the same
//! status, and a status that did not change compares equal to the previous one (transition
//! times and the start time are carried over), so the status manager can skip it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::qos;

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// What the runtime says about one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub attempt: u32,
    pub state: State,
    /// The image's id (`imageID`).
    pub image_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Created,
    Running {
        started_at: Time,
    },
    Exited {
        exit_code: i32,
        /// The runtime's reason (Completed, Error, OOMKilled); empty when it gave none.
        reason: String,
        message: String,
        started_at: Option<Time>,
        finished_at: Time,
    },
}

/// Why a container waits, when the kubelet knows better than the runtime (back-offs,
/// image errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// One container of the pod spec, as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedContainer {
    /// The newest instance.
    pub latest: Option<Instance>,
    /// The one before it (its termination is `lastState`).
    pub previous: Option<Instance>,
    pub waiting: Option<Waiting>,
    pub restart_count: i32,
}

/// Everything the status is computed from besides the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    /// By container name.
    pub containers: BTreeMap<String, ObservedContainer>,
    /// activeDeadlineSeconds passed: the pod failed.
    pub deadline_exceeded: bool,
}

fn terminated(i: &Instance) -> Option<ContainerStateTerminated> {
    match &i.state {
        State::Exited {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => Some(ContainerStateTerminated {
            exit_code: *exit_code,
            reason: Some(match reason.as_str() {
                "" if *exit_code == 0 => "Completed".to_string(),
                "" => "Error".to_string(),
                r => r.to_string(),
            }),
            message: (!message.is_empty()).then(|| message.clone()),
            started_at: started_at.clone(),
            finished_at: Some(finished_at.clone()),
            container_id: Some(container_id(&i.id)),
            ..Default::default()
        }),
        _ => None,
    }
}

/// `containerd://<id>`, as the status shows container ids.
pub fn container_id(id: &str) -> String {
    format!("containerd://{id}")
}

fn container_status(name: &str, image: &str, o: &ObservedContainer) -> ContainerStatus {
    let latest_terminated = o.latest.as_ref().and_then(terminated);
    let (state, last) = match (&o.waiting, &o.latest) {
        (Some(w), _) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(w.reason.clone()),
                    message: (!w.message.is_empty()).then(|| w.message.clone()),
                }),
                ..Default::default()
            },
            latest_terminated.or_else(|| o.previous.as_ref().and_then(terminated)),
        ),
        (
            None,
            Some(Instance {
                state: State::Running { started_at },
                ..
            }),
        ) => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(started_at.clone()),
                }),
                ..Default::default()
            },
            o.previous.as_ref().and_then(terminated),
        ),
        (None, Some(i)) if latest_terminated.is_some() => (
            ContainerState {
                terminated: latest_terminated,
                ..Default::default()
            },
            o.previous.as_ref().and_then(terminated),
        ),
        (None, _) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".to_string()),
                    message: None,
                }),
                ..Default::default()
            },
            o.previous.as_ref().and_then(terminated),
        ),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: o
            .latest
            .as_ref()
            .map(|i| i.image_ref.clone())
            .unwrap_or_default(),
        container_id: o.latest.as_ref().map(|i| container_id(&i.id)),
        ready: running,
        started: Some(running),
        restart_count: o.restart_count,
        state: Some(state),
        last_state: Some(ContainerState {
            terminated: last,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The phase from the containers' states and the restart policy (Kubernetes' getPhase).
pub fn phase(restart_policy: &str, statuses: &[ContainerStatus]) -> &'static str {
    let (mut waiting, mut running, mut stopped, mut succeeded, mut failed) = (0, 0, 0, 0, 0);
    for s in statuses {
        let state = s.state.clone().unwrap_or_default();
        let last = s.last_state.as_ref().and_then(|l| l.terminated.as_ref());
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1
            } else {
                failed += 1
            }
        } else if let Some(t) = last {
            // Waiting to restart: it ran before.
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1
            } else {
                failed += 1
            }
        } else {
            waiting += 1;
        }
    }
    let n = statuses.len();
    if waiting > 0 {
        return PENDING;
    }
    if running > 0 {
        return RUNNING;
    }
    if n > 0 && stopped == n {
        return match restart_policy {
            "Never" if failed > 0 => FAILED,
            "Never" => SUCCEEDED,
            "OnFailure" if succeeded == n => SUCCEEDED,
            "OnFailure" => RUNNING,
            _ => RUNNING,
        };
    }
    PENDING
}

fn condition(
    previous: Option<&PodStatus>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The pod's status; see the module documentation.
pub fn pod_status(pod: &Pod, o: &Observed, now: &Time) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.as_ref();
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                &o.containers.get(&c.name).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let previous_phase = previous.and_then(|p| p.phase.as_deref());
    let (mut phase, mut reason, mut message) = (phase(restart_policy, &statuses), None, None);
    if o.deadline_exceeded {
        phase = FAILED;
        reason = Some("DeadlineExceeded".to_string());
        message = Some("Pod was active on the node longer than the specified deadline".to_string());
    } else if let Some(p @ (SUCCEEDED | FAILED)) = previous_phase {
        // A terminal phase is final.
        phase = if p == SUCCEEDED { SUCCEEDED } else { FAILED };
        reason = previous.and_then(|p| p.reason.clone());
        message = previous.and_then(|p| p.message.clone());
    }
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let all_ready = unready.is_empty() && phase != SUCCEEDED && phase != FAILED;
    let (not_ready_reason, not_ready_message) = if phase == SUCCEEDED {
        (Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (Some("PodFailed"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let ready_reason = if all_ready { None } else { not_ready_reason };
    let ready_message = if all_ready { None } else { not_ready_message };
    let sandbox = o.sandbox_ready && phase != SUCCEEDED && phase != FAILED;
    let conditions = vec![
        condition(
            previous,
            "PodReadyToStartContainers",
            sandbox,
            None,
            None,
            now,
        ),
        condition(previous, "Initialized", true, None, None, now),
        condition(
            previous,
            "Ready",
            all_ready,
            ready_reason,
            ready_message.clone(),
            now,
        ),
        condition(
            previous,
            "ContainersReady",
            all_ready,
            ready_reason,
            ready_message,
            now,
        ),
        condition(previous, "PodScheduled", true, None, None, now),
    ];
    let pod_ip = o
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| previous.and_then(|p| p.pod_ip.clone()));
    PodStatus {
        phase: Some(phase.to_string()),
        reason,
        message,
        conditions: Some(conditions),
        host_ip: (!o.host_ip.is_empty()).then(|| o.host_ip.clone()),
        host_ips: (!o.host_ip.is_empty()).then(|| {
            vec![HostIP {
                ip: o.host_ip.clone(),
            }]
        }),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: Some(
            previous
                .and_then(|p| p.start_time.clone())
                .unwrap_or_else(|| now.clone()),
        ),
        qos_class: Some(qos::qos_class(pod).to_string()),
        container_statuses: Some(statuses),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
