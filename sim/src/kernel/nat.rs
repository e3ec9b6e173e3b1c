//! NAT boxes (`[[nat]]`): a home router between its devices and the rest of the world, as
//! the real-network tests build one with nftables masquerade and a `ct state
//! established,related` rule (`tests/tests/netns_support`).
//!
//! - **Out.** A datagram a device behind the box sends to an address outside gets the box's
//!   public address as its source, on the port of the device socket's mapping: one per inside
//!   socket for an endpoint-independent box, one per (inside socket, destination) for a
//!   symmetric one. The send opens (or refreshes) a flow toward that destination.
//! - **In.** A datagram to the public address gets in only on a live mapping's port and only
//!   from an address and port one of its flows sent to (address- and port-dependent
//!   filtering); anything else is dropped, `unsolicited`, as the real router's firewall
//!   counts it.
//! - **Timeouts.** A flow lives `mapping_timeout` after its last datagram out (RFC 4787 lets
//!   a datagram in refresh it too; the harsher choice is modelled). A mapping lives while one
//!   of its flows does; the next datagram out after that makes a new mapping on the next free
//!   port, so the device's peers see it move, and follow its newest packet.
//!
//! No hairpinning: a datagram from inside to the box's own public address is unsolicited.
//! Ports are handed out in order from `PORT_FIRST` and reused only once free, so a run draws
//! no dice here.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use meshlog_core::{Duration, Instant};

use super::network::DropCause;
use crate::scenario::{NatKind, NatSpec, NAT_PREFIX};

/// The first public port a box hands out (below it, the ports a router keeps for itself).
const PORT_FIRST: u16 = 1_024;
/// Flows one mapping holds at most: a device talks to at most `PEERS_MAX` peers, and an
/// introduction or a stale record may point it at a few more; past this, the flow that went
/// quiet first is forgotten (its peer's datagrams are then unsolicited until it sends again).
const FLOWS_PER_MAPPING_MAX: usize = 4 * meshlog_core::config::PEERS_MAX;

/// One box.
#[derive(Debug)]
pub struct NatBox {
    kind: NatKind,
    public_ip: Ipv4Addr,
    mapping_timeout: Duration,
    /// Mappings by public port. At most one per port, so bounded by the port range; dead ones
    /// are pruned whenever a port is handed out.
    mappings: BTreeMap<u16, Mapping>,
    /// The mapping for each (inside socket, destination): the destination is `None` for an
    /// endpoint-independent box. One entry per mapping.
    ports: BTreeMap<(SocketAddr, Option<SocketAddr>), u16>,
    /// Where the search for a free port starts next.
    port_next: u16,
}

#[derive(Debug)]
struct Mapping {
    key: (SocketAddr, Option<SocketAddr>),
    /// Remote address -> when its flow dies (the last datagram out to it plus the timeout).
    flows: BTreeMap<SocketAddr, Instant>,
}

impl Mapping {
    fn live(&self, now: Instant) -> bool {
        self.flows.values().any(|&dies| dies > now)
    }
}

impl NatBox {
    /// The `index`th box of the scenario.
    pub fn new(index: usize, spec: &NatSpec) -> NatBox {
        NatBox {
            kind: spec.kind,
            public_ip: public_ip(index),
            mapping_timeout: spec.mapping_timeout.0,
            mappings: BTreeMap::new(),
            ports: BTreeMap::new(),
            port_next: PORT_FIRST,
        }
    }

    pub fn kind(&self) -> NatKind {
        self.kind
    }

    pub fn public_ip(&self) -> Ipv4Addr {
        self.public_ip
    }

    fn key(&self, inside: SocketAddr, destination: SocketAddr) -> (SocketAddr, Option<SocketAddr>) {
        match self.kind {
            NatKind::EndpointIndependent => (inside, None),
            NatKind::Symmetric => (inside, Some(destination)),
        }
    }

    /// The live mapping's port for `inside` toward `destination`, if one exists.
    fn live_port(&self, inside: SocketAddr, destination: SocketAddr, now: Instant) -> Option<u16> {
        let port = *self.ports.get(&self.key(inside, destination))?;
        self.mappings[&port].live(now).then_some(port)
    }

