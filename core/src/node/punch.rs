//! NAT traversal by introduction: a member that hears two of its peers tells each where it
//! sees the other, and both send to that address at once (a simultaneous open).
//!
//! Behind a NAT a device is reached only at the public address its NAT gave its socket, and
//! most NATs let a datagram in only from an address the socket sent to first. Two devices
//! behind two NATs therefore cannot reach each other from a configured address, but a third
//! member C both reach can: C knows each one's public address from its packets (`Packet`
//! addresses, `addresses.rs`). So, on `Config::introductions`:
//!
//! 1. **Introducing.** Each round, C takes the pairs (A, B) of its peers whose addresses a
//!    packet confirmed and that it heard from within `PEER_ACTIVE_FOR`, and sends A an
//!    `Introduction { peer: B, addr }` and B one naming A, at most `INTRODUCTIONS_PER_ROUND_MAX`
//!    pairs a round (each introduction in `INTRODUCTION_COPIES` copies) and each pair at most
//!    once per `INTRODUCTION_INTERVAL`, or once per
//!    `PUNCH_AGAIN_AFTER` while C relays their datagrams (their punch failed: an introduction
//!    lost on the way, or a NAT that lets nothing in; a new one tries again soon). C cannot know
//!    whether A and B already talk, so it introduces proactively; a receiver that does ignores
//!    it, at the cost of two small datagrams per pair per interval.
//! 2. **Punching.** A receiver that has no recent exchange with the peer makes it a peer (it
//!    is an active member: its key is in the roster) and takes the address as a hint
//!    (`AddressSource::Introduced`, never over an address a packet confirmed), then sends it a
//!    summary at once and every `PUNCH_SPACING`, `PUNCH_PACKETS` in all, until an authentic
//!    packet from it arrives. Each side's first packet opens its own NAT toward the other's
//!    public address, so the other's next packet gets in; the ordinary roaming rule
//!    (`follow_newest_packet`) then confirms the address from the peer's own packet.
//!    Introducers may see a peer at different addresses (one on the peer's home LAN sees its
//!    private address, one across the internet its NAT's), and only the receiver can tell
//!    which one reaches it: so, as ICE does with candidates, every address introduced while a
//!    punch is under way joins it (up to `PUNCH_CANDIDATES_MAX`), and each punch packet goes
//!    to every candidate, each its own datagram to that address (`Transmit::address`).
//! 3. **Relaying.** A punch whose last packet went unanswered for `PUNCH_SPACING` found no
//!    way through (a symmetric NAT): the peer's datagrams go through the introducer from then
//!    on, until a direct packet from the peer arrives (`relay.rs`).
//!
//! What an introduction can do: the pairwise tag proves it came from a member, and it only
//! names where to send packets that the named peer's key must answer. A member gone bad can
//! point a peer at a wrong address for a peer it has not confirmed: that costs the victim at
//! most `PUNCH_PACKETS` small datagrams per candidate, `PUNCH_CANDIDATES_MAX` candidates
//! (each one added restarts the count once) per introduced peer per `PUNCH_AGAIN_AFTER`
//! (toward addresses of the bad member's choosing: a reflection far smaller than what the
//! member could send itself) and the peer stays unreachable until its own packet arrives, as with
//! any wrong hint. It cannot move an address a packet confirmed, nor make a non-member a peer.
//!
//! Bounded: `introduced` holds at most one entry per pair of peers (PEERS_MAX² / 2) and is
//! pruned of departed peers every round; `punches` at most one per peer.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{AddressSource, Node};
use crate::id::DeviceId;
use crate::member::Status;
use crate::packet::Payload;
use crate::store::Store;
use crate::sync::prefix::Prefix;
use crate::time::{Duration, Instant};

