//! `rkube down`: stop every process of a local cluster; with `purge`, delete its directory.
//!
//! Every pid file under `DIR/pids` (the apiservers', the load balancer's) names a process
//! to stop, provided the process still is ours (see [`crate::process`]): a stale pid file
//! whose pid now belongs to someone else is removed without signalling anyone. Processes get SIGTERM, then [`DOWN_GRACE`] to exit,
//! then SIGKILL. `down` is idempotent: a stopped cluster, or a directory that does not
//! exist, is already down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::components;
use crate::layout::{ClusterDir, ClusterLayout};
use crate::process;
use crate::{Error, Result};

/// How long processes get to exit after SIGTERM before they are killed.
pub const DOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a SIGKILLed process may take to disappear before `down` gives up on it.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// `rkube down`'s flags (cmd/rkube flattens them).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(about = "Stop every process of the cluster", long_about = None)]
pub struct DownOptions {
    /// The cluster directory: layout, data, logs and pid files.
    #[arg(long, value_name = "DIR", env = "RKUBE_DIR", default_value = crate::layout::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Also delete the cluster directory (data, logs, layout)
    #[arg(long)]
    pub purge: bool,
}

/// What `down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// The cluster directory, absolute.
    pub dir: PathBuf,
    /// Whether the directory existed at all.
    pub existed: bool,
    /// The processes that were running and are now stopped.
    pub stopped: Vec<StoppedProcess>,
    /// Whether the directory was deleted.
    pub purged: bool,
}

/// One stopped process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedProcess {
    /// `apiserver`, `load balancer`, `controller-manager`, `scheduler`, `kubelet` for the
    /// table's processes, or `process` for any other pid file.
    pub kind: String,
    pub name: String,
    pub pid: u32,
    /// `true` when it ignored SIGTERM for the whole grace period and was killed.
    pub killed: bool,
}

impl DownReport {
    /// One line per stopped process, then what became of the directory. Pure.
    pub fn render(&self) -> String {
        let dir = self.dir.display();
        if !self.existed {
            return format!("nothing to stop: {dir} does not exist\n");
        }
        let mut out = String::new();
        for p in &self.stopped {
            if p.killed {
                out.push_str(&format!(
                    "killed {} {} (pid {}): it did not exit after SIGTERM\n",
                    p.kind, p.name, p.pid
                ));
            } else {
                out.push_str(&format!("stopped {} {} (pid {})\n", p.kind, p.name, p.pid));
            }
        }
        if self.stopped.is_empty() {
            out.push_str(&format!("no process of the cluster in {dir} was running\n"));
        }
        if self.purged {
            out.push_str(&format!("deleted {dir}\n"));
        }
        out
    }
}

/// Stops the cluster in `dir` (SIGTERM, [`DOWN_GRACE`], SIGKILL); `purge` also deletes `dir`.
pub async fn down(dir: &Path, purge: bool) -> Result<DownReport> {
    down_with_grace(dir, purge, DOWN_GRACE).await
}

/// [`down`] with a custom grace period between SIGTERM and SIGKILL.
pub async fn down_with_grace(dir: &Path, purge: bool, grace: Duration) -> Result<DownReport> {
    let dir = ClusterDir::open(dir)?;
    let mut report = DownReport {
        dir: dir.root().to_path_buf(),
        existed: dir.root().exists(),
        stopped: Vec::new(),
        purged: false,
    };
    if !report.existed {
        return Ok(report);
    }
    if purge {
        check_purgeable(&dir)?;
    }
    let lock = dir.lock()?;
    let layout = match dir.load_layout() {
        Ok(layout) => Some(layout),
        Err(Error::NoCluster { .. }) => None,
        Err(e) => return Err(e),
    };

    // Kubelets first (so none recreates a pod), then every node's pods, then the rest.
    let nodes: Vec<crate::noderuntime::NodePaths> = layout
        .iter()
        .flat_map(|l| l.components.iter())
        .filter_map(|c| c.node.as_deref())
        .map(|node| crate::noderuntime::NodePaths::new(&dir, node))
        .collect();
    let mut early = Vec::new();
    if !nodes.is_empty() {
        let kubelets: Vec<Target> = find_targets(&dir, layout.as_ref())?
            .into_iter()
            .filter(|t| t.kind == crate::components::Kind::Kubelet.label())
            .collect();
        for t in &kubelets {
            process::send_signal(t.pid, Signal::SIGTERM)?;
        }
        for t in wait_exit(kubelets, grace).await {
            if !t.exited {
                process::send_signal(t.pid, Signal::SIGKILL)?;
            }
            let killed = !t.exited;
            early.push(t.stopped(killed));
        }
        // Then each node's pods, then its containerd (not an rkube binary: `find_targets`
        // does not know it).
        let mut runtimes = Vec::new();
        for node in &nodes {
            if let Err(e) = crate::noderuntime::remove_pods(node).await {
                tracing::warn!(node = %node.node, error = %e, "cannot remove the node's pods");
            }
            if let Some(pid) = crate::noderuntime::containerd_pid(&dir, node)? {
                process::send_signal(pid, Signal::SIGTERM)?;
                runtimes.push(Target {
                    kind: "containerd",
                    name: node.process_name(),
                    pid,
                    pid_file: dir.pid_file(&node.process_name()),
                    exited: false,
                });
            }
        }
        for t in wait_exit(runtimes, grace).await {
            if !t.exited {
                process::send_signal(t.pid, Signal::SIGKILL)?;
            }
            let killed = !t.exited;
            early.push(t.stopped(killed));
        }
    }
    let targets = find_targets(&dir, layout.as_ref())?;
    for t in &targets {
        process::send_signal(t.pid, Signal::SIGTERM)?;
    }
    let mut stopped = early;
    let survivors = wait_exit(targets, grace).await;
    let (exited, survivors): (Vec<_>, Vec<_>) = survivors.into_iter().partition(|t| t.exited);
    stopped.extend(exited.into_iter().map(|t| t.stopped(false)));
    for t in &survivors {
        process::send_signal(t.pid, Signal::SIGKILL)?;
    }
    let after_kill = wait_exit(survivors, KILL_WAIT).await;
    if let Some(stuck) = after_kill.iter().find(|t| !t.exited) {
        return Err(Error::StillRunning {
            name: stuck.name.clone(),
            pid: stuck.pid,
            pid_file: stuck.pid_file.clone(),
        });
    }
    stopped.extend(after_kill.into_iter().map(|t| t.stopped(true)));
    // Keep layout order (a1, a2, ...) rather than exit order.
    stopped.sort_by_key(|p| natural_key(&p.name));

    for path in pid_files(&dir)? {
        process::remove_pid_file(&path)?;
    }
    report.stopped = stopped;
    for node in &nodes {
        crate::noderuntime::clean_host(node);
    }

    if purge {
        drop(lock);
        std::fs::remove_dir_all(dir.root())
            .map_err(|e| Error::io("delete directory", dir.root(), e))?;
        report.purged = true;
    }
    Ok(report)
}

