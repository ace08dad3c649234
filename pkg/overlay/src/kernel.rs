//! The overlay's kernel side, over rtnetlink: the VXLAN device, its address, and the
//! neighbour, FDB and route entries [`crate::plan`] asks for; and reading them back.
//!
//! [`Kernel::open`] can open its netlink socket inside another network namespace
//! (`--netns`): a socket belongs to the namespace it was created in, so the agent talks to
//! the API from its own namespace and programs the node's. That is how the tests (and
//! several nodes on one machine) run an agent per namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, IpVersion, LinkVxlan, RouteMessageBuilder};

use crate::plan::{Entry, Mac, Programmed};

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("open a netlink socket{}", netns.as_ref().map(|n| format!(" in network namespace {}", n.display())).unwrap_or_default())]
    Open {
        netns: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    #[error("enter network namespace {}", netns.display())]
    Setns {
        netns: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("{what}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("no interface has address {0} (the --public-ip must be one of this node's)")]
    NoUplink(Ipv4Addr),
    #[error("interface {0} has no MAC address")]
    NoMac(String),
    #[error("interface {0} disappeared")]
    Gone(String),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> KernelError {
    let what = what.into();
    move |source| KernelError::Netlink { what, source }
}

/// The VXLAN device to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The underlay address (source of the encapsulated packets).
    pub local: Ipv4Addr,
    /// The uplink's interface index.
    pub uplink: u32,
    pub mtu: u32,
}

/// The device as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub mac: Mac,
}

/// A netlink connection (in one network namespace).
#[derive(Clone)]
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens a connection in this process's namespace, or in `netns` (a path such as
    /// `/run/netns/NAME`). Needs a Tokio runtime.
    pub async fn open(netns: Option<&Path>) -> Result<Self, KernelError> {
        let (conn, handle, _) = match netns {
            None => rtnetlink::new_connection().map_err(|source| KernelError::Open {
                netns: None,
                source,
            })?,
            Some(path) => {
                // The socket is made on a thread of its own that entered the namespace,
                // then used from anywhere; the thread (and its namespace) ends at once.
                let path = path.to_path_buf();
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    let _guard = rt.enter();
                    let file = std::fs::File::open(&path).map_err(|source| KernelError::Open {
                        netns: Some(path.clone()),
                        source,
                    })?;
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                        |source| KernelError::Setns {
                            netns: path.clone(),
                            source,
                        },
                    )?;
                    rtnetlink::new_connection().map_err(|source| KernelError::Open {
                        netns: Some(path),
                        source,
                    })
                })
                .join()
                .expect("the namespace thread does not panic")?
            }
        };
        tokio::spawn(conn);
        Ok(Kernel { handle })
    }

    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, KernelError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            // ENODEV: no such link.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
            Err(e) => Err(nl(format!("look up link {name}"))(e)),
        }
    }

    /// The interface holding `ip` and its MTU.
    pub async fn uplink_for(&self, ip: Ipv4Addr) -> Result<(u32, u32), KernelError> {
        let addrs: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list addresses"))?;
        let index = addrs
            .iter()
            .find(|a| {
                a.attributes.iter().any(|attr| {
                    matches!(attr, AddressAttribute::Address(IpAddr::V4(v)) if *v == ip)
                        || matches!(attr, AddressAttribute::Local(IpAddr::V4(v)) if *v == ip)
                })
            })
            .map(|a| a.header.index)
            .ok_or(KernelError::NoUplink(ip))?;
        let mut links = self.handle.link().get().match_index(index).execute();
        let link = links
            .try_next()
            .await
            .map_err(nl("look up the uplink"))?
            .ok_or(KernelError::NoUplink(ip))?;
        let mtu = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
            .unwrap_or(1500);
        Ok((index, mtu))
    }

    /// Makes sure the VXLAN device exists as `spec` says, up; an existing device that does
    /// not match (another VNI, port, local address or uplink, or learning on) is deleted
    /// and made again; a matching one is kept (its MAC with it). Returns whether it was
    /// (re)created.
    pub async fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<(Device, bool), KernelError> {
        let mut created = false;
        if let Some(link) = self.link(&spec.name).await? {
            if vxlan_matches(&link, spec) {
                if link_mtu(&link) != Some(spec.mtu) {
                    let msg = LinkVxlan::new(&spec.name, spec.vni).build();
                    let mut msg = msg;
                    msg.header.index = link.header.index;
                    msg.attributes = vec![LinkAttribute::Mtu(spec.mtu)];
                    self.handle
                        .link()
                        .set(msg)
                        .execute()
                        .await
                        .map_err(nl(format!("set the MTU of {}", spec.name)))?;
                }
            } else {
                tracing::info!(device = %spec.name, "the VXLAN device does not match; recreating it");
                self.handle
                    .link()
                    .del(link.header.index)
                    .execute()
                    .await
                    .map_err(nl(format!("delete {}", spec.name)))?;
                self.create_vxlan(spec).await?;
                created = true;
            }
        } else {
            self.create_vxlan(spec).await?;
            created = true;
        }
        let link = self
            .link(&spec.name)
            .await?
            .ok_or_else(|| KernelError::Gone(spec.name.clone()))?;
        // Up (a matching device may have been set down).
        let mut up = rtnetlink::LinkUnspec::new_with_index(link.header.index)
            .up()
            .build();
        up.header.index = link.header.index;
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(nl(format!("set {} up", spec.name)))?;
        let mac = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(b) if b.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(b);
                    Some(Mac(m))
                }
                _ => None,
            })
            .ok_or_else(|| KernelError::NoMac(spec.name.clone()))?;
        Ok((
            Device {
                index: link.header.index,
                mac,
            },
            created,
        ))
    }

    async fn create_vxlan(&self, spec: &VxlanSpec) -> Result<(), KernelError> {
        let msg = LinkVxlan::new(&spec.name, spec.vni)
            .port(spec.port)
            .local(spec.local)
            .dev(spec.uplink)
            .learning(false)
            .mtu(spec.mtu)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("create VXLAN device {}", spec.name)))
    }

    /// Gives the device exactly the address `addr/32` (the node subnet's `.0`, as flannel
    /// does), removing any other IPv4 address it has.
    pub async fn set_address(&self, index: u32, addr: Ipv4Addr) -> Result<(), KernelError> {
        let have: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list the device's addresses"))?;
        let mut present = false;
        for a in have {
            let ip = a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(IpAddr::V4(v)) => Some(*v),
                _ => None,
            });
            match ip {
                Some(v) if v == addr && a.header.prefix_len == 32 => present = true,
                Some(_) => self
                    .handle
                    .address()
                    .del(a)
                    .execute()
                    .await
                    .map_err(nl("remove a stale device address"))?,
                None => {}
            }
        }
        if !present {
            self.handle
                .address()
                .add(index, IpAddr::V4(addr), 32)
                .execute()
                .await
                .map_err(nl(format!("add address {addr}/32")))?;
        }
        Ok(())
    }

    /// The neighbour, FDB and route entries on device `index`.
    pub async fn read(&self, index: u32) -> Result<Programmed, KernelError> {
        let mut p = Programmed::default();
        let neighbours: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_family(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list neighbours"))?;
        for n in neighbours
            .iter()
            .filter(|n| n.header.ifindex == index && n.header.state == NeighbourState::Permanent)
        {
            if let (Some(IpAddr::V4(ip)), Some(mac)) = (neigh_dst(n), neigh_mac(n)) {
                p.neighbours.insert(ip, mac);
            }
        }
        let mut fdb_req = self.handle.neighbours().get();
        fdb_req.message_mut().header.family = AddressFamily::Bridge;
        let fdb: Vec<NeighbourMessage> = fdb_req
            .execute()
            .try_collect()
            .await
            .map_err(nl("list FDB entries"))?;
        for n in fdb.iter().filter(|n| n.header.ifindex == index) {
            if let (Some(IpAddr::V4(dst)), Some(mac)) = (neigh_dst(n), neigh_mac(n)) {
                if mac.0 != [0; 6] {
                    p.fdb.insert(mac, dst);
                }
            }
        }
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(nl("list routes"))?;
        for r in &routes {
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if oif != Some(index) {
                continue;
            }
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                _ => None,
            });
            let gw = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
                _ => None,
            });
            if let (Some(dst), Some(gw)) = (dst, gw) {
                if let Ok(net) = Ipv4Net::new(dst, r.header.destination_prefix_length) {
                    p.routes.insert(net, gw);
                }
            }
        }
        Ok(p)
    }

    /// Adds (or replaces) one entry on device `index`.
    pub async fn add(&self, index: u32, entry: &Entry) -> Result<(), KernelError> {
        match *entry {
            Entry::Neighbour { ip, mac } => self
                .handle
                .neighbours()
                .add(index, IpAddr::V4(ip))
                .link_layer_address(&mac.0)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("add {entry}"))),
            Entry::Fdb { mac, dst } => self
                .handle
                .neighbours()
                .add_bridge(index, &mac.0)
                .destination(IpAddr::V4(dst))
                .flags(NeighbourFlags::Own)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("add {entry}"))),
            Entry::Route { subnet, gateway } => self
                .handle
                .route()
                .add(route_message(index, subnet, gateway))
                .replace()
                .execute()
                .await
                .map_err(nl(format!("add {entry}"))),
        }
    }

    /// Removes one entry from device `index`; one already gone is fine.
    pub async fn remove(&self, index: u32, entry: &Entry) -> Result<(), KernelError> {
        let result = match *entry {
            Entry::Neighbour { ip, mac } => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Inet;
                m.header.ifindex = index;
                m.attributes = vec![
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)),
                    NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
                ];
                self.handle.neighbours().del(m).execute().await
            }
            Entry::Fdb { mac, dst } => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Bridge;
                m.header.ifindex = index;
                m.header.flags = NeighbourFlags::Own;
                m.attributes = vec![
                    NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)),
                ];
                self.handle.neighbours().del(m).execute().await
            }
            Entry::Route { subnet, gateway } => {
                self.handle
                    .route()
                    .del(route_message(index, subnet, gateway))
                    .execute()
                    .await
            }
        };
        match result {
            // ENOENT / ESRCH: already gone.
            Err(rtnetlink::Error::NetlinkError(e)) if matches!(e.raw_code(), -2 | -3) => Ok(()),
            r => r.map_err(nl(format!("remove {entry}"))),
        }
    }

    /// Deletes the device `name` if it exists.
    pub async fn delete_link(&self, name: &str) -> Result<(), KernelError> {
        if let Some(link) = self.link(name).await? {
            self.handle
                .link()
                .del(link.header.index)
                .execute()
                .await
                .map_err(nl(format!("delete {name}")))?;
        }
        Ok(())
    }
}

