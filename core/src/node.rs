//! The sans-IO sync engine: time and datagrams in; datagrams, events and wake-ups out.
//!
//! A local append goes at once to every peer, one packet each (each with its pairwise tag).
//! An event received from a peer and stored for the first time goes on at once to up to
//! `forward_fanout` other peers that may lack it (not its sender, not its author, not a peer
//! pruned for its author after sending us a duplicate): each node forwards each event once,
//! so at most N × `forward_fanout` datagrams an event, and a post crosses a line at link speed
//! (`forward.rs`). Anti-entropy repairs whatever forwarding skipped or lost.
//!
//! Anti-entropy, one round per `sync_interval` (`round.rs`), each round standing on its own:
//!
//! 1. Each node sends `sync_fanout` random peers a `Summary` of its whole id set (count + XOR
//!    fingerprint): when in sync that one small datagram is the whole round.
//! 2. A receiver whose summary differs by a small count answers with a `Sketch` (an IBLT of its
//!    whole set); the difference decodes from it in one round trip. Otherwise, or when the
//!    sketch does not decode, it answers with a `Digest` (its 16 child buckets) and the two
//!    descend, only into buckets whose summaries differ.
//! 3. Once a differing bucket is small on either side, the side that noticed sends a Bloom
//!    `Filter` of its ids there (split into child buckets if it would not fit a datagram), with
//!    `reply` set. The receiver owes the peer the events the filter lacks and answers with its
//!    own filter, so the first side owes back.
//! 4. Owed events stream on timers at a rate that grows while the peer's summaries show them
//!    arriving and halves on loss (`owed.rs`); the difference is not reconciled again while the
//!    stream flows.
//! 5. While a peer's summary differs, a follow-up summary goes after about a round trip (at
//!    least 100 ms), up to `followups_per_round_max` a round (`followup.rs`).
//!
//! Answers to a peer stay within 3× what it sent plus a credit granted once (`budget.rs`).
//! What a node has for a peer after one input is packed into as few datagrams as it fits
//! (`outbox.rs`). Nothing waits for an answer: a lost, duplicated or reordered datagram at worst
//! wastes work, and the next follow-up or round starts again from the top with fresh filter
//! seeds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use thiserror::Error;

mod addresses;
mod admit;
mod blobs;
mod budget;
mod check;
mod discover;
mod events;
mod followup;
mod forward;
mod greeting;
mod join_gate;
mod membership;
mod outbox;
mod owed;
mod punch;
mod receive;
mod reconcile;
mod records;
mod relay;
mod round;
mod stream_fec;
mod trace_line;

pub use addresses::AddressSource;
pub use budget::{CREDIT_INITIAL_BYTES, REPLY_FACTOR};
pub use discover::{ANNOUNCE_OPENS_PER_SECOND_MAX, ANNOUNCE_SKEW_MAX};
pub use join_gate::{
    JOIN_CHECKS_PER_ROUND_MAX, JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX, JOIN_REFUSED_BACKOFF_ROUNDS,
};
pub use punch::{
    INTRODUCTIONS_PER_ROUND_MAX, INTRODUCTION_INTERVAL, PEER_ACTIVE_FOR, PUNCH_AGAIN_AFTER,
    PUNCH_CANDIDATES_MAX, PUNCH_PACKETS, PUNCH_SPACING,
};
pub use records::{
    ADOPTIONS_PER_ROUND_MAX, RECORDS_MAX, RECORD_CHECKS_PER_PEER_PER_ROUND,
    RECORD_CLOCK_SKEW_MAX_MS, RECORD_RESEND_ROUNDS, RECORD_TTL_MS,
};
pub use relay::{RELAY_BYTES_PER_SECOND_MAX, RELAY_DATAGRAMS_PER_SECOND_MAX};

use crate::clock::HybridClock;
use crate::config::{Config, ConfigError};
use crate::crypto::Keyring;
use crate::event::{Event, RejectReason, SealError};
use crate::id::{DeviceId, EventId, FileId};
use crate::member::{Role, Status};
use crate::packet::{DropReason, PacketKind, PacketNote, Wire};
use crate::stats::{PeerInfo, PeerState, Stats};
use crate::store::{Store, StoreError};
use crate::sync::index::{BucketSummary, IdIndex};
use crate::sync::prefix::{Prefix, FANOUT};
use crate::time::Instant;

