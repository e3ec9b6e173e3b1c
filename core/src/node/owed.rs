//! Catch-up at link speed: events a peer lacks are owed to it and streamed on timers at a rate
//! that grows while the peer acknowledges progress and halves on apparent loss (AIMD, with a
//! slow start), within `stream_rate_max`, and with at most a window of events in flight
//! (`IN_FLIGHT_MAX`), so a fast stream waits for a busy receiver instead of overflowing its
//! socket.
//!
//! A peer's filters, sketches and empty buckets tell what it lacks; those ids are owed until
//! sent. Its summaries are the acknowledgements: the count rising by about what was sent one
//! round trip earlier is progress. While a list is owed, the difference is not reconciled
//! again (that was the cost of catch-up: the whole difference every round). Nothing waits for
//! an answer: a list that stops moving for two intervals is dropped, and the next round finds
//! what is still missing afresh.

use std::collections::{BTreeSet, VecDeque};

use super::{Node, NodeEvent};
use crate::id::{DeviceId, EventId};
use crate::packet::WireEvent;
use crate::store::Store;
use crate::time::{Duration, Instant};

/// Ids owed to one peer at most. 100,000 ids are 3.2 MB per peer and, at the default cap,
/// five seconds of streaming: enough that a round's reconciliation feeds the stream for
/// longer than the round, small enough that 64 peers stay within a few hundred MB in the
/// worst case. Ids past it are found by a later reconciliation.
pub(super) const OWED_MAX: usize = 100_000;
/// Shortest wait between two sends of a stream: batches of events share datagrams.
const PACE_TICK_MIN: Duration = Duration::from_millis(10);
/// Send entries kept to judge acknowledgements one round trip late.
const SENT_LOG_MAX: usize = 1_024;
/// Events sent and not yet shown by the peer's count, at most: about 1,200 datagrams, 2.7 MB
/// of a receiver's kernel buffer (4 MiB, `UDP_BUFFER_BYTES`), so a fast stream waits for the
/// receiver's node rather than overflowing its socket.
const IN_FLIGHT_MAX: u64 = 8_192;
/// Slow start's growth per acknowledgement of progress. TCP doubles per round trip; a peer
/// acknowledges a stream 10 ms after events arrive (`ACK_DELAY` in `followup.rs`; it was the
/// follow-up delay, at least 100 ms), so doubling per acknowledgement took a fresh stream nine
/// acknowledgements, over a second, from its floor (51 events/s at 5 s rounds) to the cap
/// of the day: most of a new device's catch-up of 10,000 events on loopback (the join bench).
/// Four times is about TCP's pace on a path of 100 ms; on a short one the window
/// (`IN_FLIGHT_MAX`) is what bounds the overshoot.
const SLOW_START_GROWTH: u64 = 4;

#[derive(Debug)]
pub(super) struct Stream {
    owed: BTreeSet<EventId>,
    /// Ids sent lately, oldest first: a filter or summary that crossed them in flight says
    /// the peer lacks them, and they are not owed again until `RECENT_FOR` has passed (if
    /// one was lost, a later reconciliation finds it). At most `OWED_MAX`.
    recent: VecDeque<(Instant, EventId)>,
    recent_ids: BTreeSet<EventId>,
    /// Events per second.
    rate: u64,
    slow_start: bool,
    /// Thousandths of an event that may be sent now.
    tokens_milli: u64,
    refilled_at: Instant,
    /// Events sent since start, and when: `(time, total after sending)`.
    sent_total: u64,
    sent_log: VecDeque<(Instant, u64)>,
    /// The peer's count at its last summary, and how many sent events that summary covered.
    acked_count: Option<u32>,
    acked_sent: u64,
    /// Sent events resolved: shown by the peer's count's rise, or judged lost by an
    /// acknowledgement a round trip later; at most `sent_total`. The rest are in flight.
    delivered_total: u64,
    /// The peer's count's rise since the stream's first acknowledgement: what opens the
    /// window.
    risen_total: u64,
    /// The peer's count at its latest summary: a rise is progress.
    seen_count: u32,
    progress_at: Instant,
    pub(super) next_at: Option<Instant>,
}

