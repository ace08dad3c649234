//! A cluster of real `rkube-apiserver` processes on loopback, for tests.
//!
//! Each replica gets its own ports and data folder under one temporary folder;
//! replicas can be killed (-9), stopped, restarted from their disk or wiped.
//! With `proxied`, every Raft link i→j runs through its own [`Proxy`] so a test
//! can cut a replica off from the others while clients still reach it.
//!
//! Replicas serve plain HTTP and let requests without credentials through
//! (`--anonymous-auth=true`): the store tests speak gRPC without identities, on
//! loopback ports that live only as long as the test. TLS and credentials are
//! tested through `rkube up` (tests/kubectl_tls.rs). Command lines come from
//! rkube-ops' builder, the one `rkube up` uses.
//!
//! Binaries are found next to the test executable's target folder
//! (`target/<profile>/`), or in `RKUBE_BIN_DIR`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_proto::store::kv_client::KvClient;
use rkube_proto::store::maintenance_client::MaintenanceClient;
use rkube_proto::store::watch_client::WatchClient;
use rkube_proto::store::{HashRequest, RangeRequest, StatusRequest, StatusResponse};
use tonic::transport::Channel;

use crate::proxy::Proxy;

/// Where the project's binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RKUBE_BIN_DIR") {
        return d.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    dir
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (cargo build --bins) or set RKUBE_BIN_DIR",
        p.display()
    );
    p
}

/// A free loopback port for a test server (see `rkube_ops::ports`: below the ephemeral
/// range, never handed out twice in one process).
pub fn free_port() -> u16 {
    rkube_ops::ports::free_port().expect("a free loopback port")
}

#[derive(Debug, Clone)]
pub struct Options {
    pub replicas: usize,
    pub proxied: bool,
    pub snapshot_every: u64,
    pub history_revisions: usize,
    pub extra_args: Vec<String>,
    /// Let the apiservers create the system namespaces (the Kubernetes API
    /// tests want them; store tests start from an empty store).
    pub system_namespaces: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replicas: 3,
            proxied: false,
            snapshot_every: 10_000,
            history_revisions: 20_000,
            extra_args: vec![],
            system_namespaces: false,
        }
    }
}

pub struct Replica {
    pub id: u64,
    pub name: String,
    pub api: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    args: Vec<OsString>,
}

impl Replica {
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub replicas: Vec<Replica>,
    /// (from, to) → proxy carrying from's Raft traffic to `to`.
    pub links: HashMap<(usize, usize), Proxy>,
}

impl Cluster {
    pub async fn start(replicas: usize) -> Cluster {
        Self::start_with(Options {
            replicas,
            ..Default::default()
        })
        .await
    }

    /// One replica with the system namespaces, as the Kubernetes API tests
    /// want it, once it leads.
    pub async fn start_api_single() -> Cluster {
        let mut cluster = Self::start_with(Options {
            replicas: 1,
            system_namespaces: true,
            ..Default::default()
        })
        .await;
        cluster.leader(Duration::from_secs(30)).await;
        cluster
    }

