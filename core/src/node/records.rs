//! Peer exchange: members pass each other's signed address records along with the sync, so a
//! device that knows where one member is finds the rest.
//!
//! - A device's driver tells its node where it listens (`Node::set_own_addresses`); the node
//!   signs a record of it, valid for `RECORD_TTL_MS`, and signs a fresh one when half of that
//!   is gone or the addresses change.
//! - Each round, a peer the round summarises to is also sent the records it has not been sent
//!   yet (its own excepted), in one datagram at most; every `RECORD_RESEND_ROUNDS` rounds all
//!   of them again, for the ones lost on the way.
//! - A record received is checked (an active member's, signed by it for this community, not
//!   expired, not issued in the future, newer than the one held) and kept. Its device becomes
//!   a peer if it is not one (room permitting), reached at the record's first address until its
//!   own packets say otherwise: a record is a hint and never replaces an address a packet
//!   confirmed (`addresses.rs`).
//!
//! Bounds: one record per member, at most `RECORDS_MAX`; at most
//! `RECORD_CHECKS_PER_PEER_PER_ROUND` signature checks for one peer's records a round, so a
//! member gone bad flooding records costs a few checks a round and no more; beyond that they
//! are dropped and counted (`record_rate_limited`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::addresses::AddressSource;
use super::Node;
use crate::id::DeviceId;
use crate::packet::{
    AddressRecord, Payload, DATAGRAM_SIZE_MAX, PACKET_OVERHEAD_MAX, RECORD_ADDRESSES_MAX,
};
use crate::store::Store;
use crate::time::Instant;

/// How long a record is good for: an address from an hour ago is often wrong (DHCP, a laptop
/// moved), and a device online re-signs its own long before this runs out.
pub const RECORD_TTL_MS: u64 = 10 * 60 * 1000;
/// How far in the future a record's issue time may be: devices' clocks differ.
pub const RECORD_CLOCK_SKEW_MAX_MS: u64 = 5 * 60 * 1000;
/// Records held at most: one per member, and a roster is far smaller than this.
pub const RECORDS_MAX: usize = 256;
/// Signature checks spent on one peer's records in one round.
pub const RECORD_CHECKS_PER_PEER_PER_ROUND: u32 = 16;
/// Packets from active members that are not peers yet checked in one round: a member that
/// found this device by a record reaches out before this device has its record, and each
/// check costs a key agreement, so a stranger naming members cannot make it do many.
pub const ADOPTIONS_PER_ROUND_MAX: u32 = 4;
/// Every this many rounds, each round peer is sent every record again (one lost is not
/// resent before that).
pub const RECORD_RESEND_ROUNDS: u64 = 30;

#[derive(Debug, Default)]
pub(super) struct Records {
    /// The newest valid record of each member (this device's own included).
    held: BTreeMap<DeviceId, AddressRecord>,
    /// What this device listens on, as its driver said; none: it publishes no record.
    own_addrs: Vec<SocketAddr>,
    /// (peer, device) → issue time of the device's record last sent to the peer.
    sent: BTreeMap<(DeviceId, DeviceId), u64>,
    /// Signature checks spent this round, per peer.
    checks: BTreeMap<DeviceId, u32>,
    /// Packets from members not yet peers whose tag was checked this round (each costs a key
    /// agreement): `ADOPTIONS_PER_ROUND_MAX`.
    adoptions_this_round: u32,
}

impl Records {
    pub(super) fn forget(&mut self, device: &DeviceId) {
        self.held.remove(device);
        self.checks.remove(device);
        self.sent
            .retain(|(peer, about), _| peer != device && about != device);
    }
}

impl<S: Store> Node<S> {
    /// Where this device listens, most preferred first (at most `RECORD_ADDRESSES_MAX` are
    /// kept): the node signs a record of it for its peers to pass along. An empty list
    /// publishes nothing (a driver that cannot tell where it is reached).
    pub fn set_own_addresses(&mut self, now: Instant, addrs: &[SocketAddr]) {
        let now = self.advance(now);
        let addrs: Vec<SocketAddr> = addrs.iter().take(RECORD_ADDRESSES_MAX).copied().collect();
        if addrs == self.records.own_addrs {
            return;
        }
        self.records.own_addrs = addrs;
        self.sign_own_record(now);
    }

    /// The address record held for `device` (this device's own included).
    pub fn address_record(&self, device: &DeviceId) -> Option<&AddressRecord> {
        self.records.held.get(device)
    }

    fn sign_own_record(&mut self, now: Instant) {
        let me = self.config.keys.device.clone();
        if self.records.own_addrs.is_empty() {
            self.records.held.remove(&me);
            return;
        }
        let issued_at_ms = now.as_millis();
        let record = AddressRecord::sign(
            &self.config.keys,
            self.config.community.id(),
            &self.records.own_addrs,
            issued_at_ms,
            issued_at_ms + RECORD_TTL_MS,
        );
        self.records.held.insert(me, record);
    }

