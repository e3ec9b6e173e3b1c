//! The report's data: what a recorder is fed ([`Entry`]) and the finished picture
//! ([`RunReport`]) `meshlog run --report` draws.

use meshlog_core::{EventId, Instant, PacketKind, PacketNote};
use serde::Serialize;

pub use crate::kernel::Via;

/// One thing that happened in a run, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A node handed a datagram for `to` to the network (counted as sent, whatever its fate).
    Transmit {
        at: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        /// What the datagram carries: an EVENT packet names its first ids (`ev 1a2b…`,
        /// `message 1a2b…`).
        note: PacketNote,
    },
    /// A copy of a datagram (a node's, a replay or a hostile member's) is on its way.
    OnWire {
        at: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        arrives: Instant,
        via: Via,
    },
    /// The network lost a datagram (`cause`: loss, burst_loss, partition, cut).
    Lost {
        at: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        cause: &'static str,
        via: Via,
    },
    /// A datagram reached a running receiver.
    Delivered {
        at: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        via: Via,
    },
    /// A datagram seen only by its receiver (a recording's replay knows when it arrived, not
    /// when it was sent): counted as delivered and drawn arriving at `at`.
    Received {
        at: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
    },
    /// A datagram reached `to` and was thrown away: the receiver was not running (`crashed`),
    /// or its node dropped it (`rx_*`, the outcome's drop counter names). `from` is `None`
    /// when the node said so: the recorder takes the link from the delivery being handled.
    Refused {
        at: Instant,
        from: Option<usize>,
        to: usize,
        kind: Option<PacketKind>,
        code: String,
    },
    /// `device` stored event `id`: appended there (`from` None) or received.
    Stored {
        at: Instant,
        device: usize,
        id: EventId,
        from: Option<usize>,
    },
    /// A scheduled fault, as the trace writes it.
    Fault { at: Instant, text: String },
    /// The end of the workload: every fault not marked permanent is lifted.
    Heal { at: Instant },
    /// A device's node started or stopped, or it went online or offline.
    State {
        at: Instant,
        device: usize,
        running: bool,
        online: bool,
    },
    /// `device` holds every appended event, after the heal.
    Converged { at: Instant, device: usize },
}

/// The sequence diagram's window of virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    pub window_start: Instant,
    pub window_end: Instant,
}

impl Default for ReportOptions {
    /// The first minute.
    fn default() -> Self {
        ReportOptions {
            window_start: Instant::ZERO,
            window_end: Instant(60_000_000),
        }
    }
}

impl ReportOptions {
    /// `0s..60s`, `2m..2m30s` (scenario durations, see `duration.rs`).
    pub fn parse_window(text: &str) -> Result<ReportOptions, String> {
        let (start, end) = text
            .split_once("..")
            .ok_or_else(|| format!("bad window {text:?}: write START..END, e.g. 0s..60s"))?;
        let start = crate::scenario::duration::parse_duration(start.trim())?;
        let end = crate::scenario::duration::parse_duration(end.trim())?;
        if end <= start {
            return Err(format!(
                "bad window {text:?}: its end must come after its start"
            ));
        }
        Ok(ReportOptions {
            window_start: Instant::ZERO + start.0,
            window_end: Instant::ZERO + end.0,
        })
    }
}

/// The finished picture of one run. Times are virtual microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub digest: String,
    pub passed: bool,
    /// The checkers' verdicts, as `meshlog run` prints them.
    pub failures: Vec<String>,
    pub virtual_time_us: u64,
    pub heal_at_us: Option<u64>,
    pub events: u64,
    pub devices: Vec<DeviceLane>,
    pub faults: Vec<FaultMark>,
    /// One row per directed link and packet kind that saw traffic.
    pub links: Vec<LinkRow>,
    pub sequence: Sequence,
    /// Per device that should hold every event and does not.
    pub missing: Vec<Missing>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceLane {
    pub name: String,
    /// (time, events held) steps, thinned to at most `SERIES_POINTS_MAX`.
    pub events: Vec<(u64, u64)>,
    /// (time, state) changes, from `up` at 0: `up`, `offline`, `crashed`.
    pub states: Vec<(u64, &'static str)>,
    pub converged_at_us: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultMark {
    pub at_us: u64,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkRow {
    pub from: String,
    pub to: String,
    /// `EVENT`, `SUMMARY`, …, or `?` for a refusal no delivery explains.
    pub kind: String,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub delivered_packets: u64,
    pub delivered_bytes: u64,
    /// By cause: the network's (`loss`, `partition`, …), `crashed`, the receiver's `rx_*`.
    pub dropped: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sequence {
    pub start_us: u64,
    pub end_us: u64,
    /// Datagrams put on the wire (or lost) in the window.
    pub total: u64,
    /// Every `stride`-th of them is drawn.
    pub stride: u64,
    pub arrows: Vec<Arrow>,
    pub marks_total: u64,
    pub marks_stride: u64,
    pub marks: Vec<Mark>,
}

/// One datagram in the sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub at_us: u64,
    /// `None`: lost on the way.
    pub arrives_us: Option<u64>,
    pub kind: &'static str,
    pub bytes: usize,
    /// `node`, `replay`, `hostile`, or the cause of its loss.
    pub fate: String,
    pub note: String,
}

/// A receiver threw a datagram away (in the window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub device: usize,
    pub at_us: u64,
    pub code: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub device: String,
    pub count: usize,
    /// The first `MISSING_LISTED_MAX` of them.
    pub ids: Vec<MissingId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MissingId {
    /// The id as traces print it (12 hex digits).
    pub id: String,
    pub author: String,
    pub appended_at_us: u64,
    /// Devices that hold it at the end.
    pub held_by: Vec<String>,
    /// The last EVENT packets that named it (a packet names its first three ids).
    pub carriers: Vec<Carrier>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Carrier {
    pub at_us: u64,
    pub from: String,
    pub to: String,
    /// `lost: <cause>`, `arrives <time>`, or `refused: <code>` / `delivered` once known.
    pub fate: String,
}
