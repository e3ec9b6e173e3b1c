//! What checkers say: the [`Checker`] trait every checker implements, the [`Failure`]s they
//! report and the [`Figures`] they measure.

use serde::Serialize;

use crate::kernel::{Happening, View};

/// An event a device lacks at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub id: String,
    /// Its bucket, `BUCKET_DEPTH_SHOWN` nibbles deep: `3f*`.
    pub bucket: String,
    /// Devices that hold it (its author among them, unless crashed with it unsent).
    pub held_by: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Failure {
    /// At the end of the run a device that is up does not hold every appended event.
    NotConverged {
        device: String,
        missing: usize,
        total: usize,
        /// The first few it lacks, in id order.
        ids: Vec<Missing>,
    },
    /// A device stores events that no device appended in this run.
    Invented {
        device: String,
        count: usize,
        ids: Vec<String>,
    },
    /// A device stores an appended id whose bytes or decrypted content differ from the author's.
    Altered {
        device: String,
        count: usize,
        ids: Vec<String>,
    },
    /// A device converged later than `converged_within` after the heal, or never.
    Liveness {
        device: String,
        converged_after_us: Option<u64>,
        bound_us: u64,
    },
    /// A device's append did not reach a direct peer over a clean link within the link's
    /// latency: eager push skipped it, and only a later round carried it.
    PushLate {
        from: String,
        to: String,
        count: u64,
        first: String,
        first_sent_at_us: u64,
        first_due_us: u64,
        first_arrived_us: Option<u64>,
    },
    /// An event appended while the world was clean did not reach a device within its hop
    /// count times the worst clean link's latency plus `[expect] hop_latency_slack`: a relay
    /// held it for a round instead of forwarding it.
    HopLate {
        from: String,
        to: String,
        hops: u32,
        count: u64,
        first: String,
        first_sent_at_us: u64,
        first_due_us: u64,
        first_arrived_us: Option<u64>,
    },
    /// A datagram the network corrupted or an attacker forged got past the packet layer
    /// (accepted, answered, or one of its events opened).
    PastTheDoor {
        device: String,
        from: String,
        cause: String,
        count: u64,
        first_at_us: u64,
        first: String,
    },
    /// A node that had accepted a datagram accepted, answered or otherwise used a replayed
    /// copy of it, instead of dropping it as `replayed`.
    ReplayAccepted {
        device: String,
        from: String,
        count: u64,
        first_at_us: u64,
        first: String,
    },
    /// A running node's id index and its store held different ids (after a restart, or at
    /// the end).
    IndexDiffers {
        device: String,
        when: String,
        at_us: u64,
        index_only: usize,
        store_only: usize,
        ids: Vec<String>,
    },
    /// A device that must hold a posted file does not hold it whole at the end.
    FileIncomplete {
        device: String,
        file: String,
        groups_have: u64,
        groups_total: u64,
    },
    /// A device stored file groups that differ from the file's bytes: unverified data.
    FileBytesDiffer { device: String, groups: u64 },
    /// With `[expect] file_goodput_min`: a receiver's steady-state goodput fell short of
    /// that share of (1 − loss) × the capacity of the link from the file's author.
    FileGoodput {
        device: String,
        file: String,
        goodput_bytes_per_s: u64,
        bound_bytes_per_s: u64,
    },
    /// With `[expect] resume_received_max`: after a restart, a device received more shard
    /// bytes than that many times what it was missing of the file.
    ResumeWasteful {
        device: String,
        file: String,
        missing_bytes: u64,
        received_bytes: u64,
    },
    /// A power cut or a reopened store lost events the device had appended itself:
    /// acknowledged, then lost.
    OwnEventLost {
        device: String,
        cause: String,
        at_us: u64,
        count: usize,
        ids: Vec<String>,
    },
    /// Event times that sort against the order they were made: an author's event before its
    /// previous one, or a reaction before its message.
    ClockOrder {
        count: u64,
        /// (rule, earlier id, its time µs, later id, its time µs), the first few.
        breaks: Vec<(String, String, u64, String, u64)>,
    },
    /// A device answered a peer with more digest, filter and sketch bytes than the budget
    /// allows (see `budget.rs` for the rule): `sends` answers went out over it, the first at
    /// `first_at_us`; `answered` and `bound` are the worst moment's.
    OverBudget {
        device: String,
        peer: String,
        sends: u64,
        first_at_us: u64,
        answered: u64,
        bound: u64,
    },
    /// A node handed the network a datagram larger than one packet may be.
    DatagramTooLarge {
        device: String,
        count: u64,
        first_at_us: u64,
        first_to: String,
        first_kind: String,
        first_bytes: usize,
        bound: usize,
    },
    /// A device still in the community (running, reachable) settled on another roster
    /// (members' status and role) or key epoch than every membership event appended settles
    /// to, or settled later than `expect.roster_within` after the last membership change,
    /// fault or heal.
    RosterDiffers {
        device: String,
        /// The first difference, or `late`.
        what: String,
        key_epoch: u32,
        key_epoch_expected: u32,
        /// The last change to its roster or key epoch, after the run's last membership
        /// change or fault.
        settled_after_us: Option<u64>,
        bound_us: u64,
    },
    /// A removed device held the plaintext of events sealed by a member that already knew
    /// of the removal: it opened them with its own keys (from a datagram on one of its
    /// links, `source = "link"`, or its store, `"store"`).
    Readable {
        device: String,
        count: usize,
        source: String,
        first: String,
        first_author: String,
        first_sealed_at_us: u64,
        removal_known_at_us: u64,
    },
    /// A removed device's store holds events other devices created (their `created_at`)
    /// more than `expect.roster_within` after its removal, or after the last fault or heal
    /// if that came later: by then every member should have known.
    HeldAfterRemoval {
        device: String,
        count: usize,
        first: String,
        first_author: String,
        first_created_at_us: u64,
        bound_us: u64,
    },
    /// Keys taken from `device` at `stolen_at_us` opened `count` of the `of` recorded events
    /// sealed under epochs it had replaced more than `[sync] key_retention` (and a round)
    /// before: the first, sealed under `first_epoch`, replaced there at `replaced_at_us`.
    OpenedPastRetention {
        device: String,
        stolen_at_us: u64,
        count: usize,
        of: usize,
        first: String,
        first_epoch: u32,
        first_source: String,
        replaced_at_us: u64,
    },
    /// A theft of `device`'s keys found no recorded event under an epoch due to be forgotten
    /// (or its node was down): forward secrecy was not put to the test.
    NothingPastRetention { device: String, stolen_at_us: u64 },
    /// A member stored an event authored by a removed device that came straight from that
    /// device after the member knew of the removal.
    RemovedAccepted {
        device: String,
        from: String,
        count: u64,
        first: String,
        first_at_us: u64,
    },
    /// A device that joined with an invite was not welcomed, or did not hold (and open)
    /// every event appended before its welcome within `expect.joined_within` of it.
    Joined {
        device: String,
        what: String,
        caught_up_after_us: Option<u64>,
        bound_us: u64,
    },
    /// An attack on joining was not refused as it must be (`attack`: `forged`, `expired`,
    /// `used_up`, `repeat`): its drop code was never counted, the attacker was welcomed, or
    /// an event admitting it (or by it) was appended.
    JoinAttack {
        device: String,
        attack: String,
        what: String,
    },
    /// A device stored an event a hostile member forged in another member's name.
    ForgedStored {
        device: String,
        count: usize,
        first: String,
        forger: String,
    },
    /// The run cost more than the scenario's `[expect]` allows: `bytes_per_event` (bytes the
    /// nodes sent per event delivered to a peer) or `rounds_to_converge` (sync intervals from
    /// the heal until the last device converged).
    Inefficient {
        measure: String,
        value: f64,
        bound: f64,
    },
    /// With `[expect] discovered_within`: a member that shares a local link or a path of
    /// known addresses with other members did not have each of them as a peer in time.
    NotDiscovered {
        device: String,
        /// The members it still lacks at the end of the run, in name order.
        missing: Vec<String>,
        found_after_us: Option<u64>,
        bound_us: u64,
    },
    /// With `[expect] direct_within`: a pair of members the NAT boxes let go direct had not
    /// by the bound, or was not direct at the end.
    NotDirect {
        pair: String,
        path: NatPath,
        direct_after_us: Option<u64>,
        bound_us: u64,
    },
    /// A stranger learned something of the community from what went on the air, or the air
    /// carried what would give a member away (`what` says which).
    Stranger {
        device: String,
        what: String,
        count: u64,
        first_at_us: u64,
    },
    /// A replayed or forged datagram moved where a node sends a peer's datagrams, or a peer
    /// did not follow a device's move within `[expect] followed_within`.
    Roaming {
        device: String,
        peer: String,
        what: String,
        at_us: u64,
    },
}

