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
//! Routing is one step between sender and receiver, where NAT boxes sit (`nat.rs`): on the
//! way out, a box rewrites `source` to its public mapping for the sender's address (made or
//! refreshed now); on the way in, it maps its public address back to the inside device it
//! holds a live flow for, from that source (`unsolicited` otherwise). A device behind a box is
//! reached at its own address only from behind the same box (`no_route` from anywhere else).
//!
//! Addresses: device `i` starts at `10.0.i/16:9000` (`home`); a move without a given address
//! takes the next of `10.1.0.0/16` port 9000 (`fresh`), in order, so no address is ever held
//! twice and a run draws no dice for it; NAT boxes are at `10.2.0.0/16` (`nat.rs`). Given
//! addresses must lie outside the three ranges (`scenario/net.rs`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use meshlog_core::Instant;

use super::nat::NatBox;
use super::network::DropCause;
use crate::scenario::{NatSpec, FRESH_PREFIX, HOME_PREFIX};

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
    /// The source address it arrives from: the sender's own, or its box's mapping.
    pub source: SocketAddr,
    /// The sender's box made that mapping for this datagram (the trace says so).
    pub mapped: Option<usize>,
}

#[derive(Debug)]
pub struct Addresses {
    /// Each device's address now.
    current: Vec<SocketAddr>,
    /// Who holds each address now: exactly one entry per device (a move releases the old one).
    holders: BTreeMap<SocketAddr, usize>,
    /// Fresh addresses handed out so far.
    fresh_used: u16,
    /// The NAT boxes (`[[nat]]`), and which one each device is behind.
    boxes: Vec<NatBox>,
    behind: Vec<Option<usize>>,
}

impl Addresses {
    /// `behind`: per device, the index into `nats` of the box it is behind.
    pub fn new(nats: &[NatSpec], behind: Vec<Option<usize>>) -> Self {
        let current: Vec<SocketAddr> = (0..behind.len()).map(home).collect();
        let holders = current.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        assert!(behind.iter().flatten().all(|&n| n < nats.len()));
        Addresses {
            current,
            holders,
            fresh_used: 0,
            boxes: nats
                .iter()
                .enumerate()
                .map(|(i, spec)| NatBox::new(i, spec))
                .collect(),
            behind,
        }
    }

    /// The box `device` is behind, if any.
    pub fn nat_of(&self, device: usize) -> Option<&NatBox> {
        self.behind[device].map(|n| &self.boxes[n])
    }

    /// Where `device` is reached now.
    pub fn of(&self, device: usize) -> SocketAddr {
        self.current[device]
    }

    /// The device holding `addr` now.
    pub fn holder(&self, addr: &SocketAddr) -> Option<usize> {
        self.holders.get(addr).copied()
    }

    /// The way of a datagram `from` sends to `destination` now: through the sender's box on
    /// the way out (its mapping made or refreshed) and the receiver's on the way in.
    pub fn route(
        &mut self,
        from: usize,
        destination: SocketAddr,
        now: Instant,
    ) -> Result<Route, DropCause> {
        let own = self.current[from];
        let (source, mapped) = match self.outside_box(from, destination) {
            Some(n) => {
                let (source, made) = self.boxes[n].outbound(own, destination, now)?;
                (source, made.then_some(n))
            }
            None => (own, None),
        };
        let to = self.receiver(from, destination, source, now)?;
        Ok(Route { to, source, mapped })
    }

    /// The device a datagram `from` sent to `destination` now would reach, without sending
    /// it (no mapping is made or refreshed).
    pub fn would_reach(&self, from: usize, destination: SocketAddr, now: Instant) -> Option<usize> {
        let own = self.current[from];
        let source = match self.outside_box(from, destination) {
            Some(n) => self.boxes[n].would_leave_as(own, destination, now),
            None => own,
        };
        self.receiver(from, destination, source, now).ok()
    }

    /// The box `from`'s datagram to `destination` leaves through: its own, unless the
    /// destination is a device behind the same box (a home network's own traffic).
    fn outside_box(&self, from: usize, destination: SocketAddr) -> Option<usize> {
        let n = self.behind[from]?;
        let inside = self
            .holder(&destination)
            .is_some_and(|d| self.behind[d] == Some(n));
        (!inside).then_some(n)
    }

