//! One device's end of its packet links: its pairwise keys, its own epoch and counter, and a
//! replay window per peer. The node seals and opens every packet here.

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
    /// The next packet's counter: one per packet sent, to any peer.
    next_counter: u64,
    /// One per peer heard from; only peers (at most `PEERS_MAX`) get past the tag check.
    windows: BTreeMap<DeviceId, ReplayWindow>,
    /// Off only to prove the checkers catch its absence.
    replay_protection: bool,
}

impl Wire {
    pub fn new(keyring: Keyring, epoch: u64, replay_protection: bool) -> Self {
        Wire {
            keyring,
            epoch,
            next_counter: 0,
            windows: BTreeMap::new(),
            replay_protection,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Packets sealed in this epoch.
    pub fn packets_sealed(&self) -> u64 {
        self.next_counter
    }
    /// The newest (epoch, counter) accepted from `peer`.
    pub fn newest_from(&self, peer: &DeviceId) -> Option<(u64, u64)> {
        self.windows.get(peer).and_then(ReplayWindow::newest)
    }

    /// Seals `payload` for `to`, with the next counter. Panics if `to` is not a peer: the node
    /// sends only to its peers, so that would be a bug.
    pub fn seal(&mut self, to: &DeviceId, payload: &Payload) -> Vec<u8> {
        let key = self
            .keyring
            .key(to)
            .unwrap_or_else(|| panic!("no pairwise key for {to}: not a peer"));
        let counter = self.next_counter;
        // 2^64 packets would take millennia at any rate a device can send.
        self.next_counter = counter.checked_add(1).expect("packet counter exhausted");
        seal_parts(self.keyring.me(), to, (self.epoch, counter), payload, key)
    }

    /// Verifies a datagram, refuses it if seen before, then decodes it. Never panics on any
    /// input. A replay costs one tag check and is dropped before its payload is looked at.
    pub fn open(&mut self, bytes: &[u8]) -> Result<Packet, DropReason> {
        let verified = Packet::verify(bytes, &self.keyring)?;
        if self.replay_protection {
            let (epoch, counter) = (verified.epoch, verified.counter);
            let window = self.windows.entry(verified.source.clone()).or_default();
            if !window.accept(epoch, counter) {
                return Err(DropReason::Replayed { epoch, counter });
            }
        }
        verified.decode()
    }
}
