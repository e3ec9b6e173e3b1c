//! Eager forwarding: an event a node receives from a peer and stores for the first time goes
//! on at once to up to `forward_fanout` other peers, so a post crosses a line or a ring at link
//! speed instead of one anti-entropy round per hop. Anti-entropy stays the repair: whatever
//! forwarding skips or loses is found by the next round, as before.
//!
//! To whom: the node's peers except the one the event came from, its author (a local append is
//! pushed to every peer of the author), a peer leaving the roster, a peer whose epoch is not
//! known yet (its packets would be refused; the first round's greeting teaches it, and
//! anti-entropy carries the event), a peer silent for a few rounds (down or cut off), and a
//! peer pruned for the event's author (below). Only events sealed under our current key, and
//! membership events (`forward` says why). Never with `relay` off, never offline. Of those, `forward_fanout` at most, drawn with the
//! node's seeded generator only when there are more, so a line or a ring draws nothing.
//!
//! Why no storm: a node forwards an event only when it stores it for the first time (the id
//! index says so, across restarts too), so each node forwards each event at most once, to at
//! most `forward_fanout` peers: at most N × `forward_fanout` datagrams per event in a world of
//! N devices, never N². Duplicates that remain are pruned, after Plumtree (Leitão et al.,
//! 2007), per (author, peer) "tie":
//!
//! - A new tie probes: its first events (up to `PROBE_BURST_MAX`, a post and its attachment)
//!   go at once; further events of that author wait about a round trip (`held`), then go if
//!   no duplicate came back. So a burst (a batch, a catch-up stream) into a dense mesh costs a
//!   probe's worth of duplicates, not the burst.
//! - Prune: a peer that pushes us an event of author A that we already hold, and that is not
//!   A and not the peer we got it from, got it by a path other than us (a node never forwards
//!   an event back to where it came from), so A's events stop going to it for `PRUNE_ROUNDS`
//!   sync intervals. We echo that one event back to it once (unless we had sent it ourselves):
//!   the duplicate makes it prune us too, so both ends of the redundant link stop. No new
//!   packet kind: the echo is an ordinary event push.
//! - Graft: when the owed stream (anti-entropy) sends a peer an event of A, that peer lacked
//!   it, so any prune of A toward it is lifted and the next event probes again.
//!
//! In a full mesh the author's own push reaches everyone, and after the first events of each
//! author the forwards between receivers are pruned; a prune is per author, so each author's
//! events keep a spanning tree (a ring prunes only opposite the author). Anti-entropy stays
//! the lazy repair: whatever a prune, a held burst or a lost forward skips, the next round
//! finds, as before forwarding existed.
//!
//! Why it cannot amplify: only an event that is new here, opened (community key, roster
//! author, signature, id) and stored is forwarded, once, to at most `forward_fanout`
//! (≤ `REPLY_FACTOR`) peers; an echo answers one duplicate push with the same event, at most
//! once per event and peer. Replays are dropped by the wire before this, duplicates by the
//! index, bad events before storage. So the bytes a node forwards are at most
//! `forward_fanout` × the event bytes it received, each of which a member authored and every
//! device would fetch by anti-entropy anyway. Forwards are events, like the owed stream and
//! local pushes, so they do not draw on the answer budget (`budget.rs`); they go at the rate
//! they arrive, which the upstream node's push or paced stream already set.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::RngCore;

use super::Node;
use crate::id::{DeviceId, EventId};
use crate::packet::WireEvent;
use crate::store::Store;
use crate::time::{Duration, Instant};