impl Stream {
    pub(super) fn new(now: Instant, rate: u64, burst: u64) -> Stream {
        Stream {
            owed: BTreeSet::new(),
            recent: VecDeque::new(),
            recent_ids: BTreeSet::new(),
            rate,
            slow_start: true,
            tokens_milli: burst * 1_000,
            refilled_at: now,
            sent_total: 0,
            sent_log: VecDeque::new(),
            acked_count: None,
            acked_sent: 0,
            delivered_total: 0,
            risen_total: 0,
            seen_count: 0,
            progress_at: now,
            next_at: None,
        }
    }
    pub(super) fn is_flowing(&self) -> bool {
        !self.owed.is_empty()
    }
    pub(super) fn owed(&self) -> usize {
        self.owed.len()
    }
    /// Events sent that the peer's count does not yet show.
    fn in_flight(&self) -> u64 {
        self.sent_total.saturating_sub(self.delivered_total)
    }
    /// Events that may be in flight: `initial` until the peer's count shows progress, then
    /// twice what it has shown more (TCP's slow start, by acknowledged events), at most
    /// `IN_FLIGHT_MAX`. A peer that never acknowledges gets `initial` per stream.
    fn window(&self, initial: u64) -> u64 {
        (initial + 2 * self.risen_total).min(IN_FLIGHT_MAX)
    }
    pub(super) fn rate(&self) -> u32 {
        u32::try_from(self.rate).unwrap_or(u32::MAX)
    }
    /// Forgets sends older than `since`.
    fn prune_recent(&mut self, since: Instant) {
        while self.recent.front().is_some_and(|(at, _)| *at < since) || self.recent.len() > OWED_MAX
        {
            let (_, id) = self.recent.pop_front().expect("non-empty");
            self.recent_ids.remove(&id);
        }
    }
    /// Events sent by `at`.
    fn sent_by(&self, at: Instant) -> u64 {
        match entries_by(&self.sent_log, at) {
            0 => self.acked_sent,
            after => self.sent_log[after - 1].1,
        }
    }
}

/// How many entries of `log` (in time order: entries are made at the node's `now`, which only
/// moves forward) are at or before `at`. `at` is about a round trip ago, a few entries from the
/// end of up to `SENT_LOG_MAX`: so gallop back from the end, then search the last step. A walk
/// from the end took as many steps as a round trip held sends; a binary search of the whole
/// log missed the cache at each step (a 1,000-device world: 7% of the processor time).
fn entries_by(log: &VecDeque<(Instant, u64)>, at: Instant) -> usize {
    // Invariant: every entry from `later` on is after `at`.
    let mut later = log.len();
    let mut step = 1;
    while later > 0 && log[later - 1].0 > at {
        let probe = later.saturating_sub(step);
        if log[probe].0 > at {
            later = probe;
            step *= 2;
            continue;
        }
        // The first entry after `at` lies in probe + 1 ..= later - 1.
        let mut first = probe + 1;
        while first < later {
            let mid = first + (later - first) / 2;
            if log[mid].0 > at {
                later = mid;
            } else {
                first = mid + 1;
            }
        }
        break;
    }
    later
}

impl<S: Store> Node<S> {
    /// The pacing floor: the old fixed `events_per_round_max` per round, as a rate.
    fn rate_initial(&self) -> u64 {
        let per_round = u64::from(self.config.events_per_round_max);
        (per_round * 1_000_000 / self.config.sync_interval.as_micros()).max(1)
    }
    /// What may go at once: the old per-round count, or 100 ms at the current rate.
    fn burst(&self, rate: u64) -> u64 {
        u64::from(self.config.events_per_round_max).max(rate / 10)
    }

