//! Each node's container runtime: its own containerd (own root, state, sockets, config and
//! CNI configuration directory under `DIR/nodes/<node>/`, so it never shares anything with
//! another node's or with Docker's), the images every node needs imported into it, and the
//! clean-up `down` does so that nothing stays behind on the host (sandboxes and their
//! veths, network namespaces and IP allocations, the node's bridge, its cgroups).
//!
//! The configuration text is pure ([`containerd_config`]); starting, importing and
//! cleaning touch the machine. Never: touch Docker's containerd or another cluster's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::images;
use crate::layout::ClusterDir;
use crate::process::{self, Launch};
use crate::{Error, Result};

/// Where node `node` of the cluster in `dir` keeps its runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    pub node: String,
    pub base: PathBuf,
    /// A short id of the cluster directory, so two clusters' nodes differ on the host.
    pub cluster_id: String,
}

/// A short, stable id of a cluster directory (8 hex digits of its path's SHA-256). Pure.
pub fn cluster_id(root: &Path) -> String {
    hex::encode(&Sha256::digest(root.as_os_str().as_encoded_bytes())[..4])
}

impl NodePaths {
    pub fn new(dir: &ClusterDir, node: &str) -> Self {
        NodePaths {
            node: node.to_string(),
            base: dir.root().join("nodes").join(node),
            cluster_id: cluster_id(dir.root()),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.base.join("containerd.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.base.join("containerd.sock")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.base.join("cni")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.base.join("kubelet")
    }
    /// The pid file and log name of the node's containerd.
    pub fn process_name(&self) -> String {
        format!("containerd-{}", self.node)
    }
    /// The node's cgroup root (absolute, cgroupfs): unique per cluster and node.
    pub fn cgroup_root(&self) -> String {
        format!("/rkube-{}-{}", self.cluster_id, self.node)
    }
    /// The node's bridge: unique per cluster and node, at most 15 bytes.
    pub fn bridge(&self) -> String {
        let mut name = format!("rk{}{}", &self.cluster_id[..4], self.node);
        name.truncate(15);
        name
    }
}

/// The node's containerd configuration: its own root, state, sockets and plugin
/// directory; the CRI plugin with our pause image, the cgroupfs driver, runc's own root,
/// the CNI plugins of `cni_bin_dir` and the node's own CNI configuration directory; and
/// `restrict_oom_score_adj` (the machine may lack CAP_SYS_RESOURCE). Pure.
pub fn containerd_config(p: &NodePaths, cni_bin_dir: &str) -> String {
    let b = p.base.display();
    format!(
        r#"version = 2
root = "{b}/root"
state = "{b}/state"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{b}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{b}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{conf}"
    max_conf_num = 1
"#,
        sock = p.socket().display(),
        pause = images::PAUSE_IMAGE,
        conf = p.cni_conf_dir().display(),
    )
}

/// Where Debian installs the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// The static pause binary: `rkube-pause-static` (scripts/build-pause.sh) beside the other
/// binaries, or a static `rkube-pause`.
pub fn find_pause(bin_dir: Option<&Path>) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for name in ["rkube-pause-static", "rkube-pause"] {
        match process::find_binary(name, bin_dir) {
            Ok(path) => {
                let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
                if images::is_static_elf(&bytes) {
                    return Ok(path);
                }
                tried.push(path);
            }
            Err(_) => continue,
        }
    }
    Err(Error::ImageInput {
        path: tried
            .pop()
            .unwrap_or_else(|| PathBuf::from("rkube-pause-static")),
        reason: "no statically linked rkube-pause found: run scripts/build-pause.sh".to_string(),
    })
}

/// Writes the image archives into `DIR/images` (once; they are deterministic).
pub fn build_images(dir: &ClusterDir, bin_dir: Option<&Path>) -> Result<Vec<PathBuf>> {
    let out = dir.root().join("images");
    let pause = images::pause_image(&find_pause(bin_dir)?)?;
    let busybox = images::busybox_image(Path::new(images::BUSYBOX_PATH))?;
    [pause, busybox]
        .iter()
        .map(|def| images::write_archive(def, &out))
        .collect()
}

/// Starts node `p`'s containerd unless it runs, waits for its socket, imports `archives`.
/// Returns whether it started one.
pub async fn ensure_containerd(
    dir: &ClusterDir,
    p: &NodePaths,
    archives: &[PathBuf],
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<bool> {
    let pid_file = dir.pid_file(&p.process_name());
    let running = process::running_pid(&pid_file, "containerd", &p.config())?;
    for sub in ["root", "state", "opt", "runc", "cni", "kubelet"] {
        let d = p.base.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| Error::io("create directory", &d, e))?;
    }
    let started = if running.is_none() {
        std::fs::write(p.config(), containerd_config(p, CNI_BIN_DIR))
            .map_err(|e| Error::io("write", p.config(), e))?;
        process::remove_pid_file(&pid_file)?;
        let program = process::find_binary("containerd", None)?;
        let args: Vec<OsString> = vec!["--config".into(), p.config().into()];
        let log = dir.log_file(&p.process_name());
        let child = process::spawn_detached(&Launch {
            name: &p.process_name(),
            program: &program,
            args: &args,
            cwd: dir.root(),
            log_file: &log,
            pid_file: &pid_file,
        })?;
        progress(&format!(
            "starting containerd of node {} (pid {}), socket {}",
            p.node,
            child.id(),
            p.socket().display()
        ));
        true
    } else {
        false
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::UnixStream::connect(p.socket()).await.is_err() {
        if std::time::Instant::now() > deadline {
            return Err(Error::InvalidOptions(format!(
                "containerd of node {} did not open {} within 30s (log {})",
                p.node,
                p.socket().display(),
                dir.log_file(&p.process_name()).display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for archive in archives {
        let out = std::process::Command::new("ctr")
            .args(["-n", "k8s.io", "-a"])
            .arg(p.socket())
            .args(["images", "import"])
            .arg(archive)
            .output()
            .map_err(|e| Error::io("run ctr images import for", archive, e))?;
        if !out.status.success() {
            return Err(Error::InvalidOptions(format!(
                "ctr images import {} into node {}: {}",
                archive.display(),
                p.node,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(started)
}

/// Removes every pod sandbox (and so its containers, veth, network namespace and IP) of
/// node `p`'s containerd, if it answers. Call with the kubelet stopped.
pub async fn remove_pods(p: &NodePaths) -> Result<usize> {
    if !p.socket().exists() {
        return Ok(0);
    }
    let endpoint = p.socket().display().to_string();
    let cri = rkube_kubelet::cri::Cri::connect(&endpoint, Duration::from_secs(30))
        .map_err(|e| Error::InvalidOptions(e.to_string()))?;
    let Ok(sandboxes) = cri.list_pod_sandbox(&[]).await else {
        return Ok(0);
    };
    if let Ok(containers) = cri.list_containers(&[]).await {
        for c in containers {
            let _ = cri.stop_container(&c.id, Duration::ZERO).await;
            let _ = cri.remove_container(&c.id).await;
        }
    }
    for s in &sandboxes {
        let _ = cri.stop_pod_sandbox(&s.id).await;
        let _ = cri.remove_pod_sandbox(&s.id).await;
    }
    Ok(sandboxes.len())
}

/// The pid of node `p`'s containerd, if it runs.
pub fn containerd_pid(dir: &ClusterDir, p: &NodePaths) -> Result<Option<u32>> {
    process::running_pid(&dir.pid_file(&p.process_name()), "containerd", &p.config())
}

/// What the CNI plugins and runc leave on the host after the last pod: the node's bridge,
/// host-local's directory of the node's network, and its cgroups. Best effort.
pub fn clean_host(p: &NodePaths) {
    let _ = std::fs::remove_dir_all(Path::new("/var/lib/cni/networks").join(p.bridge()));
    let _ = std::process::Command::new("ip")
        .args(["link", "delete", &p.bridge()])
        .stderr(std::process::Stdio::null())
        .status();
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            remove_cgroup_tree(&h.path().join(p.cgroup_root().trim_start_matches('/')));
        }
    }
}

/// Removes a cgroup directory and its children, deepest first (cgroupfs directories are
/// removed with rmdir even though they list control files).
fn remove_cgroup_tree(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> NodePaths {
        NodePaths {
            node: "n1".into(),
            base: PathBuf::from("/c/nodes/n1"),
            cluster_id: "0a1b2c3d".into(),
        }
    }

    #[test]
    fn the_containerd_config_keeps_everything_under_the_node_directory() {
        let text = containerd_config(&paths(), "/usr/lib/cni");
        for want in [
            "root = \"/c/nodes/n1/root\"",
            "state = \"/c/nodes/n1/state\"",
            "address = \"/c/nodes/n1/containerd.sock\"",
            "address = \"/c/nodes/n1/containerd.sock.ttrpc\"",
            "path = \"/c/nodes/n1/opt\"",
            "Root = \"/c/nodes/n1/runc\"",
            "sandbox_image = \"rkube.local/pause:1\"",
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            "SystemdCgroup = false",
            "bin_dir = \"/usr/lib/cni\"",
            "conf_dir = \"/c/nodes/n1/cni\"",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn nodes_get_their_own_bridge_and_cgroup_root_per_cluster() {
        let p = paths();
        assert_eq!(p.bridge(), "rk0a1bn1");
        assert_eq!(p.cgroup_root(), "/rkube-0a1b2c3d-n1");
        let mut other = paths();
        other.cluster_id = "ffff0000".into();
        assert_ne!(other.bridge(), p.bridge());
        assert_eq!(cluster_id(Path::new("/x")), cluster_id(Path::new("/x")));
        assert_ne!(cluster_id(Path::new("/x")), cluster_id(Path::new("/y")));
    }
}