/// Sync intervals a prune lasts unless a graft lifts it first: five minutes at 5 s rounds, so
/// a full mesh re-probes each pair and author about that often (a forward and an echo). A
/// path that broke meanwhile costs only latency: anti-entropy still carries the events, and
/// the first one it carries to the peer grafts it again.
const PRUNE_ROUNDS: u64 = 60;
/// Sync intervals without a summary from a peer after which it gets no forwards: two lost
/// summaries at heavy loss are common, three in a row rare for a peer that is up.
const SILENT_ROUNDS_MAX: u64 = 3;
/// Ties kept at most: one per (author, peer), a roster of 64 authors over 64 peers. Past it
/// a new pair is forwarded to untracked (eager: more duplicates, never a missed event).
const TIES_MAX: usize = 4_096;
/// Events held per tie while its probe is out: a burst of one author's appends, or a
/// catch-up stream. Past it they are left to anti-entropy.
const HELD_PER_TIE_MAX: usize = 64;
/// Events a probe sends at once before holding the rest: a message and the chunks of its
/// attachment (8 KB: ten chunks of `FILE_CHUNK_LEN_MAX`, eleven events) go together, so a
/// new tie delays no ordinary post; a longer burst (a batch, a catch-up stream) waits for
/// the probe.
const PROBE_BURST_MAX: u32 = 12;
/// The shortest probe: a duplicate takes a round trip to come back, at least this on a LAN.
const PROBE_MIN: Duration = Duration::from_millis(20);
/// Recently stored events, to know whose tree a duplicate push belongs to without opening it
/// again. A forwarded duplicate arrives within a few link latencies of the first copy; 1,024
/// events cover that at any realistic rate, and an older duplicate only misses a prune.
const RECENT_MAX: usize = 1_024;

/// A recently stored event: its author, and the peers it went to or came back from.
#[derive(Debug)]
struct Recent {
    author: DeviceId,
    /// The peer it came from: it holds the event, whatever its filters said in flight.
    from: DeviceId,
    /// When it came: after a round the peer's filters are newer than the event, and if they
    /// still say it lacks it, it lost it (a power cut) and gets it back like any other.
    stored_at: Instant,
    /// Peers it was forwarded (or held for, or echoed) to, at most `PEERS_MAX`: a duplicate
    /// from one of them is answered by nothing, so an echo is never echoed and never repeated.
    sent_to: Vec<DeviceId>,
}

/// Whether an author's events go to a peer (Plumtree's eager and lazy sets, per author).
#[derive(Debug)]
enum Tie {
    /// `sent` events went out (at most `PROBE_BURST_MAX`); until `until`, the author's further
    /// events wait in `held`, so a burst to a peer that already gets them costs a few
    /// duplicates, not the burst.
    Probing {
        until: Instant,
        sent: u32,
        held: Vec<EventId>,
    },
    /// No duplicate came back: forwarded at once.
    Eager,
    /// A duplicate came: not forwarded until `until`, or a graft.
    Pruned { until: Instant },
}

/// What forwarding remembers.
#[derive(Debug, Default)]
pub(super) struct Forwarding {
    /// (author, peer) → how the author's events go to the peer; absent: probe first.
    ties: BTreeMap<(DeviceId, DeviceId), Tie>,
    /// The probing ties by when their probe ends.
    probes: BTreeSet<(Instant, DeviceId, DeviceId)>,
    /// Recently stored events, oldest first, at most `RECENT_MAX`.
    order: VecDeque<EventId>,
    recent: BTreeMap<EventId, Recent>,
}

impl Forwarding {
    fn remember(&mut self, id: EventId, author: &DeviceId, from: &DeviceId, now: Instant) {
        if self.order.len() == RECENT_MAX {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
        self.order.push_back(id);
        let recent = Recent {
            author: author.clone(),
            from: from.clone(),
            stored_at: now,
            sent_to: Vec::new(),
        };
        self.recent.insert(id, recent);
    }

    fn is_pruned(&self, author: &DeviceId, peer: &DeviceId, now: Instant) -> bool {
        matches!(
            self.ties.get(&(author.clone(), peer.clone())),
            Some(Tie::Pruned { until }) if now < *until
        )
    }

    /// Sets a tie, keeping the probe index in step. False if there is no room for a new one.
    fn set(&mut self, key: (DeviceId, DeviceId), tie: Tie) -> bool {
        if !self.ties.contains_key(&key) && self.ties.len() >= TIES_MAX {
            return false;
        }
        if let Some(Tie::Probing { until, .. }) = self.ties.get(&key) {
            self.probes.remove(&(*until, key.0.clone(), key.1.clone()));
        }
        if let Tie::Probing { until, .. } = &tie {
            self.probes.insert((*until, key.0.clone(), key.1.clone()));
        }
        self.ties.insert(key, tie);
        true
    }

    /// When the earliest probe ends.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.probes.first().map(|(at, _, _)| *at)
    }

    /// A peer left: nothing is kept for it.
    pub(super) fn forget(&mut self, peer: &DeviceId) {
        self.ties.retain(|(_, p), _| p != peer);
        self.probes.retain(|(_, _, p)| p != peer);
    }
}

