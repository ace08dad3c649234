use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec};

use super::*;

fn mac(last: u8) -> Mac {
    Mac([0x0a, 0x58, 0, 0, 0, last])
}

fn peer(node: &str, subnet: &str, m: u8, ip: &str) -> Peer {
    Peer {
        node: node.into(),
        subnet: subnet.parse().unwrap(),
        vtep_mac: mac(m),
        public_ip: ip.parse().unwrap(),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

/// The kernel state that exactly serves `peers`.
fn programmed(peers: &[Peer]) -> Programmed {
    Programmed {
        neighbours: peers.iter().map(|p| (p.gateway(), p.vtep_mac)).collect(),
        fdb: peers.iter().map(|p| (p.vtep_mac, p.public_ip)).collect(),
        routes: peers.iter().map(|p| (p.subnet, p.gateway())).collect(),
    }
}

#[test]
fn macs_parse_and_print_as_ip_link_shows_them() {
    let m: Mac = "0a:58:0a:f4:01:ff".parse().unwrap();
    assert_eq!(m.0, [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0xff]);
    assert_eq!(m.to_string(), "0a:58:0a:f4:01:ff");
    for bad in [
        "",
        "0a:58:0a:f4:01",
        "0a:58:0a:f4:01:ff:00",
        "0a:58:0a:f4:01:zz",
        "a:58:0a:f4:01:ff",
    ] {
        assert!(bad.parse::<Mac>().is_err(), "{bad}");
    }
}

#[test]
fn a_new_peer_gets_neighbour_then_fdb_then_route() {
    let b = peer("b", "10.244.2.0/24", 2, "172.18.0.3");
    let p = plan(
        std::slice::from_ref(&b),
        Some(net("10.244.1.0/24")),
        &Programmed::default(),
    );
    assert!(p.remove.is_empty());
    assert_eq!(
        p.add,
        vec![PeerSteps {
            node: "b".into(),
            add: vec![
                Entry::Neighbour {
                    ip: ip("10.244.2.0"),
                    mac: mac(2)
                },
                Entry::Fdb {
                    mac: mac(2),
                    dst: ip("172.18.0.3")
                },
                Entry::Route {
                    subnet: net("10.244.2.0/24"),
                    gateway: ip("10.244.2.0")
                },
            ],
        }]
    );
}

#[test]
fn plans_from_one_state_to_another() {
    let b = peer("b", "10.244.2.0/24", 2, "172.18.0.3");
    let c = peer("c", "10.244.3.0/24", 3, "172.18.0.4");
    // c restarted: new VTEP MAC, same subnet and underlay IP.
    let c_new = peer("c", "10.244.3.0/24", 9, "172.18.0.4");
    // c moved to another underlay address.
    let c_moved = peer("c", "10.244.3.0/24", 3, "172.18.0.9");
    struct Case {
        name: &'static str,
        want: Vec<Peer>,
        now: Programmed,
        remove: Vec<Entry>,
        add: Vec<(&'static str, Vec<Entry>)>,
    }
    let cases = vec![
        Case {
            name: "in sync: nothing to do",
            want: vec![b.clone(), c.clone()],
            now: programmed(&[b.clone(), c.clone()]),
            remove: vec![],
            add: vec![],
        },
        Case {
            name: "a node left: route, then neighbour, then fdb go",
            want: vec![b.clone()],
            now: programmed(&[b.clone(), c.clone()]),
            remove: vec![
                Entry::Route { subnet: net("10.244.3.0/24"), gateway: ip("10.244.3.0") },
                Entry::Neighbour { ip: ip("10.244.3.0"), mac: mac(3) },
                Entry::Fdb { mac: mac(3), dst: ip("172.18.0.4") },
            ],
            add: vec![],
        },
        Case {
            name: "a restarted node's new VTEP replaces the neighbour and the fdb entry, the old fdb entry goes",
            want: vec![b.clone(), c_new.clone()],
            now: programmed(&[b.clone(), c.clone()]),
            remove: vec![Entry::Fdb { mac: mac(3), dst: ip("172.18.0.4") }],
            add: vec![(
                "c",
                vec![
                    Entry::Neighbour { ip: ip("10.244.3.0"), mac: mac(9) },
                    Entry::Fdb { mac: mac(9), dst: ip("172.18.0.4") },
                ],
            )],
        },
        Case {
            name: "a node with a new underlay address: only its fdb entry changes",
            want: vec![b.clone(), c_moved.clone()],
            now: programmed(&[b.clone(), c.clone()]),
            remove: vec![],
            add: vec![("c", vec![Entry::Fdb { mac: mac(3), dst: ip("172.18.0.9") }])],
        },
        Case {
            name: "a half-programmed peer (route missing) gets only the route",
            want: vec![b.clone()],
            now: Programmed {
                routes: BTreeMap::new(),
                ..programmed(std::slice::from_ref(&b))
            },
            remove: vec![],
            add: vec![(
                "b",
                vec![Entry::Route { subnet: net("10.244.2.0/24"), gateway: ip("10.244.2.0") }],
            )],
        },
        Case {
            name: "no peers: everything goes",
            want: vec![],
            now: programmed(std::slice::from_ref(&b)),
            remove: vec![
                Entry::Route { subnet: net("10.244.2.0/24"), gateway: ip("10.244.2.0") },
                Entry::Neighbour { ip: ip("10.244.2.0"), mac: mac(2) },
                Entry::Fdb { mac: mac(2), dst: ip("172.18.0.3") },
            ],
            add: vec![],
        },
    ];
    for c in cases {
        let p = plan(&c.want, Some(net("10.244.1.0/24")), &c.now);
        assert_eq!(p.remove, c.remove, "{}", c.name);
        let add: Vec<(&str, Vec<Entry>)> = p
            .add
            .iter()
            .map(|s| (s.node.as_str(), s.add.clone()))
            .collect();
        assert_eq!(add, c.add, "{}", c.name);
        assert!(p.conflicts.is_empty(), "{}", c.name);
    }
}

#[test]
fn conflicting_peers_are_left_out_and_named() {
    let b = peer("b", "10.244.2.0/24", 2, "172.18.0.3");
    let dup_subnet = peer("c", "10.244.2.0/24", 3, "172.18.0.4");
    let inside = peer("d", "10.244.2.128/25", 4, "172.18.0.5");
    let dup_mac = peer("e", "10.244.5.0/24", 2, "172.18.0.6");
    let mine = peer("f", "10.244.1.0/24", 6, "172.18.0.7");
    let p = plan(
        &[dup_mac, inside, b, dup_subnet, mine],
        Some(net("10.244.1.0/24")),
        &Programmed::default(),
    );
    assert_eq!(
        p.add.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(p.conflicts, ["c", "d", "e", "f"]);
}

fn node(name: &str, cidr: Option<&str>, annotations: &[(&str, &str)]) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    n.spec = Some(NodeSpec {
        pod_cidr: cidr.map(str::to_string),
        ..Default::default()
    });
    n
}

#[test]
fn nodes_become_peers_once_they_have_a_subnet_and_a_vtep() {
    let ok = [
        (VTEP_MAC_ANNOTATION, "0a:58:00:00:00:02"),
        (PUBLIC_IP_ANNOTATION, "172.18.0.3"),
    ];
    let cases: Vec<(&str, Node, Result<Peer, NotAPeer>)> = vec![
        (
            "a peer",
            node("b", Some("10.244.2.0/24"), &ok),
            Ok(peer("b", "10.244.2.0/24", 2, "172.18.0.3")),
        ),
        (
            "host bits are dropped",
            node("b", Some("10.244.2.7/24"), &ok),
            Ok(peer("b", "10.244.2.0/24", 2, "172.18.0.3")),
        ),
        (
            "myself",
            node("a", Some("10.244.1.0/24"), &ok),
            Err(NotAPeer::Me),
        ),
        ("no podCIDR", node("b", None, &ok), Err(NotAPeer::NoPodCidr)),
        (
            "an IPv6 podCIDR",
            node("b", Some("fd00::/64"), &ok),
            Err(NotAPeer::BadPodCidr("fd00::/64".into())),
        ),
        (
            "no agent yet",
            node("b", Some("10.244.2.0/24"), &[]),
            Err(NotAPeer::NoVtep),
        ),
        (
            "a bad MAC",
            node(
                "b",
                Some("10.244.2.0/24"),
                &[
                    (VTEP_MAC_ANNOTATION, "nope"),
                    (PUBLIC_IP_ANNOTATION, "172.18.0.3"),
                ],
            ),
            Err(NotAPeer::BadAnnotation(VTEP_MAC_ANNOTATION, "nope".into())),
        ),
        (
            "a bad IP",
            node(
                "b",
                Some("10.244.2.0/24"),
                &[
                    (VTEP_MAC_ANNOTATION, "0a:58:00:00:00:02"),
                    (PUBLIC_IP_ANNOTATION, "x"),
                ],
            ),
            Err(NotAPeer::BadAnnotation(PUBLIC_IP_ANNOTATION, "x".into())),
        ),
    ];
    for (name, n, want) in cases {
        assert_eq!(peer_from_node(&n, "a"), want, "{name}");
    }
}

#[test]
fn the_device_mtu_leaves_room_for_the_vxlan_headers() {
    assert_eq!(vxlan_mtu(1500), 1450);
    assert_eq!(vxlan_mtu(9000), 8950);
    assert_eq!(vxlan_mtu(40), 0);
}
