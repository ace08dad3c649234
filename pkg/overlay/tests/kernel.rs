//! The kernel side against a real kernel, in a network namespace this test creates (root
//! only: CI runs as root; elsewhere the test says why it did not run, and fails when
//! RKUBE_REQUIRE_ROOT=1).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use rkube_overlay::kernel::{Kernel, VxlanSpec};
use rkube_overlay::plan::{plan, Entry, Mac, Peer, Programmed};

/// A network namespace removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var("RKUBE_REQUIRE_ROOT").as_deref() != Ok("1"),
                "this test needs root (RKUBE_REQUIRE_ROOT=1)"
            );
            eprintln!("skipped: needs root to create network namespaces");
            return None;
        }
        let name = format!("rkube-ovl-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        Some(Netns(name))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn peer(node: &str, subnet: &str, m: u8, ip: &str) -> Peer {
    Peer {
        node: node.into(),
        subnet: subnet.parse().unwrap(),
        vtep_mac: Mac([0x0a, 0x58, 0, 0, 0, m]),
        public_ip: ip.parse().unwrap(),
    }
}

#[tokio::test]
async fn the_device_and_every_entry_round_trip_through_the_kernel() {
    let Some(ns) = Netns::new("k") else { return };
    ns.ip(&[
        "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1",
    ]);
    ns.ip(&["link", "set", "uplink1", "up"]);
    ns.ip(&["link", "set", "uplink0", "mtu", "1400", "up"]);
    ns.ip(&["addr", "add", "172.31.250.2/24", "dev", "uplink0"]);
    let k = Kernel::open(Some(&ns.path())).await.unwrap();
    let local: Ipv4Addr = "172.31.250.2".parse().unwrap();
    let (uplink, mtu) = k.uplink_for(local).await.unwrap();
    assert_eq!(mtu, 1400);
    assert!(k.uplink_for("172.31.250.9".parse().unwrap()).await.is_err());
    let spec = VxlanSpec {
        name: "flannel.1".into(),
        vni: 1,
        port: 8472,
        local,
        uplink,
        mtu: rkube_overlay::plan::vxlan_mtu(mtu),
    };
    let (dev, created) = k.ensure_vxlan(&spec).await.unwrap();
    assert!(created);
    // Idempotent: the same device, the same MAC (peers keep their entries).
    let (again, created) = k.ensure_vxlan(&spec).await.unwrap();
    assert!(!created);
    assert_eq!(again, dev);
    k.set_address(dev.index, "10.244.1.0".parse().unwrap())
        .await
        .unwrap();
    k.set_address(dev.index, "10.244.1.0".parse().unwrap())
        .await
        .unwrap();
    let shown = String::from_utf8(
        Command::new("ip")
            .args(["-n", &ns.0, "-d", "link", "show", "flannel.1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(shown.contains("vxlan id 1"), "{shown}");
    assert!(shown.contains("dstport 8472"), "{shown}");
    assert!(shown.contains("nolearning"), "{shown}");
    assert!(shown.contains("mtu 1350"), "{shown}");

    // Program two peers, read them back exactly.
    let peers = [
        peer("b", "10.244.2.0/24", 2, "172.31.250.3"),
        peer("c", "10.244.3.0/24", 3, "172.31.250.4"),
    ];
    let empty = k.read(dev.index).await.unwrap();
    assert_eq!(empty, Programmed::default());
    let p = plan(&peers, Some("10.244.1.0/24".parse().unwrap()), &empty);
    for steps in &p.add {
        for e in &steps.add {
            k.add(dev.index, e).await.unwrap();
        }
    }
    let now = k.read(dev.index).await.unwrap();
    assert!(plan(&peers, None, &now).is_empty(), "read back: {now:?}");
    assert_eq!(now.routes.len(), 2);

    // c restarts with a new VTEP MAC: the plan replaces, the kernel agrees.
    let moved = [
        peers[0].clone(),
        peer("c", "10.244.3.0/24", 9, "172.31.250.4"),
    ];
    let p = plan(&moved, None, &now);
    for e in &p.remove {
        k.remove(dev.index, e).await.unwrap();
    }
    for steps in &p.add {
        for e in &steps.add {
            k.add(dev.index, e).await.unwrap();
        }
    }
    let now = k.read(dev.index).await.unwrap();
    assert!(plan(&moved, None, &now).is_empty(), "read back: {now:?}");
    assert_eq!(
        now.fdb.len(),
        2,
        "the old VTEP's fdb entry is gone: {now:?}"
    );

    // Everything removed; removing again is fine.
    let p = plan(&[], None, &now);
    assert_eq!(p.remove.len(), 6);
    for e in &p.remove {
        k.remove(dev.index, e).await.unwrap();
    }
    for e in &p.remove {
        k.remove(dev.index, e).await.unwrap();
    }
    assert_eq!(k.read(dev.index).await.unwrap(), Programmed::default());
    assert!(matches!(p.remove[0], Entry::Route { .. }));

    // Another VNI: the device is made again.
    let (other, created) = k
        .ensure_vxlan(&VxlanSpec {
            vni: 2,
            ..spec.clone()
        })
        .await
        .unwrap();
    assert!(created);
    assert_ne!(other.index, dev.index);
    k.delete_link("flannel.1").await.unwrap();
    k.delete_link("flannel.1").await.unwrap();
}