/// `--purge` deletes recursively, so it only deletes what is recognisably a cluster
/// directory (or empty): a mistyped `--dir $HOME` must not cost anyone their home.
fn check_purgeable(dir: &ClusterDir) -> Result<()> {
    if dir.has_layout() {
        return Ok(());
    }
    let known = [
        "data",
        "logs",
        "pids",
        "pki",
        "kubeconfig",
        "rkube.lock",
        "cluster.json.tmp",
    ];
    let entries =
        std::fs::read_dir(dir.root()).map_err(|e| Error::io("read directory", dir.root(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir.root(), e))?;
        if !known.iter().any(|k| entry.file_name() == *k) {
            return Err(Error::NotAClusterDir {
                dir: dir.root().to_path_buf(),
            });
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Target {
    kind: &'static str,
    name: String,
    pid: u32,
    pid_file: PathBuf,
    exited: bool,
}

impl Target {
    fn stopped(self, killed: bool) -> StoppedProcess {
        StoppedProcess {
            kind: self.kind.to_string(),
            name: self.name,
            pid: self.pid,
            killed,
        }
    }
}

fn pid_files(dir: &ClusterDir) -> Result<Vec<PathBuf>> {
    let pids = dir.pids_dir();
    let entries = match std::fs::read_dir(&pids) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", &pids, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io("read directory", &pids, e))?
            .path();
        if path.extension().is_some_and(|ext| ext == "pid") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The live processes behind the pid files. A process of the table of components must be
/// exactly that process (its binary, with its marker argument); any other pid file must
/// name an rkube process working inside `dir`.
fn find_targets(dir: &ClusterDir, layout: Option<&ClusterLayout>) -> Result<Vec<Target>> {
    let table = layout.map_or_else(Vec::new, |l| {
        components::table(dir, l, &components::Telemetry::default())
    });
    let known = |name: &str| {
        table.iter().find_map(|row| {
            let p = row.processes.iter().find(|p| p.name == name)?;
            Some((row, p))
        })
    };
    let mut targets = Vec::new();
    for pid_file in pid_files(dir)? {
        let Some(name) = pid_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
        else {
            continue;
        };
        let (kind, pid) = match known(&name) {
            Some((row, p)) => (
                row.kind.label(),
                process::running_pid(&pid_file, row.binary, &p.marker)?,
            ),
            None => (
                "process",
                process::read_pid_file(&pid_file)?.filter(|&pid| {
                    process::is_alive(pid)
                        && process::read_cmdline(pid)
                            .is_some_and(|c| process::cmdline_in_dir(&c, dir.root()))
                }),
            ),
        };
        match pid {
            None => {
                tracing::debug!(pid_file = %pid_file.display(), "stale pid file: its process is gone or is not ours")
            }
            Some(pid) => targets.push(Target {
                kind,
                name,
                pid,
                pid_file,
                exited: false,
            }),
        }
    }
    Ok(targets)
}

/// Waits up to `limit` for the targets to exit, marking those that did.
async fn wait_exit(mut targets: Vec<Target>, limit: Duration) -> Vec<Target> {
    let deadline = Instant::now() + limit;
    loop {
        for t in targets.iter_mut().filter(|t| !t.exited) {
            process::reap(t.pid);
            t.exited = !process::is_alive(t.pid);
        }
        let now = Instant::now();
        if targets.iter().all(|t| t.exited) || now >= deadline {
            return targets;
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// Sorts `a2` before `a10`.
fn natural_key(name: &str) -> (String, u64) {
    let split = name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, digits) = name.split_at(split);
    (prefix.to_string(), digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests;