    /// A datagram from `inside` to `destination` leaves the box now: the source it carries
    /// from here on, its mapping made or refreshed. Returns whether the mapping is new (the
    /// trace says so) or `nat_ports` if every port is taken by a live mapping.
    pub fn outbound(
        &mut self,
        inside: SocketAddr,
        destination: SocketAddr,
        now: Instant,
    ) -> Result<(SocketAddr, bool), DropCause> {
        let (port, made) = match self.live_port(inside, destination, now) {
            Some(port) => (port, false),
            None => (self.map(inside, destination, now)?, true),
        };
        let mapping = self
            .mappings
            .get_mut(&port)
            .expect("a live port has a mapping");
        mapping
            .flows
            .insert(destination, now + self.mapping_timeout);
        if mapping.flows.len() > FLOWS_PER_MAPPING_MAX {
            let quietest = mapping
                .flows
                .iter()
                .min_by_key(|(remote, dies)| (**dies, **remote))
                .map(|(remote, _)| *remote)
                .expect("more than the bound, so not empty");
            mapping.flows.remove(&quietest);
        }
        debug_assert!(mapping.flows.len() <= FLOWS_PER_MAPPING_MAX);
        Ok((SocketAddr::from((self.public_ip, port)), made))
    }

    /// A new mapping for `inside` toward `destination` on the next free port.
    fn map(
        &mut self,
        inside: SocketAddr,
        destination: SocketAddr,
        now: Instant,
    ) -> Result<u16, DropCause> {
        // Dead mappings give their ports back (and their keys, so the new one takes over).
        self.mappings.retain(|_, m| m.live(now));
        let mappings = &self.mappings;
        self.ports.retain(|_, port| mappings.contains_key(port));
        let span = usize::from(u16::MAX - PORT_FIRST) + 1;
        let port = (0..span)
            .map(|step| {
                let offset = (usize::from(self.port_next - PORT_FIRST) + step) % span;
                PORT_FIRST + u16::try_from(offset).expect("within the span")
            })
            .find(|port| !self.mappings.contains_key(port))
            .ok_or(DropCause::NatPorts)?;
        self.port_next = port.checked_add(1).unwrap_or(PORT_FIRST);
        let key = self.key(inside, destination);
        self.mappings.insert(
            port,
            Mapping {
                key,
                flows: BTreeMap::new(),
            },
        );
        self.ports.insert(key, port);
        Ok(port)
    }

    /// A datagram from `source` reaches the box's public `port` now: the inside socket it is
    /// for, if a live flow of that port's mapping sent to `source`.
    pub fn inbound(
        &self,
        port: u16,
        source: SocketAddr,
        now: Instant,
    ) -> Result<SocketAddr, DropCause> {
        let mapping = self.mappings.get(&port).ok_or(DropCause::Unsolicited)?;
        match mapping.flows.get(&source) {
            Some(&dies) if dies > now => Ok(mapping.key.0),
            _ => Err(DropCause::Unsolicited),
        }
    }

    /// The source a datagram from `inside` to `destination` would carry now, without sending
    /// it: its live mapping's, or port 0 where it would need a new one (a port no flow names,
    /// so no box lets it in before the send).
    pub fn would_leave_as(
        &self,
        inside: SocketAddr,
        destination: SocketAddr,
        now: Instant,
    ) -> SocketAddr {
        let port = self.live_port(inside, destination, now).unwrap_or(0);
        SocketAddr::from((self.public_ip, port))
    }

    /// Whether `addr` is a live mapping of `inside`'s now (where its peers see it).
    pub fn maps(&self, inside: SocketAddr, addr: SocketAddr, now: Instant) -> bool {
        addr.ip() == self.public_ip
            && self
                .mappings
                .get(&addr.port())
                .is_some_and(|m| m.key.0 == inside && m.live(now))
    }
}

