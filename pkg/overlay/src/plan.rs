//! What the kernel must hold for the other nodes, and the steps from what it holds now.
//! Pure: the agent reads the kernel's state ([`Programmed`]) and the Node objects
//! ([`peer_from_node`]), and applies what [`plan`] returns.
//!
//! For every other node, on the VXLAN device (flannel's design, VNI 1, UDP 8472):
//! 1. a permanent **neighbour** entry: the peer subnet's `.0` address → the peer's VTEP MAC
//!    (so the kernel never ARPs across the tunnel);
//! 2. an **FDB** entry: the VTEP MAC → the peer's underlay IP (where to send the UDP);
//! 3. a **route**: the peer subnet via its `.0` address, on-link through the device.
//!
//! Added in that order (a route is only usable once its gateway resolves and has a
//! destination) and removed in the reverse order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;

/// The annotation holding a node's VTEP MAC (`aa:bb:cc:dd:ee:ff`).
pub const VTEP_MAC_ANNOTATION: &str = "overlay.rkube.io/vtep-mac";
/// The annotation holding a node's underlay IP (the address peers send VXLAN packets to).
pub const PUBLIC_IP_ANNOTATION: &str = "overlay.rkube.io/public-ip";
/// The annotation naming the backend (`vxlan`).
pub const BACKEND_ANNOTATION: &str = "overlay.rkube.io/backend";
/// VXLAN's header costs: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
pub const VXLAN_OVERHEAD: u32 = 50;

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(());
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(());
            }
            b[i] = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        Ok(Mac(b))
    }
}

/// One other node as the overlay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub subnet: Ipv4Net,
    pub vtep_mac: Mac,
    pub public_ip: Ipv4Addr,
}

impl Peer {
    /// The subnet's `.0` address: the neighbour entry's and the route's gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.network()
    }
}

/// Why a Node is not (yet) a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAPeer {
    #[error("it is this node")]
    Me,
    #[error("no spec.podCIDR yet")]
    NoPodCidr,
    #[error("spec.podCIDR {0:?} is not an IPv4 CIDR")]
    BadPodCidr(String),
    #[error("no {VTEP_MAC_ANNOTATION} annotation yet (its overlay agent has not started)")]
    NoVtep,
    #[error("annotation {0} has a bad value {1:?}")]
    BadAnnotation(&'static str, String),
}

/// The peer a Node object describes, or why it is none. Pure.
pub fn peer_from_node(node: &Node, me: &str) -> Result<Peer, NotAPeer> {
    let name = node.metadata.name.clone().unwrap_or_default();
    if name == me {
        return Err(NotAPeer::Me);
    }
    let cidr = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .ok_or(NotAPeer::NoPodCidr)?;
    let subnet: Ipv4Net = cidr
        .parse()
        .map_err(|_| NotAPeer::BadPodCidr(cidr.clone()))?;
    let annotations = node.metadata.annotations.clone().unwrap_or_default();
    let mac = annotations
        .get(VTEP_MAC_ANNOTATION)
        .ok_or(NotAPeer::NoVtep)?;
    let vtep_mac: Mac = mac
        .parse()
        .map_err(|_| NotAPeer::BadAnnotation(VTEP_MAC_ANNOTATION, mac.clone()))?;
    let ip = annotations
        .get(PUBLIC_IP_ANNOTATION)
        .ok_or(NotAPeer::NoVtep)?;
    let public_ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| NotAPeer::BadAnnotation(PUBLIC_IP_ANNOTATION, ip.clone()))?;
    Ok(Peer {
        node: name,
        subnet: subnet.trunc(),
        vtep_mac,
        public_ip,
    })
}

/// What the kernel holds on the VXLAN device (as netlink reads it back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Programmed {
    /// Permanent neighbour entries: IP → MAC.
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    /// FDB entries with a destination: MAC → underlay IP.
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
    /// Routes through the device: destination → gateway.
    pub routes: BTreeMap<Ipv4Net, Ipv4Addr>,
}

