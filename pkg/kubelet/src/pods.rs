//! Pod workers: one sync of one pod at a time (the controller loop serialises each key),
//! making the runtime match the pod and reporting what it shows.
//!
//! A sync, in order: a pod being deleted is terminated (containers stopped within their
//! grace period, the sandbox stopped and removed) and then deleted for good (grace 0); a
//! terminal pod only has its sandbox stopped; a pod past activeDeadlineSeconds is killed
//! and fails with DeadlineExceeded. Otherwise: the pod's directories, its sandbox (the
//! pause container with the pod's network, created when there is no ready one), then each
//! container: the image (ImageStatus, then PullImage as imagePullPolicy says, with
//! back-off on failure), create and start; an exited container restarts as restartPolicy
//! says, after its CrashLoopBackOff delay. Last, the status is computed
//! ([`crate::status::pod_status`]) and handed to the status manager.
//!
//! Everything a sync needs from the runtime it asks for (by the pod's uid label), so a
//! restarted kubelet adopts what runs: a ready sandbox and running containers are kept.
//! Never: write anything but the pod's status, its events and its final delete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_client::{Api, Client, DeleteParams};
use rkube_runtime::{Action, EventType, ObjectKey, Recorder, Store};
use tracing::Instrument as _;

use crate::admission::{self, Allocatable};
use crate::backoff::Backoff;
use crate::cri::{self, pb, Cri, CriError};
use crate::metrics::Metrics;
use crate::status::{self, Instance, Observed, ObservedContainer, State, Waiting};
use crate::status_manager::StatusManager;
use crate::{qos, Config};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error("creating {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("deleting the pod")]
    Delete(#[source] rkube_client::Error),
}

/// What the pod workers share.
pub struct Kubelet {
    pub config: Config,
    pub cri: Cri,
    pub client: Client,
    pub pods: Store<Pod>,
    pub recorder: Recorder,
    pub status: StatusManager,
    pub host_ip: String,
    pub allocatable: Allocatable,
    crash_backoff: Mutex<Backoff>,
    image_backoff: Mutex<Backoff>,
    /// The last image pull failure per `uid/container`: (when, message).
    pull_errors: Mutex<HashMap<String, (SystemTime, String)>>,
    /// Time spent pulling images per pod uid (excluded from the start SLI).
    pull_time: Mutex<HashMap<String, Duration>>,
    /// Pods whose start was already counted.
    started: Mutex<HashSet<String>>,
    /// Pods admitted by this process (their start time may not be written yet).
    admitted: Mutex<HashSet<String>>,
    metrics: Metrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn namespace_of(pod: &Pod) -> String {
    pod.metadata.namespace.clone().unwrap_or_default()
}

fn nanos_to_time(ns: i64) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_nanosecond(i128::from(ns))
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn system_time(t: &Time) -> SystemTime {
    let ns = t.0.as_nanosecond().max(0) as u128;
    SystemTime::UNIX_EPOCH + Duration::new((ns / 1_000_000_000) as u64, (ns % 1_000_000_000) as u32)
}

/// Whether a container that exited with `exit_code` starts again under `policy`.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The pull policy Kubernetes defaults to: Always for `:latest` or no tag, else
/// IfNotPresent.
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = c.image_pull_policy.as_deref().filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent".into();
    }
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always".into(),
        Some(_) => "IfNotPresent".into(),
    }
}

/// The nameservers, search domains and options of `/etc/resolv.conf` text. Pure.
pub fn parse_resolv_conf(text: &str) -> pb::DnsConfig {
    let mut dns = pb::DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.servers.extend(words.next().map(str::to_string)),
            Some("search") => dns.searches = words.map(str::to_string).collect(),
            Some("options") => dns.options = words.map(str::to_string).collect(),
            _ => {}
        }
    }
    dns
}

/// One container instance of a pod, as the runtime lists it.
struct Seen {
    id: String,
    sandbox: String,
    name: String,
    attempt: u32,
    state: i32,
}

/// What one step of a sync decided about a container.
enum Outcome {
    Fine,
    Wait(Waiting, Option<Duration>),
}