    pub async fn start_with(opts: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("rkube-e2e-")
            .tempdir()
            .unwrap();
        let n = opts.replicas;
        let addrs: Vec<(SocketAddr, SocketAddr)> = (0..n)
            .map(|_| {
                (
                    format!("127.0.0.1:{}", free_port()).parse().unwrap(),
                    format!("127.0.0.1:{}", free_port()).parse().unwrap(),
                )
            })
            .collect();
        let mut links = HashMap::new();
        if opts.proxied {
            for i in 0..n {
                for (j, (_, peer)) in addrs.iter().enumerate() {
                    if i != j {
                        let p = Proxy::start("127.0.0.1:0".parse().unwrap(), *peer)
                            .await
                            .unwrap();
                        links.insert((i, j), p);
                    }
                }
            }
        }
        let members: Vec<String> = (0..n)
            .map(|i| {
                rkube_ops::apiserver_cmd::initial_member(
                    (i + 1) as u64,
                    &format!("a{}", i + 1),
                    &addrs[i].1.to_string(),
                    &addrs[i].0.to_string(),
                )
            })
            .collect();
        let mut reps = Vec::new();
        for (i, (api, peer)) in addrs.iter().copied().enumerate() {
            let name = format!("a{}", i + 1);
            let data_dir = dir.path().join("data").join(&name);
            let mut a = rkube_ops::apiserver_cmd::ApiserverArgs::new(
                name.clone(),
                (i + 1) as u64,
                data_dir.clone(),
                api.to_string(),
                peer.to_string(),
            );
            a.initial_members = members.clone();
            a.peer_overrides = (0..n)
                .filter_map(|j| {
                    links
                        .get(&(i, j))
                        .map(|p| ((j + 1) as u64, p.addr().to_string()))
                })
                .collect();
            a.snapshot_every = Some(opts.snapshot_every);
            a.history_revisions = Some(opts.history_revisions);
            a.create_system_namespaces = Some(opts.system_namespaces);
            a.anonymous_auth = true;
            a.extra = opts.extra_args.iter().map(OsString::from).collect();
            let args = a.to_args();
            reps.push(Replica {
                id: (i + 1) as u64,
                log: dir.path().join(format!("{name}.log")),
                name,
                api,
                peer,
                data_dir,
                child: None,
                args,
            });
        }
        let mut c = Cluster {
            dir,
            replicas: reps,
            links,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_all_ready(Duration::from_secs(30)).await;
        c
    }

    fn spawn(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        assert!(r.child.is_none(), "{} is already running", r.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .unwrap();
        let child = Command::new(bin("rkube-apiserver"))
            .args(&r.args)
            .env(
                "RUST_LOG",
                std::env::var("RKUBE_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn rkube-apiserver");
        r.child = Some(child);
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.replicas[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.replicas[i].child.take() {
            send_signal(c.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
    }

    /// Deletes the replica's data folder (it must be stopped).
    pub fn wipe(&mut self, i: usize) {
        assert!(self.replicas[i].child.is_none());
        let _ = std::fs::remove_dir_all(&self.replicas[i].data_dir);
    }

    pub fn alive(&mut self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.replicas[*i].is_running())
            .collect()
    }

    /// Cuts replica `i`'s Raft links to and from every other replica (needs `proxied`).
    pub fn isolate(&self, i: usize, cut: bool) {
        assert!(!self.links.is_empty(), "isolate needs a proxied cluster");
        for ((a, b), p) in &self.links {
            if *a == i || *b == i {
                p.set_blocked(cut);
            }
        }
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.replicas[i].api)
    }

    pub async fn channel(&self, i: usize) -> Channel {
        tonic::transport::Endpoint::from_shared(self.endpoint(i))
            .unwrap()
            .connect_timeout(Duration::from_millis(500))
            .connect_lazy()
    }

    pub async fn kv(&self, i: usize) -> KvClient<Channel> {
        KvClient::new(self.channel(i).await)
    }

    pub async fn watch_client(&self, i: usize) -> WatchClient<Channel> {
        WatchClient::new(self.channel(i).await)
    }

    pub async fn maintenance(&self, i: usize) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel(i).await)
    }

    pub async fn status(&self, i: usize) -> Option<StatusResponse> {
        let mut c = self.maintenance(i).await;
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(Duration::from_millis(500));
        c.status(req).await.ok().map(|r| r.into_inner())
    }

    async fn ready(&self, i: usize) -> bool {
        matches!(self.status(i).await, Some(s) if s.leader != 0 && s.applied_index >= s.commit_index)
    }

    pub async fn wait_all_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.alive();
            let mut all = true;
            for i in &alive {
                all &= self.ready(*i).await;
            }
            if all && !alive.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "cluster not ready in {timeout:?}; logs in {}",
                    self.dir.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The index of the replica every live replica agrees leads, waiting until there is one.
    pub async fn leader(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.alive();
            let mut leaders = Vec::new();
            for i in &alive {
                if let Some(s) = self.status(*i).await {
                    if s.role == "leader" {
                        leaders.push((*i, s.term));
                    }
                }
            }
            leaders.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
            if let Some((i, _)) = leaders.first() {
                return *i;
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every live replica has the same revision and content hash; returns them.
    pub async fn wait_converged(&mut self, timeout: Duration) -> (i64, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.alive();
            let mut seen = Vec::new();
            for i in &alive {
                // A linearizable read first: a replica that restarted replays
                // only up to its saved committed index (saved lazily) until
                // the leader tells it more; after this it has applied all that
                // the cluster committed, so the hash compares whole histories.
                let linearized = self
                    .kv(*i)
                    .await
                    .range(RangeRequest {
                        key: b"/".to_vec().into(),
                        keys_only: true,
                        count_only: true,
                        ..Default::default()
                    })
                    .await;
                if linearized.is_err() {
                    continue;
                }
                let mut c = self.maintenance(*i).await;
                if let Ok(r) = c.hash(HashRequest { revision: 0 }).await {
                    let r = r.into_inner();
                    seen.push((r.header.map_or(0, |h| h.revision), r.hash));
                }
            }
            if seen.len() == alive.len()
                && !seen.is_empty()
                && seen.windows(2).all(|w| w[0] == w[1])
            {
                return seen.remove(0);
            }
            assert!(
                Instant::now() < deadline,
                "replicas did not converge within {timeout:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self, i: usize) -> String {
        rkube_ops::process::log_tail(&self.replicas[i].log, 30)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.kill(i);
        }
        if std::thread::panicking() || std::env::var_os("RKUBE_KEEP_TEST_DIRS").is_some() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!("test cluster kept at {}", kept.keep().display());
        }
    }
}

pub fn send_signal(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
