//! Free loopback ports for servers that will bind them a little later: the apiservers and
//! components `up` lays out once (and keeps in `cluster.json`), the benchmarks' members,
//! the e2e harness's replicas. This module only chooses ports; it binds nothing for good.
//!
//! Ports come from [`RANGE`], below Linux's ephemeral range (32768 and up), so an outgoing
//! connection of some other process cannot take one between the choice and the server's
//! bind, nor later when a cluster restarts on the ports it keeps. A port is chosen only
//! when it can be bound right now, and never twice by one process: tests run as threads of
//! one process, and a port released by the check can come back at once.

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::sync::Mutex;

use crate::{Error, Result};

/// Where free ports are looked for.
pub const RANGE: Range<u16> = 20_000..32_768;

/// Ports this process has handed out.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `count` distinct ports of [`RANGE`] on 127.0.0.1 that can be bound now, none of them in
/// `avoid` or handed out before by this process.
pub fn free_ports(count: usize, avoid: &BTreeSet<u16>) -> Result<Vec<u16>> {
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let span = u32::from(RANGE.end - RANGE.start);
    // A starting point per process, so parallel processes (test binaries, `rkube up` in
    // several clusters) spread out; a prime step visits every port of the range.
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    // Held until every port is chosen, so the checks cannot hand out one port twice.
    let mut held = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    for i in 0..span {
        if ports.len() == count {
            break;
        }
        let offset = seed.wrapping_add(i.wrapping_mul(7919)) % span;
        let port = RANGE.start + offset as u16;
        if given.contains(&port) || avoid.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push(listener);
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(Error::PortAllocation {
            count,
            range: RANGE,
        });
    }
    given.extend(&ports);
    Ok(ports)
}

/// One port, as [`free_ports`] chooses them.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1, &BTreeSet::new())?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_below_the_ephemeral_range_and_never_given_twice() {
        let avoid: BTreeSet<u16> = free_ports(3, &BTreeSet::new())
            .unwrap()
            .into_iter()
            .collect();
        let ports = free_ports(20, &avoid).unwrap();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 20);
        assert!(distinct.is_disjoint(&avoid), "{ports:?} reuses {avoid:?}");
        for port in &ports {
            assert!(RANGE.contains(port), "{port}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).expect("a chosen port is bindable");
        }
        let again = free_ports(20, &BTreeSet::new()).unwrap();
        assert!(
            again
                .iter()
                .all(|p| !distinct.contains(p) && !avoid.contains(p)),
            "a port was handed out twice: {again:?}"
        );
    }

    #[test]
    fn a_port_something_listens_on_is_skipped() {
        let busy = free_port().unwrap();
        let _listener = TcpListener::bind((Ipv4Addr::LOCALHOST, busy)).unwrap();
        // Forget that this process gave it out: only the bind check can refuse it now.
        GIVEN.lock().unwrap().as_mut().unwrap().remove(&busy);
        let ports = free_ports(50, &BTreeSet::new()).unwrap();
        assert!(!ports.contains(&busy));
    }
}
