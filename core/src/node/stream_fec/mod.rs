//! Erasure coding of event streams: the EVENT packets a node sends one peer are grouped, up
//! to `RECOVERY_ORIGINALS_MAX` packets or `GROUP_WAIT` after the first, and each group is
//! followed by `m` RECOVERY packets (Reed-Solomon over the payloads, the blob transfer's
//! `reed-solomon-simd`), `m` from the loss the link shows. The receiver keeps the peer's
//! recent EVENT payloads and, once any `k` of a group's `k + m` packets are here, rebuilds the
//! lost payloads and handles their events exactly as if their packets had arrived: they are
//! opened, checked and deduplicated like any event. So at loss `p` a lost push or stream
//! packet is repaired within a round trip by the stream itself, not found by the next round
//! of reconciliation and asked for again (issue 26, item 6).
//!
//! Groups are named by the packets' counters (`packet/recovery.rs`), so EVENT packets carry
//! nothing more; a recovery packet is sealed and tagged like any other, so only the peer can
//! send one, once (the replay window).
//!
//! **The loss.** A node judges a link by the gaps in the counters of the packets the peer
//! sends it, and codes what it sends the peer at that rate: the simulator's links and most
//! real paths lose about as much each way, and the peer's packets are the one measure that
//! needs no new field and no answer.
//!
//! **Not amplification.** A recovery packet is answered with nothing. It is decoded at most
//! once per group, only when the group's `k` shards are here (each a datagram the peer sent),
//! and the decode reads at most `k ≤ 16` payloads the peer sent too: work in proportion to
//! what the peer sent. What it rebuilds is held only in memory, bounded per peer, and is
//! stored only after the events' usual checks (id, key, author, signature); a member gone bad
//! can make a device check events it invented, which it could send as EVENT packets anyway.

mod coding;

use super::{Link, Node};
use crate::id::DeviceId;
use crate::packet::DATAGRAM_SIZE_MAX;
use crate::packet::{decode_events, encode_events, overhead, RecoveryShard, WireEvent};
use crate::store::Store;
use crate::time::{Duration, Instant};

use coding::{LossEstimate, OpenGroup, Outcome, Window};

/// How long a group stays open after its first packet: a quarter of a short round trip. The
/// originals go out at once; only the recovery waits, so a lone push is repaired about a
/// round trip after it was lost, and a stream's packets sent together share a group.
const GROUP_WAIT: Duration = Duration::from_millis(20);

/// One link's coding state, both ways.
#[derive(Debug, Default)]
pub(super) struct LinkFec {
    open: OpenGroup,
    window: Window,
    loss: LossEstimate,
}

impl LinkFec {
    /// When the open group's recovery is due.
    pub(super) fn due_at(&self) -> Option<Instant> {
        self.open.started_at.map(|at| at + GROUP_WAIT)
    }
}

impl<S: Store> Node<S> {
    /// Recovery payload bytes that fit one datagram to `peer`.
    fn recovery_room(&self, peer: &DeviceId) -> usize {
        DATAGRAM_SIZE_MAX - overhead(self.device(), peer)
    }

    /// An EVENT packet with `counter` is being sealed for `peer`: it joins the open group
    /// (closing the group first if it does not fit). Returns the closed group's shards.
    pub(super) fn fec_note_sent(
        &mut self,
        peer: &DeviceId,
        counter: u64,
        events: &[WireEvent],
    ) -> Vec<RecoveryShard> {
        let room = self.recovery_room(peer);
        let now = self.now;
        // A peer that does not sync (down, cut off, or a member that sends but never syncs,
        // whose counters need not be a node's) gets no shards, as it gets no forwards.
        let syncing = self.links.contains_key(peer) && self.heard_lately(peer);
        let Some(link) = self.links.get_mut(peer) else {
            return Vec::new();
        };
        if !syncing {
            link.fec.open.close(0);
            return Vec::new();
        }
        if coding::recovery_for(1, link.fec.loss.loss) == 0 {
            // A clean link: no coding, and nothing kept.
            return close(link);
        }
        let payload = encode_events(events);
        let mut closed = Vec::new();
        if !link.fec.open.fits(counter, payload.len(), room) {
            closed = close(link);
        }
        if link.fec.open.fits(counter, payload.len(), room) {
            link.fec.open.push(now, counter, payload);
        } else {
            // Too long to code beside a recovery header: left to anti-entropy, as before.
            self.stats.drop("recovery_uncoded");
        }
        closed
    }

    /// Sends the recovery shards of groups open for `GROUP_WAIT`.
    pub(super) fn fec_groups_due(&mut self) {
        let due = self.links_due(|l| l.fec.due_at());
        for peer in due {
            let shards = close(self.links.get_mut(&peer).expect("due link"));
            self.send_recovery(&peer, shards);
        }
    }

    pub(super) fn send_recovery(&mut self, peer: &DeviceId, shards: Vec<RecoveryShard>) {
        for shard in shards {
            self.stats.recovery_sent += 1;
            self.send(peer, crate::packet::Payload::Recovery(shard));
        }
    }

    /// Any authentic packet from `peer`: its counter tells the link's loss.
    pub(super) fn fec_note_packet(&mut self, peer: &DeviceId, epoch: u64, counter: u64) {
        if let Some(link) = self.links.get_mut(peer) {
            link.fec.loss.note(epoch, counter);
        }
    }

    /// An EVENT packet from `peer`: kept to rebuild its group's losses, on a coded link.
    pub(super) fn fec_note_events(
        &mut self,
        peer: &DeviceId,
        epoch: u64,
        counter: u64,
        events: &[WireEvent],
    ) {
        if let Some(link) = self.links.get_mut(peer) {
            link.fec
                .window
                .note_payload(epoch, counter, encode_events(events));
        }
    }

    /// A RECOVERY packet from `peer`: what it rebuilds is handled as the EVENT packets it
    /// replaces.
    pub(super) fn on_recovery(
        &mut self,
        now: Instant,
        peer: &DeviceId,
        epoch: u64,
        shard: RecoveryShard,
    ) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        match link.fec.window.note_shard(epoch, shard) {
            Outcome::Rebuilt(payloads) => {
                for payload in payloads {
                    match decode_events(&payload) {
                        Ok(events) => {
                            self.stats.recovery_rebuilt += 1;
                            self.on_events(now, peer, &events);
                        }
                        // Only a member gone bad (or a bug) codes a payload that does not
                        // decode: the tag vouched for the shards.
                        Err(_) => self.stats.drop("recovery_garbled"),
                    }
                }
            }
            Outcome::Waiting | Outcome::Unneeded => {}
            Outcome::Refused(reason) => self.stats.drop(reason),
        }
    }
}

/// Closes a link's open group at the link's loss: its recovery shards.
fn close(link: &mut Link) -> Vec<RecoveryShard> {
    let m = coding::recovery_for(link.fec.open.len(), link.fec.loss.loss);
    link.fec.open.close(m)
}
