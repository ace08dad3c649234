//! Three-member clusters of `rkube-apiserver` or `etcd` on loopback, owned by the
//! benchmark: their command lines (pure), starting, `kill -9`, restarting, readiness and
//! leader detection over each system's own Status RPC.
//!
//! Unlike `rkube up`, these processes are plain children of the benchmark: they share its
//! process group (a Ctrl-C in the terminal reaches them too) and [`Cluster`]'s `Drop`
//! kills and reaps every one of them, so no error path leaves one behind.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::BenchError;

/// Which store a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Rkube,
    Etcd,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            System::Rkube => "rkube",
            System::Etcd => "etcd",
        }
    }

    /// Member names: `a1..aN` for rkube (as `rkube up` names its replicas), `e1..eN` for etcd.
    pub fn member_name(self, index: usize) -> String {
        match self {
            System::Rkube => format!("a{}", index + 1),
            System::Etcd => format!("e{}", index + 1),
        }
    }
}

/// One member's identity and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub name: String,
    /// rkube's Raft node id (1-based); etcd derives its own member ids.
    pub id: u64,
    /// Client address (`host:port`): rkube's API address, etcd's client URL without scheme.
    pub client_addr: String,
    /// Raft peer address (`host:port`).
    pub peer_addr: String,
    pub data_dir: PathBuf,
}

/// Plans `n` members of `system` under `root` (data in `root/<name>`) on the given ports.
pub fn plan_members(
    system: System,
    root: &Path,
    client_ports: &[u16],
    peer_ports: &[u16],
) -> Vec<MemberSpec> {
    client_ports
        .iter()
        .zip(peer_ports)
        .enumerate()
        .map(|(i, (c, p))| {
            let name = system.member_name(i);
            MemberSpec {
                data_dir: root.join(&name),
                name,
                id: i as u64 + 1,
                client_addr: format!("127.0.0.1:{c}"),
                peer_addr: format!("127.0.0.1:{p}"),
            }
        })
        .collect()
}

/// `rkube-apiserver`'s arguments for member `index` of `members`, then `extra`: plain
/// HTTP with anonymous requests allowed (the benchmark's clients carry no credentials; the
/// ports are on loopback and live only as long as the benchmark). Pure.
pub fn rkube_args(members: &[MemberSpec], index: usize, extra: &[String]) -> Vec<OsString> {
    let me = &members[index];
    let mut a = crate::apiserver_cmd::ApiserverArgs::new(
        me.name.clone(),
        me.id,
        me.data_dir.clone(),
        me.client_addr.clone(),
        me.peer_addr.clone(),
    );
    a.initial_members = members
        .iter()
        .map(|m| crate::apiserver_cmd::initial_member(m.id, &m.name, &m.peer_addr, &m.client_addr))
        .collect();
    a.anonymous_auth = true;
    a.extra = extra.iter().map(OsString::from).collect();
    a.to_args()
}

/// `etcd`'s arguments for member `index` of `members`: a new cluster named by `token`,
/// everything else (fsync, heartbeat 100 ms, election timeout 1 s, snapshot count) at
/// etcd's defaults, then `extra`. On a restart over an existing data directory etcd
/// ignores the `--initial-*` flags, so the same arguments serve both. Pure.
pub fn etcd_args(
    members: &[MemberSpec],
    index: usize,
    token: &str,
    extra: &[String],
) -> Vec<OsString> {
    let me = &members[index];
    let client_url = format!("http://{}", me.client_addr);
    let peer_url = format!("http://{}", me.peer_addr);
    let initial_cluster = members
        .iter()
        .map(|m| format!("{}=http://{}", m.name, m.peer_addr))
        .collect::<Vec<_>>()
        .join(",");
    let mut args: Vec<OsString> = vec![
        "--name".into(),
        me.name.clone().into(),
        "--data-dir".into(),
        me.data_dir.clone().into_os_string(),
        "--listen-client-urls".into(),
        client_url.clone().into(),
        "--advertise-client-urls".into(),
        client_url.into(),
        "--listen-peer-urls".into(),
        peer_url.clone().into(),
        "--initial-advertise-peer-urls".into(),
        peer_url.into(),
        "--initial-cluster".into(),
        initial_cluster.into(),
        "--initial-cluster-state".into(),
        "new".into(),
        "--initial-cluster-token".into(),
        token.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// `n` distinct free ports on 127.0.0.1, as `rkube_ops::ports` chooses them.
pub fn free_ports(n: usize) -> Result<Vec<u16>, BenchError> {
    Ok(rkube_ops::ports::free_ports(n, &Default::default())?)
}

/// A lazily connected gRPC channel to `addr` (`host:port`, plain HTTP/2).
pub fn channel(addr: &str) -> Result<Channel, BenchError> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| BenchError::Address {
            addr: addr.to_string(),
            source,
        })?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// What one member says about itself and the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's own id (rkube: `--id`; etcd: its member id).
    pub id: u64,
    /// The leader this member knows of (0 = none).
    pub leader: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

impl MemberStatus {
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.id
    }
}