impl Kubelet {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        cri: Cri,
        client: Client,
        pods: Store<Pod>,
        recorder: Recorder,
        status: StatusManager,
        host_ip: String,
        allocatable: Allocatable,
    ) -> Self {
        let crash = config.crash_backoff();
        Kubelet {
            crash_backoff: Mutex::new(Backoff::new(crash)),
            image_backoff: Mutex::new(Backoff::new(crash)),
            pull_errors: Mutex::default(),
            pull_time: Mutex::default(),
            started: Mutex::default(),
            admitted: Mutex::default(),
            metrics: Metrics::get(),
            config,
            cri,
            client,
            pods,
            recorder,
            status,
            host_ip,
            allocatable,
        }
    }

    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        self.recorder.publish_for(pod, kind, reason, message);
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.config.root_dir.join("pods").join(uid)
    }

    fn log_dir(&self, pod: &Pod) -> PathBuf {
        self.config.root_dir.join("logs").join(format!(
            "{}_{}_{}",
            namespace_of(pod),
            name_of(pod),
            uid_of(pod)
        ))
    }

    /// Syncs the pod at `key`; see the module documentation.
    pub async fn sync(&self, key: ObjectKey) -> Result<Action, SyncError> {
        let Some(pod) = self.pods.get(&key) else {
            return Ok(Action::await_change());
        };
        let pod = (*pod).clone();
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(&self.config.node_name) {
            return Ok(Action::await_change());
        }
        let uid = uid_of(&pod);
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30);
            self.kill_pod(&pod, &uid, Duration::from_secs(grace.max(0) as u64))
                .await?;
            self.cleanup_pod_files(&uid, &pod);
            let api: Api<Pod> = Api::namespaced(&self.client, &namespace_of(&pod));
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                precondition_uid: Some(uid.clone()),
                ..Default::default()
            };
            match api.delete(&name_of(&pod), &params).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(SyncError::Delete(e)),
            }
            self.forget(&uid);
            return Ok(Action::await_change());
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some(status::SUCCEEDED | status::FAILED)) {
            self.stop_sandboxes(&uid).await?;
            return Ok(Action::await_change());
        }
        let now = SystemTime::now();
        if let Some(left) = self.deadline_left(&pod, now) {
            if left.is_zero() {
                self.event(
                    &pod,
                    EventType::Normal,
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline",
                );
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                // Stopped, not removed: the containers' terminations stay in the status.
                self.stop_pod(&pod, &uid, Duration::from_secs(grace.max(0) as u64))
                    .await?;
                let mut observed = self.observe(&pod, &uid, None, &HashMap::new()).await?;
                observed.deadline_exceeded = true;
                self.report(&key, &pod, &observed);
                return Ok(Action::await_change());
            }
        }
        let known = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_some()
            || lock(&self.admitted).contains(&uid);
        if !known {
            let verdict = self.admit(&pod, &uid);
            if verdict.is_ok() {
                lock(&self.admitted).insert(uid.clone());
            }
            if let Err(r) = verdict {
                self.event(&pod, EventType::Warning, &r.reason, &r.message);
                let status = k8s_openapi::api::core::v1::PodStatus {
                    phase: Some(status::FAILED.to_string()),
                    reason: Some(r.reason),
                    message: Some(r.message),
                    start_time: Some(Time(rkube_runtime::object::now())),
                    ..Default::default()
                };
                self.status.set(key, uid, status);
                return Ok(Action::await_change());
            }
        }
        self.ensure_dirs(&uid)?;
        let (sandbox_id, sandbox_config) = match self.ensure_sandbox(&pod, &uid).await {
            Ok(s) => s,
            Err(e) => {
                self.event(
                    &pod,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &format!(
                        "Failed to create pod sandbox: {}",
                        rkube_component::error_chain(&e)
                    ),
                );
                let observed = self.observe(&pod, &uid, None, &HashMap::new()).await?;
                self.report(&key, &pod, &observed);
                return Err(e);
            }
        };
        let mut waiting = HashMap::new();
        let mut requeue: Option<Duration> = None;
        let containers = self.list_containers(&uid).await?;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let outcome = self
                .sync_container(&pod, &uid, c, &sandbox_id, &sandbox_config, &containers)
                .await?;
            if let Outcome::Wait(w, after) = outcome {
                waiting.insert(c.name.clone(), w);
                if let Some(d) = after {
                    requeue = Some(requeue.map_or(d, |r| r.min(d)));
                }
            }
        }
        let observed = self
            .observe(&pod, &uid, Some(&sandbox_id), &waiting)
            .await?;
        let computed = self.report(&key, &pod, &observed);
        if matches!(
            computed.phase.as_deref(),
            Some(status::SUCCEEDED | status::FAILED)
        ) {
            self.stop_sandboxes(&uid).await?;
        }
        if let Some(left) = self.deadline_left(&pod, now) {
            requeue = Some(requeue.map_or(left, |r| r.min(left)));
        }
        Ok(match requeue {
            Some(d) => Action::requeue(d + Duration::from_millis(50)),
            None => Action::await_change(),
        })
    }

    /// Whether a new pod fits beside the pods already admitted here (those with a start
    /// time that have not finished).
    fn admit(&self, pod: &Pod, uid: &str) -> Result<(), admission::Rejection> {
        let _span = tracing::info_span!("kubelet.admit").entered();
        let all = self.pods.list();
        let mine = lock(&self.admitted).clone();
        let admitted: Vec<&Pod> = all
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| uid_of(p) != uid)
            .filter(|p| {
                let s = p.status.as_ref();
                (s.and_then(|s| s.start_time.as_ref()).is_some() || mine.contains(&uid_of(p)))
                    && !matches!(
                        s.and_then(|s| s.phase.as_deref()),
                        Some(status::SUCCEEDED | status::FAILED)
                    )
            })
            .collect();
        admission::admit(pod, &admitted, self.allocatable)
    }

    /// Time left before activeDeadlineSeconds (from the pod's start), if it has one.
    fn deadline_left(&self, pod: &Pod, now: SystemTime) -> Option<Duration> {
        let secs = pod.spec.as_ref()?.active_deadline_seconds?;
        let start = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(system_time)
            .unwrap_or(now);
        let deadline = start + Duration::from_secs(secs.max(0) as u64);
        Some(deadline.duration_since(now).unwrap_or_default())
    }

    fn ensure_dirs(&self, uid: &str) -> Result<(), SyncError> {
        let _span = tracing::info_span!("kubelet.pod_directories").entered();
        let dir = self.pod_dir(uid);
        for sub in ["volumes", "plugins", "containers"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| SyncError::Dir { path, source })?;
        }
        Ok(())
    }

    fn sandbox_config(&self, pod: &Pod, uid: &str, attempt: u32) -> pb::PodSandboxConfig {
        let spec = pod.spec.clone().unwrap_or_default();
        let qos = qos::qos_class(pod);
        let labels: HashMap<String, String> = [
            (cri::LABEL_POD_NAME, name_of(pod)),
            (cri::LABEL_POD_NAMESPACE, namespace_of(pod)),
            (cri::LABEL_POD_UID, uid.to_string()),
            (cri::LABEL_MANAGED, "rkube-kubelet".to_string()),
            (cri::LABEL_NODE, self.config.node_name.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(pod.metadata.labels.clone().unwrap_or_default())
        .collect();
        let dns = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default();
        let port_mappings = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| pb::PortMapping {
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => pb::Protocol::Udp as i32,
                    Some("SCTP") => pb::Protocol::Sctp as i32,
                    _ => pb::Protocol::Tcp as i32,
                },
                container_port: p.container_port,
                host_port: p.host_port.unwrap_or(0),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
            .collect();
        pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: name_of(pod),
                uid: uid.to_string(),
                namespace: namespace_of(pod),
                attempt,
            }),
            hostname: spec.hostname.clone().unwrap_or_else(|| name_of(pod)),
            log_directory: self.log_dir(pod).display().to_string(),
            dns_config: Some(dns),
            port_mappings,
            labels,
            annotations: pod
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            linux: Some(pb::LinuxPodSandboxConfig {
                cgroup_parent: qos::cgroup_parent(&self.config.cgroup_root, qos, uid),
                ..Default::default()
            }),
        }
    }

    /// The pod's ready sandbox, created when there is none (old ones are removed).
    async fn ensure_sandbox(
        &self,
        pod: &Pod,
        uid: &str,
    ) -> Result<(String, pb::PodSandboxConfig), SyncError> {
        let sandboxes = self
            .cri
            .list_pod_sandbox(&[(cri::LABEL_POD_UID, uid)])
            .await?;
        let ready = sandboxes
            .iter()
            .filter(|s| s.state == pb::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at);
        if let Some(s) = ready {
            let attempt = s.metadata.as_ref().map_or(0, |m| m.attempt);
            return Ok((s.id.clone(), self.sandbox_config(pod, uid, attempt)));
        }
        // A dead sandbox takes its containers with it: start over with a new one.
        let attempt = sandboxes
            .iter()
            .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt + 1))
            .max()
            .unwrap_or(0);
        if !sandboxes.is_empty() {
            self.event(
                pod,
                EventType::Normal,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            );
            self.remove_all(uid, Duration::ZERO).await?;
        }
        let config = self.sandbox_config(pod, uid, attempt);
        let id = self
            .cri
            .run_pod_sandbox(config.clone())
            .instrument(tracing::info_span!("kubelet.run_pod_sandbox"))
            .await?;
        Ok((id, config))
    }

    async fn list_containers(&self, uid: &str) -> Result<Vec<Seen>, SyncError> {
        Ok(self
            .cri
            .list_containers(&[(cri::LABEL_POD_UID, uid)])
            .await?
            .into_iter()
            .map(|c| Seen {
                name: c
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                attempt: c.metadata.as_ref().map_or(0, |m| m.attempt),
                id: c.id,
                sandbox: c.pod_sandbox_id,
                state: c.state,
            })
            .collect())
    }

    async fn sync_container(
        &self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        sandbox_id: &str,
        sandbox_config: &pb::PodSandboxConfig,
        all: &[Seen],
    ) -> Result<Outcome, SyncError> {
        let mut mine: Vec<&Seen> = all
            .iter()
            .filter(|s| s.name == c.name && s.sandbox == sandbox_id)
            .collect();
        mine.sort_by_key(|s| std::cmp::Reverse(s.attempt));
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        let attempt = match mine.first() {
            None => 0,
            Some(s) if s.state == pb::ContainerState::ContainerRunning as i32 => {
                return Ok(Outcome::Fine)
            }
            Some(s) if s.state == pb::ContainerState::ContainerCreated as i32 => {
                self.cri.start_container(&s.id).await?;
                return Ok(Outcome::Fine);
            }
            Some(s) => {
                let st = self.cri.container_status(&s.id).await?;
                if !should_restart(&policy, st.exit_code) {
                    return Ok(Outcome::Fine);
                }
                let key = format!("{uid}/{}", c.name);
                let failed_at = system_time(&nanos_to_time(st.finished_at));
                let now = SystemTime::now();
                let remaining = lock(&self.crash_backoff).remaining(&key, failed_at, now);
                if let Some(left) = remaining {
                    let delay = lock(&self.crash_backoff).delay(&key, now).unwrap_or(left);
                    let pod_ref = format!("{}_{}({uid})", name_of(pod), namespace_of(pod));
                    self.event(
                        pod,
                        EventType::Warning,
                        "BackOff",
                        &format!(
                            "Back-off restarting failed container {} in pod {pod_ref}",
                            c.name
                        ),
                    );
                    return Ok(Outcome::Wait(
                        Waiting {
                            reason: "CrashLoopBackOff".into(),
                            message: format!(
                                "back-off {} restarting failed container={} pod={pod_ref}",
                                humanize(delay),
                                c.name
                            ),
                        },
                        Some(left),
                    ));
                }
                lock(&self.crash_backoff).next(&key, now);
                // Keep the last instance (its termination is lastState); older ones go.
                for old in mine.iter().skip(1) {
                    self.cri.remove_container(&old.id).await?;
                }
                s.attempt + 1
            }
        };
        self.start_container(pod, uid, c, sandbox_id, sandbox_config, attempt)
            .await
    }

    async fn ensure_image(
        &self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        sandbox_config: &pb::PodSandboxConfig,
    ) -> Result<Outcome, SyncError> {
        let image = c.image.clone().unwrap_or_default();
        let policy = pull_policy(c);
        let present = self
            .cri
            .image_status(&image)
            .instrument(tracing::info_span!("kubelet.image_status", image = %image))
            .await?
            .is_some();
        if policy == "Never" && !present {
            let message =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            self.event(pod, EventType::Warning, "ErrImageNeverPull", &message);
            return Ok(Outcome::Wait(
                Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message,
                },
                None,
            ));
        }
        if present && policy != "Always" {
            self.event(
                pod,
                EventType::Normal,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            );
            return Ok(Outcome::Fine);
        }
        let key = format!("{uid}/{}/{image}", c.name);
        let now = SystemTime::now();
        let last = lock(&self.pull_errors).get(&key).cloned();
        if let Some((failed_at, _)) = last {
            if let Some(left) = lock(&self.image_backoff).remaining(&key, failed_at, now) {
                let message = format!("Back-off pulling image \"{image}\"");
                self.event(pod, EventType::Normal, "BackOff", &message);
                return Ok(Outcome::Wait(
                    Waiting {
                        reason: "ImagePullBackOff".into(),
                        message,
                    },
                    Some(left),
                ));
            }
        }
        lock(&self.image_backoff).next(&key, now);
        self.event(
            pod,
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let started = std::time::Instant::now();
        let pulled = self
            .cri
            .pull_image(&image, sandbox_config.clone())
            .instrument(tracing::info_span!("kubelet.pull_image", image = %image))
            .await;
        let took = started.elapsed();
        *lock(&self.pull_time).entry(uid.to_string()).or_default() += took;
        match pulled {
            Ok(_) => {
                lock(&self.pull_errors).remove(&key);
                self.event(
                    pod,
                    EventType::Normal,
                    "Pulled",
                    &format!("Successfully pulled image \"{image}\" in {took:?}"),
                );
                Ok(Outcome::Fine)
            }
            Err(e) => {
                let message = format!("Failed to pull image \"{image}\": {}", e.message());
                self.event(pod, EventType::Warning, "Failed", &message);
                self.event(pod, EventType::Warning, "Failed", "Error: ErrImagePull");
                lock(&self.pull_errors).insert(key.clone(), (SystemTime::now(), message.clone()));
                let delay = lock(&self.image_backoff)
                    .delay(&key, SystemTime::now())
                    .unwrap_or(Duration::from_secs(1));
                Ok(Outcome::Wait(
                    Waiting {
                        reason: "ErrImagePull".into(),
                        message,
                    },
                    Some(delay),
                ))
            }
        }
    }

    async fn start_container(
        &self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        sandbox_id: &str,
        sandbox_config: &pb::PodSandboxConfig,
        attempt: u32,
    ) -> Result<Outcome, SyncError> {
        if let Outcome::Wait(w, d) = self.ensure_image(pod, uid, c, sandbox_config).await? {
            return Ok(Outcome::Wait(w, d));
        }
        let qos = qos::qos_class(pod);
        let labels: HashMap<String, String> = [
            (cri::LABEL_POD_NAME, name_of(pod)),
            (cri::LABEL_POD_NAMESPACE, namespace_of(pod)),
            (cri::LABEL_POD_UID, uid.to_string()),
            (cri::LABEL_CONTAINER_NAME, c.name.clone()),
            (cri::LABEL_MANAGED, "rkube-kubelet".to_string()),
            (cri::LABEL_NODE, self.config.node_name.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let envs = c
            .env
            .iter()
            .flatten()
            .map(|e| pb::KeyValue {
                key: e.name.clone(),
                value: e.value.clone().unwrap_or_default(),
            })
            .collect();
        let config = pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: c.name.clone(),
                attempt,
            }),
            image: Some(pb::ImageSpec {
                image: c.image.clone().unwrap_or_default(),
                ..Default::default()
            }),
            command: c.command.clone().unwrap_or_default(),
            args: c.args.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs,
            labels,
            log_path: format!("{}/{attempt}.log", c.name),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            linux: Some(pb::LinuxContainerConfig {
                resources: Some(qos::container_resources(
                    c,
                    qos,
                    self.allocatable.memory_bytes,
                )),
            }),
            ..Default::default()
        };
        let id = match self
            .cri
            .create_container(sandbox_id, config, sandbox_config.clone())
            .instrument(tracing::info_span!("kubelet.create_container", container = %c.name))
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {}", e.message()),
                );
                return Err(e.into());
            }
        };
        self.event(
            pod,
            EventType::Normal,
            "Created",
            &format!("Created container: {}", c.name),
        );
        if let Err(e) = self
            .cri
            .start_container(&id)
            .instrument(tracing::info_span!("kubelet.start_container", container = %c.name))
            .await
        {
            self.event(
                pod,
                EventType::Warning,
                "Failed",
                &format!("Error: {}", e.message()),
            );
            return Err(e.into());
        }
        self.event(
            pod,
            EventType::Normal,
            "Started",
            &format!("Started container {}", c.name),
        );
        Ok(Outcome::Fine)
    }

    /// What the runtime shows of the pod, for its status.
    async fn observe(
        &self,
        pod: &Pod,
        uid: &str,
        sandbox_id: Option<&str>,
        waiting: &HashMap<String, Waiting>,
    ) -> Result<Observed, SyncError> {
        let mut o = Observed {
            host_ip: self.host_ip.clone(),
            ..Default::default()
        };
        if let Some(id) = sandbox_id {
            let s = self.cri.pod_sandbox_status(id).await?;
            o.sandbox_ready = s.state == pb::PodSandboxState::SandboxReady as i32;
            o.pod_ip = s.network.map(|n| n.ip).filter(|ip| !ip.is_empty());
        }
        let all = self.list_containers(uid).await?;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let mut mine: Vec<&Seen> = all.iter().filter(|s| s.name == c.name).collect();
            mine.sort_by_key(|s| std::cmp::Reverse(s.attempt));
            let mut oc = ObservedContainer {
                waiting: waiting.get(&c.name).cloned(),
                restart_count: mine.first().map_or(0, |s| s.attempt as i32),
                ..Default::default()
            };
            if let Some(s) = mine.first() {
                oc.latest = Some(self.instance(s).await?);
            }
            if let Some(s) = mine.get(1) {
                oc.previous = Some(self.instance(s).await?);
            }
            o.containers.insert(c.name.clone(), oc);
        }
        Ok(o)
    }

    async fn instance(&self, s: &Seen) -> Result<Instance, SyncError> {
        let st = self.cri.container_status(&s.id).await?;
        let state = match pb::ContainerState::try_from(st.state) {
            Ok(pb::ContainerState::ContainerRunning) => State::Running {
                started_at: nanos_to_time(st.started_at),
            },
            Ok(pb::ContainerState::ContainerExited) => State::Exited {
                exit_code: st.exit_code,
                reason: st.reason.clone(),
                message: st.message.clone(),
                started_at: (st.started_at > 0).then(|| nanos_to_time(st.started_at)),
                finished_at: nanos_to_time(st.finished_at),
            },
            _ => State::Created,
        };
        Ok(Instance {
            id: s.id.clone(),
            attempt: s.attempt,
            state,
            image_ref: st.image_ref,
        })
    }

    /// Computes the status, hands it to the status manager, counts the pod's start.
    fn report(
        &self,
        key: &ObjectKey,
        pod: &Pod,
        o: &Observed,
    ) -> k8s_openapi::api::core::v1::PodStatus {
        let now = Time(rkube_runtime::object::now());
        let computed = status::pod_status(pod, o, &now);
        let uid = uid_of(pod);
        let running = computed
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if running && lock(&self.started).insert(uid.clone()) {
            if let Some(created) = &pod.metadata.creation_timestamp {
                let since = SystemTime::now()
                    .duration_since(system_time(created))
                    .unwrap_or_default();
                let pulls = lock(&self.pull_time).get(&uid).copied().unwrap_or_default();
                self.metrics
                    .pod_start_sli
                    .observe(since.saturating_sub(pulls).as_secs_f64());
                self.metrics.pod_start_total.observe(since.as_secs_f64());
                let _ready = tracing::info_span!("kubelet.pod_ready", pod = %key).entered();
                tracing::info!(pod = %key, seconds = since.as_secs_f64(), "pod running and ready");
            }
        }
        if pod.status.as_ref() != Some(&computed) {
            self.status.set(key.clone(), uid, computed.clone());
        }
        computed
    }

    /// Stops every container of the pod (within `grace`), then its sandboxes, and removes
    /// them all.
    async fn kill_pod(&self, pod: &Pod, uid: &str, grace: Duration) -> Result<(), SyncError> {
        self.stop_pod(pod, uid, grace).await?;
        self.remove_all(uid, Duration::ZERO).await
    }

    /// Stops every running container of the pod (SIGTERM, SIGKILL after `grace`; all at
    /// once), then its sandboxes.
    async fn stop_pod(&self, pod: &Pod, uid: &str, grace: Duration) -> Result<(), SyncError> {
        let running: Vec<Seen> = self
            .list_containers(uid)
            .await?
            .into_iter()
            .filter(|s| s.state == pb::ContainerState::ContainerRunning as i32)
            .collect();
        for s in &running {
            self.event(
                pod,
                EventType::Normal,
                "Killing",
                &format!("Stopping container {}", s.name),
            );
        }
        let stops = running
            .iter()
            .map(|s| self.cri.stop_container(&s.id, grace));
        for r in futures::future::join_all(stops).await {
            r?;
        }
        self.stop_sandboxes(uid).await
    }

    /// Stops and removes every container and sandbox of `uid`.
    pub async fn remove_all(&self, uid: &str, grace: Duration) -> Result<(), SyncError> {
        for s in self.list_containers(uid).await? {
            if s.state == pb::ContainerState::ContainerRunning as i32 {
                self.cri.stop_container(&s.id, grace).await?;
            }
            self.cri.remove_container(&s.id).await?;
        }
        for s in self
            .cri
            .list_pod_sandbox(&[(cri::LABEL_POD_UID, uid)])
            .await?
        {
            self.cri.stop_pod_sandbox(&s.id).await?;
            self.cri.remove_pod_sandbox(&s.id).await?;
        }
        Ok(())
    }

    /// Stops the sandboxes of a pod that finished (its network goes; its exited
    /// containers stay for their status).
    async fn stop_sandboxes(&self, uid: &str) -> Result<(), SyncError> {
        for s in self
            .cri
            .list_pod_sandbox(&[(cri::LABEL_POD_UID, uid)])
            .await?
        {
            if s.state == pb::PodSandboxState::SandboxReady as i32 {
                self.cri.stop_pod_sandbox(&s.id).await?;
            }
        }
        Ok(())
    }

    /// Removes the pod's directories and cgroups (best effort).
    pub fn cleanup_pod_files(&self, uid: &str, pod: &Pod) {
        let _ = std::fs::remove_dir_all(self.pod_dir(uid));
        let _ = std::fs::remove_dir_all(self.log_dir(pod));
        remove_pod_cgroups(&self.config.cgroup_root, uid);
    }

    /// Forgets a pod's back-offs and counters.
    pub fn forget(&self, uid: &str) {
        let prefix = format!("{uid}/");
        lock(&self.crash_backoff).forget_prefix(&prefix);
        lock(&self.image_backoff).forget_prefix(&prefix);
        lock(&self.pull_errors).retain(|k, _| !k.starts_with(&prefix));
        lock(&self.pull_time).remove(uid);
        lock(&self.started).remove(uid);
        lock(&self.admitted).remove(uid);
        self.status.forget(uid);
    }

    /// Removes what the runtime runs for pods that no longer exist (deleted while the
    /// kubelet was down, or force-deleted). `runtime_uids` maps uid → (namespace, name).
    pub async fn cleanup_orphans(&self, runtime_uids: &BTreeMap<String, (String, String)>) {
        let known: HashSet<String> = self.pods.list().iter().map(|p| uid_of(p)).collect();
        let running: HashSet<String> = known.iter().chain(runtime_uids.keys()).cloned().collect();
        sweep_pod_cgroups(&self.config.cgroup_root, &running);
        for (uid, (ns, name)) in runtime_uids {
            if known.contains(uid) {
                continue;
            }
            tracing::info!(pod = %format!("{ns}/{name}"), %uid, "removing the containers of a pod that no longer exists");
            if let Err(e) = self.remove_all(uid, Duration::from_secs(2)).await {
                tracing::warn!(%uid, error = %rkube_component::error_chain(&e), "cannot remove an orphaned pod's containers");
                continue;
            }
            let _ = std::fs::remove_dir_all(self.pod_dir(uid));
            let _ = std::fs::remove_dir_all(
                self.config
                    .root_dir
                    .join("logs")
                    .join(format!("{ns}_{name}_{uid}")),
            );
            remove_pod_cgroups(&self.config.cgroup_root, uid);
            self.forget(uid);
        }
    }
}