    /// How long a sent id is not owed again: two round trips and the follow-up floor, so a
    /// filter built before the events arrived has come and gone.
    fn recent_for(&self, peer: &DeviceId) -> Duration {
        Duration(
            self.peers[peer].rtt_estimate_us * 2 + super::followup::FOLLOWUP_DELAY_MIN.as_micros(),
        )
    }

    pub(super) fn new_stream(&self) -> Stream {
        let rate = self.rate_initial();
        Stream::new(self.now, rate, self.burst(rate))
    }

    /// Owes the peer these events (those it may have: only our own without `relay`), and
    /// sends what the stream allows now.
    pub(super) fn owe(&mut self, peer: &DeviceId, ids: &[EventId]) {
        let relay = self.config.relay;
        let now = self.now;
        let recent_for = self.recent_for(peer);
        let link = self.links.get_mut(peer).expect("known peer");
        if !link.stream.is_flowing() {
            link.stream.progress_at = now;
        }
        link.stream.prune_recent(now - recent_for);
        for id in ids {
            if !relay && !self.own.contains(id) || link.stream.recent_ids.contains(id) {
                continue;
            }
            if link.stream.owed.len() >= OWED_MAX {
                self.stats.pushes_deferred += 1;
                continue;
            }
            link.stream.owed.insert(*id);
        }
        self.pump(peer);
    }

    /// Sends the owed events the rate allows, and sets when to send more.
    pub(super) fn pump(&mut self, peer: &DeviceId) {
        let now = self.now;
        let stall = Duration(self.config.sync_interval.as_micros() * 2);
        // Stop before the output queue fills: what is not sent now goes at the next tick.
        let room = self.config.output_queue_max / 2 > self.outputs.len();
        let burst = {
            let rate = self.links[peer].stream.rate;
            self.burst(rate)
        };
        let window_initial = u64::from(self.config.events_per_round_max);
        let link = self.links.get_mut(peer).expect("known peer");
        let stream = &mut link.stream;
        stream.next_at = None;
        if !stream.is_flowing() {
            return;
        }
        if now.saturating_since(stream.progress_at) > stall {
            stream.owed.clear();
            self.stats.owed_dropped += 1;
            let fresh = self.new_stream();
            self.links.get_mut(peer).expect("known peer").stream = fresh;
            return;
        }
        let elapsed = now.saturating_since(stream.refilled_at).as_micros();
        stream.tokens_milli =
            (stream.tokens_milli + stream.rate * elapsed / 1_000).min(burst * 1_000);
        stream.refilled_at = now;
        let mut batch = Vec::new();
        if self.online && room {
            while stream.tokens_milli >= 1_000 && stream.in_flight() < stream.window(window_initial)
            {
                let Some(id) = stream.owed.pop_first() else {
                    break;
                };
                stream.tokens_milli -= 1_000;
                batch.push(id);
            }
        }
        for id in &batch {
            stream.recent.push_back((now, *id));
            stream.recent_ids.insert(*id);
        }
        if !batch.is_empty() {
            stream.sent_total += batch.len() as u64;
            if stream.sent_log.len() == SENT_LOG_MAX {
                stream.sent_log.pop_front();
            }
            // `sent_by` searches the log by time.
            assert!(stream.sent_log.back().is_none_or(|(at, _)| *at <= now));
            stream.sent_log.push_back((now, stream.sent_total));
        }
        if stream.is_flowing() {
            // Wake when about a datagram's worth (4 events) is allowed, or at the tick.
            let wait_us = (4_000_000 / stream.rate).max(PACE_TICK_MIN.as_micros());
            stream.next_at = Some(now + Duration(wait_us));
        }
        self.state_mut(peer).owed = self.links[peer].stream.owed();
        for id in batch {
            match self.store.get(&id) {
                Ok(Some(_)) if self.came_from(peer, &id) => {}
                Ok(Some(sealed)) => {
                    self.graft(peer, &id);
                    self.queue_event(peer, WireEvent::known(id, sealed));
                }
                // The index was built from the store at start, so the file changed under the
                // node (edited, restored from an older copy, damaged). Data from disk is
                // outside input: counted and reported, never a panic; the event is simply not
                // sent, and the peer asks again or gets it from another member.
                Ok(None) => {
                    self.stats.drop("store_missing");
                    self.emit(NodeEvent::StoreFailed {
                        detail: format!("event {id} is indexed but missing from the store"),
                    });
                }
                Err(err) => {
                    self.stats.drop("store_failed");
                    self.emit(NodeEvent::StoreFailed {
                        detail: err.to_string(),
                    });
                }
            }
        }
    }