pub use membership::{MemberError, MEMBERSHIP_EVENTS_MAX};
pub use trace_line::TraceLine;

/// What goes into a node.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram that arrived from `from` (the address the socket saw). Peers' packets are
    /// known by their tags, not their address; only join requests, from strangers, are told
    /// apart by it (each address gets a share of the checks, `JOIN_CHECKS_PER_ROUND_MAX`).
    Datagram {
        now: Instant,
        from: SocketAddr,
        bytes: &'a [u8],
    },
    Timeout(Instant),
    /// A LAN announcement heard from `from` on the discovery port (`node/discover.rs`): a
    /// member's makes it a peer at `from`'s address and the port it names.
    Announcement {
        now: Instant,
        from: SocketAddr,
        bytes: &'a [u8],
    },
}

/// What comes out of `poll_output`. `Timeout` means "nothing more now; call again then".
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Transmit(Transmit),
    Event(NodeEvent),
    Timeout(Instant),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: DeviceId,
    /// Where it goes instead of where the driver holds `to` to be: a punch toward an address
    /// the node was introduced to (`node/punch.rs`). `None` for everything else. Drivers
    /// resolve both the same way: [`PeerBook::destination`](crate::PeerBook::destination).
    pub address: Option<std::net::SocketAddr>,
    pub bytes: Vec<u8>,
    pub kind: PacketKind,
    /// What it carries, as facts; shown (`b3* 39 ids reply`) only where it is formatted.
    pub note: PacketNote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Local,
    Peer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A new event is durably stored (appended here, or received from `from`).
    EventStored {
        id: EventId,
        origin: Origin,
        from: Option<DeviceId>,
        event: Event,
        size: usize,
    },
    PacketReceived {
        from: DeviceId,
        kind: PacketKind,
        size: usize,
        note: PacketNote,
    },
    /// A datagram was dropped before its payload was used. `claimed` is what its header said.
    PacketDropped {
        claimed: Option<(PacketKind, String)>,
        size: usize,
        reason: DropReason,
    },
    /// An event from a valid packet failed to open; never stored.
    EventRejected {
        from: DeviceId,
        reason: RejectReason,
    },
    /// A peer's latest summary matched ours (`true`) or stopped matching (`false`).
    PeerSync { peer: DeviceId, in_sync: bool },
    /// The store refused a write; the event will arrive again in a later round.
    StoreFailed { detail: String },
    /// The settled roster changed for `device` (`member`): added, removed or a new role.
    MemberChanged {
        device: DeviceId,
        status: Status,
        role: Role,
    },
    /// Every group of a blob is here and verified (`node/blobs`).
    BlobComplete { file: FileId, size_bytes: u64 },
    /// This device was given the key of `epoch` (a rotation or a share reached it).
    KeyEpoch { epoch: u32 },
    /// `count` epoch keys passed their retention and were forgotten (`Config::key_retention`):
    /// a driver that keeps the keys on disk rewrites them without these.
    KeysForgotten { count: u32 },
    /// A device that proved it holds an invite was admitted here; the welcome for it follows
    /// as `Transmit`s to it. A driver learns its address from the datagram it was handling.
    Admitted { device: DeviceId },
    /// A join request was refused, with the reason.
    JoinRefused { device: DeviceId, reason: String },
    /// `peer` is reached at `addr` from now on (`node/addresses.rs`): the driver sends there.
    PeerAddress {
        peer: DeviceId,
        addr: SocketAddr,
        source: AddressSource,
    },
}

