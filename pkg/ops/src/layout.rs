//! The cluster directory and the cluster's fixed layout.
//!
//! Everything of one local cluster lives under one directory (default `./.rkube`):
//!
//! ```text
//! DIR/cluster.json        the layout: replica names, Raft ids, API and peer addresses, the
//!                         load balancer's and each component's address
//! DIR/data/<name>/        each process's data (the apiserver's Raft log and state machine)
//! DIR/logs/<name>.log     each process's stdout and stderr
//! DIR/pids/<name>.pid     each running process's pid (`lb.pid` for the load balancer)
//! DIR/pki/                the cluster CA, serving and client certificates, tokens (see pki)
//! DIR/kubeconfig          kubectl's credentials and the load balancer's address
//! DIR/rkube.lock          held by `up` and `down` while they work
//! ```
//!
//! The layout is written once, when the cluster is created, and reused on every later
//! `up`: a Raft member's identity includes its addresses, so a restart must keep them.
//! This module does no process work and no network I/O beyond choosing free ports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::components::Kind;
use crate::{Error, Result};

/// The directory `rkube` uses when `--dir` is not given.
pub const DEFAULT_DIR: &str = ".rkube";

/// Version of the `cluster.json` format this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 1;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One cluster directory. Paths are absolute, so they mean the same thing to processes
/// started from any working directory (and appear verbatim in their command lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDir {
    root: PathBuf,
}

impl ClusterDir {
    /// Creates `path` if needed and returns it as a canonical cluster directory.
    pub fn create(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))?;
        Self::open(path)
    }

    /// Refers to `path` without creating it: canonical when it exists (so symlinked and
    /// relative spellings agree), otherwise made absolute against the working directory.
    pub fn open(path: &Path) -> Result<Self> {
        let root = match std::fs::canonicalize(path) {
            Ok(root) => root,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::path::absolute(path).map_err(|e| Error::io("resolve path", path, e))?
            }
            Err(e) => return Err(Error::io("resolve path", path, e)),
        };
        Ok(ClusterDir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layout_file(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("rkube.lock")
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn pids_dir(&self) -> PathBuf {
        self.root.join("pids")
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.data_root().join(name)
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.pids_dir().join(format!("{name}.pid"))
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }

    pub fn has_layout(&self) -> bool {
        self.layout_file().is_file()
    }

    /// Reads and validates `cluster.json`; [`Error::NoCluster`] when there is none.
    pub fn load_layout(&self) -> Result<ClusterLayout> {
        let path = self.layout_file();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoCluster {
                    dir: self.root.clone(),
                    layout: path,
                })
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let layout: ClusterLayout =
            serde_json::from_slice(&bytes).map_err(|e| Error::LayoutInvalid {
                path: path.clone(),
                source: LayoutProblem::Json(e),
            })?;
        layout
            .validate()
            .map_err(|source| Error::LayoutInvalid { path, source })?;
        Ok(layout)
    }

    /// Writes `cluster.json` atomically (temporary file, fsync, rename), so a crash never
    /// leaves a half-written layout behind.
    pub fn save_layout(&self, layout: &ClusterLayout) -> Result<()> {
        use std::io::Write as _;
        let path = self.layout_file();
        let tmp = self.root.join("cluster.json.tmp");
        let mut json = serde_json::to_vec_pretty(layout).expect("layout serializes");
        json.push(b'\n');
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename into place", &path, e))
    }

    /// Takes the directory's lock, so that two `up`/`down` commands never start or stop the
    /// same cluster's processes at once. Fails at once ([`Error::Locked`]) rather than
    /// waiting: the other command may run for a minute. Released when dropped.
    pub fn lock(&self) -> Result<DirLock> {
        let path = self.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(DirLock { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => Err(Error::Locked {
                dir: self.root.clone(),
                lock: path,
            }),
            Err((_, errno)) => Err(Error::io("lock", &path, errno.into())),
        }
    }

    /// Creates `data/`, `logs/` and `pids/`.
    pub fn create_subdirs(&self) -> Result<()> {
        for dir in [self.data_root(), self.logs_dir(), self.pids_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        }
        Ok(())
    }
}

/// The held lock of a cluster directory (see [`ClusterDir::lock`]).
pub struct DirLock {
    _lock: Flock<std::fs::File>,
}

impl std::fmt::Debug for DirLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirLock")
    }
}