    /// The peer's summary says it holds `count`: progress on what we streamed grows the
    /// rate (`SLOW_START_GROWTH` times until the first loss, then by an eighth per
    /// acknowledgement);
    /// far less than was sent a round trip ago halves it.
    pub(super) fn on_ack(&mut self, peer: &DeviceId, count: u32) {
        let now = self.now;
        let rtt = Duration(self.state_mut(peer).rtt_estimate_us);
        let (floor, cap) = (self.rate_initial(), u64::from(self.config.stream_rate_max));
        let stream = &mut self.links.get_mut(peer).expect("known peer").stream;
        if count > stream.seen_count {
            stream.progress_at = now;
            if stream.acked_count.is_some() {
                let rise = u64::from(count - stream.seen_count);
                stream.delivered_total = (stream.delivered_total + rise).min(stream.sent_total);
                stream.risen_total += rise;
            }
        }
        stream.seen_count = count;
        let Some(before) = stream.acked_count else {
            stream.acked_count = Some(count);
            stream.acked_sent = stream.sent_total;
            stream.delivered_total = stream.sent_total;
            return;
        };
        let covered = stream.sent_by(now - rtt);
        let sent = covered.saturating_sub(stream.acked_sent);
        if sent == 0 {
            // Nothing sent a round trip ago to judge: keep the baseline, or what arrives now
            // would be left out of the next judgement and read as loss.
            return;
        }
        stream.acked_count = Some(count);
        stream.acked_sent = covered;
        let delivered = u64::from(count.saturating_sub(before));
        // What a round trip's sends lack in the count is taken as lost, and no longer in
        // flight: loss must not shut the window (late arrivals only loosen it).
        stream.delivered_total =
            (stream.delivered_total + sent.saturating_sub(delivered)).min(stream.sent_total);
        // Half is lenient on purpose: random loss is not congestion, and 30% loss must not
        // pin the rate to its floor; a link that drops most of what is sent does halve it.
        if delivered * 2 >= sent {
            stream.rate = if stream.slow_start {
                stream.rate * SLOW_START_GROWTH
            } else {
                // An eighth per acknowledgement (several a second): back to the cap within
                // a second or two of a halving. Adding the floor (51 events/s at 5 s rounds)
                // took minutes, and a stream's tail (events still in flight) reads as loss.
                stream.rate + (stream.rate / 8).max(floor)
            };
        } else {
            stream.rate /= 2;
            stream.slow_start = false;
        }
        stream.rate = stream.rate.clamp(floor, cap.max(floor));
        let rate = stream.rate();
        self.state_mut(peer).stream_rate = rate;
    }

    /// Streams whose next send is due.
    pub(super) fn streams_due(&mut self) {
        let due = self.links_due(|l| l.stream.next_at);
        for peer in due {
            self.pump(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_by_counts_what_a_walk_counts() {
        // Times with repeats (several sends in one instant) and gaps.
        for len in [0usize, 1, 2, 3, 7, 64, 1_024] {
            let log: VecDeque<(Instant, u64)> = (0..len)
                .map(|i| (Instant::from_micros((i as u64 / 3) * 10), i as u64))
                .collect();
            let last = log.back().map_or(0, |(t, _)| t.as_micros());
            for at in (0..=last + 20).step_by(5) {
                let at = Instant::from_micros(at);
                let walked = log.iter().filter(|(t, _)| *t <= at).count();
                assert_eq!(entries_by(&log, at), walked, "{len} entries, at {at:?}");
            }
        }
    }
}
