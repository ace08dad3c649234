//! A cluster as users start it: `rkube up --nodes 0 --dir <temp>` with the real
//! binaries (three TLS replicas, the load balancer, DIR/pki and DIR/kubeconfig),
//! stopped with `rkube down` when dropped (its folder is then removed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cluster::{bin, bin_dir};

pub struct LocalCluster {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

/// Runs `rkube <args> --dir <dir>`; `(success, stdout, stderr)`.
pub fn rkube(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("rkube"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("RKUBE_BIN_DIR", bin_dir())
        .output()
        .expect("run rkube");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `rkube status -o json --dir <dir>`, parsed; panics when it fails.
pub fn status(dir: &Path) -> Value {
    let (ok, out, err) = rkube(dir, &["status", "-o", "json"]);
    assert!(ok, "rkube status failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status is not JSON ({e}): {out}"))
}

/// A second octet for a test cluster's pod range (10.X.0.0/16), different for every call
/// in this process and unlikely to repeat across processes.
fn unique_octet() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = std::process::id() ^ nanos;
    100 + (seed.wrapping_add(NEXT.fetch_add(37, Ordering::Relaxed))) % 150
}

impl LocalCluster {
    /// `rkube up --nodes 0` in a new temporary folder; panics with its output
    /// when it fails. `up` returns once a leader is elected and the load
    /// balancer answers.
    pub fn up() -> Self {
        Self::up_with(&[])
    }

    /// `rkube up --nodes 0 <extra>` (e.g. `--component-arg KIND=FLAG`).
    pub fn up_with(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let cluster = Self { _tmp: tmp, dir };
        let mut args = vec!["up", "--nodes", "0"];
        args.extend_from_slice(extra);
        let (ok, out, err) = rkube(&cluster.dir, &args);
        assert!(ok, "rkube up failed:\n{out}\n{err}");
        cluster
    }

    /// `rkube up --nodes <nodes> <extra>`: kubelets, each with its own containerd.
    pub fn up_nodes(nodes: usize, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let cluster = Self { _tmp: tmp, dir };
        let n = nodes.to_string();
        // Its own pod range: clusters running at once on this machine (tests in parallel)
        // must not route the same subnets to different bridges.
        let cidr = format!(
            "controller-manager=--cluster-cidr=10.{}.0.0/16",
            unique_octet()
        );
        let mut args = vec!["up", "--nodes", n.as_str(), "--timeout", "120s"];
        args.extend_from_slice(&["--component-arg", cidr.as_str()]);
        args.extend_from_slice(extra);
        let (ok, out, err) = rkube(&cluster.dir, &args);
        assert!(ok, "rkube up failed:\n{out}\n{err}");
        cluster
    }

    /// A gRPC client of every replica, over TLS as the admin (as rkube's components
    /// connect, with their own certificates).
    pub fn client(&self) -> rkube_client::Client {
        let pki = rkube_ops::pki::ClusterPki::new(self.dir.join("pki"));
        let tls = rkube_ops::tls::client_config(
            &pki.ca_cert(),
            Some((pki.admin_cert().as_path(), pki.admin_key().as_path())),
            &[b"h2"],
        )
        .expect("the cluster's TLS files");
        let endpoints: Vec<String> = self.status()["apiservers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["api_address"].as_str().unwrap().to_string())
            .collect();
        let mut config = rkube_client::Config::new(endpoints);
        config.tls = Some(tls);
        rkube_client::Client::new(config).expect("a client")
    }

    /// The pid of the component or replica named `name`, from `rkube status`.
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        let st = self.status();
        st["apiservers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(st["components"].as_array().unwrap())
            .find(|c| c["name"] == name)
            .and_then(|c| c["pid"].as_u64())
            .map(|p| p as u32)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// DIR/kubeconfig: `https://<load balancer>`, the cluster CA, the admin
    /// certificate.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `rkube status -o json`.
    pub fn status(&self) -> Value {
        status(&self.dir)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = rkube(&self.dir, &["down"]);
    }
}