/// The fixed shape of one local cluster, as stored in `DIR/cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLayout {
    pub version: u32,
    pub apiservers: Vec<ApiserverSpec>,
    /// Where `rkube lb` listens: the address in DIR/kubeconfig. Absent in layouts written
    /// before the load balancer existed; `up` adds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<SocketAddr>,
    /// The controller-manager, the scheduler and the kubelets, as far as this cluster runs
    /// them (absent in layouts written before there were any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentAddress>,
    /// Extra flags per component kind (`rkube up --component-arg`), kept for restarts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<Kind, Vec<String>>,
}

/// A component of the cluster and where its health and metrics server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAddress {
    /// Its process name (`controller-manager`, `scheduler`, `kubelet-n1`).
    pub name: String,
    pub kind: Kind,
    /// Plain HTTP: `/healthz`, `/readyz`, `/metrics`.
    pub listen: SocketAddr,
    /// The node a kubelet runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Why a layout cannot work.
#[derive(Debug, thiserror::Error)]
pub enum LayoutProblem {
    #[error("it is not a layout")]
    Json(#[source] serde_json::Error),
    #[error("version {0} is not supported (this rkube reads version {LAYOUT_VERSION})")]
    Version(u32),
    #[error("no apiservers")]
    NoApiservers,
    #[error("invalid process name {0:?}")]
    BadName(String),
    #[error("replica {0} has id 0 (ids start at 1)")]
    ZeroId(String),
    #[error("duplicate name {0}")]
    DuplicateName(String),
    #[error("duplicate replica id {0}")]
    DuplicateId(u64),
    #[error("{name} has port 0 in {addr}")]
    PortZero { name: String, addr: SocketAddr },
    #[error("address {0} is used twice")]
    AddressTwice(SocketAddr),
    #[error("{name} is of kind {kind}, which is not a component")]
    NotAComponent { name: String, kind: Kind },
    #[error("kubelet {0} names no node")]
    NoNode(String),
    #[error("node {0} is run by two kubelets")]
    DuplicateNode(String),
}

/// One apiserver replica: its name (`a1`, `a2`, ...), Raft id and addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiserverSpec {
    pub name: String,
    pub id: u64,
    /// The API port (TLS): Kubernetes REST, the store's gRPC API, `/healthz`, `/readyz`,
    /// `/metrics`.
    pub api_address: SocketAddr,
    /// Raft traffic between replicas.
    pub peer_address: SocketAddr,
}

impl ApiserverSpec {
    /// The value of one `--initial-member` flag of `rkube-apiserver`.
    pub fn initial_member(&self) -> String {
        format!(
            "id={},name={},peer={},api={}",
            self.id, self.name, self.peer_address, self.api_address
        )
    }

    /// The URL a client dials (TLS, as `up` starts every replica).
    pub fn api_url(&self) -> String {
        format!("https://{}", self.api_address)
    }
}

/// How many replicas of each leader-elected component (controller-manager, scheduler) a
/// local cluster runs: one leads, one stands by.
pub const REPLICAS_PER_ELECTED_KIND: usize = 2;