/// Figures the checkers measured, for the run's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub attacks: AttackCounters,
    /// The largest share of its amplification budget any device used in any window
    /// (1.0 = at the bound).
    pub budget_worst_share: f64,
    /// Bytes all nodes sent per event delivered to a peer (`None`: nothing delivered).
    pub bytes_per_event: Option<f64>,
    /// Sync intervals from the heal until the last device converged (`None`: some never did).
    pub rounds_to_converge: Option<f64>,
    /// Pushes over clean links judged by the prompt-delivery checker, and of those on time.
    pub pushes_judged: u64,
    pub pushes_on_time: u64,
    /// The longest a welcomed device took from its welcome to holding every event appended
    /// before it (`None`: no device joined).
    pub join_catch_up_us_max: Option<u64>,
    /// With `[expect] hop_latency_slack`: deliveries judged by the per-hop latency checker, of
    /// those on time, and the longest a judged one took per hop it crossed.
    pub hops_judged: u64,
    pub hops_on_time: u64,
    pub hop_latency_worst_us: Option<u64>,
    /// With `[expect] discovered_within`: the longest any member took from the start to have
    /// every member it must find as a peer (`None`: one never did, or none had to).
    pub discovered_worst_us: Option<u64>,
    /// Announcements put on local links, and deliveries of members' ones to strangers.
    pub announcements_sent: u64,
    pub announcements_to_strangers: u64,
    /// After an `address_change`: the longest a running peer took to send to the new
    /// address (`None`: no move, or a peer never followed).
    pub followed_worst_us: Option<u64>,
    /// Pairs of members with a NAT box between them, and how each talked at the end.
    pub nat_pairs: Vec<NatPair>,
    /// With `[[workload.file]]`s: file bytes every receiver had to end with, the BLOB bytes
    /// put on the wire for them, and the slowest receiver's time from a post to holding the
    /// file whole (`None`: one never did).
    pub file_bytes_delivered: u64,
    pub file_wire_bytes: u64,
    pub file_complete_worst_us: Option<u64>,
    /// Over links with a capacity: the lowest steady-state goodput of a receiver that ran
    /// without a restart, as a share of (1 − loss) × the capacity of its link from the
    /// author (`None`: none judged).
    pub file_goodput_share_worst: Option<f64>,
    /// After restarts mid-fetch: the most shard bytes a device received per byte it was
    /// missing, until whole (`None`: no device resumed a file).
    pub resume_received_worst: Option<f64>,
}

