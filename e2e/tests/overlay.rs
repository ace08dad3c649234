//! rkube-overlay end to end, without containers: two network namespaces this test
//! creates stand for two nodes (an underlay veth pair between them, a bridge with the
//! node's pod gateway address in each), a real apiserver holds their Node objects, and
//! one real `rkube-overlay` per node programs its namespace. Pod addresses on one node
//! reach the other's through VXLAN; a node that restarts with a new VTEP is re-learnt; a
//! deleted node's route, neighbour and FDB entries disappear from its peer.
//!
//! Needs root (network namespaces) and busybox (ping). CI is root and sets
//! RKUBE_REQUIRE_ROOT=1, so there the test fails instead of skipping.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{Api, Client, Config, DeleteParams, WriteParams};
use rkube_e2e::cluster::{bin, Cluster, Options};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", args[0]));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn must(args: &[&str]) -> String {
    let (ok, out) = run(args);
    assert!(ok, "{}: {out}", args.join(" "));
    out
}

/// Two namespaces joined by a veth pair (the underlay), removed on drop.
struct Nodes {
    names: [String; 2],
}

impl Nodes {
    /// Node `i`: underlay 192.168.247.(i+1)/24 on `ul`, pod gateway 10.244.(i+1).1/24 on
    /// bridge `cni0`.
    fn new() -> Self {
        let pid = std::process::id();
        let names = [format!("rkube-ovl-a-{pid}"), format!("rkube-ovl-b-{pid}")];
        for n in &names {
            must(&["ip", "netns", "add", n]);
        }
        let me = Nodes { names };
        let [a, b] = &me.names;
        must(&[
            "ip", "-n", a, "link", "add", "ul", "type", "veth", "peer", "name", "ul", "netns", b,
        ]);
        for (i, n) in me.names.iter().enumerate() {
            must(&[
                "ip",
                "-n",
                n,
                "addr",
                "add",
                &format!("192.168.247.{}/24", i + 1),
                "dev",
                "ul",
            ]);
            must(&["ip", "-n", n, "link", "set", "ul", "up"]);
            must(&["ip", "-n", n, "link", "set", "lo", "up"]);
            must(&["ip", "-n", n, "link", "add", "cni0", "type", "bridge"]);
            must(&[
                "ip",
                "-n",
                n,
                "addr",
                "add",
                &format!("10.244.{}.1/24", i + 1),
                "dev",
                "cni0",
            ]);
            must(&["ip", "-n", n, "link", "set", "cni0", "up"]);
        }
        me
    }

    fn path(&self, i: usize) -> String {
        format!("/run/netns/{}", self.names[i])
    }