    /// Who receives a datagram to `destination` that carries `source`.
    fn receiver(
        &self,
        from: usize,
        destination: SocketAddr,
        source: SocketAddr,
        now: Instant,
    ) -> Result<usize, DropCause> {
        if let Some(nat) = self
            .boxes
            .iter()
            .find(|b| destination.ip() == b.public_ip())
        {
            let inside = nat.inbound(destination.port(), source, now)?;
            return self.holder(&inside).ok_or(DropCause::NoRoute);
        }
        let to = self.holder(&destination).ok_or(DropCause::NoRoute)?;
        match self.behind[to] {
            // An address behind a box is private to its network.
            Some(n) if self.behind[from] != Some(n) => Err(DropCause::NoRoute),
            _ => Ok(to),
        }
    }

    /// Whether a peer sending to `addr` now reaches `device` there: its own address, or a
    /// live mapping of its box's.
    pub fn is_address_of(&self, device: usize, addr: SocketAddr, now: Instant) -> bool {
        addr == self.current[device]
            || self
                .nat_of(device)
                .is_some_and(|nat| nat.maps(self.current[device], addr, now))
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
        let mut addrs = Addresses::new(&[], vec![None; 3]);
        let t = Instant::ZERO;
        assert_eq!(addrs.of(2), v4([10, 0, 0, 2], SYNC_PORT));
        let route = addrs.route(0, home(2), t).expect("held");
        assert_eq!((route.to, route.source), (2, home(0)));
        let (was, now) = addrs.move_to(2, None);
        assert_eq!((was, now), (home(2), fresh(0)));
        assert_eq!(addrs.route(0, home(2), t), Err(DropCause::NoRoute));
        assert_eq!(addrs.route(0, fresh(0), t).map(|r| r.to), Ok(2));
        // The mover's own datagrams come from its new address.
        assert_eq!(addrs.route(2, home(0), t).map(|r| r.source), Ok(fresh(0)));
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
    fn boxes_map_what_leaves_and_let_in_only_what_answers() {
        use crate::scenario::{NatKind, NatSpec, SimDuration};
        let spec = |kind| NatSpec {
            kind,
            devices: Vec::new(),
            mapping_timeout: SimDuration(meshlog_core::Duration::from_secs(30)),
        };
        // alice and frank behind box 0 (endpoint-independent), bob behind box 1 (symmetric),
        // carol open.
        let nats = [spec(NatKind::EndpointIndependent), spec(NatKind::Symmetric)];
        let mut addrs = Addresses::new(&nats, vec![Some(0), Some(1), None, Some(0)]);
        let t = Instant::ZERO;
        // From outside, an address behind a box is nobody's; from behind the same box it is.
        assert_eq!(addrs.route(2, home(0), t), Err(DropCause::NoRoute));
        assert_eq!(addrs.route(1, home(0), t), Err(DropCause::NoRoute));
        let home_net = addrs.route(3, home(0), t).expect("one home network");
        assert_eq!(
            (home_net.to, home_net.source, home_net.mapped),
            (0, home(3), None)
        );
        // Out through the box: carol sees the mapping, and may answer it.
        let out = addrs.route(0, home(2), t).expect("the open network");
        assert_eq!((out.to, out.mapped), (2, Some(0)));
        assert_eq!(out.source, v4([10, 2, 0, 1], 1024));
        assert!(addrs.is_address_of(0, out.source, t));
        assert_eq!(addrs.would_reach(2, out.source, t), Some(0));
        assert_eq!(addrs.route(2, out.source, t).map(|r| r.to), Ok(0));
        // Bob, told that address, is not let in until alice sent to where he sends from.
        let bob_out = addrs.route(1, home(2), t).expect("out").source;
        assert_eq!(addrs.route(1, out.source, t), Err(DropCause::Unsolicited));
        assert_eq!(
            addrs.would_reach(0, bob_out, t),
            None,
            "bob's box: only carol"
        );
    }

    #[test]
    fn the_world_reserves_its_own_ranges() {
        assert!(is_reserved(&home(7)));
        assert!(is_reserved(&fresh(7)));
        assert!(
            is_reserved(&v4([10, 2, 0, 1], 1024)),
            "NAT boxes' addresses"
        );
        assert!(!is_reserved(&v4([10, 3, 0, 1], SYNC_PORT)));
        assert!(!is_reserved(&"[fe80::1]:9000".parse().expect("an address")));
    }
}
