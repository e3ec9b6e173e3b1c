//! Addresses and routing: where each device is reached now, and which device a datagram sent
//! to an address reaches, seeing which source.
//!
//! A node's `Transmit` names a peer; the device's driver resolves it with its
//! [`PeerBook`](meshlog_core::PeerBook) (the real driver's resolution: configured addresses,
//! moved by the node's `PeerAddress` events) to an address, and [`Addresses::route`] takes it
//! from there: the device holding that address now receives it, seeing the sender's current
//! address as its source. An address nobody holds (a peer that moved, a record gone stale) is
//! a drop, `no_route`.
//!
//! Routing is one step between sender and receiver so that a NAT box can slot in later: on the
//! way out it would rewrite `source` to its public mapping for the sender's private address
//! (made or refreshed now, expiring after its mapping timeout; a symmetric box makes one per
//! destination), and on the way in map a public destination back to the private address it
//! holds a live mapping for (refusing, for a symmetric or address-restricted box, a sender
//! the mapping was not made towards). Today every device is on the open network: the route is
//! the identity on both ends.
//!
//! Addresses: device `i` starts at `10.0.i/16:9000` (`home`); a move without a given address
//! takes the next of `10.1.0.0/16` port 9000 (`fresh`), in order, so no address is ever held
//! twice and a run draws no dice for it. Given addresses must lie outside both ranges
//! (`scenario/validate.rs`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use super::network::DropCause;
use crate::scenario::{FRESH_PREFIX, HOME_PREFIX};

/// The port every simulated device's sync socket listens on.
pub const SYNC_PORT: u16 = 9000;

/// Where device `index` is reached before any move: one address per device (10.0.0.0/16), so
/// a node tells join requests from two devices apart as it would on UDP.
pub fn home(index: usize) -> SocketAddr {
    let [.., high, low] = u32::try_from(index).unwrap_or(u32::MAX).to_be_bytes();
    let [a, b] = HOME_PREFIX;
    SocketAddr::from(([a, b, high, low], SYNC_PORT))
}

/// The `n`th address handed out by a move that names none (10.1.0.0/16).
pub fn fresh(n: u16) -> SocketAddr {
    let [high, low] = n.to_be_bytes();
    let [a, b] = FRESH_PREFIX;
    SocketAddr::from(([a, b, high, low], SYNC_PORT))
}

/// Where a datagram goes and what its receiver sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The device that receives it.
    pub to: usize,
    /// The source address it arrives from (a NAT box would put its mapping here).
    pub source: SocketAddr,
}

#[derive(Debug)]
pub struct Addresses {
    /// Each device's address now.
    current: Vec<SocketAddr>,
    /// Who holds each address now: exactly one entry per device (a move releases the old one).
    holders: BTreeMap<SocketAddr, usize>,
    /// Fresh addresses handed out so far.
    fresh_used: u16,
}

impl Addresses {
    pub fn new(devices: usize) -> Self {
        let current: Vec<SocketAddr> = (0..devices).map(home).collect();
        let holders = current.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        Addresses {
            current,
            holders,
            fresh_used: 0,
        }
    }

    /// Where `device` is reached now.
    pub fn of(&self, device: usize) -> SocketAddr {
        self.current[device]
    }

    /// The device holding `addr` now.
    pub fn holder(&self, addr: &SocketAddr) -> Option<usize> {
        self.holders.get(addr).copied()
    }

    /// The way of a datagram `from` sends to `destination` now.
    pub fn route(&self, from: usize, destination: SocketAddr) -> Result<Route, DropCause> {
        let to = self.holder(&destination).ok_or(DropCause::NoRoute)?;
        Ok(Route {
            to,
            source: self.of(from),
        })
    }

    /// `device` moves to `to`, or to the next fresh address; returns where it was and where
    /// it is. Panics if `to` is held (the scenario's validation keeps given ones apart).
    pub fn move_to(&mut self, device: usize, to: Option<SocketAddr>) -> (SocketAddr, SocketAddr) {
        let to = to.unwrap_or_else(|| {
            let addr = fresh(self.fresh_used);
            self.fresh_used = self
                .fresh_used
                .checked_add(1)
                .expect("at most 65,536 moves without a given address");
            addr
        });
        assert!(
            !self.holders.contains_key(&to),
            "{to} is held already: given addresses are validated apart"
        );
        let was = self.current[device];
        self.holders.remove(&was);
        self.holders.insert(to, device);
        self.current[device] = to;
        (was, to)
    }
}

/// An address for tests and docs: `a.b.c.d:port`.
pub fn v4(octets: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(octets), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::is_reserved;

    #[test]
    fn a_datagram_reaches_whoever_holds_the_address_now() {
        let mut addrs = Addresses::new(3);
        assert_eq!(addrs.of(2), v4([10, 0, 0, 2], SYNC_PORT));
        let route = addrs.route(0, home(2)).expect("held");
        assert_eq!((route.to, route.source), (2, home(0)));
        let (was, now) = addrs.move_to(2, None);
        assert_eq!((was, now), (home(2), fresh(0)));
        assert_eq!(addrs.route(0, home(2)), Err(DropCause::NoRoute));
        assert_eq!(addrs.route(0, fresh(0)).map(|r| r.to), Ok(2));
        // The mover's own datagrams come from its new address.
        assert_eq!(addrs.route(2, home(0)).map(|r| r.source), Ok(fresh(0)));
        let given = v4([192, 168, 1, 5], 4000);
        addrs.move_to(2, Some(given));
        assert_eq!(addrs.holder(&fresh(0)), None);
        assert_eq!(addrs.holder(&given), Some(2));
        assert_eq!(
            addrs.move_to(1, None).1,
            fresh(1),
            "fresh ones are never reused"
        );
    }

    #[test]
    fn the_world_reserves_its_own_ranges() {
        assert!(is_reserved(&home(7)));
        assert!(is_reserved(&fresh(7)));
        assert!(!is_reserved(&v4([10, 2, 0, 1], SYNC_PORT)));
        assert!(!is_reserved(&"[fe80::1]:9000".parse().expect("an address")));
    }
}