#[derive(Debug, Error)]
pub enum AppendError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Node<S: Store> {
    config: Config,
    store: S,
    index: IdIndex,
    /// Events this node authored since it started; only used when `relay` is off.
    own: BTreeSet<EventId>,
    rng: ChaCha20Rng,
    online: bool,
    next_round_at: Instant,
    peers: BTreeMap<DeviceId, PeerState>,
    /// Per-peer engine state: budget, follow-ups, owed stream (same keys as `peers`).
    links: BTreeMap<DeviceId, Link>,
    /// The latest time handed in; time only moves forward inside the node.
    now: Instant,
    /// Follow-ups sent this round without progress, over all peers.
    followups_this_round: u32,
    /// Every event's `created_at` comes from here (`clock.rs`).
    clock: HybridClock,
    /// Pairwise keys, this run's epoch and counter, replay windows: every packet in and out.
    wire: Wire,
    /// Items for peers while an input is handled; packed into datagrams at its end.
    outbox: outbox::Outboxes,
    outputs: VecDeque<Output>,
    stats: Stats,
    /// Membership events held, the roster they settle to, the epoch keys given to this device.
    membership: membership::Membership,
    /// Which join requests get checked this round (`admit.rs`, `join_gate.rs`).
    join_gate: join_gate::JoinGate,
    /// Where each peer was last learned to be (`addresses.rs`).
    addresses: addresses::Addresses,
    /// Members' signed address records, for peer exchange (`records.rs`).
    records: records::Records,
    /// Prunes and recent authors for eager forwarding (`forward.rs`).
    forward: forward::Forwarding,
    /// LAN announcements: the opening rate, the newest heard per device (`discover.rs`).
    discovery: discover::Discovery,
    /// Introductions made and punches under way (`punch.rs`).
    punching: punch::Punching,
    /// Peers reached through a relay, and what this node forwards as one (`relay.rs`).
    relays: relay::Relays,
    blobs: blobs::Blobs,
}

impl<S: Store> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("device", &self.config.keys.device)
            .field("events", &self.index.len())
            .finish()
    }
}

