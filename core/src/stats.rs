//! Counters a node keeps: what the network log, `/api/stats` and run summaries show.

use std::collections::BTreeMap;

use crate::id::DeviceId;
use crate::packet::PacketKind;
use crate::sync::index::BucketSummary;
use crate::time::Instant;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub count: u64,
    pub bytes: u64,
}

impl Traffic {
    pub fn add(&mut self, bytes: usize) {
        self.count += 1;
        self.bytes += bytes as u64;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: BTreeMap<PacketKind, Traffic>,
    pub received: BTreeMap<PacketKind, Traffic>,
    /// Datagrams dropped and events rejected, by reason code (`bad_mac`, `replayed`,
    /// `event_wrong_key`, ...).
    pub drops: BTreeMap<&'static str, u64>,
    pub events_local: u64,
    pub events_from_peers: u64,
    /// Events received that were already held: the price of duplication and eager push.
    pub events_duplicate: u64,
    /// Pushes held back by `events_per_round_max`; they go in a later round.
    pub pushes_deferred: u64,
    /// Transmits dropped because the output queue was full.
    pub transmits_dropped: u64,
    pub rounds: u64,
}

impl Stats {
    pub fn sent_total(&self) -> Traffic {
        sum(&self.sent)
    }
    pub fn received_total(&self) -> Traffic {
        sum(&self.received)
    }
    pub(crate) fn drop(&mut self, code: &'static str) {
        *self.drops.entry(code).or_default() += 1;
    }
}

fn sum(map: &BTreeMap<PacketKind, Traffic>) -> Traffic {
    map.values().fold(Traffic::default(), |acc, t| Traffic {
        count: acc.count + t.count,
        bytes: acc.bytes + t.bytes,
    })
}

/// What a node knows of one peer, from the summaries it sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's whole-set summary from its latest round.
    pub advertised: Option<BucketSummary>,
    /// Its summary matched ours when it arrived.
    pub in_sync: bool,
    pub last_exchange: Option<Instant>,
    /// New events that crossed between us (either way) since its summary: the peer holds
    /// them too, so its set is estimated as `advertised.count + crossed_since_summary`.
    pub crossed_since_summary: u32,
    pub(crate) pushed_this_round: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub device: DeviceId,
    pub state: PeerState,
}
