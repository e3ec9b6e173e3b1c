//! Scenario files: what a run simulates, read from TOML with errors that name the file, the
//! field and what is wrong.
//!
//! ```toml
//! name = "partition-heal"
//! seed = 42
//! duration = "10m"                       # the workload runs this long; then every fault heals
//! devices = ["alice", "bob", "carol"]
//! topology = "mesh"                      # "line": neighbours only; "ring": a line closed;
//!                                        # "star": the first device is the hub;
//!                                        # { random = 3 }: seeded, connected, 3+ peers each;
//!                                        # { edges = [["alice", "bob"], ["bob", "carol"]] }
//! [world]
//! store = "memory"                       # or "sqlite": the shipped store, a file per device,
//!                                        # closed by each crash and reopened by its restart
//!                                        # (`meshlog run`/`sweep` only; no `power_cut` then)
//! [sync]                                 # optional Config knobs
//! sync_interval = "5s"
//! [network]                              # every link; [[link]] with from/to overrides one
//! latency = { min = "5ms", max = "80ms" }
//! loss = 0.10
//! duplicate = 0.02
//! replay = 0.05                          # re-inject a recorded datagram, `replay_delay` later
//! replay_delay = "2s"
//! [workload]
//! messages_per_hour = 600
//! attachment_percent = 30
//! [[hostile]]                           # a member that sends worst-case packets
//! device = "carol"
//! every = "1s"                           # one packet to each of its peers this often
//! [[clock]]                              # a device whose clock is off (`clock.rs`)
//! device = "bob"
//! offset = "-1h"                         # reads an hour behind the world
//! drift_ppm = -200                       # and loses 200 µs a second (at most ±100,000)
//! [[member]]                           # an admin changes the roster (`member.rs`)
//! at = "3m"
//! remove = "carol"                       # or rotate = true, or set_role = { device, role }
//! by = "alice"                           # the first of [world] admins by default
//! [[lan]]                              # a local link: its devices announce themselves
//! devices = ["alice", "bob"]             # (`net.rs`: also [knows], strangers, peer exchange)
//! [[nat]]                              # a home router: its devices are reached through it
//! kind = "symmetric"                     # or "endpoint-independent"
//! devices = ["bob"]
//! mapping_timeout = "30s"                # a mapping unused this long is gone
//! [[fault]]
//! at = "2m"
//! partition = [["alice"], ["bob", "carol"]]
//! [[fault]]
//! at = "6m"
//! heal = true                            # never lifts a fault marked `permanent = true`
//! [expect]
//! converged_within = "30s"               # after the workload ends and every fault heals
//! bytes_per_event_max = 900.0            # bytes sent per event delivered to a peer
//! rounds_to_converge_max = 2.0           # sync intervals from the heal to the last device
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod clock;
pub mod duration;
mod fault;
mod join;
mod lan;
mod link;
mod member;
mod net;
mod topology;
mod validate;
mod world;

pub use clock::{ClockSpec, SignedDuration, CLOCK_DRIFT_PPM_MAX, CLOCK_OFFSET_MAX_US};
pub use duration::SimDuration;
pub use fault::{Fault, FaultKind};
#[cfg(test)]
pub(crate) use lan::is_reserved;
pub use lan::{LanSpec, NatKind, NatSpec};
pub(crate) use lan::{FRESH_PREFIX, HOME_PREFIX, NAT_PREFIX};

/// How validation (`validate.rs` and the files it calls) says a field is wrong, and checks
/// that a field names a device of the world.
pub(crate) type Invalid<'a> = dyn Fn(&str, String) -> ScenarioError + 'a;
pub(crate) type Known<'a> = dyn Fn(&str, &str) -> Result<(), ScenarioError> + 'a;
pub use link::{BurstSpec, ForgeKeys, LatencySpec, LinkSpec};
pub use member::{
    InviteSpec, JoinRefusal, JoinSpec, MemberAction, MemberChange, ReplayJoinSpec, RoleSpec,
    SetRoleSpec,
};
pub use topology::Topology;
pub use world::{StoreKind, WorldSpec};

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The TOML does not fit the scenario shape: unknown field, wrong type, bad duration.
    #[error("{path}: field `{field}`: {message}")]
    Parse {
        path: String,
        field: String,
        message: String,
    },
    /// Well-formed but inconsistent: unknown device, rate out of range, fault after the end.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The root seed; `meshlog run --seed` overrides it.
    #[serde(default)]
    pub seed: u64,
    pub duration: SimDuration,
    pub devices: Vec<String>,
    #[serde(default)]
    pub topology: Topology,
    /// `[knows]`: a device's configured peers (whose addresses it starts with), one way,
    /// instead of the topology's (`net.rs`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub knows: std::collections::BTreeMap<String, Vec<String>>,
    /// `[[lan]]`: local links whose devices announce themselves to each other (`net.rs`).
    #[serde(default, rename = "lan", skip_serializing_if = "Vec::is_empty")]
    pub lans: Vec<LanSpec>,
    /// `[[nat]]`: NAT boxes, each with the devices behind it (`net.rs`).
    #[serde(default, rename = "nat", skip_serializing_if = "Vec::is_empty")]
    pub nats: Vec<NatSpec>,
    /// `[world]`: which store the devices run (`store.rs`).
    #[serde(default, skip_serializing_if = "WorldSpec::is_default")]
    pub world: WorldSpec,
    #[serde(default)]
    pub sync: SyncSpec,
    /// Every link.
    #[serde(default)]
    pub network: LinkSpec,
    /// Overrides for single links (`[[link]]` with `from` and `to`).
    #[serde(default, rename = "link", skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSpec>,
    #[serde(default)]
    pub workload: WorkloadSpec,
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Members that attack their peers (`[[hostile]]`).
    #[serde(default, rename = "hostile", skip_serializing_if = "Vec::is_empty")]
    pub hostiles: Vec<HostileSpec>,
    /// Devices whose clocks are off (`[[clock]]`, see `clocks.rs`).
    #[serde(default, rename = "clock", skip_serializing_if = "Vec::is_empty")]
    pub clocks: Vec<ClockSpec>,
    /// Membership changes admins make (`[[member]]`, see `member.rs`).
    #[serde(default, rename = "member", skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberChange>,
    #[serde(default)]
    pub expect: ExpectSpec,
}