/// Which member leads, if every member's status agrees on one: every member answered,
/// all name the same non-zero leader, and that leader is among them and says so itself.
/// Returns the leader's index. Pure.
pub fn agreed_leader(statuses: &[Option<MemberStatus>]) -> Option<usize> {
    let first = statuses.first()?.as_ref()?;
    let leader = first.leader;
    if leader == 0 {
        return None;
    }
    let mut leader_index = None;
    for (i, s) in statuses.iter().enumerate() {
        let s = s.as_ref()?;
        if s.leader != leader {
            return None;
        }
        if s.id == leader {
            leader_index = Some(i);
        }
    }
    let i = leader_index?;
    statuses[i].as_ref()?.is_leader().then_some(i)
}

struct Member {
    spec: MemberSpec,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
    /// Status/KV channel to the member's client address.
    channel: Channel,
}

/// A running three-member cluster (or however many were planned) of one [`System`].
pub struct Cluster {
    system: System,
    program: PathBuf,
    members: Vec<Member>,
}

impl Cluster {
    /// Starts every member of `specs` with `program` (and `extra_args` after the planned
    /// ones); logs go to `logs_dir/<name>.log`.
    pub fn start(
        system: System,
        program: &Path,
        specs: Vec<MemberSpec>,
        logs_dir: &Path,
        etcd_token: &str,
        extra_args: &[String],
    ) -> Result<Self, BenchError> {
        let args = (0..specs.len())
            .map(|i| match system {
                System::Rkube => rkube_args(&specs, i, extra_args),
                System::Etcd => etcd_args(&specs, i, etcd_token, extra_args),
            })
            .collect();
        Self::start_with_args(system, program, specs, args, logs_dir)
    }

    /// Starts every member of `specs` with `program` and its own command line from `args`
    /// (one per member, in order); logs go to `logs_dir/<name>.log`. For callers that build
    /// their own command lines (`rkube bench api` runs TLS with client certificates).
    pub fn start_with_args(
        system: System,
        program: &Path,
        specs: Vec<MemberSpec>,
        args: Vec<Vec<OsString>>,
        logs_dir: &Path,
    ) -> Result<Self, BenchError> {
        let mut members = Vec::with_capacity(specs.len());
        for (spec, args) in specs.iter().zip(args) {
            members.push(Member {
                log: logs_dir.join(format!("{}.log", spec.name)),
                channel: channel(&spec.client_addr)?,
                spec: spec.clone(),
                args,
                child: None,
            });
        }
        let mut cluster = Self {
            system,
            program: program.to_path_buf(),
            members,
        };
        for i in 0..cluster.members.len() {
            cluster.start_member(i)?;
        }
        Ok(cluster)
    }

    pub fn system(&self) -> System {
        self.system
    }

    pub fn name(&self, index: usize) -> &str {
        &self.members[index].spec.name
    }

    pub fn client_addrs(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.spec.client_addr.clone())
            .collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// The directory of member data, for messages.
    pub fn data_dir(&self, index: usize) -> &Path {
        &self.members[index].spec.data_dir
    }