/// A pair is introduced again after this long: NAT mappings expire (30 s to minutes), and a
/// pair that lost its link finds it again within about this.
pub const INTRODUCTION_INTERVAL: Duration = Duration(30_000_000);
/// Copies of each introduction sent (both at once: losses on a path are mostly
/// independent per datagram).
pub const INTRODUCTION_COPIES: u32 = 2;
/// Pairs introduced per round at most: 2 × `INTRODUCTION_COPIES` datagrams each, so at most 16
/// extra datagrams a round
/// whatever the peer count.
pub const INTRODUCTIONS_PER_ROUND_MAX: usize = 4;
/// A peer heard from within this long counts as reachable (to be introduced) or as linked
/// (an introduction to it is not needed).
pub const PEER_ACTIVE_FOR: Duration = Duration(30_000_000);
/// Punch packets sent toward an introduced peer at most: enough that one lands after the other
/// side's first packet opened its NAT, whichever side's introduction arrived first.
pub const PUNCH_PACKETS: u32 = 5;
/// Gap between punch packets: about a round trip on the wide internet.
pub const PUNCH_SPACING: Duration = Duration(200_000);
/// A new introduction to the same peer starts a punch again only after this long.
pub const PUNCH_AGAIN_AFTER: Duration = Duration(10_000_000);
/// Addresses one punch tries at most: a peer is seen from its own LAN, from across the
/// internet, and perhaps from a second network; more would only let a bad introducer make
/// a device send more.
pub const PUNCH_CANDIDATES_MAX: usize = 3;

/// Introductions made and punches under way.
#[derive(Debug, Default)]
pub(super) struct Punching {
    /// When each pair (in name order) was last introduced by this node.
    introduced: BTreeMap<(DeviceId, DeviceId), Instant>,
    /// Punches toward introduced peers, at most one per peer.
    punches: BTreeMap<DeviceId, Punch>,
}

#[derive(Debug, Clone)]
struct Punch {
    /// Who introduced the peer first: the relay if the punch goes unanswered.
    introducer: DeviceId,
    /// The addresses introduced for the peer, in the order they came: at most
    /// `PUNCH_CANDIDATES_MAX`.
    candidates: Vec<SocketAddr>,
    /// When it started: a new introduction punches again only `PUNCH_AGAIN_AFTER` later.
    started: Instant,
    next_at: Instant,
    left: u32,
}

impl Punching {
    /// The earliest punch packet due, for `Node::next_timeout`.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.punches.values().map(|p| p.next_at).min()
    }
}

impl<S: Store> Node<S> {
    fn heard_recently(&self, peer: &DeviceId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .and_then(|p| p.last_exchange)
            .is_some_and(|at| now.as_micros() < at.as_micros() + PEER_ACTIVE_FOR.as_micros())
    }

    /// Once a round: introduces to each other pairs of peers both heard from lately at
    /// addresses their packets confirmed.
    pub(super) fn introduce_pairs(&mut self, now: Instant) {
        if !self.config.introductions || !self.online {
            return;
        }
        let peers = &self.peers;
        self.punching
            .introduced
            .retain(|(a, b), _| peers.contains_key(a) && peers.contains_key(b));
        let reachable: Vec<(DeviceId, SocketAddr)> = self
            .peers
            .keys()
            .filter(|p| self.heard_recently(p, now))
            .filter_map(|p| match self.peer_address(p) {
                Some((addr, AddressSource::Packet)) => Some((p.clone(), addr)),
                _ => None,
            })
            .collect();
        let mut pairs = 0;
        for (i, (a, a_addr)) in reachable.iter().enumerate() {
            for (b, b_addr) in &reachable[i + 1..] {
                if pairs >= INTRODUCTIONS_PER_ROUND_MAX {
                    return;
                }
                let key = (a.clone(), b.clone());
                let due = self.punching.introduced.get(&key).is_none_or(|&at| {
                    let interval = if self.relays.relayed_since(a, b, at) {
                        PUNCH_AGAIN_AFTER
                    } else {
                        INTRODUCTION_INTERVAL
                    };
                    now.as_micros() >= at.as_micros() + interval.as_micros()
                });
                if !due || a_addr == b_addr {
                    continue;
                }
                // Twice each: one lost introduction would otherwise cost the pair a whole
                // interval (and its punch), and two small datagrams are cheap.
                for _ in 0..INTRODUCTION_COPIES {
                    self.send(
                        a,
                        Payload::Introduction {
                            peer: b.clone(),
                            addr: *b_addr,
                        },
                    );
                    self.send(
                        b,
                        Payload::Introduction {
                            peer: a.clone(),
                            addr: *a_addr,
                        },
                    );
                }
                self.stats.introductions_sent += 2 * INTRODUCTION_COPIES as u64;
                self.punching.introduced.insert(key, now);
                pairs += 1;
            }
        }
    }