fn route_message(index: u32, subnet: Ipv4Net, gateway: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(subnet.network(), subnet.prefix_len())
        .gateway(gateway)
        .output_interface(index)
        .onlink()
        .build()
}

fn neigh_dst(n: &NeighbourMessage) -> Option<IpAddr> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => Some(IpAddr::V4(*v)),
        // FDB entries (family AF_BRIDGE) carry their IPv4 destination as raw bytes.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
            Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
        }
        _ => None,
    })
}

fn neigh_mac(n: &NeighbourMessage) -> Option<Mac> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(b);
            Some(Mac(m))
        }
        _ => None,
    })
}

fn link_mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// Whether an existing link is the VXLAN device `spec` describes.
fn vxlan_matches(link: &LinkMessage, spec: &VxlanSpec) -> bool {
    let infos = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    });
    let Some(infos) = infos else { return false };
    if !infos
        .iter()
        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)))
    {
        return false;
    }
    let Some(data) = infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
        _ => None,
    }) else {
        return false;
    };
    let has = |want: &InfoVxlan| data.iter().any(|d| d == want);
    has(&InfoVxlan::Id(spec.vni))
        && has(&InfoVxlan::Port(spec.port))
        && has(&InfoVxlan::Local(spec.local))
        && has(&InfoVxlan::Link(spec.uplink))
        && has(&InfoVxlan::Learning(false))
}
