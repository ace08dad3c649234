//! Multi-process tests of `up`, `status` and `down` against `examples/fake-apiserver.rs`,
//! a stand-in that speaks the real apiserver's CLI and Status contract, the real load
//! balancer (`examples/lb-only.rs`), and `examples/fake-component.rs` standing in for the
//! controller-manager, scheduler and kubelets that do not exist yet. They check the
//! supervisor (the table of components: spawning, pid files, readiness, restarts,
//! stopping, Leases and Nodes in status), not Raft: the real apiserver is exercised by the
//! e2e crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rkube_ops::components::{Kind, Telemetry};
use rkube_ops::{down, status, up_with_progress, Error, UpOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An example `cargo test` builds next to this test binary (`target/<profile>/examples`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test -p rkube-ops` (which builds examples) or \
         `cargo build -p rkube-ops --examples` first",
        path.display()
    );
    path
}

/// A scratch directory with `bin/rkube-apiserver` (a link to the fake), `bin/rkube` (a link
/// to the real load balancer's stand-in), `bin/rkube-controller-manager`,
/// `bin/rkube-scheduler` and `bin/rkube-kubelet` (links to the fake component) and a cluster
/// dir `cluster/` whose `fake-mode` file is `mode`.
struct Sandbox {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    dir: PathBuf,
}

impl Sandbox {
    fn new(mode: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = tmp.path().join("bin");
        let dir = tmp.path().join("cluster");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        // A symlink, not a copy: writing an executable while another test thread forks
        // makes exec fail with ETXTBSY (the child briefly inherits the write descriptor).
        std::os::unix::fs::symlink(example("fake-apiserver"), bin.join("rkube-apiserver")).unwrap();
        std::os::unix::fs::symlink(example("lb-only"), bin.join("rkube")).unwrap();
        for component in ["controller-manager", "scheduler", "kubelet"] {
            std::os::unix::fs::symlink(
                example("fake-component"),
                bin.join(format!("rkube-{component}")),
            )
            .unwrap();
        }
        std::fs::write(dir.join("fake-mode"), mode).unwrap();
        Sandbox {
            _tmp: tmp,
            bin,
            dir,
        }
    }

    fn opts(&self, apiservers: usize) -> UpOptions {
        UpOptions {
            apiservers: Some(apiservers),
            nodes: Some(0),
            bin_dir: Some(self.bin.clone()),
            timeout: Duration::from_secs(20),
            // The apiservers and the load balancer only; `full` adds the components.
            components: vec![],
            ..UpOptions::new(&self.dir)
        }
    }

    /// A whole cluster: `apiservers` replicas, the load balancer, two controller-managers,
    /// two schedulers and `nodes` kubelets (stand-ins), every process logging JSON.
    fn full(&self, apiservers: usize, nodes: usize) -> UpOptions {
        UpOptions {
            nodes: Some(nodes),
            components: vec![Kind::ControllerManager, Kind::Scheduler, Kind::Kubelet],
            node_runtime: false,
            telemetry: Telemetry {
                log_format: Some("json".into()),
                otlp_endpoint: None,
            },
            ..self.opts(apiservers)
        }
    }

    /// Sets the stand-in components' behaviour (see `examples/fake-component.rs`).
    fn component_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("fake-component-mode"), mode).unwrap();
    }
}

/// The arguments of a running process.
fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

async fn kill9(pid: u32) {
    rkube_ops::process::send_signal(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    while rkube_ops::process::is_alive(pid) {
        rkube_ops::process::reap(pid);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never leave processes behind, whatever the test did.
        let dir = self.dir.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(rkube_ops::down::down_with_grace(
                    &dir,
                    false,
                    Duration::from_millis(200),
                ))
        })
        .join();
    }
}

async fn quiet_up(opts: &UpOptions) -> rkube_ops::Result<(rkube_ops::Cluster, Vec<String>)> {
    let mut lines = Vec::new();
    let cluster = up_with_progress(opts, &mut |l: &str| lines.push(l.to_string())).await?;
    Ok((cluster, lines))
}

#[tokio::test]
async fn up_status_up_again_down_and_purge_round_trip() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        let (cluster, lines) = quiet_up(&sb.opts(3)).await.expect("up");
        assert_eq!(cluster.leader, "a1");
        assert_eq!(cluster.term, 2);
        assert!(cluster.apiservers.iter().all(|r| r.started));
        assert_eq!(cluster.api_endpoints().len(), 3);
        assert!(lines
            .iter()
            .any(|l| l.starts_with("starting apiserver a2 (pid ")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("cluster ready: 3 apiservers, leader a1")));
        for name in ["a1", "a2", "a3"] {
            assert!(sb.dir.join("pids").join(format!("{name}.pid")).is_file());
            assert!(sb.dir.join("logs").join(format!("{name}.log")).is_file());
            assert!(sb.dir.join("data").join(name).is_dir());
        }

        let report = status(&sb.dir).await.expect("status");
        let roles: Vec<&str> = report.apiservers.iter().map(|a| a.role.as_str()).collect();
        assert_eq!(roles, ["leader", "follower", "follower"]);
        for (a, r) in report.apiservers.iter().zip(&cluster.apiservers) {
            assert_eq!(a.pid, Some(r.pid));
            assert_eq!(a.commit_index, Some(7));
        }
        // The load balancer runs, and a Status call through it (TLS, as the admin) works.
        assert_eq!(report.components.len(), 1, "{report:?}");
        let lb = &report.components[0];
        assert_eq!(
            (lb.name.as_str(), lb.kind.as_str()),
            ("lb", "load-balancer")
        );
        assert_eq!(lb.pid, Some(cluster.load_balancer.pid));
        assert!(lb.healthy, "{report:?}");
        assert_eq!(lb.leader, None, "the load balancer elects no leader");
        assert!(cluster.components.is_empty());
        assert!(report.nodes.is_empty());
        for file in [
            "ca.crt",
            "ca.key",
            "apiserver-a1.crt",
            "admin.crt",
            "controller-manager.crt",
            "scheduler.key",
            "tokens.csv",
        ] {
            assert!(sb.dir.join("pki").join(file).is_file(), "{file}");
        }
        let kubeconfig = std::fs::read_to_string(sb.dir.join("kubeconfig")).unwrap();
        let lb_address = cluster
            .layout
            .load_balancer
            .expect("a load balancer address");
        assert!(
            kubeconfig.contains(&format!("server: https://{lb_address}")),
            "{kubeconfig}"
        );
        assert!(kubeconfig.contains("client-key-data: "), "{kubeconfig}");

        // A second `up` finds everything running and starts nothing; the layout is reused.
        let (again, _) = quiet_up(&UpOptions {
            apiservers: None,
            ..sb.opts(3)
        })
        .await
        .expect("second up");
        assert!(again.apiservers.iter().all(|r| !r.started));
        assert!(!again.load_balancer.started);
        assert_eq!(again.load_balancer.pid, cluster.load_balancer.pid);
        assert_eq!(
            again.apiservers,
            cluster
                .apiservers
                .iter()
                .map(|r| rkube_ops::ReplicaStart {
                    started: false,
                    ..r.clone()
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(again.layout, cluster.layout);

        let stopped = down(&sb.dir, false).await.expect("down");
        let kinds: Vec<(&str, &str)> = stopped
            .stopped
            .iter()
            .map(|p| (p.kind.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("apiserver", "a1"),
                ("apiserver", "a2"),
                ("apiserver", "a3"),
                ("load balancer", "lb")
            ]
        );
        assert!(stopped.stopped.iter().all(|p| !p.killed));
        assert!(!sb.dir.join("pids").join("a1.pid").exists());
        assert!(!sb.dir.join("pids").join("lb.pid").exists());
        assert!(!rkube_ops::process::is_alive(cluster.load_balancer.pid));

        let report = status(&sb.dir).await.expect("status after down");
        assert!(report
            .apiservers
            .iter()
            .all(|a| a.role == "down" && a.pid.is_none() && a.term.is_none()));
        assert!(report
            .components
            .iter()
            .all(|c| c.pid.is_none() && !c.healthy));

        let again = down(&sb.dir, false).await.expect("down is idempotent");
        assert!(again.stopped.is_empty());
        let purged = down(&sb.dir, true).await.expect("down --purge");
        assert!(purged.purged);
        assert!(!sb.dir.exists());
        let gone = down(&sb.dir, true).await.expect("down on a missing dir");
        assert!(!gone.existed);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_restarts_only_the_replica_that_is_not_running_and_keeps_its_addresses() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        let (first, _) = quiet_up(&sb.opts(3)).await.expect("up");
        let a2 = first.apiservers[1].pid;
        kill9(a2).await;
        let report = status(&sb.dir).await.unwrap();
        assert_eq!(report.apiservers[1].role, "down");
        assert_eq!(report.apiservers[1].pid, None);

        let (second, lines) = quiet_up(&sb.opts(3)).await.expect("up again");
        let started: Vec<bool> = second.apiservers.iter().map(|r| r.started).collect();
        assert_eq!(started, [false, true, false]);
        assert_ne!(second.apiservers[1].pid, a2);
        assert_eq!(second.layout, first.layout);
        assert!(lines.iter().any(|l| l
            == &format!(
                "apiserver a1 already running (pid {})",
                first.apiservers[0].pid
            )));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_fails_fast_with_the_log_tail_when_a_replica_exits() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("exit");
        let started = std::time::Instant::now();
        let err = quiet_up(&sb.opts(1)).await.expect_err("up must fail");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failed only after {:?}",
            started.elapsed()
        );
        match &err {
            Error::ProcessExited {
                name,
                status,
                log,
                tail,
                ..
            } => {
                assert!(name.starts_with("apiserver a1"), "{name}");
                assert!(status.contains('3'), "{status}");
                assert!(log.ends_with("logs/a1.log"));
                assert!(tail.contains("refusing to start"), "{tail}");
            }
            other => panic!("unexpected error: {other}"),
        }
        assert!(err.to_string().contains("refusing to start"));
        assert!(err.to_string().contains("rkube down --dir"), "{err}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_times_out_naming_the_replica_without_a_leader_and_its_log() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("no-leader");
        let opts = UpOptions {
            timeout: Duration::from_millis(1500),
            ..sb.opts(2)
        };
        let err = quiet_up(&opts).await.expect_err("up must time out");
        match &err {
            Error::NotReady {
                name, reason, log, ..
            } => {
                assert_eq!(name, "apiserver a1");
                assert!(reason.contains("no leader known yet"), "{reason}");
                assert!(log.ends_with("logs/a1.log"));
            }
            other => panic!("unexpected error: {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("rkube down --dir"), "{text}");
        // The processes are left running for inspection; down stops them.
        let report = status(&sb.dir).await.unwrap();
        assert!(report
            .apiservers
            .iter()
            .all(|a| a.pid.is_some() && a.role == "candidate"));
        // Two replicas and the load balancer.
        assert_eq!(down(&sb.dir, false).await.unwrap().stopped.len(), 3);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn down_kills_replicas_that_ignore_sigterm_after_the_grace_period() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ignore-term");
        quiet_up(&sb.opts(1)).await.expect("up");
        let report = rkube_ops::down::down_with_grace(&sb.dir, false, Duration::from_millis(500))
            .await
            .expect("down");
        assert_eq!(report.stopped.len(), 2, "{report:?}");
        assert!(report.stopped[0].killed && report.stopped[0].name == "a1");
        assert!(!report.stopped[1].killed && report.stopped[1].name == "lb");
        assert!(report.render().contains("killed apiserver a1"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_refuses_to_change_the_replica_count_of_an_existing_cluster() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        quiet_up(&sb.opts(1)).await.expect("up");
        let err = quiet_up(&sb.opts(3)).await.expect_err("must refuse");
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().contains("--apiservers 3"), "{err}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_stale_pid_file_of_another_process_is_neither_trusted_nor_signalled() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        quiet_up(&sb.opts(1)).await.expect("up");
        down(&sb.dir, false).await.unwrap();
        // Our own pid is alive but is not that replica.
        std::fs::write(
            sb.dir.join("pids/a1.pid"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let report = status(&sb.dir).await.unwrap();
        assert_eq!(report.apiservers[0].pid, None);
        let report = down(&sb.dir, false).await.unwrap();
        assert!(report.stopped.is_empty());
        assert!(!sb.dir.join("pids/a1.pid").exists());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_runs_every_row_of_the_table_and_status_reports_components_leases_and_nodes() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        let (cluster, lines) = quiet_up(&sb.full(1, 2)).await.expect("up");
        let started: Vec<(&str, Kind, bool)> = cluster
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.started))
            .collect();
        assert_eq!(
            started,
            [
                ("controller-manager-1", Kind::ControllerManager, true),
                ("controller-manager-2", Kind::ControllerManager, true),
                ("scheduler-1", Kind::Scheduler, true),
                ("scheduler-2", Kind::Scheduler, true),
                ("kubelet-n1", Kind::Kubelet, true),
                ("kubelet-n2", Kind::Kubelet, true),
            ]
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("starting scheduler-2 (pid ")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("\n  kubelet-n2 pid ")),
            "{lines:?}"
        );
        for name in [
            "controller-manager-1",
            "controller-manager-2",
            "scheduler-1",
            "scheduler-2",
            "kubelet-n1",
            "kubelet-n2",
        ] {
            assert!(sb.dir.join("pids").join(format!("{name}.pid")).is_file());
            assert!(sb.dir.join("logs").join(format!("{name}.log")).is_file());
            // The stand-in refuses to start unless its certificate names its identity.
            assert!(sb.dir.join("pki").join(format!("{name}.crt")).is_file());
        }
        // Every process got the telemetry flags.
        let pids = cluster
            .apiservers
            .iter()
            .chain([&cluster.load_balancer])
            .chain(&cluster.components)
            .map(|r| r.pid);
        for pid in pids {
            let args = cmdline(pid);
            assert!(
                args.windows(2).any(|w| w == ["--log-format", "json"]),
                "{args:?}"
            );
        }

        let report = status(&sb.dir).await.expect("status");
        // The two replicas of each elected kind start at once: either may hold the Lease,
        // exactly one does.
        let components: Vec<(&str, &str, bool, bool)> = report
            .components
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.kind.as_str(),
                    c.healthy,
                    c.leader.is_some(),
                )
            })
            .collect();
        assert_eq!(
            components,
            [
                ("lb", "load-balancer", true, false),
                ("controller-manager-1", "controller-manager", true, true),
                ("controller-manager-2", "controller-manager", true, true),
                ("scheduler-1", "scheduler", true, true),
                ("scheduler-2", "scheduler", true, true),
                ("kubelet-n1", "kubelet", true, false),
                ("kubelet-n2", "kubelet", true, false),
            ],
            "{report:?}"
        );
        for kind in ["controller-manager", "scheduler"] {
            let leaders = report
                .components
                .iter()
                .filter(|c| c.kind == kind && c.leader == Some(true))
                .count();
            assert_eq!(leaders, 1, "{kind}: {report:?}");
        }
        let mut nodes: Vec<(&str, bool)> = report
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.ready))
            .collect();
        nodes.sort();
        assert_eq!(nodes, [("n1", true), ("n2", true)]);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["components"][0]["leader"], serde_json::Value::Null);
        let cm_leaders = [
            &json["components"][1]["leader"],
            &json["components"][2]["leader"],
        ];
        assert!(
            cm_leaders.contains(&&serde_json::Value::Bool(true))
                && cm_leaders.contains(&&serde_json::Value::Bool(false)),
            "{json}"
        );

        // Another holder, then no Lease at all: the scheduler does not lead.
        let lease = sb
            .dir
            .join("fake-objects/leases/kube-system/kube-scheduler.json");
        std::fs::write(&lease, r#"{"spec": {"holderIdentity": "scheduler-2_x"}}"#).unwrap();
        let scheduler = |r: &rkube_ops::StatusReport| {
            r.components
                .iter()
                .find(|c| c.name == "scheduler-1")
                .unwrap()
                .clone()
        };
        assert_eq!(
            scheduler(&status(&sb.dir).await.unwrap()).leader,
            Some(false)
        );
        std::fs::remove_file(&lease).unwrap();
        assert_eq!(
            scheduler(&status(&sb.dir).await.unwrap()).leader,
            Some(false)
        );

        // A dead component is reported and is the only process `up` starts again.
        let pid = cluster.components[2].pid;
        kill9(pid).await;
        let dead = scheduler(&status(&sb.dir).await.unwrap());
        assert_eq!((dead.pid, dead.healthy), (None, false));
        let (again, _) = quiet_up(&UpOptions {
            nodes: None,
            ..sb.full(1, 2)
        })
        .await
        .expect("up again");
        let restarted: Vec<(&str, bool)> = again
            .apiservers
            .iter()
            .chain([&again.load_balancer])
            .chain(&again.components)
            .map(|r| (r.name.as_str(), r.started))
            .collect();
        assert_eq!(
            restarted,
            [
                ("a1", false),
                ("lb", false),
                ("controller-manager-1", false),
                ("controller-manager-2", false),
                ("scheduler-1", true),
                ("scheduler-2", false),
                ("kubelet-n1", false),
                ("kubelet-n2", false),
            ]
        );
        assert_eq!(again.layout, cluster.layout);
        // It took the Lease again when it started.
        assert_eq!(
            scheduler(&status(&sb.dir).await.unwrap()).leader,
            Some(true)
        );

        let stopped = down(&sb.dir, false).await.expect("down");
        let kinds: Vec<(&str, &str)> = stopped
            .stopped
            .iter()
            .map(|p| (p.kind.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("apiserver", "a1"),
                ("controller-manager", "controller-manager-1"),
                ("controller-manager", "controller-manager-2"),
                ("kubelet", "kubelet-n1"),
                ("kubelet", "kubelet-n2"),
                ("load balancer", "lb"),
                ("scheduler", "scheduler-1"),
                ("scheduler", "scheduler-2"),
            ]
        );
        let report = status(&sb.dir).await.unwrap();
        assert!(report
            .components
            .iter()
            .all(|c| c.pid.is_none() && !c.healthy));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_fails_fast_with_the_log_tail_when_a_component_exits() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        sb.component_mode("exit");
        let started = std::time::Instant::now();
        let err = quiet_up(&sb.full(1, 0)).await.expect_err("up must fail");
        assert!(started.elapsed() < Duration::from_secs(10));
        match &err {
            Error::ProcessExited {
                name, tail, log, ..
            } => {
                // Both stand-ins exit; whichever is noticed first is named.
                let (component, _) = name.split_once(" (pid ").expect("a pid in the name");
                assert!(
                    ["controller-manager-", "scheduler-"]
                        .iter()
                        .any(|kind| component.starts_with(kind)),
                    "{name}"
                );
                assert!(log.ends_with(format!("logs/{component}.log")));
                assert!(tail.contains("refusing to start"), "{tail}");
            }
            other => panic!("unexpected error: {other}"),
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn up_times_out_naming_the_component_whose_readyz_fails() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let sb = Sandbox::new("ok");
        sb.component_mode("not-ready");
        let opts = UpOptions {
            timeout: Duration::from_secs(4),
            ..sb.full(1, 0)
        };
        let err = quiet_up(&opts).await.expect_err("up must time out");
        match &err {
            Error::NotReady {
                name, reason, log, ..
            } => {
                assert_eq!(name, "controller-manager-1");
                assert!(reason.ends_with("/readyz answered 503"), "{reason}");
                assert!(log.ends_with("logs/controller-manager-1.log"));
            }
            other => panic!("unexpected error: {other}"),
        }
        let report = status(&sb.dir).await.unwrap();
        let cm = &report.components[1];
        assert!(cm.pid.is_some() && !cm.healthy, "{report:?}");
    })
    .await
    .expect("test timed out");
}