impl ClusterLayout {
    /// Lays out `apiservers` replicas on the given ports (replica `i` gets `api_ports[i]` and
    /// `peer_ports[i]`). Pure: the ports are taken as given.
    pub fn plan(apiservers: usize, api_ports: &[u16], peer_ports: &[u16]) -> Result<Self> {
        if apiservers == 0 {
            return Err(Error::InvalidOptions(
                "--apiservers must be at least 1".to_string(),
            ));
        }
        if api_ports.len() != apiservers || peer_ports.len() != apiservers {
            return Err(Error::InvalidOptions(format!(
                "need {apiservers} API and {apiservers} peer ports, got {} and {}",
                api_ports.len(),
                peer_ports.len()
            )));
        }
        let layout = ClusterLayout {
            version: LAYOUT_VERSION,
            apiservers: (0..apiservers)
                .map(|i| ApiserverSpec {
                    name: format!("a{}", i + 1),
                    id: i as u64 + 1,
                    api_address: SocketAddr::from((LOOPBACK, api_ports[i])),
                    peer_address: SocketAddr::from((LOOPBACK, peer_ports[i])),
                })
                .collect(),
            load_balancer: None,
            components: Vec::new(),
            extra_args: BTreeMap::new(),
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Lays out a new cluster: ports come from the bases when given (replica `i` gets
    /// `base + i`), otherwise free ports (see [`crate::ports`]).
    pub fn allocate(
        apiservers: usize,
        api_port_base: Option<u16>,
        peer_port_base: Option<u16>,
    ) -> Result<Self> {
        let api = api_port_base
            .map(|base| ports_from_base("--api-port-base", base, apiservers))
            .transpose()?;
        let peer = peer_port_base
            .map(|base| ports_from_base("--peer-port-base", base, apiservers))
            .transpose()?;
        let taken: BTreeSet<u16> = api.iter().chain(peer.iter()).flatten().copied().collect();
        let mut free_needed = 0;
        if api.is_none() {
            free_needed += apiservers;
        }
        if peer.is_none() {
            free_needed += apiservers;
        }
        let mut free = crate::ports::free_ports(free_needed, &taken)?.into_iter();
        let api = api.unwrap_or_else(|| free.by_ref().take(apiservers).collect());
        let peer = peer.unwrap_or_else(|| free.by_ref().take(apiservers).collect());
        Self::plan(apiservers, &api, &peer)
    }

    /// Checks what `up` asked for against the layout an existing cluster already has:
    /// the layout is fixed, so a request that contradicts it is refused rather than ignored.
    pub fn check_request(
        &self,
        dir: &Path,
        apiservers: Option<usize>,
        api_port_base: Option<u16>,
        peer_port_base: Option<u16>,
        nodes: Option<usize>,
    ) -> Result<()> {
        let fixed = |what: String| {
            Error::InvalidOptions(format!(
                "{what}, but the cluster in {} already has a fixed layout ({}); \
                 omit the flag to restart that cluster, or start over with `rkube down --purge --dir {}`",
                dir.display(),
                self.describe(),
                dir.display()
            ))
        };
        if let Some(n) = apiservers {
            if n != self.apiservers.len() {
                return Err(fixed(format!("--apiservers {n} was given")));
            }
        }
        if let Some(n) = nodes {
            if n != self.nodes() {
                return Err(fixed(format!("--nodes {n} was given")));
            }
        }
        let api_ports: Vec<u16> = self
            .apiservers
            .iter()
            .map(|s| s.api_address.port())
            .collect();
        let peer_ports: Vec<u16> = self
            .apiservers
            .iter()
            .map(|s| s.peer_address.port())
            .collect();
        for (flag, base, ports) in [
            ("--api-port-base", api_port_base, api_ports),
            ("--peer-port-base", peer_port_base, peer_ports),
        ] {
            let Some(base) = base else { continue };
            let matches = ports
                .iter()
                .enumerate()
                .all(|(i, &port)| u32::from(port) == u32::from(base) + i as u32);
            if !matches {
                return Err(fixed(format!("{flag} {base} was given")));
            }
        }
        Ok(())
    }

    /// Gives the layout a load balancer address if it has none: `port` when given, else a
    /// free port. Returns whether the layout changed (and must be saved). A `port` that
    /// contradicts an existing address is refused, like the other fixed ports.
    pub fn ensure_load_balancer(&mut self, dir: &Path, port: Option<u16>) -> Result<bool> {
        if let Some(addr) = self.load_balancer {
            return match port {
                Some(p) if p != addr.port() => Err(Error::InvalidOptions(format!(
                    "--lb-port {p} was given, but the cluster in {} already has its load \
                     balancer on {addr}; omit the flag, or start over with `rkube down --purge --dir {}`",
                    dir.display(),
                    dir.display()
                ))),
                _ => Ok(false),
            };
        }
        let taken = self.ports();
        let port = match port {
            Some(0) => {
                return Err(Error::InvalidOptions(
                    "--lb-port must be a port number above 0".to_string(),
                ))
            }
            Some(p) => p,
            None => crate::ports::free_ports(1, &taken)?[0],
        };
        let mut next = self.clone();
        next.load_balancer = Some(SocketAddr::from((LOOPBACK, port)));
        next.validate()?;
        *self = next;
        Ok(true)
    }

    /// Adds what the layout lacks of two controller-managers and two schedulers
    /// (`controller-manager-1`, `-2`, ...; active/standby by their Lease; when
    /// `kinds` holds them) and of `nodes` kubelets (`kubelet-n1` runs node `n1`, ...), each
    /// on a free port. Returns whether the layout changed (and must be saved). Components
    /// already laid out keep their ports; none is removed.
    pub fn ensure_components(&mut self, kinds: &[Kind], nodes: usize) -> Result<bool> {
        let mut wanted: Vec<(String, Kind, Option<String>)> = Vec::new();
        // Active/standby pairs: two of each leader-elected kind.
        for kind in [Kind::ControllerManager, Kind::Scheduler] {
            for i in 1..=REPLICAS_PER_ELECTED_KIND {
                let name = format!("{}-{i}", kind.as_str());
                if kinds.contains(&kind) && !self.components.iter().any(|c| c.name == name) {
                    wanted.push((name, kind, None));
                }
            }
        }
        for i in 1..=nodes {
            let node = format!("n{i}");
            if !self
                .components
                .iter()
                .any(|c| c.node.as_deref() == Some(&node))
            {
                wanted.push((format!("kubelet-{node}"), Kind::Kubelet, Some(node)));
            }
        }
        if wanted.is_empty() {
            return Ok(false);
        }
        let ports = crate::ports::free_ports(wanted.len(), &self.ports())?;
        let mut next = self.clone();
        next.components.extend(
            wanted
                .into_iter()
                .zip(ports)
                .map(|((name, kind, node), port)| ComponentAddress {
                    name,
                    kind,
                    listen: SocketAddr::from((LOOPBACK, port)),
                    node,
                }),
        );
        next.validate()?;
        *self = next;
        Ok(true)
    }

    /// Replaces the extra flags of every kind that `args` names; returns whether anything
    /// changed (and must be saved).
    pub fn set_extra_args(&mut self, args: &[(Kind, String)]) -> bool {
        let mut given: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
        for (kind, flag) in args {
            given.entry(*kind).or_default().push(flag.clone());
        }
        let mut changed = false;
        for (kind, flags) in given {
            if self.extra_args.get(&kind) != Some(&flags) {
                self.extra_args.insert(kind, flags);
                changed = true;
            }
        }
        changed
    }

    /// How many kubelets the layout has.
    pub fn nodes(&self) -> usize {
        self.components
            .iter()
            .filter(|c| c.kind == Kind::Kubelet)
            .count()
    }

    /// Every port the layout uses.
    fn ports(&self) -> BTreeSet<u16> {
        self.apiservers
            .iter()
            .flat_map(|s| [s.api_address.port(), s.peer_address.port()])
            .chain(self.load_balancer.map(|a| a.port()))
            .chain(self.components.iter().map(|c| c.listen.port()))
            .collect()
    }

    /// A one-line description: `3 apiservers: a1 api 127.0.0.1:6443 peer ..., ...` and
    /// the components, if any.
    pub fn describe(&self) -> String {
        let replicas: Vec<String> = self
            .apiservers
            .iter()
            .map(|s| format!("{} api {} peer {}", s.name, s.api_address, s.peer_address))
            .collect();
        let mut text = format!(
            "{} apiserver{}: {}",
            self.apiservers.len(),
            if self.apiservers.len() == 1 { "" } else { "s" },
            replicas.join(", ")
        );
        if !self.components.is_empty() {
            let components: Vec<String> = self
                .components
                .iter()
                .map(|c| format!("{} {}", c.name, c.listen))
                .collect();
            text.push_str(&format!("; {}", components.join(", ")));
        }
        text
    }

    /// Looks up a replica by name.
    pub fn apiserver(&self, name: &str) -> Option<&ApiserverSpec> {
        self.apiservers.iter().find(|s| s.name == name)
    }

    /// Rejects layouts that could not work: no replicas, duplicate names, ids, nodes or
    /// addresses, names that cannot be file names.
    pub fn validate(&self) -> std::result::Result<(), LayoutProblem> {
        if self.version != LAYOUT_VERSION {
            return Err(LayoutProblem::Version(self.version));
        }
        if self.apiservers.is_empty() {
            return Err(LayoutProblem::NoApiservers);
        }
        let mut names = BTreeSet::from([crate::process::LB_NAME]);
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        let mut address = |name: &str, addr: SocketAddr| {
            if addr.port() == 0 {
                return Err(LayoutProblem::PortZero {
                    name: name.to_string(),
                    addr,
                });
            }
            if !addrs.insert(addr) {
                return Err(LayoutProblem::AddressTwice(addr));
            }
            Ok(())
        };
        for s in &self.apiservers {
            check_name(&s.name)?;
            if s.id == 0 {
                return Err(LayoutProblem::ZeroId(s.name.clone()));
            }
            if !names.insert(s.name.as_str()) {
                return Err(LayoutProblem::DuplicateName(s.name.clone()));
            }
            if !ids.insert(s.id) {
                return Err(LayoutProblem::DuplicateId(s.id));
            }
            address(&s.name, s.api_address)?;
            address(&s.name, s.peer_address)?;
        }
        if let Some(lb) = self.load_balancer {
            address("the load balancer", lb)?;
        }
        let mut nodes = BTreeSet::new();
        for c in &self.components {
            check_name(&c.name)?;
            if !c.kind.is_component() {
                return Err(LayoutProblem::NotAComponent {
                    name: c.name.clone(),
                    kind: c.kind,
                });
            }
            if !names.insert(c.name.as_str()) {
                return Err(LayoutProblem::DuplicateName(c.name.clone()));
            }
            match (&c.node, c.kind) {
                (None, Kind::Kubelet) => return Err(LayoutProblem::NoNode(c.name.clone())),
                (Some(node), _) if !nodes.insert(node.as_str()) => {
                    return Err(LayoutProblem::DuplicateNode(node.clone()))
                }
                _ => {}
            }
            address(&c.name, c.listen)?;
        }
        Ok(())
    }
}

/// A process name becomes file names (`pids/<name>.pid`, `pki/<name>.crt`): no paths, no
/// hidden files, and none of the names `pki` uses itself.
fn check_name(name: &str) -> std::result::Result<(), LayoutProblem> {
    let reserved = ["admin", "ca"].contains(&name) || name.starts_with("apiserver-");
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') || reserved {
        return Err(LayoutProblem::BadName(name.to_string()));
    }
    Ok(())
}

/// `count` consecutive ports from `base`, refusing to run past 65535.
pub fn ports_from_base(flag: &str, base: u16, count: usize) -> Result<Vec<u16>> {
    if base == 0 {
        return Err(Error::InvalidOptions(format!(
            "{flag} must be a port number above 0"
        )));
    }
    (0..count)
        .map(|i| {
            u16::try_from(usize::from(base) + i).map_err(|_| {
                Error::InvalidOptions(format!(
                    "{flag} {base} leaves no room for {count} ports (the last would be above 65535)"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
