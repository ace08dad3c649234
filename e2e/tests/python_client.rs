//! The official Python `kubernetes` client (PyPI) against what `rkube up`
//! sets up, through DIR/kubeconfig (HTTPS through the load balancer, the
//! admin's client certificate).
//!
//! The client side is `e2e/python/client_test.py`: discovery, CRUD of a
//! namespace, configmaps, a deployment and a secret, lists with label and
//! field selectors, pagination, the three patch types, a stale replace, Status
//! errors, deletes; then a writer and three watches. When it prints
//! `READY-FOR-KILL` this test kill -9s the Raft leader and creates the file
//! the script waits for; the script keeps writing through the new leader,
//! retrying a failed request at most once and re-establishing a broken watch
//! from the last resourceVersion it saw. Its last line is a JSON report, whose
//! counts are checked here; kubectl, through the same kubeconfig, must also
//! carry on after the kill and see every acknowledged write.
//!
//! Skipped (with a message) when `python3 -c 'import kubernetes'` fails,
//! unless `RKUBE_REQUIRE_PYTHON_CLIENT` is set, as CI sets it.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rkube_e2e::cluster::send_signal;
use rkube_e2e::local::{rkube, status};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_test.py");
const NAMESPACE: &str = "py-e2e";

fn leader(s: &Value) -> Option<(String, u32)> {
    s["apiservers"]
        .as_array()?
        .iter()
        .find(|a| a["role"] == "leader")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                u32::try_from(a["pid"].as_u64().unwrap()).unwrap(),
            )
        })
}

/// kubectl with `kubeconfig`, a request timeout, and a private HOME (its cache).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=15s")
        .args(args)
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// kubectl, retried once if the first try fails (it may race an election).
fn kubectl_once_more(kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, out, first) = kubectl(kubeconfig, args);
    if ok {
        return out;
    }
    let (ok, out, second) = kubectl(kubeconfig, args);
    assert!(ok, "kubectl {args:?} failed twice:\n{first}\n{second}");
    out
}

/// Whether python3 runs and imports the `kubernetes` package.
fn python_client_importable() -> bool {
    Command::new("python3")
        .args(["-c", "import kubernetes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = rkube(&self.0, &["down"]);
    }
}

/// Kills the script if the test panics while it runs.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn python_client_crud_lists_patches_and_a_watch_carry_on_across_a_raft_leader_kill() {
    if !python_client_importable() {
        assert!(
            std::env::var_os("RKUBE_REQUIRE_PYTHON_CLIENT").is_none(),
            "RKUBE_REQUIRE_PYTHON_CLIENT is set but `python3 -c 'import kubernetes'` fails \
             (pip install kubernetes, see .ci/run)"
        );
        eprintln!(
            "SKIPPED: the Python `kubernetes` package is not importable \
             (pip install kubernetes; set RKUBE_REQUIRE_PYTHON_CLIENT=1 to make this a failure)"
        );
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _down = Down(dir.clone());
    let (ok, out, err) = rkube(&dir, &["up", "--nodes", "0"]);
    assert!(ok, "rkube up failed:\n{out}\n{err}");
    let kubeconfig = dir.join("kubeconfig");
    let killed_file = tmp.path().join("leader-killed");
    let script_log = tmp.path().join("client_test.log");

    let mut child = ChildGuard(
        Command::new("python3")
            .arg(SCRIPT)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--namespace")
            .arg(NAMESPACE)
            .arg("--killed-file")
            .arg(&killed_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&script_log).unwrap())
            .spawn()
            .expect("run python3"),
    );
    let log = || std::fs::read_to_string(&script_log).unwrap_or_default();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(300);
    let next_line = || {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the script did not finish in time; its log:\n{}", log())
            }
        }
    };

    let mut killed = None;
    let mut report = None;
    while let Some(line) = next_line() {
        if line == "READY-FOR-KILL" {
            assert!(killed.is_none(), "READY-FOR-KILL twice");
            let s = status(&dir);
            let (name, pid) = leader(&s).unwrap_or_else(|| panic!("no leader: {s}"));
            send_signal(pid, libc::SIGKILL);
            std::fs::write(&killed_file, &name).unwrap();
            killed = Some(name);
        } else if let Some(json) = line.strip_prefix("REPORT ") {
            report = Some(
                serde_json::from_str::<Value>(json)
                    .unwrap_or_else(|e| panic!("report is not JSON ({e}): {json}")),
            );
        }
    }
    let code = child.0.wait().unwrap();
    let killed =
        killed.unwrap_or_else(|| panic!("the script never got ready; its log:\n{}", log()));
    let report = report.unwrap_or_else(|| panic!("no REPORT line; exit {code}; log:\n{}", log()));
    assert!(
        code.success() && report.get("failed").is_none(),
        "the Python client test failed ({code}): {}\nits log:\n{}",
        report["failed"],
        log()
    );

    // The script's counts: every phase ran, with everything it should have seen.
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {report}"))
    };
    assert_eq!(n("configmaps"), 30, "{report}");
    assert_eq!((n("pages"), n("paginated_items")), (5, 30), "{report}");
    assert_eq!(n("initial_events"), 15, "{report}");
    assert_eq!(n("patches"), 6, "{report}");
    assert_eq!(n("deleted"), 15, "{report}");
    let acked = n("acked_writes");
    assert!(acked >= 40, "{report}");
    assert_eq!(n("writes_after_kill"), 20, "{report}");
    assert_eq!(n("final_reads"), acked, "{report}");
    assert_eq!(n("watchers"), 3, "{report}");
    let per_watch: Vec<u64> = report["watch_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(per_watch, vec![acked; 3], "every watch saw every create");
    // One watch was on each replica, so the leader's broke and was re-established.
    assert!(
        n("watch_reconnects") >= 1,
        "no watch was re-established: {report}"
    );
    // Each retry is the one allowed for a request that raced the kill.
    assert!(n("applied_on_retry") <= n("retries"), "{report}");

    // kubectl through the same kubeconfig carries on and sees every acknowledged
    // write; the killed replica is really gone and another one leads.
    let s = status(&dir);
    let (new_leader, _) = leader(&s).unwrap_or_else(|| panic!("no leader after the kill: {s}"));
    assert_ne!(new_leader, killed, "{s}");
    let out = kubectl_once_more(
        &kubeconfig,
        &[
            "get",
            "configmaps",
            "-n",
            NAMESPACE,
            "-l",
            "phase=watch",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.lines().count() as u64, acked, "{out}");
    let out = kubectl_once_more(
        &kubeconfig,
        &[
            "create",
            "configmap",
            "after-python",
            "-n",
            NAMESPACE,
            "--from-literal=k=v",
        ],
    );
    assert!(out.contains("configmap/after-python created"), "{out}");

    let (ok, out, err) = rkube(&dir, &["down"]);
    assert!(ok, "rkube down failed:\n{out}\n{err}");
}
