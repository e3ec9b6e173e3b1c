//! What a run produced: counters kept while it ran, the per-device picture at the end, and
//! the summary `meshlog run` prints (also as JSON).

use std::collections::BTreeMap;
use std::fmt;

use meshlog_core::{NodeEvent, Origin, PacketKind};
use serde::Serialize;

use crate::checks::{Failure, Figures};
use crate::kernel::network::Delivery;
use crate::kernel::{Happening, Observer, View};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// By packet kind (`EVENT`, `SUMMARY`, `DIGEST`, `FILTER`).
    pub sent: BTreeMap<String, Traffic>,
    pub delivered: BTreeMap<String, Traffic>,
    /// By cause: network (`loss`, `partition`, …), `crashed`, and the receiver's `rx_*` reasons.
    pub drops: BTreeMap<String, u64>,
    /// Appended events by kind.
    pub appended: BTreeMap<&'static str, u64>,
    /// Events stored from a peer, over all devices.
    pub inserted: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Workload appends skipped because the device was crashed.
    pub skipped_appends: u64,
    /// Workload appends a full disk refused.
    pub refused_appends: u64,
    /// Received events power cuts took back from stores.
    pub lost_to_power_cuts: u64,
}

impl Observer for Counters {
    fn observe(&mut self, _: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Transmit { transmit, .. } => self.sent(transmit.kind, transmit.bytes.len()),
            Happening::OnWire { copy, .. } => self.faults(copy),
            Happening::Lost { cause, .. } => self.drop(cause.code()),
            Happening::NotRunning { code, .. } => self.drop(code),
            Happening::AnnounceLost { cause, .. } => {
                self.drop_owned(format!("announce_{}", cause.code()));
            }
            Happening::Delivered { kind, bytes, .. } => self.delivered(kind, bytes),
            Happening::Node { event, .. } => match event {
                NodeEvent::EventStored {
                    origin: Origin::Local,
                    event,
                    ..
                } => *self.appended.entry(event.body.kind_name()).or_default() += 1,
                NodeEvent::EventStored { .. } => self.inserted += 1,
                NodeEvent::PacketDropped { reason, .. } => {
                    self.drop_owned(format!("rx_{}", reason.code()));
                }
                NodeEvent::EventRejected { reason, .. } => {
                    self.drop_owned(format!("rx_event_{}", reason.code()));
                }
                _ => {}
            },
            Happening::AppendSkipped { .. } => self.skipped_appends += 1,
            Happening::AppendRefused { .. } => self.refused_appends += 1,
            Happening::PowerCut { lost, .. } => self.lost_to_power_cuts += lost.len() as u64,
            _ => {}
        }
    }
}

