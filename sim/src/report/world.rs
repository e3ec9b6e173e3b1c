//! The world's side of a report: the hook its code calls, device states, and what the stores
//! lack at the end.

use meshlog_core::{EventId, Instant, PacketKind, Store, Transmit};

use super::limits::MISSING_LISTED_MAX;
use super::{Entry, MissingId, MissingInput, Recorder, ReportOptions, Summary, Via};
use crate::network::DropCause;
use crate::outcome::Outcome;
use crate::scenario::FaultSpec;
use crate::world::{Sender, World};

/// The entries the world's hooks build, each from what is at hand where the trace line is
/// written, so a hook stays one line.
impl Entry {
    pub(crate) fn transmit(at: Instant, from: usize, to: usize, t: &Transmit) -> Entry {
        Entry::Transmit {
            at,
            from,
            to,
            kind: t.kind,
            bytes: t.bytes.len(),
            note: t.note,
        }
    }
    pub(crate) fn on_wire(
        at: Instant,
        (from, to): (usize, usize),
        kind: PacketKind,
        bytes: usize,
        arrives: Instant,
        via: Via,
    ) -> Entry {
        Entry::OnWire {
            at,
            from,
            to,
            kind,
            bytes,
            arrives,
            via,
        }
    }
    pub(crate) fn lost(
        at: Instant,
        (from, to): (usize, usize),
        kind: PacketKind,
        bytes: usize,
        cause: DropCause,
        via: Via,
    ) -> Entry {
        Entry::Lost {
            at,
            from,
            to,
            kind,
            bytes,
            cause: cause.code(),
            via,
        }
    }
    pub(crate) fn delivered(
        at: Instant,
        (from, to): (usize, usize),
        kind: PacketKind,
        bytes: usize,
        via: Via,
    ) -> Entry {
        Entry::Delivered {
            at,
            from,
            to,
            kind,
            bytes,
            via,
        }
    }
    /// Arrived at a receiver that is not running.
    pub(crate) fn crashed(
        at: Instant,
        (from, to): (usize, usize),
        kind: PacketKind,
        code: &str,
    ) -> Entry {
        Entry::Refused {
            at,
            from: Some(from),
            to,
            kind: Some(kind),
            code: code.to_owned(),
        }
    }
    /// The receiver's node dropped what it is handling.
    pub(crate) fn refused(at: Instant, to: usize, code: String) -> Entry {
        Entry::Refused {
            at,
            from: None,
            to,
            kind: None,
            code,
        }
    }
    pub(crate) fn stored(at: Instant, device: usize, id: EventId, from: Option<usize>) -> Entry {
        Entry::Stored {
            at,
            device,
            id,
            from,
        }
    }
    pub(crate) fn fault(at: Instant, fault: &FaultSpec) -> Entry {
        let text = toml::to_string(fault).unwrap_or_default();
        Entry::Fault {
            at,
            text: text.trim_end().replace('\n', "; "),
        }
    }
}

impl Sender {
    pub(crate) fn via(self) -> Via {
        match self {
            Sender::Node => Via::Node,
            Sender::Replay { .. } => Via::Replay,
            Sender::Hostile => Via::Hostile,
            Sender::Forged => Via::Forged,
        }
    }
}

impl Summary {
    pub fn of(outcome: &Outcome) -> Summary {
        Summary {
            scenario: outcome.scenario.clone(),
            seed: outcome.seed,
            digest: outcome.digest.clone(),
            failures: outcome.failures.iter().map(ToString::to_string).collect(),
            virtual_time_us: outcome.virtual_time_us,
            events: outcome.events,
        }
    }
}

/// A recorder, when a report was asked for. Off, a hook costs one branch and builds nothing.
#[derive(Debug, Default)]
pub struct Hook(Option<Box<Recorder>>);

impl Hook {
    pub(crate) fn new(names: Vec<String>, options: Option<ReportOptions>) -> Hook {
        Hook(options.map(|o| Box::new(Recorder::new(names, o))))
    }

    /// Feeds the entry `make` builds, if a report is being recorded.
    #[inline]
    pub(crate) fn note(&mut self, make: impl FnOnce() -> Entry) {
        if let Some(recorder) = &mut self.0 {
            recorder.note(make());
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

impl World {
    /// Notes every device's state (the recorder keeps changes only); called after faults
    /// and the heal, the only things that start, stop or unplug a device.
    pub(crate) fn note_states(&mut self) {
        if !self.report.is_on() {
            return;
        }
        let now = self.now;
        for (device, d) in self.devices.iter().enumerate() {
            if d.attacker_only {
                continue;
            }
            let (running, online) = (d.node.is_some(), d.online);
            self.report.note(|| Entry::State {
                at: now,
                device,
                running,
                online,
            });
        }
    }

    /// Takes the recorder out, with what each device that should converge lacks. `None` if
    /// no report was asked for.
    pub fn take_report(&mut self) -> Option<(Recorder, Vec<MissingInput>)> {
        let recorder = self.report.0.take()?;
        let mut missing = Vec::new();
        for d in &self.devices {
            if d.down_for_good || d.attacker_only {
                continue;
            }
            let store = d.store.borrow();
            let lacks = |id: &EventId| !matches!(store.get(id), Ok(Some(_)));
            let count = self.appended.keys().filter(|id| lacks(id)).count();
            if count == 0 {
                continue;
            }
            let ids = self
                .appended
                .iter()
                .filter(|(id, _)| lacks(id))
                .take(MISSING_LISTED_MAX)
                .map(|(id, _)| {
                    let appended = self.appended_event(&id).expect("the author's bytes open");
                    let held_by = self
                        .devices
                        .iter()
                        .filter(|o| matches!(o.store.borrow().get(&id), Ok(Some(_))))
                        .map(|o| o.name.to_string())
                        .collect();
                    let listed = MissingId {
                        id: id.to_string(),
                        author: appended.event.author.to_string(),
                        appended_at_us: appended.event.created_at.as_micros(),
                        held_by,
                        carriers: Vec::new(),
                    };
                    (id, listed)
                })
                .collect();
            missing.push(MissingInput {
                device: d.name.to_string(),
                count,
                ids,
            });
        }
        Some((*recorder, missing))
    }
}
