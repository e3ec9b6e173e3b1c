//! Where a driver sends each peer's datagrams. The node names a device in a `Transmit` and
//! never an address; its driver keeps this book: the addresses it was configured with
//! (`--peer`, remembered peers), each replaced as the node says it learned better
//! (`NodeEvent::PeerAddress`: the peer's newest authentic packet came from elsewhere, an
//! announcement or an address record named it). One resolution for every driver: the real
//! one (`meshlog-net`) and the simulator's network both send where this book says.
//!
//! Bounded by its caller's configured peers plus the devices the node made peers (at most
//! `PEERS_MAX` at a time, all of them roster members): the node only tells where a peer is.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::id::DeviceId;
use crate::node::NodeEvent;

/// The driver's map from each peer to the address its datagrams go to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerBook {
    addrs: BTreeMap<DeviceId, SocketAddr>,
}

impl PeerBook {
    /// A book holding the addresses the device was configured with.
    pub fn new(configured: BTreeMap<DeviceId, SocketAddr>) -> Self {
        PeerBook { addrs: configured }
    }

    /// Where `peer`'s datagrams go now: `None` if the device was never told (no route).
    pub fn resolve(&self, peer: &DeviceId) -> Option<SocketAddr> {
        self.addrs.get(peer).copied()
    }

    /// Where `transmit` goes: the address it names itself (a punch), or `to`'s in this book.
    pub fn destination(&self, transmit: &crate::node::Transmit) -> Option<SocketAddr> {
        transmit.address.or_else(|| self.resolve(&transmit.to))
    }

    /// Follows one event of the node: a `PeerAddress` naming a new place moves the peer
    /// there. Returns whether the book changed (news for a log).
    pub fn follow(&mut self, event: &NodeEvent) -> bool {
        let NodeEvent::PeerAddress { peer, addr, .. } = event else {
            return false;
        };
        self.addrs.insert(peer.clone(), *addr) != Some(*addr)
    }

    /// Every peer's address, in name order.
    pub fn addresses(&self) -> &BTreeMap<DeviceId, SocketAddr> {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::AddressSource;

    fn id(name: &str) -> DeviceId {
        DeviceId::new(name).expect("valid name")
    }

    #[test]
    fn configured_addresses_resolve_until_the_node_learns_better() {
        let first: SocketAddr = "10.0.0.2:9000".parse().expect("an address");
        let moved: SocketAddr = "10.1.0.7:9000".parse().expect("an address");
        let mut book = PeerBook::new(BTreeMap::from([(id("bob"), first)]));
        assert_eq!(book.resolve(&id("bob")), Some(first));
        assert_eq!(book.resolve(&id("carol")), None);
        let learned = |addr| NodeEvent::PeerAddress {
            peer: id("bob"),
            addr,
            source: AddressSource::Packet,
        };
        assert!(!book.follow(&learned(first)), "the same place is no news");
        assert!(book.follow(&learned(moved)));
        assert_eq!(book.resolve(&id("bob")), Some(moved));
        assert!(!book.follow(&NodeEvent::PeerSync {
            peer: id("bob"),
            in_sync: true,
        }));
        assert_eq!(book.addresses().len(), 1);
    }
}
