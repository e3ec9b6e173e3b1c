//! Where each peer is reached: the node follows it, the driver sends there.
//!
//! The node never sends to an address itself (`Transmit` names a device); it tells the driver
//! when a peer's address is learned or moves, with `NodeEvent::PeerAddress`, and the driver
//! keeps the map its socket sends by. What moves an address, strongest first:
//!
//! - `Packet`: the peer's newest authentic packet came from there, as WireGuard's roaming
//!   does. Newest means past every (epoch, counter) accepted from that peer before, so a
//!   replayed or delayed old packet, sent from wherever, moves nothing; a restarted peer's
//!   first packet (a new epoch, maybe a new port) does, even though it is then dropped for a
//!   stale echo.
//! - `Joined`: an admitted device's join request came from there.
//! - `Discovered`, `Record`: a member said where it is (a LAN announcement, an address record
//!   carried by sync). Only a hint until a packet confirms it: they never replace an address a
//!   packet confirmed.
//! - `Introduced`: a peer we both share said where the other was seen (`punch.rs`). A hint
//!   too, only ever taken where no packet confirmed an address.
//!
//! Bounded: one address per peer, and only peers (at most `PEERS_MAX`) have one.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Node, NodeEvent};
use crate::id::DeviceId;
use crate::store::Store;

/// How the node learned a peer's address (`NodeEvent::PeerAddress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressSource {
    /// Its newest authentic packet came from there.
    Packet,
    /// Its join request came from there when it was admitted here.
    Joined,
    /// Its announcement on the local link named it.
    Discovered,
    /// A signed address record named it.
    Record,
    /// A common peer introduced it (`punch.rs`): where that peer last saw its packets.
    Introduced,
}

impl AddressSource {
    pub fn name(self) -> &'static str {
        match self {
            AddressSource::Packet => "packet",
            AddressSource::Joined => "joined",
            AddressSource::Discovered => "discovered",
            AddressSource::Record => "record",
            AddressSource::Introduced => "introduced",
        }
    }

    /// Seen from the peer itself (its packet or request), not only said about it.
    fn confirmed(self) -> bool {
        matches!(self, AddressSource::Packet | AddressSource::Joined)
    }
}

/// One peer's address as the node last learned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) addr: SocketAddr,
    pub(super) source: AddressSource,
    /// How its first address was learned, kept when later ones replace it: how the two
    /// devices met (the page draws a discovered link apart from a named one).
    pub(super) met_by: AddressSource,
}

/// The peers' addresses the node knows, keyed like `Node::peers`.
#[derive(Debug, Default)]
pub(super) struct Addresses {
    known: BTreeMap<DeviceId, Known>,
}

impl Addresses {
    pub(super) fn get(&self, peer: &DeviceId) -> Option<Known> {
        self.known.get(peer).copied()
    }

    pub(super) fn forget(&mut self, peer: &DeviceId) {
        self.known.remove(peer);
    }
}

impl<S: Store> Node<S> {
    /// Where the node last learned `peer` is reached, and how.
    pub fn peer_address(&self, peer: &DeviceId) -> Option<(SocketAddr, AddressSource)> {
        self.addresses.get(peer).map(|k| (k.addr, k.source))
    }

    /// How the node first learned where `peer` is: `None` for a peer it was configured with
    /// (`Config::peers`: named by `--peer`, or remembered from an earlier run) or has no
    /// address for yet.
    pub fn peer_met_by(&self, peer: &DeviceId) -> Option<AddressSource> {
        if self.config.peers.contains(peer) {
            return None;
        }
        self.addresses.get(peer).map(|k| k.met_by)
    }

    /// Records that `peer` (a peer already) is at `addr`, learned by `source`; tells the
    /// driver if that is news. A hint (`Discovered`, `Record`) never replaces an address the
    /// peer's own packets confirmed: only the peer's newer packets move that. Returns whether
    /// the address changed.
    pub(super) fn learn_address(
        &mut self,
        peer: &DeviceId,
        addr: SocketAddr,
        source: AddressSource,
    ) -> bool {
        assert!(
            self.peers.contains_key(peer),
            "addresses are kept for peers"
        );
        let known = self.addresses.get(peer);
        let met_by = known.map_or(source, |k| k.met_by);
        if let Some(known) = known {
            if known.addr == addr {
                // The same place, now confirmed by the peer itself: the driver has it already.
                if source.confirmed() && !known.source.confirmed() {
                    let confirmed = Known {
                        addr,
                        source,
                        met_by,
                    };
                    self.addresses.known.insert(peer.clone(), confirmed);
                }
                return false;
            }
            if known.source.confirmed() && !source.confirmed() {
                return false;
            }
        }
        let learned = Known {
            addr,
            source,
            met_by,
        };
        self.addresses.known.insert(peer.clone(), learned);
        assert!(self.addresses.known.len() <= crate::config::PEERS_MAX);
        self.emit(NodeEvent::PeerAddress {
            peer: peer.clone(),
            addr,
            source,
        });
        true
    }

    /// After `Wire::open`: if the datagram was a peer's newest authentic packet, the peer is
    /// where it came from.
    pub(super) fn follow_newest_packet(&mut self, from: SocketAddr) {
        let Some(peer) = self.wire.take_newest_source() else {
            return;
        };
        if !self.peers.contains_key(&peer) {
            return;
        }
        // Its own packet came direct: a punch toward it got through, and a relay that carried
        // its datagrams is not needed now (`punch.rs`, `relay.rs`).
        self.heard_directly(&peer);
        let moved_from = self.addresses.get(&peer);
        if self.learn_address(&peer, from, AddressSource::Packet) && moved_from.is_some() {
            self.stats.peer_moves += 1;
        }
    }
}
