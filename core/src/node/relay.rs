//! The relay fallback: where a punch found no way through (a symmetric NAT gives each
//! destination its own port), A's datagrams for B go through the member C that introduced
//! them, as WireGuard-less overlays do with a relay server, but with any member as the relay.
//!
//! - A wraps each datagram it sealed for B (B's pairwise tag, A's epoch and counter toward B)
//!   in `Relay { to: B, bytes }` inside a packet to C. C checks, forwards it as
//!   `Relayed { from: A, bytes }` inside a packet to B, and B opens the inner datagram as
//!   from A: its tag proves A sealed it for B, its counter is checked in A's replay window.
//!   The address it came from (C's) is never followed: only a direct packet moves A's
//!   address.
//! - A uses the relay for B from the end of a punch that went unanswered (`punch.rs`) until a
//!   direct packet from B arrives; B uses it back from the first relayed datagram of A's while
//!   no packet of A's confirmed A's address. A punch started by a later introduction still
//!   goes direct, so a NAT that changes its mind is found again.
//!
//! Why C cannot be used to amplify or to reach a non-member. C forwards one datagram per
//! datagram it was sent, no larger than what it was sent plus the difference of two packet
//! headers (a device name at most), so it never sends more than it receives. It forwards only
//! between two of its peers (members whose keys it holds), only to an address that the
//! target's own packets confirmed (never a hint), and never a relay inside a relay. Each pair
//! gets at most `RELAY_BYTES_PER_SECOND_MAX` and `RELAY_DATAGRAMS_PER_SECOND_MAX` in each
//! one-second window; beyond that datagrams are dropped and counted (`relay_rate`). C cannot
//! alter what it forwards (tagged by A for B); it can read it, as any path can read a packet's
//! clear payload, but a member holds the log and the community key anyway. It can drop or
//! delay it, as any path can, and the anti-entropy rounds then send what was lost again.

use std::collections::BTreeMap;

use super::{AddressSource, Node};
use crate::id::DeviceId;
use crate::packet::{overhead, Packet, PacketKind, Payload, DATAGRAM_SIZE_MAX};
use crate::store::Store;
use crate::time::{Duration, Instant};

/// Bytes a member forwards for one pair (one direction) in one second at most: ample for
/// sync (a summary a round, streams of events), small enough that a member gone bad cannot
/// make a relay carry a bulk transfer.
pub const RELAY_BYTES_PER_SECOND_MAX: u64 = 256 * 1024;
/// Datagrams a member forwards for one pair (one direction) in one second at most.
pub const RELAY_DATAGRAMS_PER_SECOND_MAX: u64 = 512;
/// The length of a rate window.
const RELAY_WINDOW: Duration = Duration(1_000_000);

/// Bytes a `Relay` or `Relayed` payload adds around the datagram it carries: the name's
/// length byte and the datagram's u16 length.
const RELAY_FRAMING_LEN: usize = 1 + 2;

#[derive(Debug, Default)]
pub(super) struct Relays {
    /// Peers reached through another peer, and through whom: at most one entry per peer.
    via: BTreeMap<DeviceId, DeviceId>,
    /// Forwarding windows per (from, to) pair of peers: at most PEERS_MAX² entries, and
    /// pruned of departed peers each round.
    windows: BTreeMap<(DeviceId, DeviceId), Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    /// The last datagram forwarded: a pair relayed since its introduction is introduced again
    /// sooner (`punch.rs`).
    last_at: Instant,
    bytes: u64,
    datagrams: u64,
}

impl Relays {
    pub(super) fn via(&self, peer: &DeviceId) -> Option<&DeviceId> {
        self.via.get(peer)
    }

    /// Whether this node forwarded a datagram between `a` and `b` (either way) after `since`.
    pub(super) fn relayed_since(&self, a: &DeviceId, b: &DeviceId, since: Instant) -> bool {
        [(a, b), (b, a)].into_iter().any(|(from, to)| {
            self.windows
                .get(&(from.clone(), to.clone()))
                .is_some_and(|w| w.last_at > since)
        })
    }
}

impl<S: Store> Node<S> {
    /// From now on `peer` is reached through `via`.
    pub(super) fn relay_through(&mut self, peer: &DeviceId, via: &DeviceId) {
        if peer != via && self.peers.contains_key(via) {
            self.relays.via.insert(peer.clone(), via.clone());
        }
    }

    /// A direct packet came from `peer`: direct again.
    pub(super) fn direct_again(&mut self, peer: &DeviceId) {
        self.relays.via.remove(peer);
    }