    /// `from` says `peer` is at `addr`: unless already linked to it, take the hint and punch.
    pub(super) fn on_introduction(
        &mut self,
        now: Instant,
        from: &DeviceId,
        peer: DeviceId,
        addr: SocketAddr,
    ) {
        if !self.config.introductions {
            return self.stats.drop("introduction_off");
        }
        let active = self
            .membership
            .roster()
            .members
            .get(&peer)
            .is_some_and(|m| m.status == Status::Active);
        if &peer == self.device() || &peer == from || !active {
            // Only a member gone bad (or a roster that moved on meanwhile) names these.
            return self.stats.drop("bad_introduction");
        }
        let linked = self.heard_recently(&peer, now)
            && matches!(self.peer_address(&peer), Some((_, AddressSource::Packet)));
        if linked {
            return;
        }
        if let Some(punch) = self.punching.punches.get_mut(&peer) {
            if now.as_micros() < punch.started.as_micros() + PUNCH_AGAIN_AFTER.as_micros() {
                // Another view of where the peer is: a candidate too, its own full punch.
                if !punch.candidates.contains(&addr)
                    && punch.candidates.len() < PUNCH_CANDIDATES_MAX
                {
                    punch.candidates.push(addr);
                    punch.left = PUNCH_PACKETS;
                    punch.next_at = now;
                    self.punches_due(now);
                }
                return;
            }
        }
        if !self.ensure_peer(&peer) {
            return self.stats.drop("introduction_no_room");
        }
        self.learn_address(&peer, addr, AddressSource::Introduced);
        // A confirmed address stays; punching toward it would only repeat what rounds do.
        if self.peer_address(&peer).map(|(a, _)| a) != Some(addr) {
            return;
        }
        self.punching.punches.insert(
            peer,
            Punch {
                introducer: from.clone(),
                candidates: vec![addr],
                started: now,
                next_at: now,
                left: PUNCH_PACKETS,
            },
        );
        self.punches_due(now);
    }

    /// The roaming rule took `peer`'s newest packet as having come direct
    /// (`addresses.rs::follow_newest_packet`), which also confirmed its address: a punch
    /// toward it is over, and no relay is needed.
    pub(super) fn heard_directly(&mut self, peer: &DeviceId) {
        self.punching.punches.remove(peer);
        self.direct_again(peer);
    }

    /// Sends the punch packets that are due. A punch ends when the peer's own packet arrives
    /// direct (`heard_directly`); a relayed one does not end it.
    pub(super) fn punches_due(&mut self, now: Instant) {
        let due: Vec<DeviceId> = self
            .punching
            .punches
            .iter()
            .filter(|(_, p)| p.next_at <= now)
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in due {
            let punch = self.punching.punches[&peer].clone();
            if !self.peers.contains_key(&peer) || !self.online {
                self.punching.punches.remove(&peer);
                continue;
            }
            if punch.left == 0 {
                // The last packet had its round trip and nothing came: no way through (a
                // symmetric NAT); go through the introducer (`relay.rs`).
                self.punching.punches.remove(&peer);
                self.relay_through(&peer, &punch.introducer);
                continue;
            }
            // A summary: the smallest packet the peer answers (with its own summary, or a
            // greeting teaching its epoch), and useful sync if it gets through. Punch packets
            // go to each candidate itself, even while a relay carries the rest: they are what
            // finds a path again.
            for &address in &punch.candidates {
                let summary = self.summary();
                let payload = Payload::Summary {
                    prefix: Prefix::ROOT,
                    summary,
                };
                self.send_to_address(&peer, payload, address);
                self.stats.punch_packets += 1;
            }
            let punch = self.punching.punches.get_mut(&peer).expect("due above");
            punch.left -= 1;
            punch.next_at = now + PUNCH_SPACING;
        }
    }
}