    /// Whether node `from` reaches node `to`'s pod gateway from its own pod gateway.
    fn ping(&self, from: usize, to: usize) -> bool {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.names[from],
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            &format!("10.244.{}.1", from + 1),
            &format!("10.244.{}.1", to + 1),
        ])
        .0
    }

    fn show(&self, i: usize, what: &[&str]) -> String {
        let mut args = vec!["-n", self.names[i].as_str()];
        args.extend_from_slice(what);
        let cmd = if what[0] == "fdb" { "bridge" } else { "ip" };
        let mut all = vec![cmd];
        all.extend(args);
        must(&all)
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

struct Agent(Child);

impl Agent {
    fn start(api: &str, node: &str, netns: &str, public_ip: &str, log: &std::path::Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(bin("rkube-overlay"))
            .args([
                "--apiserver",
                api,
                "--node-name",
                node,
                "--netns",
                netns,
                "--public-ip",
                public_ip,
                "--listen",
                "127.0.0.1:0",
                "--resync",
                "2s",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rkube-overlay starts");
        Agent(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(
    what: &str,
    within: Duration,
    logs: &tempfile::TempDir,
    mut check: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() > deadline {
            let mut text = String::new();
            for e in std::fs::read_dir(logs.path()).unwrap().flatten() {
                text.push_str(&format!(
                    "--- {}\n{}\n",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
            panic!("timed out after {within:?} waiting until {what}\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node(name: &str, cidr: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.into()),
            pod_cidrs: Some(vec![cidr.into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_nodes_reach_each_other_through_the_vxlan_overlay() {
    if !rkube_e2e::is_root() {
        assert!(
            std::env::var("RKUBE_REQUIRE_ROOT").as_deref() != Ok("1"),
            "the overlay e2e needs root (RKUBE_REQUIRE_ROOT=1)"
        );
        eprintln!("skipped: the overlay e2e needs root to create network namespaces");
        return;
    }
    let mut cluster = Cluster::start_with(Options {
        replicas: 1,
        system_namespaces: true,
        ..Default::default()
    })
    .await;
    cluster.leader(Duration::from_secs(30)).await;
    let api = cluster.replicas[0].api.to_string();
    let client = Client::new(Config::new(vec![api.clone()])).unwrap();
    let nodes_api: Api<Node> = Api::all(&client);
    nodes_api
        .create(&node("n-a", "10.244.1.0/24"), &WriteParams::default())
        .await
        .unwrap();
    nodes_api
        .create(&node("n-b", "10.244.2.0/24"), &WriteParams::default())
        .await
        .unwrap();

    let ns = Nodes::new();
    let logs = tempfile::tempdir().unwrap();
    let _a = Agent::start(
        &api,
        "n-a",
        &ns.path(0),
        "192.168.247.1",
        &logs.path().join("a.log"),
    );
    let mut b = Agent::start(
        &api,
        "n-b",
        &ns.path(1),
        "192.168.247.2",
        &logs.path().join("b.log"),
    );

    wait_for(
        "a pod address on n-a reaches one on n-b and back",
        Duration::from_secs(30),
        &logs,
        || ns.ping(0, 1) && ns.ping(1, 0),
    )
    .await;
    let dev = ns.show(0, &["-d", "link", "show", "flannel.1"]);
    assert!(
        dev.contains("vxlan id 1") && dev.contains("nolearning"),
        "{dev}"
    );
    let nat = must(&[
        "ip",
        "netns",
        "exec",
        &ns.names[0],
        "iptables",
        "-t",
        "nat",
        "-S",
    ]);
    assert!(nat.contains("-A POSTROUTING -j RKUBE-OVERLAY"), "{nat}");
    assert!(
        nat.contains("-A RKUBE-OVERLAY -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE"),
        "{nat}"
    );
    let b_node = nodes_api.get("n-b").await.unwrap();
    let b_mac = b_node.metadata.annotations.as_ref().unwrap()["overlay.rkube.io/vtep-mac"].clone();
    assert!(ns
        .show(0, &["fdb", "show", "dev", "flannel.1"])
        .contains(&format!("{b_mac} dst 192.168.247.2")));

    // n-b restarts: its agent stops, its device goes (a new MAC when made again).
    let _ = b.0.kill();
    let _ = b.0.wait();
    must(&["ip", "-n", &ns.names[1], "link", "del", "flannel.1"]);
    assert!(!ns.ping(0, 1), "no tunnel without n-b's device");
    let _b2 = Agent::start(
        &api,
        "n-b",
        &ns.path(1),
        "192.168.247.2",
        &logs.path().join("b2.log"),
    );
    wait_for(
        "n-a re-learns n-b's new VTEP",
        Duration::from_secs(30),
        &logs,
        || ns.ping(0, 1) && ns.ping(1, 0),
    )
    .await;
    let new_mac = nodes_api
        .get("n-b")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()["overlay.rkube.io/vtep-mac"]
        .clone();
    assert_ne!(new_mac, b_mac, "a new device has a new MAC");
    let fdb = ns.show(0, &["fdb", "show", "dev", "flannel.1"]);
    assert!(
        !fdb.contains(&b_mac),
        "the old VTEP's FDB entry is gone: {fdb}"
    );

    // n-b is deleted: n-a forgets it.
    nodes_api
        .delete("n-b", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "n-a's route, neighbour and FDB entry for n-b are gone",
        Duration::from_secs(30),
        &logs,
        || {
            !ns.show(0, &["route", "show", "dev", "flannel.1"])
                .contains("10.244.2.0/24")
                && !ns
                    .show(0, &["neigh", "show", "dev", "flannel.1"])
                    .contains("10.244.2.0")
                && !ns
                    .show(0, &["fdb", "show", "dev", "flannel.1"])
                    .contains(&new_mac)
        },
    )
    .await;
    assert!(!ns.ping(0, 1));
}