/// A roster member that sends its peers worst-case packets, sealed with its own keys as a
/// member can: the attacks of issue 9 on the reconciliation, from the inside. It runs no
/// node (so it is excused from converging): attack packets and an honest node's share the
/// sender's epoch and counters, and whichever came second would be refused as replayed.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostileSpec {
    pub device: String,
    /// One packet to each of its peers this often, the kinds taken in turn.
    pub every: SimDuration,
    /// Which packets, in turn; all of them if unset.
    #[serde(default = "HostileKind::all", skip_serializing_if = "is_all_kinds")]
    pub kinds: Vec<HostileKind>,
}

fn is_all_kinds(kinds: &[HostileKind]) -> bool {
    kinds == HostileKind::all()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostileKind {
    /// A root summary claiming a huge, different set: asks for a digest.
    Summary,
    /// A root digest whose 16 children all differ and are large: asks for 16 digests.
    Digest,
    /// A root filter with `reply` and a zeroed bitmap as large as fits: "I hold nothing,
    /// send everything, and your filter back".
    FilterEmpty,
    /// A root filter with `reply`, every bit set and k = 32: the most hashing per check.
    FilterFull,
    /// A message claiming another member as its author, signed with a key that is not that
    /// member's, in a packet the hostile member seals properly. Never in the default turn:
    /// only when `kinds` names it.
    ForgedAuthor,
}

impl HostileKind {
    pub fn all() -> Vec<HostileKind> {
        vec![
            HostileKind::Summary,
            HostileKind::Digest,
            HostileKind::FilterEmpty,
            HostileKind::FilterFull,
        ]
    }
    pub fn name(self) -> &'static str {
        match self {
            HostileKind::Summary => "summary",
            HostileKind::Digest => "digest",
            HostileKind::FilterEmpty => "filter_empty",
            HostileKind::FilterFull => "filter_full",
            HostileKind::ForgedAuthor => "forged_author",
        }
    }
}

/// Overrides of the core's `Config` defaults, the same for every device.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<SimDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_jitter: Option<SimDuration>,
    /// Peers summarised to per round (the core's default is 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_fanout: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_round_max: Option<u32>,
    /// Buckets this small on either side are settled with a Bloom filter, not a digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_items_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eager_push: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_entropy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<bool>,
    /// Introduce peers to each other and punch toward those introduced, falling back to a
    /// relay (NAT traversal; the real backend turns it on, the core's default is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introductions: Option<bool>,
    /// Forward an event received from a peer at once (on by default; off to show what it buys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eager_forward: Option<bool>,
    /// Peers an event received is forwarded to at most, besides its sender and author (the
    /// core's default is 3, its most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_fanout: Option<usize>,
    /// Drop packets seen before as `replayed` (on by default; off only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_protection: Option<bool>,
    /// Answer a peer with at most 3× what it sent plus one datagram of credit (on by
    /// default; off only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amplification_budget: Option<bool>,
    /// Epoch keys and receive secrets are forgotten this long after they are replaced
    /// (`Config::key_retention`; default: kept for ever). `[[member]] steal_keys` is judged
    /// against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_retention: Option<SimDuration>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The seed's global rate, split across the enabled devices.
    #[serde(default)]
    pub messages_per_hour: u32,
    #[serde(default)]
    pub attachment_percent: u32,
    #[serde(default = "attachment_bytes_min")]
    pub attachment_bytes_min: u32,
    #[serde(default = "attachment_bytes_max")]
    pub attachment_bytes_max: u32,
    /// Share of workload ticks that react to an earlier message instead of posting one.
    #[serde(default)]
    pub reaction_percent: u32,
    /// Devices that post; all of them if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// Many messages at once from one device: a backlog.
    #[serde(default, rename = "batch", skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchSpec>,
    /// Large files posted as blobs (`node/blobs`): every device must end with each whole.
    #[serde(default, rename = "file", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
}

