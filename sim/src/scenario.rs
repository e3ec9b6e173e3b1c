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
//! [[clock]]                              # a device whose clock is off (`clocks.rs`)
//! device = "bob"
//! offset = "-1h"                         # reads an hour behind the world
//! drift_ppm = -200                       # and loses 200 µs a second (at most ±100,000)
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

use std::collections::BTreeSet;
use std::path::Path;

use meshlog_core::DeviceId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::validate::{
    percent, validate_fault, validate_hostiles, validate_link, validate_topology,
};

pub use crate::duration::SimDuration;
pub use crate::topology::Topology;

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
    pub faults: Vec<FaultSpec>,
    /// Members that attack their peers (`[[hostile]]`).
    #[serde(default, rename = "hostile", skip_serializing_if = "Vec::is_empty")]
    pub hostiles: Vec<HostileSpec>,
    /// Devices whose clocks are off (`[[clock]]`, see `clocks.rs`).
    #[serde(default, rename = "clock", skip_serializing_if = "Vec::is_empty")]
    pub clocks: Vec<crate::clocks::ClockSpec>,
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
    /// Drop packets seen before as `replayed` (on by default; off only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_protection: Option<bool>,
    /// Answer a peer with at most 3× what it sent plus one datagram of credit (on by
    /// default; off only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amplification_budget: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub min: SimDuration,
    pub max: SimDuration,
}

/// Gilbert-Elliott burst loss: a link flips between a good and a bad state per datagram.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    /// Chance per datagram that a good link turns bad.
    pub enter: f64,
    /// Chance per datagram that a bad link turns good again.
    pub exit: f64,
    /// Loss rate while bad (the good state uses `loss`).
    #[serde(default = "one")]
    pub loss: f64,
}

fn one() -> f64 {
    1.0
}

/// Link behaviour. In `[network]` it sets every link; in `[[link]]` (with `from` and `to`) one direction, or both with `both = true`; in a fault's `network = {…}` it changes
/// either from then on. Unset fields keep what was there.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub both: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Chance a datagram is held back an extra `reorder_delay`, landing behind later ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<SimDuration>,
    /// Chance one random bit of a datagram flips in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Chance, per datagram the receiver accepts, that an attacker on the link re-sends one
    /// it recorded earlier (the link's last `REPLAY_STORE_MAX`), `replay_delay` later.
    /// Unlike `duplicate` (a copy close behind the original), a replay is an old datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_delay: Option<SimDuration>,
    /// Chance, per datagram a node sends on the link, that an attacker outside the community
    /// also sends one claiming the same source (an `EVENT` of garbage, sealed with keys it
    /// made up). Every forgery must be refused at the packet layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge: Option<f64>,
    /// `outsider` (the default) or `stolen`: the forger holds the claimed sender's keys, so
    /// its forgeries pass the packet layer (only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge_keys: Option<ForgeKeys>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKeys {
    #[default]
    Outsider,
    Stolen,
}

fn is_false(b: &bool) -> bool {
    !b
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
}

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

/// One change at `at`. Exactly one action per fault.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: SimDuration,
    /// Devices in different groups cannot reach each other; unlisted devices form one more group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Vec<Vec<String>>>,
    /// Lifts partitions and cuts, brings devices online, restarts crashed ones, frees full
    /// disks; never what
    /// a fault marked `permanent` did (nor does the end-of-workload heal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal: Option<bool>,
    /// `[from, to]`: datagrams from `from` to `to` are lost (one way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<String>,
    /// The device's node is dropped with all in-flight state; its store survives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// A crash that also takes back what the device's store had not made durable: events
    /// received since its last own append, as SQLite's `synchronous = NORMAL` may lose them
    /// (its own events commit with FULL, which makes every earlier commit durable too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_cut: Option<String>,
    /// Every insert into the device's store fails, as on a full disk, until `disk_freed` or
    /// a heal (`store.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_full: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_freed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<LinkSpec>,
    /// Survives every heal, mid-run `heal = true` and the end of the workload (to break a
    /// world on purpose).
    #[serde(default, skip_serializing_if = "is_false")]
    pub permanent: bool,
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

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serializes")
    }

    /// Checks what the types cannot: names, ranges, one action per fault.
    pub fn validate(&self, origin: &str) -> Result<(), ScenarioError> {
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            path: origin.to_owned(),
            field: field.to_owned(),
            message,
        };
        if self.devices.is_empty() {
            return Err(invalid("devices", "at least one device is needed".into()));
        }
        let mut seen = BTreeSet::new();
        for name in &self.devices {
            if DeviceId::new(name).is_none() {
                return Err(invalid(
                    "devices",
                    format!("{name:?} is not a device name (1-32 of a-z, 0-9, - and _)"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(invalid("devices", format!("{name:?} is listed twice")));
            }
        }
        let known = |field: &str, name: &str| {
            if seen.contains(name) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!(
                        "unknown device {name:?} (devices: {})",
                        self.devices.join(", ")
                    ),
                ))
            }
        };
        if self.duration.as_micros() == 0 {
            return Err(invalid("duration", "must be more than 0s".into()));
        }
        validate_link(&self.network, "network", false, &known, &invalid)?;
        for (i, link) in self.links.iter().enumerate() {
            validate_link(link, &format!("link[{i}]"), true, &known, &invalid)?;
        }
        let w = &self.workload;
        percent(
            w.attachment_percent,
            "workload.attachment_percent",
            &invalid,
        )?;
        percent(w.reaction_percent, "workload.reaction_percent", &invalid)?;
        if w.attachment_bytes_min > w.attachment_bytes_max
            || w.attachment_bytes_max as usize > meshlog_core::event::FILE_SIZE_MAX
        {
            return Err(invalid(
                "workload.attachment_bytes_max",
                format!(
                    "{}..{} bytes: need min <= max <= {}",
                    w.attachment_bytes_min,
                    w.attachment_bytes_max,
                    meshlog_core::event::FILE_SIZE_MAX
                ),
            ));
        }
        for name in w.devices.iter().flatten() {
            known("workload.devices", name)?;
        }
        for (i, batch) in w.batches.iter().enumerate() {
            let field = format!("workload.batch[{i}]");
            known(&format!("{field}.device"), &batch.device)?;
            if batch.at > self.duration {
                return Err(invalid(
                    &format!("{field}.at"),
                    format!("{} is after the duration {}", batch.at, self.duration),
                ));
            }
        }
        for (i, fault) in self.faults.iter().enumerate() {
            validate_fault(fault, &format!("fault[{i}]"), self, &known, &invalid)?;
        }
        validate_hostiles(self, &known, &invalid)?;
        crate::clocks::validate_clocks(self, &known, &invalid)?;
        validate_topology(self, &known, &invalid)?;
        let e = &self.expect;
        for (field, bound) in [
            ("expect.bytes_per_event_max", e.bytes_per_event_max),
            ("expect.rounds_to_converge_max", e.rounds_to_converge_max),
        ] {
            if bound.is_some_and(|b| !(b.is_finite() && b > 0.0)) {
                return Err(invalid(
                    field,
                    format!("{} is not a bound (a number above 0)", bound.unwrap_or(0.0)),
                ));
            }
        }
        Ok(())
    }
}