/// One checker: it sees every happening and, at the end, says what failed.
pub trait Checker: std::fmt::Debug {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>);
    /// What failed, from what it saw and the finished world.
    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>);
    /// Figures it measured, if any.
    fn figures(&self, _: &View<'_>, _: &mut Figures) {}
}

/// What attacks did, over the run (shown by `meshlog run`, in its JSON too).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttackCounters {
    /// Replays put on their links.
    pub replays_injected: u64,
    /// Replays that reached a running node which had accepted the original.
    pub replays_judged: u64,
    /// Of those, refused as the checker wants (dropped as `replayed`, no answer).
    pub replays_refused: u64,
    /// Replays that reached a node restarted since it accepted the original: its replay
    /// windows are new, so only its new epoch (which nothing recorded echoes) refuses them.
    pub replays_after_restart: u64,
    /// Of those, refused as the checker wants: not accepted, dropped as `replayed` or
    /// `stale_echo` (or the receiver is offline).
    pub replays_after_restart_refused: u64,
    pub replay_bytes: u64,
    /// Bytes receivers sent while handling replays.
    pub replay_answer_bytes: u64,
    pub hostile_sent_packets: u64,
    pub hostile_sent_bytes: u64,
    /// Hostile bytes that reached a running node.
    pub hostile_delivered_bytes: u64,
    /// Bytes receivers sent while handling hostile packets, all kinds.
    pub hostile_answer_bytes: u64,
    /// Of those, answers proper: digests, filters, sketches (events are streamed at the
    /// node's own bounded rate).
    pub hostile_answer_reconcile_bytes: u64,
    /// Forgeries sent by an attacker outside the community (`forge.rs`).
    pub forged_sent: u64,
    pub forged_bytes: u64,
    /// Corrupted or forged datagrams that reached a running node, and of those the ones it
    /// dropped at the packet layer.
    pub door_judged: u64,
    pub door_refused: u64,
}

impl AttackCounters {
    pub fn any(&self) -> bool {
        self.replays_injected > 0 || self.hostile_sent_packets > 0 || self.forged_sent > 0
    }
    /// Bytes answered per byte replayed.
    pub fn replay_amplification(&self) -> f64 {
        ratio(self.replay_answer_bytes, self.replay_bytes)
    }
    /// Bytes answered per hostile byte delivered.
    pub fn hostile_amplification(&self) -> f64 {
        ratio(self.hostile_answer_bytes, self.hostile_delivered_bytes)
    }
}

fn ratio(out: u64, into: u64) -> f64 {
    if into == 0 {
        0.0
    } else {
        out as f64 / into as f64
    }
}

/// How a pair of members with a box between them talks at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NatPath {
    Direct,
    Relayed,
    Unlinked,
}

/// One pair of members with at least one box between them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatPair {
    pub a: String,
    pub b: String,
    /// Whether the boxes let the pair go direct at all.
    pub can_go_direct: bool,
    pub path: NatPath,
    /// When datagrams had first gone directly both ways, from the start.
    pub direct_after_us: Option<u64>,
}