impl<S: Store> Node<S> {
    /// Forwards `id` (just stored for the first time, authored by `author`, received from
    /// `from`; `membership`: a membership event) to up to `forward_fanout` peers that may
    /// lack it.
    pub(super) fn forward(
        &mut self,
        from: &DeviceId,
        author: &DeviceId,
        id: EventId,
        sealed: &[u8],
        membership: bool,
    ) {
        if !self.config.eager_forward || !self.config.relay || !self.online {
            return;
        }
        // Only what is sealed under the key we seal under now, and membership events (they
        // carry the removals that stop leaks). An event under an older key is a laggard's:
        // its author may have known of a removal whose new key it had not received yet, and a
        // peer here that has not heard of the removal either would pass it on to the removed
        // device at once. Anti-entropy carries it a round later, by when the removal that
        // travels with it has usually arrived: the race forwarding would otherwise widen.
        let current = self.config.community.sealing_key().map(|(id, _)| id);
        if !membership && crate::event::sealed_key_id(sealed) != current {
            self.stats.forward_stale_epoch += 1;
            return;
        }
        self.forward.remember(id, author, from, self.now);
        let now = self.now;
        let mut targets: Vec<DeviceId> = self
            .peers
            .keys()
            .filter(|peer| {
                *peer != from
                    && *peer != author
                    && !self.membership.is_leaving(peer)
                    && self.wire.knows_epoch_of(peer)
                    && self.heard_lately(peer)
                    && !self.forward.is_pruned(author, peer, now)
            })
            .cloned()
            .collect();
        let fanout = self.config.forward_fanout;
        if targets.len() > fanout {
            // A partial Fisher-Yates shuffle, as `pick_round_peers`: the first `fanout` slots
            // end up a uniform pick; sorted after, so the output does not depend on the draw
            // order.
            for slot in 0..fanout {
                let remaining = (targets.len() - slot) as u64;
                let pick = slot + (self.rng.next_u64() % remaining) as usize;
                targets.swap(slot, pick);
            }
            targets.truncate(fanout);
            targets.sort();
        }
        if let Some(recent) = self.forward.recent.get_mut(&id) {
            recent.sent_to.extend(targets.iter().cloned());
        }
        for peer in targets {
            let key = (author.clone(), peer.clone());
            match self.forward.ties.get_mut(&key) {
                Some(Tie::Eager) => {}
                Some(Tie::Probing { until, sent, .. })
                    if now < *until && *sent < PROBE_BURST_MAX =>
                {
                    *sent += 1;
                }
                Some(Tie::Probing { until, held, .. }) if now < *until => {
                    if held.len() < HELD_PER_TIE_MAX {
                        held.push(id);
                    }
                    continue;
                }
                // A probe that ended without a duplicate (its timer not run yet): eager now.
                Some(Tie::Probing { .. }) => self.end_probe(&key),
                // No tie yet, or a prune that expired: this event is the probe.
                _ => {
                    let until = now + self.probe_window(&peer);
                    let probe = Tie::Probing {
                        until,
                        sent: 1,
                        held: Vec::new(),
                    };
                    self.forward.set(key, probe);
                }
            }
            self.stats.events_forwarded += 1;
            // Through the outbox: events forwarded from one input share datagrams.
            self.queue_event(&peer, WireEvent::known(id, sealed.to_vec()));
            self.want_forward_check(&peer);
        }
    }

    /// Whether `peer`'s root summary came within the last `SILENT_ROUNDS_MAX` sync intervals: a
    /// peer that is down, cut off or gone quiet gets no forwards (they would be lost, or
    /// pile up on a link that is not there), nor does a member that sends but never syncs;
    /// anti-entropy brings it up to date once it takes part again.
    pub(super) fn heard_lately(&self, peer: &DeviceId) -> bool {
        let silence_max = Duration(self.config.sync_interval.as_micros() * SILENT_ROUNDS_MAX);
        self.links[peer]
            .summary_at
            .is_some_and(|at| self.now.saturating_since(at) <= silence_max)
    }

