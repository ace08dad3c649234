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

impl LocalCluster {
    /// `rkube up --nodes 0` in a new temporary folder; panics with its output
    /// when it fails. `up` returns once a leader is elected and the load
    /// balancer answers.
    pub fn up() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let cluster = Self { _tmp: tmp, dir };
        let (ok, out, err) = rkube(&cluster.dir, &["up", "--nodes", "0"]);
        assert!(ok, "rkube up failed:\n{out}\n{err}");
        cluster
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
