//! rkube-kubelet on real containerd, through `rkube up --nodes N` and real kubectl: pods
//! get sandboxes and IPs from each node's own containerd and CNI bridge, answer from the
//! host and from the other node; crashes back off, missing images fail as Kubernetes
//! fails, deadlines fail pods, deletes stop containers within their grace period, many
//! create/delete cycles leave nothing behind, and a kubelet killed with SIGKILL adopts
//! its running pods when it comes back.
//!
//! The schedulers of `rkube up` bind the pods; the test also binds any it finds unbound
//! (`pods/binding`) or sets `spec.nodeName`, to choose the node. These tests need root, containerd, runc, the CNI plugins and
//! busybox-static: without them they fail when `RKUBE_REQUIRE_CONTAINERD=1` (CI sets it)
//! and are skipped with a message otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rkube_e2e::local::LocalCluster;
use serde_json::Value;

/// Whether this machine can run real pods; panics under RKUBE_REQUIRE_CONTAINERD=1 when not.
fn can_run_pods() -> bool {
    let mut missing = Vec::new();
    if !rkube_e2e::is_root() {
        missing.push("root".to_string());
    }
    for (what, path) in [
        ("containerd", "/usr/bin/containerd"),
        ("ctr", "/usr/bin/ctr"),
        ("CNI plugins", "/usr/lib/cni/bridge"),
        ("busybox-static", "/bin/busybox"),
    ] {
        if !Path::new(path).exists() {
            missing.push(format!("{what} ({path})"));
        }
    }
    if rkube_ops::noderuntime::find_pause(Some(&rkube_e2e::cluster::bin_dir())).is_err() {
        missing.push("a static rkube-pause (scripts/build-pause.sh)".to_string());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("kubelet e2e needs {}", missing.join(", "));
    if std::env::var("RKUBE_REQUIRE_CONTAINERD").as_deref() == Ok("1") {
        panic!("{msg} (RKUBE_REQUIRE_CONTAINERD=1)");
    }
    eprintln!("skipped: {msg}");
    false
}

struct Kubectl<'a>(&'a LocalCluster);

impl Kubectl<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(self.0.kubeconfig()).args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
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

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None);
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    fn apply(&self, yaml: &str) {
        let (ok, _, err) = self.run(&["create", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl create failed: {err}\n{yaml}");
    }

    fn pods(&self) -> Vec<Value> {
        let out = self.ok(&["get", "pods", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }

    fn pod(&self, name: &str) -> Option<Value> {
        let (ok, out, _) = self.run(&["get", "pod", name, "-o", "json"], None);
        ok.then(|| serde_json::from_str(&out).unwrap())
    }
}

/// Polls `f` until it returns Some, or panics after `limit` with `what`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_get(ip: &str, port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn pod_yaml(name: &str, node: &str, extra_spec: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n{extra_spec}  containers:\n  - name: c\n{container}"
    )
}

fn waiting_reason(pod: &Value) -> Option<String> {
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_string)
}

/// Binds every pod without a node to `nodes` in turn (the scheduler's job, until it lands).
fn bind_unbound(cluster: &LocalCluster, k: &Kubectl, nodes: &[&str], next: &mut usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let unbound: Vec<String> = k
        .pods()
        .iter()
        .filter(|p| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty))
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    if unbound.is_empty() {
        return;
    }
    rt.block_on(async {
        let client = cluster.client();
        for name in unbound {
            let node = nodes[*next % nodes.len()];
            *next += 1;
            let _ = client
                .bind("default", &name, node, &Default::default())
                .await;
        }
    });
}

/// What a node's containerd still runs: (sandboxes, containers).
fn runtime_counts(cluster: &LocalCluster, node: &str) -> (usize, usize) {
    let sock = cluster
        .dir()
        .join("nodes")
        .join(node)
        .join("containerd.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cri =
            rkube_kubelet::cri::Cri::connect(&sock.display().to_string(), Duration::from_secs(10))
                .unwrap();
        (
            cri.list_pod_sandbox(&[]).await.unwrap().len(),
            cri.list_containers(&[]).await.unwrap().len(),
        )
    })
}