    /// (Re)starts member `index` with its original arguments over its existing data.
    pub fn start_member(&mut self, index: usize) -> Result<(), BenchError> {
        let program = self.program.clone();
        let m = &mut self.members[index];
        if m.child.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&m.spec.data_dir)
            .map_err(|e| BenchError::io("create", &m.spec.data_dir, e))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| BenchError::io("open log file", &m.log, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| BenchError::io("open log file", &m.log, e))?;
        let child = Command::new(&program)
            .args(&m.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                name: m.spec.name.clone(),
                program: program.clone(),
                source,
            })?;
        m.child = Some(child);
        Ok(())
    }

    /// Sends SIGKILL to member `index` and reaps it. Returns the instant just before the
    /// signal was sent.
    pub fn kill_member(&mut self, index: usize) -> Instant {
        let at = Instant::now();
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        at
    }

    /// Kills and reaps every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
    }

    /// Fails if a member we started has exited on its own, naming it and its log's tail.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    m.child = None;
                    return Err(BenchError::Exited {
                        name: m.spec.name.clone(),
                        status: status.to_string(),
                        log: m.log.clone(),
                        tail: crate::process::log_tail(&m.log, 20),
                    });
                }
            }
        }
        Ok(())
    }

    /// Member `index`'s status, or `None` when it does not answer within `timeout`.
    pub async fn status(&self, index: usize, timeout: Duration) -> Option<MemberStatus> {
        let channel = self.members[index].channel.clone();
        let call = async {
            match self.system {
                System::Rkube => {
                    let mut c =
                        rkube_proto::store::maintenance_client::MaintenanceClient::new(channel);
                    let r = c
                        .status(rkube_proto::store::StatusRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    Some(MemberStatus {
                        id: r.id,
                        leader: r.leader,
                        term: r.term,
                        commit_index: r.commit_index,
                        applied_index: r.applied_index,
                    })
                }
                System::Etcd => {
                    let mut c = crate::etcd::maintenance_client::MaintenanceClient::new(channel);
                    let r = c
                        .status(crate::etcd::StatusRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    Some(MemberStatus {
                        id: r.header.map_or(0, |h| h.member_id),
                        leader: r.leader,
                        term: r.raft_term,
                        commit_index: r.raft_index,
                        applied_index: r.raft_applied_index,
                    })
                }
            }
        };
        tokio::time::timeout(timeout, call).await.ok().flatten()
    }

    /// Every member's status, asked concurrently.
    pub async fn statuses(&self) -> Vec<Option<MemberStatus>> {
        let timeout = Duration::from_millis(500);
        futures::future::join_all((0..self.members.len()).map(|i| self.status(i, timeout))).await
    }

    /// Polls the members other than `dead` until one of them says it leads; returns the
    /// time from `since` (`None` after `give_up_after`).
    pub async fn wait_new_leader(
        &self,
        dead: usize,
        since: Instant,
        give_up_after: Duration,
    ) -> Option<Duration> {
        let timeout = Duration::from_millis(200);
        loop {
            let statuses = futures::future::join_all(
                (0..self.members.len())
                    .filter(|&i| i != dead)
                    .map(|i| self.status(i, timeout)),
            )
            .await;
            if statuses.iter().flatten().any(MemberStatus::is_leader) {
                return Some(since.elapsed());
            }
            if since.elapsed() >= give_up_after {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every member answers and all agree on a leader; returns its index.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<usize, BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let statuses = self.statuses().await;
            if let Some(leader) = agreed_leader(&statuses) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                let silent: Vec<&str> = statuses
                    .iter()
                    .zip(&self.members)
                    .filter(|(s, _)| s.is_none())
                    .map(|(_, m)| m.spec.name.as_str())
                    .collect();
                let reason = if silent.is_empty() {
                    format!("the members do not agree on a leader: {statuses:?}")
                } else {
                    format!("no status from {}", silent.join(", "))
                };
                return Err(BenchError::NotReady {
                    system: self.system.label(),
                    reason,
                    timeout,
                    logs: self.members.iter().map(|m| m.log.clone()).collect(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until member `index` has applied everything the leader had committed when
    /// this call started (so a restarted member has caught up before the next kill).
    pub async fn wait_caught_up(
        &mut self,
        index: usize,
        timeout: Duration,
    ) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        let leader = self.wait_ready(timeout).await?;
        let target = self
            .status(leader, Duration::from_secs(1))
            .await
            .map_or(0, |s| s.commit_index);
        loop {
            self.check_alive()?;
            if let Some(s) = self.status(index, Duration::from_millis(500)).await {
                if s.applied_index >= target {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(BenchError::NotReady {
                    system: self.system.label(),
                    reason: format!(
                        "{} did not apply up to index {target} after its restart",
                        self.name(index)
                    ),
                    timeout,
                    logs: vec![self.members[index].log.clone()],
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