    /// At a round's start: a fresh own record when half its life is gone; expired records
    /// dropped; the check allowance renewed; every record due again now and then.
    pub(super) fn records_round(&mut self, now: Instant) {
        let now_ms = now.as_millis();
        let me = self.config.keys.device.clone();
        let own_stale = self
            .records
            .held
            .get(&me)
            .is_some_and(|r| now_ms >= r.issued_at_ms + RECORD_TTL_MS / 2);
        if own_stale {
            self.sign_own_record(now);
        }
        self.records.held.retain(|_, r| r.expires_at_ms > now_ms);
        self.records.checks.clear();
        self.records.adoptions_this_round = 0;
        if self.stats.rounds % RECORD_RESEND_ROUNDS == 0 {
            self.records.sent.clear();
        }
    }

    /// Sends `peer` the records it was not sent yet, as many as fit one datagram.
    pub(super) fn send_records(&mut self, peer: &DeviceId) {
        // A peer that has not taught us its epoch would drop the packet for a stale echo, and
        // the records would count as sent: wait for its first packet.
        if !self.wire.knows_epoch_of(peer) {
            return;
        }
        let room = DATAGRAM_SIZE_MAX - PACKET_OVERHEAD_MAX;
        let mut used = 0;
        let mut batch = Vec::new();
        for (device, record) in &self.records.held {
            // Its own it knows; a removed member's is not passed on.
            if device == peer || !self.membership.roster().is_active(device) {
                continue;
            }
            let key = (peer.clone(), device.clone());
            if self.records.sent.get(&key) == Some(&record.issued_at_ms) {
                continue;
            }
            let len = record.encoded_len();
            if used + len > room {
                break;
            }
            used += len;
            batch.push(record.clone());
        }
        if batch.is_empty() {
            return;
        }
        for record in &batch {
            let key = (peer.clone(), record.device.clone());
            self.records.sent.insert(key, record.issued_at_ms);
        }
        self.send(peer, Payload::Addresses(batch));
    }

    pub(super) fn on_address_records(
        &mut self,
        now: Instant,
        from: &DeviceId,
        records: Vec<AddressRecord>,
    ) {
        for record in records {
            self.on_address_record(now, from, record);
        }
    }

    fn on_address_record(&mut self, now: Instant, from: &DeviceId, record: AddressRecord) {
        let now_ms = now.as_millis();
        let me = &self.config.keys.device;
        if &record.device == me {
            return;
        }
        let newer = self
            .records
            .held
            .get(&record.device)
            .is_none_or(|held| record.issued_at_ms > held.issued_at_ms);
        if !newer {
            return;
        }
        if record.expires_at_ms <= now_ms
            || record.issued_at_ms > now_ms + RECORD_CLOCK_SKEW_MAX_MS
            || record.expires_at_ms - record.issued_at_ms.min(record.expires_at_ms) > RECORD_TTL_MS
        {
            return self.stats.drop("record_stale");
        }
        let checks = self.records.checks.entry(from.clone()).or_default();
        if *checks >= RECORD_CHECKS_PER_PEER_PER_ROUND {
            return self.stats.drop("record_rate_limited");
        }
        *checks += 1;
        let roster = self.membership.roster();
        let Some(key) = roster
            .members
            .get(&record.device)
            .filter(|_| roster.is_active(&record.device))
            .map(|m| m.key)
        else {
            return self.stats.drop("record_not_a_member");
        };
        if !record.verify(&key, self.config.community.id()) {
            return self.stats.drop("record_forged");
        }
        if !self.records.held.contains_key(&record.device) && self.records.held.len() >= RECORDS_MAX
        {
            return self.stats.drop("record_no_room");
        }
        let device = record.device.clone();
        let addr = record.addrs[0];
        self.records.held.insert(device.clone(), record);
        let new_peer = !self.peers.contains_key(&device);
        if self.ensure_peer(&device) {
            self.learn_address(&device, addr, AddressSource::Record);
            if new_peer {
                // Met through a record: greet it now rather than when a round picks it, so the
                // link forms in a round trip. Once per member added, so it amplifies nothing.
                self.greet(&device);
            }
        }
    }
}

impl<S: Store> Node<S> {
    /// A datagram from `source`, an active member that is not a peer: it may have found this
    /// device by its record. It becomes a peer if its packet proves it (the tag checks under
    /// the pairwise key); otherwise nothing is kept. Returns the opened packet's result.
    pub(super) fn adopt_member(
        &mut self,
        source: &DeviceId,
        bytes: &[u8],
    ) -> Option<Result<crate::packet::Packet, crate::packet::DropReason>> {
        if self.records.adoptions_this_round >= ADOPTIONS_PER_ROUND_MAX {
            self.stats.drop("adopt_rate_limited");
            return None;
        }
        self.records.adoptions_this_round += 1;
        if !self.ensure_peer(source) {
            return None;
        }
        let opened = self.wire.open(bytes);
        let authentic = match &opened {
            Ok(_) => true,
            Err(reason) => matches!(reason, crate::packet::DropReason::StaleEcho { .. }),
        };
        if !authentic {
            // Not from the member it names: undo, so a stranger cannot fill the peer list.
            self.wire.forget(source);
            self.peers.remove(source);
            self.links.remove(source);
            return None;
        }
        Some(opened)
    }
}