/// A file of `size_bytes` (its bytes drawn from the seed) that `device` holds from the start
/// and posts at `at`. The world keeps it once, however many devices fetch it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub at: SimDuration,
    pub device: String,
    pub size_bytes: u64,
    /// Hostile members holding a copy whose every group is altered (its outboard true):
    /// each group they serve is forged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forged_by: Vec<String>,
}

/// Largest file a scenario may post: 1 GiB, a few copies of which a machine holds.
pub const FILE_SIZE_BYTES_MAX: u64 = 1 << 30;

fn attachment_bytes_min() -> u32 {
    1_000
}
fn attachment_bytes_max() -> u32 {
    8_000
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    pub at: SimDuration,
    pub device: String,
    pub messages: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Every device holds every event this long after the end-of-workload heal.
    #[serde(default = "converged_within")]
    pub converged_within: SimDuration,
    /// Run on this long past the liveness bound, so a late divergence would show.
    #[serde(default = "quiet")]
    pub quiet: SimDuration,
    /// At most this many bytes sent by all nodes per event delivered to a peer: a lost
    /// answer or a wasted round costs bytes even when the world converges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_event_max: Option<f64>,
    /// The last device converges within this many sync intervals of the end-of-workload heal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds_to_converge_max: Option<f64>,
    /// With `[[member]]` changes: every device still in the community settles on the final
    /// roster and key epoch within this long of the last membership change, fault or heal
    /// (`converged_within` if unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roster_within: Option<SimDuration>,
    /// With `[[member]] join`: a welcomed device holds every event appended before its
    /// welcome within this long of it (`converged_within` if unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_within: Option<SimDuration>,
    /// Turns on the per-hop latency checker (`checks/hop_latency.rs`): every event appended
    /// while the world is clean reaches every device within its shortest path in hops over
    /// clean links × the worst clean link's latency, plus this. Meant for loss-free worlds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_latency_slack: Option<SimDuration>,
    /// Turns on the discovery checker (`checks/discovery.rs`): within this long of the start,
    /// every member that shares a `[[lan]]` or a path of configured addresses with other
    /// members (with `[world] peer_exchange`, any path; without, one hop) has each of them
    /// as a peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_within: Option<SimDuration>,
    /// With `[[nat]]`: every pair of members the boxes let go direct (none symmetric, or one
    /// end open) exchanges datagrams directly both ways within this long of the start, and
    /// still does at the end (`checks/nat.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_within: Option<SimDuration>,
    /// With `address_change` faults: every running peer of the device that moved sends to its
    /// new address within this long of the move (`checks/roaming.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed_within: Option<SimDuration>,
    /// With `[[workload.file]]`s over links with a capacity: every receiver that runs without
    /// a restart takes each file, between a tenth and nine tenths of it, at no less than this
    /// share of (1 − loss) × the capacity of the link from the file's author
    /// (`checks/goodput.rs`; issue 26 asks 0.8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_goodput_min: Option<f64>,
    /// With `[[workload.file]]`s and restarts: a device that restarts holding part of a file
    /// receives at most this many shard bytes per byte it was missing, until it holds the file
    /// whole (`checks/resume.rs`; issue 26 asks 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_received_max: Option<f64>,
}

fn converged_within() -> SimDuration {
    SimDuration::from_secs(60)
}
fn quiet() -> SimDuration {
    SimDuration::from_secs(15)
}

impl Default for ExpectSpec {
    fn default() -> Self {
        ExpectSpec {
            converged_within: converged_within(),
            quiet: quiet(),
            bytes_per_event_max: None,
            rounds_to_converge_max: None,
            roster_within: None,
            joined_within: None,
            hop_latency_slack: None,
            discovered_within: None,
            direct_within: None,
            followed_within: None,
            file_goodput_min: None,
            resume_received_max: None,
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario file; errors start with `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        Scenario::parse(&text, &shown)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let deserializer = toml::Deserializer::new(text);
        let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let field = err.path().to_string();
            ScenarioError::Parse {
                path: origin.to_owned(),
                field,
                message: err.into_inner().message().trim().to_owned(),
            }
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    /// The genesis admins: `[world] admins`, or the first device by name (the core's
    /// default for a community, so a world without `[[member]]` changes is as it was).
    pub fn admins(&self) -> Vec<String> {
        match &self.world.admins {
            Some(admins) => admins.clone(),
            None => self.devices.iter().min().cloned().into_iter().collect(),
        }
    }

    /// Who makes `change`: its `by`, or the first genesis admin.
    pub fn member_by(&self, change: &MemberChange) -> String {
        match &change.by {
            Some(by) => by.clone(),
            None => self
                .admins()
                .into_iter()
                .next()
                .expect("validated: an admin"),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serializes")
    }
}
