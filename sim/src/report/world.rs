//! The world's side of a report: a [`Recorder`] observing the kernel's happenings, device
//! states, and what the stores lack at the end.

use meshlog_core::{EventId, Instant, NodeEvent, Origin, PacketKind, Store, Transmit};

use super::limits::MISSING_LISTED_MAX;
use super::outcome::Outcome;
use super::picture::{Entry, MissingId, ReportOptions};
use super::recorder::{MissingInput, Recorder, Summary};
use crate::kernel::network::DropCause;
use crate::kernel::{Happening, Observer, Via, View};
use crate::scenario::Fault;

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
    pub(crate) fn fault(at: Instant, fault: &Fault) -> Entry {
        let text = toml::to_string(fault).unwrap_or_default();
        Entry::Fault {
            at,
            text: text.trim_end().replace('\n', "; "),
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

/// A recorder fed by a world: it turns each happening into the entry it draws.
#[derive(Debug)]
pub struct Reporter(Recorder);

impl Reporter {
    pub fn new(names: Vec<String>, options: ReportOptions) -> Reporter {
        Reporter(Recorder::new(names, options))
    }

    /// Every device's state (the recorder keeps changes only); noted after faults and the
    /// heal, the only things that start, stop or unplug a device.
    fn note_states(&mut self, view: &View<'_>) {
        for (device, d) in view.devices.iter().enumerate() {
            if d.attacker_only {
                continue;
            }
            self.0.note(Entry::State {
                at: view.now,
                device,
                running: d.node.is_some(),
                online: d.online,
            });
        }
    }

    /// The recorder, with what each device that should converge lacks at the end.
    pub fn finish(self, world: &View<'_>) -> (Recorder, Vec<MissingInput>) {
        let mut missing = Vec::new();
        for d in world.devices {
            if d.down_for_good || d.attacker_only || d.removed {
                continue;
            }
            let store = d.store.borrow();
            let lacks = |id: &EventId| !matches!(store.get(id), Ok(Some(_)));
            let count = world.appended.keys().filter(|id| lacks(id)).count();
            if count == 0 {
                continue;
            }
            let ids = world
                .appended
                .iter()
                .filter(|(id, _)| lacks(id))
                .take(MISSING_LISTED_MAX)
                .map(|(id, _)| {
                    let appended = world.appended_event(&id).expect("the author's bytes open");
                    let held_by = world
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
        (self.0, missing)
    }
}

impl Observer for Reporter {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let now = view.now;
        let entry = match *happening {
            Happening::Transmit { from, to, transmit } => Entry::transmit(now, from, to, transmit),
            Happening::OnWire {
                from,
                to,
                kind,
                bytes,
                copy,
                via,
                ..
            } => Entry::on_wire(now, (from, to), kind, bytes, copy.at, via),
            Happening::Lost {
                from,
                to,
                kind,
                bytes,
                cause,
                via,
                ..
            } => Entry::lost(now, (from, to), kind, bytes, cause, via),
            Happening::Replayed {
                from,
                to,
                kind,
                bytes,
                arrives,
            } => Entry::on_wire(now, (from, to), kind, bytes, arrives, Via::Replay),
            Happening::NotRunning {
                from,
                to,
                kind,
                code,
                ..
            } => Entry::crashed(now, (from, to), kind, code),
            Happening::Delivered {
                from,
                to,
                kind,
                bytes,
                via,
            } => Entry::delivered(now, (from, to), kind, bytes, via),
            Happening::Node { device, event } => match event {
                NodeEvent::EventStored {
                    id,
                    origin: Origin::Local,
                    ..
                } => Entry::stored(now, device, *id, None),
                NodeEvent::EventStored { id, from, .. } => {
                    let source = from.as_ref().and_then(|f| view.index_of(f));
                    Entry::stored(now, device, *id, source)
                }
                NodeEvent::PacketDropped { reason, .. } => {
                    Entry::refused(now, device, format!("rx_{}", reason.code()))
                }
                NodeEvent::EventRejected { reason, .. } => {
                    Entry::refused(now, device, format!("rx_event_{}", reason.code()))
                }
                _ => return,
            },
            Happening::Converged { device } => Entry::Converged { at: now, device },
            Happening::Fault {
                fault,
                applied: true,
            } => {
                self.0.note(Entry::fault(now, fault));
                return self.note_states(view);
            }
            Happening::Heal { done: true } => {
                self.0.note(Entry::Heal { at: now });
                return self.note_states(view);
            }
            _ => return,
        };
        self.0.note(entry);
    }
}