/// Removes the pod cgroups under `root` of pods not in `known` (every v1 hierarchy): a
/// cgroup still busy when its pod was cleaned up goes on a later sweep.
pub fn sweep_pod_cgroups(root: &str, known: &HashSet<String>) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let root = root.trim_matches('/');
    for h in hierarchies.flatten() {
        for qos in ["kubepods", "kubepods/burstable", "kubepods/besteffort"] {
            let dir = h.path().join(root).join(qos);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(uid) = name.strip_prefix("pod") {
                    if !known.contains(uid) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
        }
    }
}

/// Removes `pod<uid>` cgroups under every v1 hierarchy (runc leaves them).
fn remove_pod_cgroups(root: &str, uid: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        for qos in [qos::GUARANTEED, qos::BURSTABLE, qos::BEST_EFFORT] {
            let rel = qos::cgroup_parent(root, qos, uid);
            let _ = std::fs::remove_dir(h.path().join(rel.trim_start_matches('/')));
        }
    }
}

/// `10s`, `2m40s`, `5m0s` as Kubernetes prints back-off delays.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_decide_which_exits_restart() {
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 0, false),
            ("Never", 1, false),
        ];
        for (policy, code, want) in cases {
            assert_eq!(should_restart(policy, code), want, "{policy} {code}");
        }
    }

    #[test]
    fn pull_policy_defaults_follow_the_tag() {
        let c = |image: &str, policy: Option<&str>| Container {
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Default::default()
        };
        let cases = [
            (c("rkube.local/busybox:1.35", None), "IfNotPresent"),
            (c("busybox", None), "Always"),
            (c("busybox:latest", None), "Always"),
            (c("localhost:5000/x", None), "Always"),
            (c("x@sha256:abc", None), "IfNotPresent"),
            (c("busybox", Some("Never")), "Never"),
        ];
        for (container, want) in cases {
            assert_eq!(pull_policy(&container), want, "{:?}", container.image);
        }
    }

    #[test]
    fn resolv_conf_gives_servers_searches_and_options() {
        let dns = parse_resolv_conf(
            "# comment\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch a.example b.example\noptions ndots:2\n",
        );
        assert_eq!(dns.servers, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(dns.searches, ["a.example", "b.example"]);
        assert_eq!(dns.options, ["ndots:2"]);
    }

    #[test]
    fn back_off_delays_print_as_kubernetes_prints_them() {
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
        assert_eq!(humanize(Duration::from_secs(160)), "2m40s");
        assert_eq!(humanize(Duration::from_secs(300)), "5m0s");
    }
}
