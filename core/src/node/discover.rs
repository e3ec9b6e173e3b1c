//! LAN discovery on the node (`crate::discovery` has the format): the announcement this
//! device sends, and what it does with one it hears.
//!
//! A heard announcement is the one input anyone on the link can make a member work for, so
//! the work is bounded before anything else: wrong-sized datagrams and echoes of our own cost
//! a comparison; past that at most `ANNOUNCE_OPENS_PER_SECOND_MAX` are opened per second
//! (each at most `ANNOUNCE_KEYS_TRIED_MAX` AEAD attempts, and one signature check only for one
//! that opened under a community key); the rest are dropped and counted
//! (`announce_rate_limited`). Then: too old or from the future beyond `ANNOUNCE_SKEW_MAX`
//! (`announce_stale`), not an active member's (`announce_not_a_member`), a signature not the
//! roster's key's (`announce_forged`), not newer than one already used from that device
//! (`announce_repeat`: a copy, or a replay within the skew). What is left makes its device a
//! peer, at the announcing address with the announced port: a hint (`AddressSource::
//! Discovered`) that never replaces an address the peer's own packets confirmed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::addresses::AddressSource;
use super::Node;
use crate::discovery::{
    open_announcement, opening_keys, seal_announcement, sealing_key, AnnounceError, Announcement,
    ANNOUNCEMENT_LEN, ANNOUNCE_PORTS_MAX,
};
use crate::id::DeviceId;
use crate::packet::DropReason;
use crate::store::Store;
use crate::time::{Duration, Instant};

/// Announcements opened per second at most; beyond, dropped unopened. Honest devices send
/// one every 30 s each (a few at start), so this is a LAN of dozens of devices starting at
/// once; a flood of garbage costs at most this many openings a second.
pub const ANNOUNCE_OPENS_PER_SECOND_MAX: u32 = 20;
/// How far an announcement's issue time may be from this node's clock, either way: clock
/// skew between devices on one link, plus delivery. Older ones are stale (a replay from
/// elsewhere, long after); newer ones come from a clock that is wrong.
pub const ANNOUNCE_SKEW_MAX: Duration = Duration::from_secs(60);
const OPEN_WINDOW: Duration = Duration::from_secs(1);
/// Our own announcements remembered, to ignore their echo on the link without opening them:
/// one per destination the driver sends a fresh one to (IPv4 broadcast, IPv6 multicast).
const OWN_REMEMBERED_MAX: usize = 4;

#[derive(Debug, Default)]
pub(super) struct Discovery {
    window_started_at: Instant,
    opened_in_window: u32,
    /// The newest issue time used per announcing device; bounded to the node's peers
    /// (`PEERS_MAX`): entries for devices no longer peers are dropped when it is full.
    newest: BTreeMap<DeviceId, Instant>,
    own: Vec<Vec<u8>>,
}

impl<S: Store> Node<S> {
    /// This device's announcement, to send on the local link: it syncs on `ports` (at the
    /// address the announcement goes from). `None` when this device is not an active member
    /// (a removed device's announcement would open for nobody), or `ports` is empty or has 0.
    /// Draws its nonce from the node's RNG: an input, as far as a replay goes.
    pub fn announcement(&mut self, now: Instant, ports: &[u16]) -> Option<Vec<u8>> {
        let now = self.advance(now);
        let me = self.config.keys.device.clone();
        if !self.membership.roster().is_active(&me)
            || ports.is_empty()
            || ports.contains(&0)
            || ports.len() > ANNOUNCE_PORTS_MAX
        {
            return None;
        }
        let mut nonce = [0u8; 24];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut nonce);
        let announcement = Announcement {
            device: me,
            ports: ports.to_vec(),
            issued_at: now,
        };
        let community = &self.config.community;
        let bytes = seal_announcement(
            &announcement,
            &self.config.keys,
            community.id(),
            &sealing_key(community),
            nonce,
        );
        let own = &mut self.discovery.own;
        if own.len() >= OWN_REMEMBERED_MAX {
            own.remove(0);
        }
        own.push(bytes.clone());
        Some(bytes)
    }

    /// An announcement heard from `from` (`Input::Announcement`).
    pub(super) fn handle_announcement(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if !self.online {
            return self.stats.drop(DropReason::Offline.code());
        }
        if bytes.len() != ANNOUNCEMENT_LEN {
            return self.stats.drop(AnnounceError::Unreadable.code());
        }
        if self.discovery.own.iter().any(|own| own == bytes) {
            return;
        }
        let discovery = &mut self.discovery;
        if now.saturating_since(discovery.window_started_at) >= OPEN_WINDOW {
            discovery.window_started_at = now;
            discovery.opened_in_window = 0;
        }
        if discovery.opened_in_window >= ANNOUNCE_OPENS_PER_SECOND_MAX {
            return self.stats.drop("announce_rate_limited");
        }
        discovery.opened_in_window += 1;
        self.stats.announcements_opened += 1;

        let community = &self.config.community;
        let opened = match open_announcement(bytes, community.id(), &opening_keys(community)) {
            Ok(opened) => opened,
            Err(err) => return self.stats.drop(err.code()),
        };
        let announcement = &opened.announcement;
        let device = announcement.device.clone();
        if device == self.config.keys.device {
            // Ours, sealed before a restart or for another destination: nothing to learn.
            return;
        }
        let issued_at = announcement.issued_at;
        let skew = if issued_at > now {
            issued_at.saturating_since(now)
        } else {
            now.saturating_since(issued_at)
        };
        if skew > ANNOUNCE_SKEW_MAX {
            return self.stats.drop("announce_stale");
        }
        let Some(member) = self.membership.roster().members.get(&device) else {
            return self.stats.drop("announce_not_a_member");
        };
        if !self.membership.roster().is_active(&device) {
            return self.stats.drop("announce_not_a_member");
        }
        if !opened.verify(self.config.community.id(), &member.key) {
            return self.stats.drop(AnnounceError::Forged.code());
        }
        if self
            .discovery
            .newest
            .get(&device)
            .is_some_and(|newest| *newest >= issued_at)
        {
            return self.stats.drop("announce_repeat");
        }
        let was_peer = self.peers.contains_key(&device);
        if !self.ensure_peer(&device) {
            // No room (`PEERS_MAX`) or a key no pairwise key can be made with.
            return self.stats.drop("announce_no_room");
        }
        if self.discovery.newest.len() >= crate::config::PEERS_MAX {
            let peers = &self.peers;
            self.discovery.newest.retain(|d, _| peers.contains_key(d));
        }
        self.discovery.newest.insert(device.clone(), issued_at);
        if !was_peer {
            self.stats.peers_discovered += 1;
        }
        // `from` with the announced port: an IPv6 link-local source keeps its scope (zone).
        let mut addr = from;
        addr.set_port(announcement.ports[0]);
        let moved = self.learn_address(&device, addr, AddressSource::Discovered);
        // A new peer, or one at a new address, hears from us at once (one summary), so the
        // two sync now rather than at the next round; a repeat announcement costs nothing.
        if !was_peer || moved {
            self.greet(&device);
        }
    }
}