    /// How long a probe waits for a duplicate: a round trip and a half to the peer, as a
    /// follow-up does, at least `PROBE_MIN`.
    fn probe_window(&self, peer: &DeviceId) -> Duration {
        let rtt_us = self.peers[peer].rtt_estimate_us;
        Duration(rtt_us + rtt_us / 2).max(PROBE_MIN)
    }

    /// The ties whose probe ended without a duplicate: eager, and what they held goes now.
    pub(super) fn forwards_due(&mut self) {
        let now = self.now;
        while let Some((at, author, peer)) = self.forward.probes.first().cloned() {
            if at > now {
                return;
            }
            self.end_probe(&(author, peer));
        }
    }

    fn end_probe(&mut self, key: &(DeviceId, DeviceId)) {
        let Some(Tie::Probing { until, held, .. }) = self.forward.ties.remove(key) else {
            return;
        };
        self.forward
            .probes
            .remove(&(until, key.0.clone(), key.1.clone()));
        self.forward.ties.insert(key.clone(), Tie::Eager);
        let peer = &key.1;
        if !self.peers.contains_key(peer) || !self.online {
            return;
        }
        for id in held {
            // A store never forgets; a failing read only costs the prompt forward.
            if let Ok(Some(sealed)) = self.store.get(&id) {
                self.stats.events_forwarded += 1;
                self.queue_event(peer, WireEvent::known(id, sealed));
                self.want_forward_check(peer);
            }
        }
    }

    /// Whether `peer` sent us `id` within the last sync interval: the owed stream need not
    /// send it back (a filter of its that crossed the event in flight said it lacked it), and
    /// a copy sent back would look like a duplicate from another path and prune a tie that
    /// carries events. Older than that, a peer that still lacks it lost it, and gets it.
    pub(super) fn came_from(&self, peer: &DeviceId, id: &EventId) -> bool {
        let fresh_for = self.config.sync_interval;
        self.forward.recent.get(id).is_some_and(|recent| {
            recent.from == *peer && self.now.saturating_since(recent.stored_at) <= fresh_for
        })
    }

    /// The owed stream is sending `peer` event `id`: the peer lacked it, so whatever path
    /// pruned it for the event's author is not delivering. Forward that author's events to
    /// it again, after a probe (Plumtree's graft, from what anti-entropy found).
    pub(super) fn graft(&mut self, peer: &DeviceId, id: &EventId) {
        if let Some(recent) = self.forward.recent.get(id) {
            let key = (recent.author.clone(), peer.clone());
            if matches!(self.forward.ties.get(&key), Some(Tie::Pruned { .. })) {
                self.forward.ties.remove(&key);
                self.stats.forward_grafts += 1;
            }
        }
    }

    /// `from` pushed us `id`, which we already hold: `from` got it by another path, so the
    /// author's events stop going to it for a while (and what a probe held for it is
    /// dropped). Only for one-event pushes from a peer other than the author and the peer
    /// the event came from.
    ///
    /// The peer should stop forwarding to us too, and it learns that only from a duplicate
    /// of ours: unless we sent it this event ourselves (then it holds one of ours already),
    /// we echo the event back once. That echo is the prune message, in a packet the peer
    /// already reads; it answers one event pushed with the same event, at most once per
    /// event and peer, and is never echoed again (we are in its `sent_to`, it in ours).
    pub(super) fn note_duplicate_push(&mut self, from: &DeviceId, id: &EventId) {
        if !self.config.eager_forward {
            return;
        }
        let Some(recent) = self.forward.recent.get_mut(id) else {
            return;
        };
        // The author pushes every append to every peer, and the peer we got it from may send
        // it again (its owed stream, from a filter that crossed it in flight): neither says
        // the peer has another path.
        if recent.author == *from || recent.from == *from {
            return;
        }
        let author = recent.author.clone();
        let echo = !recent.sent_to.contains(from);
        if echo {
            recent.sent_to.push(from.clone());
        }
        let until = self.now + Duration(self.config.sync_interval.as_micros() * PRUNE_ROUNDS);
        if self
            .forward
            .set((author, from.clone()), Tie::Pruned { until })
        {
            self.stats.forward_prunes += 1;
        }
        if echo && self.online {
            // A store never forgets; a failing read only costs the echo.
            if let Ok(Some(sealed)) = self.store.get(id) {
                self.stats.forward_echoes += 1;
                self.queue_event(from, WireEvent::known(*id, sealed));
            }
        }
    }
}
