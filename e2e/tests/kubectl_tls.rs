//! kubectl through what `rkube up` sets up: DIR/kubeconfig names the load
//! balancer's `https://` address, trusts the cluster CA and carries the
//! admin's client certificate. Requests without credentials and with a bad
//! token get 401; a token from DIR/pki/tokens.csv works; after kill -9 of the
//! Raft leader kubectl keeps working through the same kubeconfig; a killed
//! load balancer is restarted by `rkube up`; `rkube down` stops it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkube_e2e::local::{rkube, status};
use serde_json::Value;

fn lb_component(s: &Value) -> Value {
    s["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "load-balancer")
        .unwrap_or_else(|| panic!("no load-balancer component: {s}"))
        .clone()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// kubectl with `kubeconfig`, a request timeout, and a private HOME (its cache).
fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=15s")
        .args(args)
        .env("HOME", kubeconfig.parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default"}},"data":{{"k":"v"}}}}"#
    )
}

/// A raw HTTPS request through `addr`, trusting only the cluster CA and
/// presenting no client certificate; returns the status code and body.
fn https_request(addr: SocketAddr, ca: &Path, path: &str, token: Option<&str>) -> (u16, String) {
    let config = rkube_ops::tls::client_config(ca, None, &[b"http/1.1"]).unwrap();
    let server = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::clone(&config), server).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    // A peer that closes without close_notify ends the read with an error; what
    // arrived before it is the answer.
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = rkube_ops::tls::parse_status_line(text.as_bytes())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Extracts the JSON object from a (possibly chunked) HTTP/1.1 body.
fn json_in(body: &str) -> Value {
    let start = body
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {body:?}"));
    let end = body.rfind('}').unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = rkube(&self.0, &["down"]);
    }
}

/// Waits until `kubectl get namespaces` lists `default` through `kubeconfig`.
fn wait_kubectl_ready(kubeconfig: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (ok, out, err) = kubectl(kubeconfig, &["get", "namespaces", "-o", "name"], None);
        if ok && out.contains("namespace/default") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl get namespaces failed: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_reaches_the_cluster_over_https_through_the_load_balancer_and_survives_a_leader_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _guard = Down(dir.clone());

    let (ok, out, err) = rkube(&dir, &["up", "--nodes", "0"]);
    assert!(ok, "rkube up failed:\n{out}\n{err}");
    let kubeconfig = dir.join("kubeconfig");
    let ca = dir.join("pki").join("ca.crt");
    let layout: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let lb: SocketAddr = layout["load_balancer"].as_str().unwrap().parse().unwrap();
    let config_text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        config_text.contains(&format!("server: https://{lb}")),
        "{config_text}"
    );
    for replica in layout["apiservers"].as_array().unwrap() {
        let port = replica["api_address"].as_str().unwrap();
        assert!(!config_text.contains(port), "kubeconfig names a replica");
    }

    // The admin's certificate: kubectl works and says who it is.
    wait_kubectl_ready(&kubeconfig, Duration::from_secs(20));
    let (ok, out, err) = kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], None);
    assert!(ok, "kubectl auth whoami failed: {err}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "rkube-admin");
    let groups = who["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("system:masters"), "{groups}");
    let (ok, _, err) = kubectl(
        &kubeconfig,
        &["create", "-f", "-"],
        Some(&configmap("before")),
    );
    assert!(ok, "create before the kill failed: {err}");

    // No credentials: 401 as a Status; the health endpoints stay open.
    let (code, body) = https_request(lb, &ca, "/api/v1/namespaces", None);
    assert_eq!(code, 401, "{body}");
    let s = json_in(&body);
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    let (code, _) = https_request(lb, &ca, "/readyz", None);
    assert_eq!(code, 200);
    // A bad token: 401, raw and through kubectl.
    let (code, _) = https_request(lb, &ca, "/api/v1/namespaces", Some("not-a-token"));
    assert_eq!(code, 401);
    let token_config = |name: &str, token: &str| {
        let path = tmp.path().join(name);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{lb}\n    certificate-authority: {}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    token: {token}\n",
            ca.display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad = token_config("bad-token.kubeconfig", "not-a-token");
    let (ok, _, err) = kubectl(&bad, &["get", "namespaces"], None);
    // kubectl's words for a 401.
    assert!(
        !ok && err.contains("You must be logged in to the server"),
        "{err}"
    );
    // A token from the token file works.
    let tokens = std::fs::read_to_string(dir.join("pki").join("tokens.csv")).unwrap();
    let scheduler = rkube_ops::pki::token_for(&tokens, "system:kube-scheduler").unwrap();
    let good = token_config("good-token.kubeconfig", &scheduler);
    let (ok, out, err) = kubectl(&good, &["auth", "whoami", "-o", "json"], None);
    assert!(ok, "{err}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:kube-scheduler"
    );

    // The load balancer shows in status.
    let s = status(&dir);
    let lb_status = lb_component(&s);
    assert_eq!(lb_status["healthy"], true, "{s}");
    let lb_pid = lb_status["pid"].as_i64().unwrap();

    // kill -9 the Raft leader; kubectl keeps working through the same kubeconfig
    // once a new leader is elected (one retry allowed for a request that raced
    // the election).
    let leader = s["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "leader")
        .unwrap_or_else(|| panic!("no leader: {s}"))
        .clone();
    let leader_pid = leader["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &leader_pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(&dir);
        let new_leader = s["apiservers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["role"] == "leader" && a["name"] != leader["name"]);
        if new_leader {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (ok, _, err) = kubectl(
            &kubeconfig,
            &["create", "-f", "-"],
            Some(&configmap("after")),
        );
        if ok {
            break;
        }
        assert!(
            attempts < 2,
            "create after the leader kill failed twice: {err}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    for _ in 0..6 {
        // Several connections: the load balancer must route none to the dead replica.
        let (ok, out, err) = kubectl(
            &kubeconfig,
            &["get", "configmaps", "-n", "default", "-o", "name"],
            None,
        );
        assert!(ok, "get after the leader kill failed: {err}");
        assert!(
            out.contains("configmap/before") && out.contains("configmap/after"),
            "{out}"
        );
    }

    // A dead load balancer: status says so, and `rkube up` brings it back.
    Command::new("kill")
        .args(["-9", &lb_pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(lb_pid) {
        assert!(
            Instant::now() < deadline,
            "the load balancer survived kill -9"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lb_status = lb_component(&status(&dir));
    assert_eq!(lb_status["healthy"], false);
    assert!(lb_status["pid"].is_null(), "{lb_status}");
    let (ok, out, err) = rkube(&dir, &["up", "--nodes", "0"]);
    assert!(ok, "second rkube up failed:\n{out}\n{err}");
    let s = status(&dir);
    let lb_status = lb_component(&s);
    let new_lb_pid = lb_status["pid"].as_i64().unwrap();
    assert_ne!(new_lb_pid, lb_pid);
    assert_eq!(lb_status["healthy"], true, "{s}");
    assert_eq!(
        std::fs::read_to_string(&kubeconfig).unwrap(),
        config_text,
        "a restart keeps the kubeconfig (same address, same certificates)"
    );
    wait_kubectl_ready(&kubeconfig, Duration::from_secs(10));

    // `rkube down` stops the load balancer too.
    let (ok, out, err) = rkube(&dir, &["down"]);
    assert!(ok, "rkube down failed: {err}");
    assert!(out.contains("stopped load balancer lb"), "{out}");
    assert!(!alive(new_lb_pid), "the load balancer survived rkube down");
    assert!(
        TcpStream::connect(lb).is_err(),
        "something still listens on {lb}"
    );
}
