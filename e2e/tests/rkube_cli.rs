//! The operator contract, with the real binaries: `rkube up --nodes 0` starts
//! three apiserver replicas and returns once they are ready; `rkube status -o
//! json` reports who leads; after kill -9 of the leader the status shows it
//! down and another leader; `rkube up` restarts only what is not running,
//! keeping its data; `rkube down --purge` stops everything and removes DIR.

use std::process::Command;
use std::time::{Duration, Instant};

use rkube_e2e::cluster::bin;
use serde_json::Value;

fn rkube(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("rkube"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("RKUBE_BIN_DIR", rkube_e2e::cluster::bin_dir())
        .output()
        .expect("run rkube");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn status(dir: &std::path::Path) -> Value {
    let (ok, out, err) = rkube(dir, &["status", "-o", "json"]);
    assert!(ok, "rkube status failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status is not JSON ({e}): {out}"))
}

fn leaders(s: &Value) -> Vec<(String, i64)> {
    s["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "leader")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["pid"].as_i64().unwrap(),
            )
        })
        .collect()
}

struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = rkube(&self.0, &["down"]);
    }
}

#[test]
fn up_status_kill_up_and_down_follow_the_operator_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _guard = Down(dir.clone());

    let (ok, out, err) = rkube(&dir, &["up", "--nodes", "0"]);
    assert!(ok, "rkube up failed:\n{out}\n{err}");
    assert!(dir.join("cluster.json").exists());
    // kubectl works with the kubeconfig `up` wrote.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("kubectl")
            .args(["--kubeconfig"])
            .arg(dir.join("kubeconfig"))
            .args(["get", "namespaces", "-o", "name"])
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("namespace/default") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl get namespaces failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = status(&dir);
    let reps = s["apiservers"].as_array().unwrap();
    assert_eq!(reps.len(), 3);
    for r in reps {
        for key in [
            "name",
            "pid",
            "role",
            "term",
            "commit_index",
            "applied_index",
            "api_address",
            "peer_address",
        ] {
            assert!(r.get(key).is_some(), "status lacks {key}: {r}");
        }
    }
    assert!(s["components"].is_array() && s["nodes"].is_array());
    let l = leaders(&s);
    assert_eq!(l.len(), 1, "exactly one leader expected: {s}");
    let (old_name, old_pid) = l[0].clone();
    let old_term = reps
        .iter()
        .find(|r| r["name"] == old_name.as_str())
        .unwrap()["term"]
        .as_i64()
        .unwrap();

    // kill -9 the leader: status shows it down and another leader in a later term.
    Command::new("kill")
        .args(["-9", &old_pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(&dir);
        let down = s["apiservers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == old_name.as_str() && r["role"] == "down");
        let l = leaders(&s);
        if down && l.len() == 1 && l[0].0 != old_name {
            let term = s["apiservers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == l[0].0.as_str())
                .unwrap()["term"]
                .as_i64()
                .unwrap();
            assert!(term > old_term);
            break;
        }
        assert!(Instant::now() < deadline, "no failover seen: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // up again restarts only the killed replica.
    let pids_before: Vec<i64> = status(&dir)["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pid"].as_i64())
        .collect();
    let (ok, out, err) = rkube(&dir, &["up", "--nodes", "0"]);
    assert!(ok, "second rkube up failed:\n{out}\n{err}");
    let s = status(&dir);
    let pids_after: Vec<i64> = s["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pid"].as_i64())
        .collect();
    assert_eq!(pids_after.len(), 3, "all three must run again: {s}");
    for p in &pids_before {
        assert!(
            pids_after.contains(p),
            "a running replica was restarted: {pids_before:?} → {pids_after:?}"
        );
    }

    let (ok, _, err) = rkube(&dir, &["down", "--purge"]);
    assert!(ok, "rkube down failed: {err}");
    assert!(!dir.exists(), "down --purge must delete DIR");
    for p in pids_after {
        let alive = std::path::Path::new(&format!("/proc/{p}/cmdline")).exists()
            && std::fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "process {p} survived rkube down");
    }
}
