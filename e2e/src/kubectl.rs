//! Real kubectl against a test [`Cluster`] or an `rkube up` cluster, for the
//! kubectl e2e tests.
//!
//! A [`Kubectl`] is one kubectl release with its own home folder: a kubeconfig
//! (pointing at replica 0 of a harness cluster, plain HTTP and no credentials,
//! or a copy of `rkube up`'s DIR/kubeconfig) and kubectl's discovery and
//! OpenAPI caches, so releases never read each other's caches. Runs are blocking: call
//! them from `spawn_blocking`.
//!
//! Releases are found as the machine installs them: `kubectl.<version>` beside
//! the real path of the `kubectl` on the PATH, or that `kubectl` itself when it
//! is the release asked for. This module never installs or downloads one.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cluster::Cluster;

/// One kubectl release with its own kubeconfig and caches.
pub struct Kubectl {
    bin: PathBuf,
    home: PathBuf,
    version: String,
}

impl Kubectl {
    /// kubectl `version` (`"1.33"`), or the `kubectl` on the PATH for `None`,
    /// talking to replica 0 of `cluster`. Panics when that release is not
    /// installed.
    pub fn new(cluster: &Cluster, version: Option<&str>) -> Self {
        let bin = binary(version);
        let version = version.unwrap_or("default").to_string();
        let home = cluster.dir.path().join(format!("home-{version}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: \"{}\"}}\n  name: rkube\ncontexts:\n- context: {{cluster: rkube, user: admin}}\n  name: rkube\ncurrent-context: rkube\nusers:\n- name: admin\n  user: {{}}\n",
                cluster.endpoint(0)
            ),
        )
        .unwrap();
        Self { bin, home, version }
    }

    /// kubectl `version` (or the PATH's for `None`) using `kubeconfig` as it
    /// is (e.g. DIR/kubeconfig of `rkube up`: HTTPS through the load balancer
    /// with the admin certificate), with its own home under `home_parent`.
    pub fn with_kubeconfig(
        kubeconfig: &std::path::Path,
        home_parent: &std::path::Path,
        version: Option<&str>,
    ) -> Self {
        let bin = binary(version);
        let version = version.unwrap_or("default").to_string();
        let home = home_parent.join(format!("home-{version}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::copy(kubeconfig, home.join("kubeconfig")).unwrap();
        Self { bin, home, version }
    }

    /// The release asked for (`"1.33"`), or `"default"` for the PATH's kubectl.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A command running this kubectl with `args` and its own kubeconfig and
    /// home; no editor is inherited, so `kubectl edit` uses only what a test
    /// sets. For runs a test drives itself, such as `get -w`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECONFIG", self.home.join("kubeconfig"))
            .env("HOME", &self.home)
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR");
        c
    }

    /// Runs kubectl with an empty stdin; `(success, stdout, stderr)`.
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_with(args, None, &[])
    }

    /// Runs kubectl with `stdin` written to its input (then closed) and `env`
    /// added to its environment; `(success, stdout, stderr)`.
    pub fn run_with(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> (bool, String, String) {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()));
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs kubectl, asserts that it succeeded and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    /// [`Kubectl::ok`] with `stdin` as its input (`-f -`).
    pub fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run_with(args, stdin, &[]);
        assert!(ok, "{} {args:?} failed:\n{out}\n{err}", self.name());
        out
    }

    /// Runs kubectl, asserts that it failed and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(
            !ok,
            "{} {args:?} should have failed:\n{out}\n{err}",
            self.name()
        );
        err
    }

    /// Runs kubectl with `-o json` appended, asserts that it succeeded and
    /// parses its stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["-o", "json"]].concat());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// How failures name this kubectl: release and binary.
    fn name(&self) -> String {
        format!("kubectl {} ({})", self.version, self.bin.display())
    }
}

/// The kubectl binary of `version` (`"1.33"`), or the `kubectl` on the PATH for
/// `None`: `kubectl.<version>` beside the real path of the PATH's kubectl, or
/// that kubectl itself when `kubectl version --client` says it is that release.
/// Panics when the release is not installed.
pub fn binary(version: Option<&str>) -> PathBuf {
    let on_path = on_path("kubectl");
    let Some(version) = version else {
        return on_path;
    };
    let default = std::fs::canonicalize(&on_path).unwrap();
    let beside = default.with_file_name(format!("kubectl.{version}"));
    if beside.exists() {
        return beside;
    }
    let out = Command::new(&default)
        .args(["version", "--client"])
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.contains(&format!("v{version}.")),
        "no kubectl {version}: {} is missing and {} is {v}",
        beside.display(),
        default.display()
    );
    default
}

/// The first `name` in a folder of the PATH.
fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| panic!("no {name} on the PATH"))
}
