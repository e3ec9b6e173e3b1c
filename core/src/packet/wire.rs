//! One device's end of its packet links: its pairwise keys, its own epoch and counter, a
//! replay window per peer, and each peer's epoch to echo. The node seals and opens every
//! packet here.

use std::collections::BTreeMap;

use super::replay::ReplayWindow;
use super::{seal_parts, DropReason, Packet, Payload};
use crate::crypto::Keyring;
use crate::id::DeviceId;

#[derive(Debug)]
pub struct Wire {
    keyring: Keyring,
    /// This device's epoch for this run (from `Store::next_epoch`).
    epoch: u64,
    /// What this end keeps for each peer, in one entry: sealing or opening a packet looks
    /// it up once (three maps cost three searches, each a cache miss in a large world).
    /// Entries are made only for peers: sealing panics without a pairwise key, and only a
    /// peer's packets get past the tag check. So at most `PEERS_MAX`.
    ends: BTreeMap<DeviceId, PeerEnd>,
    /// Off only to prove the checkers catch its absence.
    replay_protection: bool,
    /// The source of the last datagram `open` found authentic, not replayed and newer than
    /// anything before from that peer; taken by the node to follow the peer's address.
    newest_source: Option<DeviceId>,
}

#[derive(Debug, Default)]
struct PeerEnd {
    /// The next packet's counter to this peer. Per peer, not per sender: a peer then sees
    /// consecutive counters, so a burst to many peers (1,000 eager pushes to 3 peers) never
    /// pushes that peer's reordered packets out of its window.
    next_counter: u64,
    window: ReplayWindow,
    /// The newest epoch heard from this peer in an authentic packet: what this device echoes
    /// to it. Only grows, so a replayed old packet cannot make it echo an old epoch.
    heard_epoch: Option<u64>,
}

impl Wire {
    pub fn new(keyring: Keyring, epoch: u64, replay_protection: bool) -> Self {
        Wire {
            keyring,
            epoch,
            ends: BTreeMap::new(),
            replay_protection,
            newest_source: None,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }
    pub(crate) fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }
    /// Forgets a peer that left: its key, window and counter.
    pub(crate) fn forget(&mut self, peer: &DeviceId) {
        self.keyring.remove_peer(peer);
        self.ends.remove(peer);
    }
    /// Packets sealed in this epoch, to every peer (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn packets_sealed(&self) -> u64 {
        self.ends.values().map(|end| end.next_counter).sum()
    }
    /// The newest (epoch, counter) accepted from `peer` (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn newest_from(&self, peer: &DeviceId) -> Option<(u64, u64)> {
        self.ends.get(peer).and_then(|end| end.window.newest())
    }

    /// The counter the next packet sealed for `peer` will carry: a recovery shard names the
    /// EVENT packets it covers by their counters (`node/stream_fec`).
    pub fn counter_next(&self, peer: &DeviceId) -> u64 {
        self.ends.get(peer).map_or(0, |end| end.next_counter)
    }

    /// Whether a packet from `peer` has taught us its epoch (so what we send echoes it).
    pub fn knows_epoch_of(&self, peer: &DeviceId) -> bool {
        self.ends
            .get(peer)
            .is_some_and(|end| end.heard_epoch.is_some())
    }

    /// Records `epoch` as heard from `peer` (it only grows): `Node::assume_heard`, for tests.
    #[cfg(any(test, feature = "testing"))]
    pub fn hear(&mut self, peer: &DeviceId, epoch: u64) {
        self.ends.entry(peer.clone()).or_default().hear(epoch);
    }

    /// Seals `payload` for `to`, with that peer's next counter. Panics if `to` is not a peer:
    /// the node sends only to its peers, so that would be a bug.
    pub fn seal(&mut self, to: &DeviceId, payload: &Payload) -> Vec<u8> {
        let key = self
            .keyring
            .key(to)
            .unwrap_or_else(|| panic!("no pairwise key for {to}: not a peer"));
        let end = self.ends.entry(to.clone()).or_default();
        let counter = end.next_counter;
        // 2^64 packets would take millennia at any rate a device can send.
        end.next_counter = counter.checked_add(1).expect("packet counter exhausted");
        let echo = end.heard_epoch.unwrap_or(0);
        seal_parts(
            self.keyring.me(),
            to,
            [self.epoch, counter, echo],
            payload,
            key,
        )
    }

    /// Verifies a datagram, refuses it if seen before or if it does not echo this run's epoch,
    /// then decodes it. Never panics on any input. A replay costs one tag check and is dropped
    /// before its payload is looked at.
    pub fn open(&mut self, bytes: &[u8]) -> Result<Packet, DropReason> {
        self.newest_source = None;
        let verified = Packet::verify(bytes, &self.keyring)?;
        let (epoch, counter) = (verified.epoch, verified.counter);
        let end = self.ends.entry(verified.source.clone()).or_default();
        let newest = end.window.is_newest(epoch, counter);
        if self.replay_protection && !end.window.accept(epoch, counter) {
            return Err(DropReason::Replayed { epoch, counter });
        }
        if newest {
            self.newest_source = Some(verified.source.clone());
        }
        // Authentic and not replayed here: its epoch is one the peer really used.
        let first_of_epoch = end.heard_epoch.is_none_or(|heard| epoch > heard);
        end.hear(epoch);
        if self.replay_protection && verified.echo != self.epoch {
            return Err(DropReason::StaleEcho {
                from: verified.source,
                echo: verified.echo,
                expected: self.epoch,
                first_of_epoch,
            });
        }
        verified.decode()
    }
}

impl Wire {
    /// The peer whose packet the last `open` found authentic and newest, if it did (even when
    /// `open` then refused it for a stale echo: a restarted peer's first packet is one).
    pub fn take_newest_source(&mut self) -> Option<DeviceId> {
        self.newest_source.take()
    }
}

impl PeerEnd {
    fn hear(&mut self, epoch: u64) {
        self.heard_epoch = Some(self.heard_epoch.map_or(epoch, |heard| heard.max(epoch)));
    }
}

#[cfg(test)]
mod tests;