impl<S: Store> Node<S> {
    /// Starts a node over `store` (which may already hold events: a restart). The first round
    /// runs at once, so a restarted or new device catches up without waiting an interval.
    pub fn new(config: Config, mut store: S, now: Instant) -> Result<Self, NodeError> {
        config.validate()?;
        // Recorded before the first packet goes out, so this run's packets never look like an
        // earlier run's to a peer's replay window.
        let epoch = store.next_epoch(config.epoch_floor)?;
        let keyring = Keyring::new(&config.keys, &config.community, &config.peers);
        let epoch_keys = config.community.epoch_keys().clone();
        let wire = Wire::new(keyring, epoch, config.replay_protection);
        let mut index = IdIndex::new();
        for id in store.ids()? {
            index.insert(id);
        }
        let clock = HybridClock::new(Instant::from_micros(store.created_at_max()?), now);
        // Genesis peers now; the others once the store's membership events are settled.
        let genesis_peers: Vec<DeviceId> = config
            .peers
            .iter()
            .filter(|p| config.community.member(p).is_some())
            .cloned()
            .collect();
        let peers = genesis_peers
            .iter()
            .map(|p| {
                let state = PeerState {
                    rtt_estimate_us: followup::RTT_INITIAL_US,
                    ..PeerState::default()
                };
                (p.clone(), state)
            })
            .collect();
        let mut node = Node {
            rng: ChaCha20Rng::from_seed(config.seed),
            config,
            store,
            index,
            own: BTreeSet::new(),
            online: true,
            next_round_at: now,
            peers,
            links: BTreeMap::new(),
            now,
            followups_this_round: 0,
            clock,
            wire,
            outbox: outbox::Outboxes::new(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
            membership: membership::Membership::new(epoch_keys),
            join_gate: join_gate::JoinGate::default(),
            addresses: addresses::Addresses::default(),
            records: records::Records::default(),
            forward: forward::Forwarding::default(),
            discovery: discover::Discovery::default(),
            punching: punch::Punching::default(),
            relays: relay::Relays::default(),
            blobs: blobs::Blobs::default(),
        };
        for peer in genesis_peers {
            let state = node.state_mut(&peer);
            let link = Link {
                budget: budget::Budget::new(&mut state.budget),
                followup: followup::FollowUp::default(),
                check: check::ForwardCheck::default(),
                stream: node.new_stream(),
                fec: stream_fec::LinkFec::default(),
                held_pushes: Vec::new(),
                summary_at: None,
            };
            let state = node.state_mut(&peer);
            state.stream_rate = link.stream.rate();
            node.links.insert(peer, link);
        }
        node.load_membership()?;
        node.settle_configured_peers()?;
        node.drop_leaving_peers();
        node.resume_blobs(now);
        Ok(node)
    }

    pub fn device(&self) -> &DeviceId {
        &self.config.keys.device
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn store(&self) -> &S {
        &self.store
    }
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// This run's epoch: above every earlier run's (see `Store::next_epoch`).
    pub fn epoch(&self) -> u64 {
        self.wire.epoch()
    }
    /// As if an authentic packet of `epoch` had come from `peer`: for benches and tests that
    /// start from two devices that already know each other, so their first exchange is not
    /// spent teaching epochs (see `packet`'s echo). Feature `testing`.
    #[cfg(any(test, feature = "testing"))]
    pub fn assume_heard(&mut self, peer: &DeviceId, epoch: u64) {
        self.wire.hear(peer, epoch);
    }
    /// Whether a packet from `peer` taught this node its epoch, so a push goes out at once
    /// rather than after a greeting (`node/greeting.rs`).
    pub fn knows_epoch_of(&self, peer: &DeviceId) -> bool {
        self.wire.knows_epoch_of(peer)
    }
    pub fn is_online(&self) -> bool {
        self.online
    }
    pub fn event_count(&self) -> usize {
        self.index.len()
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.index.contains(id)
    }
    /// The events of an authentic EVENT datagram for this node that it does not hold yet:
    /// those whose signatures opening it would check (`event::signature_claim`). Empty for
    /// any other datagram, one whose tag does not verify, or while offline. Changes nothing
    /// (the replay window moves when the node takes the datagram), so a device can call it
    /// ahead of `handle_input` and check the signatures elsewhere; the tag goes first, so
    /// bytes from outside the community cost no more than they do the node.
    pub fn unheld_events<'a>(&self, datagram: &'a [u8]) -> Vec<&'a [u8]> {
        if !self.online {
            return Vec::new();
        }
        match crate::packet::Packet::verify(datagram, self.wire.keyring()) {
            Ok(verified) => verified
                .events()
                .into_iter()
                .filter(|(id, _)| !self.index.contains(id))
                .map(|(_, sealed)| sealed)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
    pub fn ids(&self) -> impl Iterator<Item = &EventId> {
        self.index.iter()
    }
    /// The whole-set summary this node advertises: equal summaries mean equal sets.
    pub fn summary(&self) -> BucketSummary {
        self.index.summary(Prefix::ROOT)
    }
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .map(|(device, state)| PeerInfo {
                device: device.clone(),
                state: state.clone(),
                address: self.peer_address(device),
                relayed_via: self.relays.via(device).cloned(),
                met_by: self.peer_met_by(device),
            })
            .collect()
    }

    /// How close this node is to its peers, 0..=100. A peer's set is estimated from its latest
    /// summary plus the new events that crossed between us since (eager pushes arrive between
    /// rounds); 100 when that estimate equals our count, otherwise the smaller set's share of
    /// the larger. An estimate, corrected by every summary. Peers not heard from yet are left
    /// out (0 if none has been heard).
    pub fn sync_percent(&self) -> f64 {
        let mine = self.index.len() as u64;
        let shares: Vec<f64> = self
            .peers
            .values()
            .filter_map(|p| {
                p.advertised
                    .map(|a| u64::from(a.count) + u64::from(p.crossed_since_summary))
            })
            .map(|theirs| {
                let (low, high) = (theirs.min(mine), theirs.max(mine));
                if low == high {
                    100.0
                } else {
                    (100.0 * low as f64 / high as f64).min(99.9)
                }
            })
            .collect();
        if shares.is_empty() {
            return 0.0;
        }
        shares.iter().sum::<f64>() / shares.len() as f64
    }

    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Datagram { now, from, bytes } => {
                let now = self.advance(now);
                self.handle_datagram(now, from, bytes);
            }
            Input::Announcement { now, from, bytes } => {
                let now = self.advance(now);
                self.handle_announcement(now, from, bytes);
            }
            Input::Timeout(now) => {
                let now = self.advance(now);
                if now >= self.next_round_at {
                    self.start_round(now);
                    self.introduce_pairs(now);
                }
                if self.online {
                    self.followups_due();
                    self.forward_checks_due();
                    self.streams_due();
                    self.fec_groups_due();
                    self.forwards_due();
                    self.punches_due(now);
                    self.blobs_due(now);
                }
            }
        }
        self.drop_leaving_peers();
        self.flush();
    }

    /// Time only moves forward inside the node: a caller's clock stepping back (a wall clock
    /// adjusted) counts as no time passing, so no deadline is ever behind `now`.
    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn state_mut(&mut self, peer: &DeviceId) -> &mut PeerState {
        self.peers.get_mut(peer).expect("known peer")
    }

    /// Offline stops traffic both ways (the seed's device-status). Back online, a round
    /// starts at once so the device catches up without waiting an interval.
    pub fn set_online(&mut self, now: Instant, online: bool) {
        let now = self.advance(now);
        if self.online == online {
            return;
        }
        self.online = online;
        if online {
            self.next_round_at = now;
        } else {
            self.outputs.retain(|o| !matches!(o, Output::Transmit(_)));
        }
    }

    /// The next output; when none is left, `Timeout` at the earliest of the next round, a
    /// follow-up and a stream's next send.
    pub fn poll_output(&mut self) -> Output {
        self.outputs
            .pop_front()
            .unwrap_or_else(|| Output::Timeout(self.next_timeout()))
    }

    fn next_timeout(&self) -> Instant {
        // Offline, only the round timer runs (it is what notices being back).
        let timers = self
            .links
            .values()
            .filter(|_| self.online)
            .flat_map(|l| [l.followup.at, l.check.at, l.stream.next_at, l.fec.due_at()])
            .chain(
                [
                    self.forward.next_at(),
                    self.punching.next_at(),
                    self.blobs_next_at(),
                ]
                .map(|at| at.filter(|_| self.online)),
            )
            .flatten()
            // A timer that fell due while offline runs at once, never in the past.
            .map(|at| at.max(self.now));
        timers.fold(self.next_round_at, Instant::min)
    }

    /// The peers whose link timer `timer` is due now, in name order: what each timer's
    /// handler then serves.
    fn links_due(&self, timer: impl Fn(&Link) -> Option<Instant>) -> Vec<DeviceId> {
        self.links
            .iter()
            .filter(|(_, link)| timer(link).is_some_and(|at| at <= self.now))
            .map(|(peer, _)| peer.clone())
            .collect()
    }

    fn note_crossed(&mut self, peer: &DeviceId, events: u32) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.crossed_since_summary = state.crossed_since_summary.saturating_add(events);
        }
    }

    fn emit(&mut self, event: NodeEvent) {
        // Events are small and the caller drains them with the transmits; twice the transmit
        // bound keeps a caller that never polls from growing memory without limit.
        if self.outputs.len() < self.config.output_queue_max * 2 {
            self.outputs.push_back(Output::Event(event));
        }
    }
}

/// What the engine keeps per peer besides the public `PeerState`.
#[derive(Debug)]
struct Link {
    budget: budget::Budget,
    followup: followup::FollowUp,
    /// A summary soon after forwards to the peer, to find one lost (`check.rs`).
    check: check::ForwardCheck,
    stream: owed::Stream,
    /// The erasure coding of the EVENT packets to and from the peer (`stream_fec`).
    fec: stream_fec::LinkFec,
    /// Fresh events waiting for the peer's epoch (`greeting.rs`), at most `HELD_PUSHES_MAX`.
    held_pushes: Vec<EventId>,
    /// When the peer's root summary last came (a summary, digest or sketch): it takes part in
    /// sync, not merely sends (forwarding goes only to such peers).
    summary_at: Option<Instant>,
}

const _: () = assert!(FANOUT == 16);
