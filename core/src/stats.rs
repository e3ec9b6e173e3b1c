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
    /// Ids not added to a peer's owed list because it was full; found again in a later round.
    pub pushes_deferred: u64,
    /// Follow-up summaries sent between rounds while a peer's summary differed.
    pub followups: u64,
    /// Small differences settled from a peer's sketch, and sketches that did not decode (the
    /// prefix descent took over).
    pub sketches_decoded: u64,
    pub sketches_failed: u64,
    /// Owed lists dropped because the peer stopped acknowledging progress.
    pub owed_dropped: u64,
    /// Transmits dropped because the output queue was full.
    pub transmits_dropped: u64,
    pub rounds: u64,
    /// Summaries sent outside rounds to teach a peer this run's epoch (one per epoch of each
    /// peer at most; see `packet`'s echo).
    pub greetings: u64,
    /// Peers' addresses moved to where their newest authentic packet came from (roaming, a
    /// restart on a new port); a peer's first address is not a move.
    pub peer_moves: u64,
    /// Events received from a peer and forwarded on at once, counted per receiving peer
    /// (`node/forward.rs`).
    pub events_forwarded: u64,
    /// Summaries sent a round trip after forwarding to a peer, to find a lost forward then
    /// rather than at the next round (`node/followup.rs`).
    pub forward_checks: u64,
    /// Times a peer's duplicate push stopped forwarding an author's events to it for a while.
    pub forward_prunes: u64,
    /// Events echoed to a peer that pushed us a duplicate, so that it prunes us in turn.
    pub forward_echoes: u64,
    /// Prunes lifted because the owed stream found the peer lacking that author's event.
    pub forward_grafts: u64,
    /// Events stored from a peer but not forwarded because they are sealed under an older key
    /// than ours: left to anti-entropy (`node/forward.rs` says why).
    pub forward_stale_epoch: u64,
    /// LAN announcements opened (tried against the community's keys), within the rate
    /// limit (`ANNOUNCE_OPENS_PER_SECOND_MAX`); those beyond are dropped unopened.
    pub announcements_opened: u64,
    /// Devices that became peers because their announcement was heard on the local link.
    pub peers_discovered: u64,
    /// Introductions sent (two per pair introduced) and punch packets sent after one was
    /// received (`node/punch.rs`).
    pub introductions_sent: u64,
    pub punch_packets: u64,
    /// Datagrams this node sent wrapped for a relay, and opened after a relay forwarded them
    /// (`node/relay.rs`).
    pub relay_sent: u64,
    pub relay_received: u64,
    /// Datagrams and bytes this node forwarded as a relay between two of its peers.
    pub relayed_datagrams: u64,
    pub relayed_bytes: u64,
    /// Recovery packets sent after groups of EVENT packets, and EVENT payloads rebuilt from
    /// them (`node/stream_fec`).
    pub recovery_sent: u64,
    pub recovery_rebuilt: u64,
    /// The blob transfer's totals (`node/blobs`).
    pub blobs: BlobTotals,
}

/// What the blob transfer did, over this node's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobTotals {
    /// Asks sent (for outboard pieces or groups).
    pub wants_sent: u64,
    /// Shard bytes received (payload only), and sent.
    pub shard_bytes_received: u64,
    pub shard_bytes_sent: u64,
    pub outboard_bytes_received: u64,
    /// Groups rebuilt, verified and stored.
    pub groups_verified: u64,
    /// Groups or outboards that failed verification: each from a member gone bad.
    pub forgeries: u64,
    pub files_fetched: u64,
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
    /// What the amplification budget counted for this peer since start.
    pub budget: BudgetTotals,
    /// Smoothed time from a summary to the peer's answer; follow-ups wait this long.
    pub rtt_estimate_us: u64,
    /// Events owed to the peer and not yet sent, and the rate they stream at (events/s).
    pub owed: usize,
    pub stream_rate: u32,
}

/// Running totals of one peer's amplification budget over this node's life, which keep
/// `replied_bytes ≤ 3 × received_bytes + credit_initial_bytes`, what a checker
/// can verify from outside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetTotals {
    /// Bytes of authenticated datagrams received from the peer.
    pub received_bytes: u64,
    /// Bytes of datagrams sent in answer (digests, filters, sketches; not events or summaries).
    pub replied_bytes: u64,
    /// The initial credit granted when the node started (`CREDIT_INITIAL_BYTES`).
    pub credit_initial_bytes: u64,
}

impl BudgetTotals {
    /// Whether the totals keep the budget (they always do while it is on).
    pub fn within(&self) -> bool {
        self.replied_bytes <= 3 * self.received_bytes + self.credit_initial_bytes
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub device: DeviceId,
    pub state: PeerState,
    /// Where the node last learned the peer is reached, and how (`None` until it has heard
    /// from it or been told: a configured address lives in the driver).
    pub address: Option<(std::net::SocketAddr, crate::node::AddressSource)>,
    /// The peer its datagrams go through while no direct path works (`node/relay.rs`);
    /// `None`: direct.
    pub relayed_via: Option<DeviceId>,
    /// How the node first learned where the peer is (`Node::peer_met_by`).
    pub met_by: Option<crate::node::AddressSource>,
}