/// The public address of the `index`th box: `10.2.0.0 + index + 1`.
pub fn public_ip(index: usize) -> Ipv4Addr {
    let n = u16::try_from(index + 1).expect("validated: at most NATS_MAX boxes");
    let [high, low] = n.to_be_bytes();
    let [a, b] = NAT_PREFIX;
    Ipv4Addr::new(a, b, high, low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SimDuration;

    fn v4(octets: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((octets, port))
    }

    fn nat(kind: NatKind, timeout_s: u64) -> NatBox {
        let spec = NatSpec {
            kind,
            devices: vec!["a".into()],
            mapping_timeout: SimDuration(Duration::from_secs(timeout_s)),
        };
        NatBox::new(0, &spec)
    }

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn an_endpoint_independent_box_keeps_one_port_and_lets_in_only_whom_it_sent_to() {
        let mut b = nat(NatKind::EndpointIndependent, 30);
        let inside = v4([10, 0, 0, 1], 9000);
        let (carol, bob, eve) = (
            v4([10, 0, 0, 3], 9000),
            v4([10, 2, 0, 2], 1024),
            v4([10, 0, 0, 9], 9000),
        );
        let (to_carol, made) = b.outbound(inside, carol, at(0)).expect("a port");
        assert!(made);
        assert_eq!(to_carol, v4([10, 2, 0, 1], PORT_FIRST));
        let (to_bob, made) = b.outbound(inside, bob, at(1)).expect("a port");
        assert_eq!(
            (to_bob, made),
            (to_carol, false),
            "one port, whatever the destination"
        );
        assert_eq!(b.inbound(PORT_FIRST, carol, at(2)), Ok(inside));
        assert_eq!(b.inbound(PORT_FIRST, bob, at(2)), Ok(inside));
        assert_eq!(
            b.inbound(PORT_FIRST, eve, at(2)),
            Err(DropCause::Unsolicited)
        );
        assert_eq!(
            b.inbound(PORT_FIRST + 1, carol, at(2)),
            Err(DropCause::Unsolicited)
        );
        // Carol's flow dies 30 s after the last datagram out to her; bob's a second later.
        assert_eq!(
            b.inbound(PORT_FIRST, carol, at(30)),
            Err(DropCause::Unsolicited)
        );
        assert_eq!(b.inbound(PORT_FIRST, bob, at(30)), Ok(inside));
        assert!(b.maps(inside, to_carol, at(30)));
        assert!(
            !b.maps(inside, to_carol, at(31)),
            "every flow dead: the mapping is gone"
        );
        let (again, made) = b.outbound(inside, carol, at(40)).expect("a port");
        assert!(made);
        assert_eq!(
            again.port(),
            PORT_FIRST + 1,
            "a new mapping takes the next port"
        );
    }

    #[test]
    fn a_symmetric_box_maps_each_destination_apart() {
        let mut b = nat(NatKind::Symmetric, 30);
        let inside = v4([10, 0, 0, 1], 9000);
        let (carol, bob) = (v4([10, 0, 0, 3], 9000), v4([10, 2, 0, 2], 1024));
        let (to_carol, _) = b.outbound(inside, carol, at(0)).expect("a port");
        assert_eq!(
            b.would_leave_as(inside, bob, at(0)).port(),
            0,
            "no mapping yet"
        );
        let (to_bob, _) = b.outbound(inside, bob, at(0)).expect("a port");
        assert_ne!(to_carol, to_bob);
        assert_eq!(b.would_leave_as(inside, bob, at(1)), to_bob);
        // Bob, sending to what carol saw, is not let in.
        assert_eq!(
            b.inbound(to_carol.port(), bob, at(1)),
            Err(DropCause::Unsolicited)
        );
        assert_eq!(b.inbound(to_bob.port(), bob, at(1)), Ok(inside));
    }

    #[test]
    fn a_mapping_forgets_its_quietest_flow_past_the_bound() {
        let mut b = nat(NatKind::EndpointIndependent, 30);
        let inside = v4([10, 0, 0, 1], 9000);
        for i in 0..=FLOWS_PER_MAPPING_MAX {
            let remote = v4([192, 0, 2, 1], u16::try_from(i + 1).expect("small"));
            b.outbound(
                inside,
                remote,
                Instant::ZERO + Duration::from_micros(i as u64),
            )
            .expect("a port");
        }
        let first = v4([192, 0, 2, 1], 1);
        assert_eq!(
            b.inbound(PORT_FIRST, first, at(1)),
            Err(DropCause::Unsolicited)
        );
        let last = v4(
            [192, 0, 2, 1],
            u16::try_from(FLOWS_PER_MAPPING_MAX + 1).expect("small"),
        );
        assert_eq!(b.inbound(PORT_FIRST, last, at(1)), Ok(inside));
    }
}