/// The host's leftovers of a node: veths on its bridge, host-local IP reservations, pod
/// cgroups.
fn host_leftovers(cluster: &LocalCluster, node: &str) -> Vec<String> {
    let dir = rkube_ops::layout::ClusterDir::open(cluster.dir()).unwrap();
    let paths = rkube_ops::noderuntime::NodePaths::new(&dir, node);
    let mut left = Vec::new();
    let links = Command::new("ip")
        .args(["-o", "link", "show", "master", &paths.bridge()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    left.extend(
        links
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("veth: {l}")),
    );
    if let Ok(entries) = std::fs::read_dir(Path::new("/var/lib/cni/networks").join(paths.bridge()))
    {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<std::net::IpAddr>().is_ok() {
                left.push(format!("host-local IP: {name}"));
            }
        }
    }
    for qos in ["kubepods", "kubepods/burstable", "kubepods/besteffort"] {
        let d = Path::new("/sys/fs/cgroup/memory")
            .join(paths.cgroup_root().trim_start_matches('/'))
            .join(qos);
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("pod") {
                    left.push(format!("cgroup: {}", d.join(name).display()));
                }
            }
        }
    }
    left
}

#[test]
fn pods_run_on_two_nodes_in_real_containerd_and_leave_nothing_behind() {
    if !can_run_pods() {
        return;
    }
    let cluster = LocalCluster::up_nodes(2, &["--component-arg", "kubelet=--backoff-initial=2s"]);
    let k = Kubectl(&cluster);
    let nodes = k.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(nodes.split_whitespace().collect::<Vec<_>>(), ["n1", "n2"]);

    // A 3-replica Deployment serving HTTP: Running, distinct IPs answering from the host.
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=rkube.local/busybox:1.35",
        "--replicas=3",
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/var/www",
    ]);
    let mut next = 0;
    let web: Vec<(String, String, String)> =
        wait_for(Duration::from_secs(90), "3 web pods Running", || {
            bind_unbound(&cluster, &k, &["n1", "n2"], &mut next);
            let running: Vec<(String, String, String)> = k
                .pods()
                .iter()
                .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with("web-"))
                .filter(|p| p["status"]["phase"] == "Running")
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .map(|p| {
                    (
                        p["metadata"]["name"].as_str().unwrap().to_string(),
                        p["spec"]["nodeName"].as_str().unwrap().to_string(),
                        p["status"]["podIP"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            (running.len() == 3).then_some(running)
        });
    let ips: BTreeSet<&str> = web.iter().map(|(_, _, ip)| ip.as_str()).collect();
    assert_eq!(ips.len(), 3, "distinct pod IPs: {web:?}");
    let on: BTreeSet<&str> = web.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(on.len(), 2, "both nodes run web pods: {web:?}");
    for (name, _, ip) in &web {
        let body = wait_for(Duration::from_secs(10), "the pod to answer", || {
            http_get(ip, 8080)
        });
        assert!(body.contains("rkube busybox"), "{name} at {ip}: {body}");
    }

    // A pod on n1 reaches a pod on n2.
    let (_, _, ip2) = web.iter().find(|(_, n, _)| n == "n2").unwrap();
    k.apply(&pod_yaml(
        "client",
        "n1",
        "  restartPolicy: Never\n",
        &format!("    image: rkube.local/busybox:1.35\n    command: [\"wget\", \"-O-\", \"http://{ip2}:8080/\"]\n"),
    ));
    let client = wait_for(Duration::from_secs(60), "the client pod to finish", || {
        k.pod("client")
            .filter(|p| p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed")
    });
    assert_eq!(client["status"]["phase"], "Succeeded", "{client}");
    assert_eq!(
        client["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );

    // A crashing container: CrashLoopBackOff, its exit code, growing delays.
    k.apply(&pod_yaml(
        "crash",
        "n1",
        "",
        "    image: rkube.local/busybox:1.35\n    command: [\"sh\", \"-c\", \"exit 3\"]\n",
    ));
    let mut restarts_at: BTreeMap<i64, Instant> = BTreeMap::new();
    let mut saw_backoff = false;
    let crash = wait_for(
        Duration::from_secs(60),
        "4 restarts of the crashing pod",
        || {
            let p = k.pod("crash")?;
            let cs = &p["status"]["containerStatuses"][0];
            let n = cs["restartCount"].as_i64().unwrap_or(0);
            restarts_at.entry(n).or_insert_with(Instant::now);
            saw_backoff |= waiting_reason(&p).as_deref() == Some("CrashLoopBackOff");
            (n >= 4).then_some(p)
        },
    );
    assert!(saw_backoff, "CrashLoopBackOff was never shown");
    assert_eq!(
        crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        3
    );
    let gap = |a: i64, b: i64| restarts_at[&b].duration_since(restarts_at[&a]);
    assert!(
        gap(3, 4) > gap(2, 3) && gap(2, 3) >= Duration::from_millis(1500),
        "delays grow (2s, 4s, ...): {:?}",
        [gap(1, 2), gap(2, 3), gap(3, 4)]
    );

    // A missing image: ErrImagePull, then ImagePullBackOff.
    k.apply(&pod_yaml(
        "missing",
        "n2",
        "",
        "    image: rkube.local/nothere:1\n",
    ));
    // ErrImagePull lasts until the next sync, which is soon: the events keep it.
    wait_for(
        Duration::from_secs(60),
        "ErrImagePull and ImagePullBackOff",
        || {
            let reason = k.pod("missing").and_then(|p| waiting_reason(&p))?;
            let events = k.ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=missing",
                "-o",
                "json",
            ]);
            let events: Value = serde_json::from_str(&events).unwrap();
            let said = |reason: &str, text: &str| {
                events["items"].as_array().unwrap().iter().any(|e| {
                    e["reason"] == reason && e["message"].as_str().unwrap_or("").contains(text)
                })
            };
            (reason == "ImagePullBackOff"
                && said("Failed", "Error: ErrImagePull")
                && said(
                    "BackOff",
                    "Back-off pulling image \"rkube.local/nothere:1\"",
                ))
            .then_some(())
        },
    );

    // activeDeadlineSeconds fails a pod.
    k.apply(&pod_yaml(
        "deadline",
        "n2",
        "  activeDeadlineSeconds: 2\n",
        "    image: rkube.local/busybox:1.35\n    command: [\"sleep\", \"1000\"]\n",
    ));
    let failed = wait_for(Duration::from_secs(60), "the deadline pod to fail", || {
        k.pod("deadline")
            .filter(|p| p["status"]["phase"] == "Failed")
    });
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");

    // Deleting stops containers within the grace period: this one ignores SIGTERM, so it
    // is killed when the 3 s are up, and the object goes.
    k.apply(&pod_yaml(
        "graceful",
        "n1",
        "  terminationGracePeriodSeconds: 3\n",
        "    image: rkube.local/busybox:1.35\n    command: [\"sh\", \"-c\", \"trap '' TERM; while true; do sleep 1; done\"]\n",
    ));
    wait_for(Duration::from_secs(60), "the graceful pod to run", || {
        k.pod("graceful")
            .filter(|p| p["status"]["phase"] == "Running")
    });
    let started = Instant::now();
    k.ok(&["delete", "pod", "graceful", "--wait=false"]);
    wait_for(
        Duration::from_secs(20),
        "the graceful pod to disappear",
        || k.pod("graceful").is_none().then_some(()),
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "deleted after {took:?} (grace 3 s)"
    );

    // Many create/delete cycles, then everything deleted: nothing stays behind.
    for i in 0..20 {
        let name = format!("cycle-{i}");
        k.apply(&pod_yaml(
            &name,
            if i % 2 == 0 { "n1" } else { "n2" },
            "  terminationGracePeriodSeconds: 1\n",
            "    image: rkube.local/busybox:1.35\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n",
        ));
        wait_for(Duration::from_secs(30), "the cycle pod to run", || {
            k.pod(&name).filter(|p| p["status"]["phase"] == "Running")
        });
        k.ok(&["delete", "pod", &name]);
    }
    k.ok(&["delete", "deployment", "web"]);
    k.ok(&["delete", "pods", "--all", "--grace-period=1"]);
    wait_for(Duration::from_secs(60), "every pod gone", || {
        k.pods().is_empty().then_some(())
    });
    for node in ["n1", "n2"] {
        wait_for(Duration::from_secs(20), "the runtime to be empty", || {
            (runtime_counts(&cluster, node) == (0, 0)).then_some(())
        });
        // Cgroups go when the kernel lets them (the kubelet sweeps every 2 s).
        let mut left = Vec::new();
        let clean = Instant::now() + Duration::from_secs(15);
        while Instant::now() < clean {
            left = host_leftovers(&cluster, node);
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(left.is_empty(), "node {node} left {left:?}");
    }
}

#[test]
fn a_pod_that_does_not_fit_is_refused_and_a_kubelet_killed_with_sigkill_adopts_its_pods_and_cleans_up_those_deleted_meanwhile(
) {
    if !can_run_pods() {
        return;
    }
    let cluster = LocalCluster::up_nodes(1, &[]);
    let k = Kubectl(&cluster);
    // A pod that does not fit the node is refused before anything of it runs.
    k.apply(&pod_yaml(
        "huge",
        "n1",
        "",
        "    image: rkube.local/busybox:1.35\n    resources:\n      requests:\n        cpu: \"1000\"\n",
    ));
    let refused = wait_for(Duration::from_secs(30), "the huge pod refused", || {
        k.pod("huge").filter(|p| p["status"]["phase"] == "Failed")
    });
    assert_eq!(refused["status"]["reason"], "OutOfcpu", "{refused}");
    k.ok(&["delete", "pod", "huge"]);
    for name in ["keep", "gone"] {
        k.apply(&pod_yaml(
            name,
            "n1",
            "",
            "    image: rkube.local/busybox:1.35\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n",
        ));
    }
    let before = wait_for(Duration::from_secs(60), "both pods running", || {
        let p = k
            .pod("keep")
            .filter(|p| p["status"]["phase"] == "Running")?;
        k.pod("gone")
            .filter(|p| p["status"]["phase"] == "Running")?;
        Some(p)
    });
    let id = before["status"]["containerStatuses"][0]["containerID"].clone();

    let pid = cluster.pid_of("kubelet-n1").expect("the kubelet runs");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(Duration::from_secs(10), "the kubelet to die", || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    k.ok(&["delete", "pod", "gone", "--force", "--grace-period=0"]);
    assert_eq!(
        runtime_counts(&cluster, "n1").0,
        2,
        "the runtime still runs both"
    );

    let (ok, out, err) = rkube_e2e::local::rkube(cluster.dir(), &["up"]);
    assert!(ok, "rkube up failed: {out}\n{err}");
    wait_for(
        Duration::from_secs(30),
        "the deleted pod's sandbox removed",
        || (runtime_counts(&cluster, "n1") == (1, 1)).then_some(()),
    );
    let after = k.pod("keep").unwrap();
    let cs = &after["status"]["containerStatuses"][0];
    assert_eq!(cs["containerID"], id, "the same container runs");
    assert_eq!(cs["restartCount"], 0);
    assert_eq!(after["status"]["phase"], "Running");
}

#[test]
fn a_node_whose_kubelet_dies_turns_unready_and_its_pods_move_to_the_other_node() {
    if !can_run_pods() {
        return;
    }
    let cluster = LocalCluster::up_nodes(
        2,
        &[
            "--component-arg",
            "controller-manager=--node-monitor-grace-period=4s",
            "--component-arg",
            "controller-manager=--node-monitor-period=1s",
        ],
    );
    let k = Kubectl(&cluster);
    let toleration = |key: &str| {
        format!(
            "      - {{key: {key}, operator: Exists, effect: NoExecute, tolerationSeconds: 1}}\n"
        )
    };
    k.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc\nspec:\n  replicas: 4\n  selector:\n    matchLabels: {{app: svc}}\n  template:\n    metadata:\n      labels: {{app: svc}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      tolerations:\n{}{}      containers:\n      - name: c\n        image: rkube.local/busybox:1.35\n        command: [\"httpd\", \"-f\", \"-p\", \"8080\"]\n",
        toleration("node.kubernetes.io/unreachable"),
        toleration("node.kubernetes.io/not-ready"),
    ));
    let running_on = |k: &Kubectl| -> BTreeMap<String, usize> {
        let mut on = BTreeMap::new();
        for p in k.pods() {
            if p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null() {
                *on.entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
        }
        on
    };
    // The scheduler spreads them; make sure n2 has some.
    wait_for(
        Duration::from_secs(90),
        "4 pods running on both nodes",
        || {
            let on = running_on(&k);
            (on.values().sum::<usize>() == 4 && on.get("n2").copied().unwrap_or(0) > 0)
                .then_some(())
        },
    );

    let pid = cluster
        .pid_of("kubelet-n2")
        .expect("the kubelet of n2 runs");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(Duration::from_secs(60), "n2 to turn unready", || {
        let out = k.ok(&[
            "get",
            "node",
            "n2",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (out.trim() == "Unknown").then_some(())
    });
    let on = wait_for(Duration::from_secs(90), "every pod running on n1", || {
        let on = running_on(&k);
        (on.get("n1").copied() == Some(4) && !on.contains_key("n2")).then_some(on)
    });
    assert_eq!(on.len(), 1, "{on:?}");
}