impl Counters {
    pub(crate) fn sent(&mut self, kind: PacketKind, bytes: usize) {
        self.sent
            .entry(kind.name().to_owned())
            .or_default()
            .add(bytes);
    }
    pub(crate) fn delivered(&mut self, kind: PacketKind, bytes: usize) {
        self.delivered
            .entry(kind.name().to_owned())
            .or_default()
            .add(bytes);
    }
    pub(crate) fn drop(&mut self, cause: &str) {
        if let Some(count) = self.drops.get_mut(cause) {
            *count += 1;
        } else {
            self.drops.insert(cause.to_owned(), 1);
        }
    }
    pub(crate) fn drop_owned(&mut self, cause: String) {
        *self.drops.entry(cause).or_default() += 1;
    }
    pub(crate) fn faults(&mut self, copy: &Delivery) {
        self.duplicated += u64::from(copy.duplicate);
        self.reordered += u64::from(copy.reordered);
        self.corrupted += u64::from(copy.corrupted);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceReport {
    pub name: String,
    pub events: u64,
    /// Running and online at the end.
    pub up: bool,
    /// Kept down by a permanent fault: not expected to converge.
    pub excused: bool,
    /// Times the device was restarted after a crash.
    pub restarts: u32,
    /// Virtual time at which it held every appended event, after the heal.
    pub converged_at_us: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub seed: u64,
    /// blake3 of the trace: the run's fingerprint.
    pub digest: String,
    pub trace_lines: u64,
    /// Writing the trace file failed (the digest is still right).
    pub trace_error: Option<String>,
    pub virtual_time_us: u64,
    pub heal_at_us: u64,
    pub events: u64,
    pub counters: Counters,
    /// What the checkers measured: attacks, the budget's worst share, cost, prompt pushes.
    #[serde(flatten)]
    pub figures: Figures,
    pub devices: Vec<DeviceReport>,
    pub failures: Vec<Failure>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn secs(us: u64) -> String {
    format!("{}.{:03}s", us / 1_000_000, us % 1_000_000 / 1_000)
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} seed {}", self.scenario, self.seed)?;
        writeln!(
            f,
            "virtual time {} (workload healed at {})",
            secs(self.virtual_time_us),
            secs(self.heal_at_us)
        )?;
        let kinds: Vec<String> = self
            .counters
            .appended
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        writeln!(
            f,
            "events   {} appended ({})",
            self.events,
            kinds.join(", ")
        )?;
        for (label, map) in [
            ("sent", &self.counters.sent),
            ("delivered", &self.counters.delivered),
        ] {
            let parts: Vec<String> = map
                .iter()
                .map(|(kind, t)| format!("{kind} {} ({} B)", t.packets, t.bytes))
                .collect();
            writeln!(f, "{label:<10}{}", parts.join(", "))?;
        }
        let drops: Vec<String> = self
            .counters
            .drops
            .iter()
            .map(|(cause, n)| format!("{cause} {n}"))
            .collect();
        writeln!(
            f,
            "drops    {}",
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            }
        )?;
        writeln!(
            f,
            "faults   {} duplicated, {} reordered, {} corrupted",
            self.counters.duplicated, self.counters.reordered, self.counters.corrupted
        )?;
        let a = &self.figures.attacks;
        if a.any() {
            writeln!(
                f,
                "attacks  {} replays ({} judged, {} refused, {} after a restart, {} refused; \
                 {:.2}x answered), \
                 {} hostile packets ({:.2}x answered, {} B of it digests, filters, sketches)",
                a.replays_injected,
                a.replays_judged,
                a.replays_refused,
                a.replays_after_restart,
                a.replays_after_restart_refused,
                a.replay_amplification(),
                a.hostile_sent_packets,
                a.hostile_amplification(),
                a.hostile_answer_reconcile_bytes
            )?;
        }
        if a.door_judged > 0 {
            writeln!(
                f,
                "door     {} of {} corrupted or forged datagrams refused at the packet layer \
                 ({} forged)",
                a.door_refused, a.door_judged, a.forged_sent
            )?;
        }
        writeln!(
            f,
            "budget   worst window used {:.0}% of its amplification budget",
            self.figures.budget_worst_share * 100.0
        )?;
        if let Some(us) = self.figures.join_catch_up_us_max {
            writeln!(
                f,
                "joins    the slowest welcomed device held all earlier events {} after its welcome",
                secs(us)
            )?;
        }
        let fig = &self.figures;
        let took = |us: Option<u64>| us.map_or("-".to_owned(), secs);
        if fig.announcements_sent > 0 || fig.discovered_worst_us.is_some() {
            writeln!(
                f,
                "discover the slowest member had every member it must find {} after the start; \
                 {} announcements, {} to strangers",
                took(fig.discovered_worst_us),
                fig.announcements_sent,
                fig.announcements_to_strangers
            )?;
        }
        if let Some(us) = fig.followed_worst_us {
            writeln!(
                f,
                "roaming  the slowest peer sent to a moved device's new address {} after the move",
                secs(us)
            )?;
        }
        if !fig.nat_pairs.is_empty() {
            let count = |path| fig.nat_pairs.iter().filter(|p| p.path == path).count();
            let direct_worst = fig
                .nat_pairs
                .iter()
                .filter(|p| p.can_go_direct)
                .map(|p| p.direct_after_us)
                .try_fold(0, |worst, at| at.map(|at| worst.max(at)));
            writeln!(
                f,
                "nat      {} pairs with a box between them: {} direct, {} relayed, {} unlinked; \
                 of the {} the boxes let go direct, the slowest was direct both ways {} after \
                 the start",
                fig.nat_pairs.len(),
                count(crate::checks::NatPath::Direct),
                count(crate::checks::NatPath::Relayed),
                count(crate::checks::NatPath::Unlinked),
                fig.nat_pairs.iter().filter(|p| p.can_go_direct).count(),
                took(direct_worst)
            )?;
        }
        if fig.file_bytes_delivered > 0 {
            writeln!(
                f,
                "files    {} file bytes delivered for {} bytes of BLOB packets ({:.2} per byte); \
                 the slowest receiver held a file whole {} after its post",
                fig.file_bytes_delivered,
                fig.file_wire_bytes,
                fig.file_wire_bytes as f64 / fig.file_bytes_delivered as f64,
                took(fig.file_complete_worst_us)
            )?;
        }
        if let Some(share) = fig.file_goodput_share_worst {
            writeln!(
                f,
                "goodput  the slowest receiver took a file at {share:.2} of (1 - loss) x its \
                 link's capacity in steady state"
            )?;
        }
        if let Some(ratio) = fig.resume_received_worst {
            writeln!(
                f,
                "resume   a restarted device received at most {ratio:.3} shard bytes per byte \
                 it was missing"
            )?;
        }
        let figure = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
        writeln!(
            f,
            "cost     {} B sent per delivered event, {} rounds to converge after the heal, \
             {} of {} pushes on time",
            figure(self.figures.bytes_per_event),
            figure(self.figures.rounds_to_converge),
            self.figures.pushes_on_time,
            self.figures.pushes_judged
        )?;
        for d in &self.devices {
            let when = match d.converged_at_us {
                Some(at) => format!(
                    "converged at {} (+{} after heal)",
                    secs(at),
                    secs(at.saturating_sub(self.heal_at_us))
                ),
                None if d.excused => "down for good (excused)".to_owned(),
                None => "never converged".to_owned(),
            };
            writeln!(f, "device   {:<10} {:>6} events  {when}", d.name, d.events)?;
        }
        writeln!(
            f,
            "trace    {} lines, digest {}",
            self.trace_lines, self.digest
        )?;
        if self.failures.is_empty() {
            write!(f, "result   PASS")
        } else {
            for failure in &self.failures {
                writeln!(f, "FAIL     {failure}")?;
            }
            write!(f, "result   FAIL ({} checks failed)", self.failures.len())
        }
    }
}