    /// Called with every datagram sealed for `to`: the datagram itself, or, while `to` is
    /// reached through a relay, the relay's packet carrying it. A datagram too large to wrap
    /// goes direct (and is counted): the anti-entropy sends its content again, relayed in
    /// smaller pieces or through the relay's own copy of the events.
    pub(super) fn wrap_for_relay(&mut self, to: DeviceId, bytes: Vec<u8>) -> (DeviceId, Vec<u8>) {
        let Some(via) = self.relays.via.get(&to).cloned() else {
            return (to, bytes);
        };
        if !self.peers.contains_key(&via) {
            // The relay left the roster: direct again, and let a new introduction find a way.
            self.relays.via.remove(&to);
            return (to, bytes);
        }
        let room = DATAGRAM_SIZE_MAX - overhead(self.device(), &via) - RELAY_FRAMING_LEN;
        if bytes.len() + to.as_str().len() > room {
            self.stats.drop("relay_too_large");
            return (to, bytes);
        }
        self.stats.relay_sent += 1;
        let wrapped = self.wire.seal(&via, &Payload::Relay { to, bytes });
        (via, wrapped)
    }

    /// `from` asks this node to forward `bytes` to `to`.
    pub(super) fn on_relay(&mut self, now: Instant, from: &DeviceId, to: DeviceId, bytes: Vec<u8>) {
        if &to == from || &to == self.device() || !self.peers.contains_key(&to) {
            return self.stats.drop("relay_not_a_peer");
        }
        if !matches!(self.peer_address(&to), Some((_, AddressSource::Packet))) {
            return self.stats.drop("relay_unreachable");
        }
        if is_relay_kind(&bytes) {
            return self.stats.drop("relay_nested");
        }
        let room = DATAGRAM_SIZE_MAX - overhead(self.device(), &to) - RELAY_FRAMING_LEN;
        if bytes.len() + from.as_str().len() > room {
            return self.stats.drop("relay_too_large");
        }
        let peers = &self.peers;
        self.relays
            .windows
            .retain(|(a, b), _| peers.contains_key(a) && peers.contains_key(b));
        let window = self
            .relays
            .windows
            .entry((from.clone(), to.clone()))
            .or_insert(Window {
                start: now,
                last_at: now,
                bytes: 0,
                datagrams: 0,
            });
        if now.as_micros() >= window.start.as_micros() + RELAY_WINDOW.as_micros() {
            *window = Window {
                start: now,
                last_at: now,
                bytes: 0,
                datagrams: 0,
            };
        }
        let len = bytes.len() as u64;
        if window.bytes + len > RELAY_BYTES_PER_SECOND_MAX
            || window.datagrams + 1 > RELAY_DATAGRAMS_PER_SECOND_MAX
        {
            return self.stats.drop("relay_rate");
        }
        window.bytes += len;
        window.datagrams += 1;
        window.last_at = now;
        self.stats.relayed_datagrams += 1;
        self.stats.relayed_bytes += len;
        let from = from.clone();
        self.send(&to, Payload::Relayed { from, bytes });
    }

    /// `via` forwarded `bytes`, which it says `from` sent: opened as a datagram from `from`,
    /// without following the address it came from (`receive.rs`, `Source::Relayed`).
    pub(super) fn on_relayed(
        &mut self,
        now: Instant,
        via: &DeviceId,
        from: DeviceId,
        bytes: Vec<u8>,
    ) {
        if is_relay_kind(&bytes) {
            return self.stats.drop("relay_nested");
        }
        // The inner tag proves the sender; this only keeps a relay from passing off one
        // member's datagram as another's (it would fail the tag anyway).
        if Packet::peek(&bytes).map(|(_, source)| source) != Some(from.to_string()) {
            return self.stats.drop("relay_mismatch");
        }
        self.handle_datagram_from(now, super::receive::Source::Relayed(via.clone()), &bytes);
    }

    /// After opening a relayed datagram: if it was `peer`'s newest authentic packet and no
    /// packet of `peer`'s confirmed a direct address, answer it through the same relay.
    pub(super) fn follow_relayed_packet(&mut self, via: &DeviceId) {
        let Some(peer) = self.wire.take_newest_source() else {
            return;
        };
        self.stats.relay_received += 1;
        if self.peers.contains_key(&peer)
            && !matches!(self.peer_address(&peer), Some((_, AddressSource::Packet)))
        {
            self.relay_through(&peer, via);
        }
    }
}

fn is_relay_kind(bytes: &[u8]) -> bool {
    matches!(
        Packet::peek(bytes),
        Some((PacketKind::Relay | PacketKind::Relayed, _))
    )
}