/// One kernel entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Neighbour { ip: Ipv4Addr, mac: Mac },
    Fdb { mac: Mac, dst: Ipv4Addr },
    Route { subnet: Ipv4Net, gateway: Ipv4Addr },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Neighbour { ip, mac } => write!(f, "neighbour {ip} lladdr {mac}"),
            Entry::Fdb { mac, dst } => write!(f, "fdb {mac} dst {dst}"),
            Entry::Route { subnet, gateway } => write!(f, "route {subnet} via {gateway} onlink"),
        }
    }
}

/// The steps for one peer, applied in order (adds replace what is there); when a step
/// fails the agent removes the ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSteps {
    pub node: String,
    pub add: Vec<Entry>,
}

/// Everything to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Entries no peer wants, routes first, then neighbours, then FDB entries.
    pub remove: Vec<Entry>,
    /// Per peer, what to add or replace (neighbour, FDB, route, in that order).
    pub add: Vec<PeerSteps>,
    /// Peers left out because another peer (earlier by name) claims their subnet or MAC.
    pub conflicts: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

/// The steps from `now` to what `peers` need. `own_subnet` is never routed through the
/// tunnel. Pure.
pub fn plan(peers: &[Peer], own_subnet: Option<Ipv4Net>, now: &Programmed) -> Plan {
    let mut sorted: Vec<&Peer> = peers.iter().collect();
    sorted.sort_by(|a, b| a.node.cmp(&b.node));
    let mut subnets = BTreeSet::new();
    let mut macs = BTreeSet::new();
    let mut chosen = Vec::new();
    let mut conflicts = Vec::new();
    for p in sorted {
        let overlaps_own = own_subnet
            .is_some_and(|own| own.contains(&p.gateway()) || p.subnet.contains(&own.network()));
        let overlaps = subnets
            .iter()
            .any(|s: &Ipv4Net| s.contains(&p.gateway()) || p.subnet.contains(&s.network()));
        if overlaps_own || overlaps || macs.contains(&p.vtep_mac) {
            conflicts.push(p.node.clone());
            continue;
        }
        subnets.insert(p.subnet);
        macs.insert(p.vtep_mac);
        chosen.push(p);
    }

    let want_neigh: BTreeMap<Ipv4Addr, Mac> =
        chosen.iter().map(|p| (p.gateway(), p.vtep_mac)).collect();
    let want_fdb: BTreeMap<Mac, Ipv4Addr> =
        chosen.iter().map(|p| (p.vtep_mac, p.public_ip)).collect();
    let want_routes: BTreeMap<Ipv4Net, Ipv4Addr> =
        chosen.iter().map(|p| (p.subnet, p.gateway())).collect();

    let mut remove = Vec::new();
    for (subnet, gateway) in &now.routes {
        if !want_routes.contains_key(subnet) {
            remove.push(Entry::Route {
                subnet: *subnet,
                gateway: *gateway,
            });
        }
    }
    for (ip, mac) in &now.neighbours {
        if !want_neigh.contains_key(ip) {
            remove.push(Entry::Neighbour { ip: *ip, mac: *mac });
        }
    }
    for (mac, dst) in &now.fdb {
        if !want_fdb.contains_key(mac) {
            remove.push(Entry::Fdb {
                mac: *mac,
                dst: *dst,
            });
        }
    }

    let mut add = Vec::new();
    for p in chosen {
        let mut steps = Vec::new();
        if now.neighbours.get(&p.gateway()) != Some(&p.vtep_mac) {
            steps.push(Entry::Neighbour {
                ip: p.gateway(),
                mac: p.vtep_mac,
            });
        }
        if now.fdb.get(&p.vtep_mac) != Some(&p.public_ip) {
            steps.push(Entry::Fdb {
                mac: p.vtep_mac,
                dst: p.public_ip,
            });
        }
        if now.routes.get(&p.subnet) != Some(&p.gateway()) {
            steps.push(Entry::Route {
                subnet: p.subnet,
                gateway: p.gateway(),
            });
        }
        if !steps.is_empty() {
            add.push(PeerSteps {
                node: p.node.clone(),
                add: steps,
            });
        }
    }
    Plan {
        remove,
        add,
        conflicts,
    }
}

/// The VXLAN device's MTU over an uplink of `uplink_mtu`.
pub fn vxlan_mtu(uplink_mtu: u32) -> u32 {
    uplink_mtu.saturating_sub(VXLAN_OVERHEAD)
}

#[cfg(test)]
mod tests;
