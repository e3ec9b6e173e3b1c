//! The recorder: folds entries into bounded aggregates while a run goes, and finishes them
//! into a [`RunReport`].

use std::collections::{BTreeMap, VecDeque};

use meshlog_core::{EventId, Instant, PacketKind, PacketNote, ShortId};

use super::limits::*;
use super::picture::{
    Arrow, Carrier, DeviceLane, Entry, FaultMark, LinkRow, Mark, Missing, MissingId, ReportOptions,
    RunReport, Sequence, Via,
};
use super::sampling::{push_thinned, Sampler};

/// Counts of one directed link and packet kind (`None`: a refusal no delivery explains).
#[derive(Clone, Debug, Default)]
struct LinkCounts {
    sent: (u64, u64),
    delivered: (u64, u64),
    dropped: BTreeMap<String, u64>,
}

/// A packet that named an id, and what became of it.
#[derive(Clone, Debug)]
struct CarrierRec {
    serial: u64,
    at: Instant,
    from: usize,
    to: usize,
    fate: String,
}

/// The datagram being handled by its receiver: a node's refusal belongs to it.
#[derive(Clone, Copy, Debug)]
struct Current {
    from: usize,
    to: usize,
    kind: PacketKind,
    carrier: Option<u64>,
}

/// Collects one run's report. Devices are indices into `names`.
#[derive(Debug)]
pub struct Recorder {
    options: ReportOptions,
    names: Vec<String>,
    links: BTreeMap<(usize, usize, Option<PacketKind>), LinkCounts>,
    held: Vec<u64>,
    series: Vec<Vec<(u64, u64)>>,
    states: Vec<Vec<(u64, &'static str)>>,
    converged: Vec<Option<u64>>,
    faults: Vec<FaultMark>,
    heal_at: Option<u64>,
    arrows: Sampler<Arrow>,
    marks: Sampler<Mark>,
    current: Option<Current>,
    /// Ids named by the last transmit, waiting for the network's verdict.
    naming: Option<(u64, Vec<u64>)>,
    carried: BTreeMap<u64, VecDeque<CarrierRec>>,
    /// Carrier copies on their way: (from, to, arrival) → (serial, ids).
    in_flight: BTreeMap<(usize, usize, u64), (u64, Vec<u64>)>,
    serial: u64,
    /// The note of the last transmit in the window, for its arrows' tooltips.
    last_note: String,
}

impl Recorder {
    pub fn new(names: Vec<String>, options: ReportOptions) -> Recorder {
        let n = names.len();
        Recorder {
            options,
            names,
            links: BTreeMap::new(),
            held: vec![0; n],
            series: vec![vec![(0, 0)]; n],
            states: vec![Vec::new(); n],
            converged: vec![None; n],
            faults: Vec::new(),
            heal_at: None,
            arrows: Sampler::new(ARROWS_MAX),
            marks: Sampler::new(MARKS_MAX),
            current: None,
            naming: None,
            carried: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            serial: 0,
            last_note: String::new(),
        }
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.options.window_start && at < self.options.window_end
    }

    fn link(&mut self, from: usize, to: usize, kind: Option<PacketKind>) -> &mut LinkCounts {
        self.links.entry((from, to, kind)).or_default()
    }

    /// Folds one entry in.
    pub fn note(&mut self, entry: Entry) {
        match entry {
            Entry::Transmit {
                at,
                from,
                to,
                kind,
                bytes,
                note,
            } => {
                let counts = &mut self.link(from, to, Some(kind)).sent;
                counts.0 += 1;
                counts.1 += bytes as u64;
                let ids = if kind == PacketKind::Event {
                    named_ids(&note)
                } else {
                    Vec::new()
                };
                self.naming = None;
                if !ids.is_empty() {
                    self.serial += 1;
                    let serial = self.serial;
                    for &id in &ids {
                        self.carry(id, serial, at, from, to);
                    }
                    self.naming = Some((serial, ids));
                }
                if self.in_window(at) {
                    // The note rides on the next arrows of this datagram.
                    self.last_note = truncate(&note.to_string());
                }
            }
            Entry::OnWire {
                at,
                from,
                to,
                kind,
                bytes,
                arrives,
                via,
            } => {
                if let Some((serial, ids)) = self.naming.clone() {
                    let fate = format!("arrives {}", arrives);
                    self.set_fate(serial, &ids, &fate);
                    self.in_flight
                        .insert((from, to, arrives.as_micros()), (serial, ids));
                }
                if self.in_window(at) {
                    let note = self.note_for(via);
                    self.arrows.offer(|| Arrow {
                        from,
                        to,
                        at_us: at.as_micros(),
                        arrives_us: Some(arrives.as_micros()),
                        kind: kind.name(),
                        bytes,
                        fate: via_name(via).to_owned(),
                        note,
                    });
                }
            }
            Entry::Lost {
                at,
                from,
                to,
                kind,
                bytes,
                cause,
                via,
            } => {
                *self
                    .link(from, to, Some(kind))
                    .dropped
                    .entry(cause.to_owned())
                    .or_default() += 1;
                if let Some((serial, ids)) = self.naming.take() {
                    self.set_fate(serial, &ids, &format!("lost: {cause}"));
                }
                if self.in_window(at) {
                    let note = self.note_for(via);
                    self.arrows.offer(|| Arrow {
                        from,
                        to,
                        at_us: at.as_micros(),
                        arrives_us: None,
                        kind: kind.name(),
                        bytes,
                        fate: cause.to_owned(),
                        note,
                    });
                }
            }
            Entry::Delivered {
                at,
                from,
                to,
                kind,
                bytes,
                via: _,
            } => {
                let carrier = self.arrived(from, to, at, "delivered");
                self.handling(from, to, kind, bytes, carrier);
            }
            Entry::Received {
                at,
                from,
                to,
                kind,
                bytes,
            } => {
                self.handling(from, to, kind, bytes, None);
                if self.in_window(at) {
                    self.arrows.offer(|| Arrow {
                        from,
                        to,
                        at_us: at.as_micros(),
                        arrives_us: Some(at.as_micros()),
                        kind: kind.name(),
                        bytes,
                        fate: via_name(Via::Node).to_owned(),
                        note: "received".to_owned(),
                    });
                }
            }
            Entry::Refused {
                at,
                from,
                to,
                kind,
                code,
            } => {
                let current = self.current.filter(|c| c.to == to && from.is_none());
                let (link_from, link_kind) = match (from, current) {
                    (Some(f), _) => (f, kind),
                    (None, Some(c)) => (c.from, Some(c.kind)),
                    // A refusal outside any delivery: booked on the receiver itself.
                    (None, None) => (to, kind),
                };
                *self
                    .link(link_from, to, link_kind)
                    .dropped
                    .entry(code.clone())
                    .or_default() += 1;
                let fate = format!("refused: {code}");
                match (from, current.and_then(|c| c.carrier)) {
                    (Some(f), _) => {
                        self.arrived(f, to, at, &fate);
                    }
                    (None, Some(serial)) => self.fate_of_serial(serial, &fate),
                    _ => {}
                }
                if self.in_window(at) {
                    self.marks.offer(|| Mark {
                        device: to,
                        at_us: at.as_micros(),
                        code,
                    });
                }
            }
            Entry::Stored { at, device, .. } => {
                self.held[device] += 1;
                let held = self.held[device];
                push_thinned(&mut self.series[device], (at.as_micros(), held));
            }
            Entry::Fault { at, text } => {
                if self.faults.len() < FAULTS_MAX {
                    self.faults.push(FaultMark {
                        at_us: at.as_micros(),
                        text,
                    });
                }
            }
            Entry::Heal { at } => self.heal_at = Some(at.as_micros()),
            Entry::State {
                at,
                device,
                running,
                online,
            } => {
                let state = match (running, online) {
                    (false, _) => "crashed",
                    (true, false) => "offline",
                    (true, true) => "up",
                };
                let states = &mut self.states[device];
                let last = states.last().map_or("up", |s| s.1);
                if last != state && states.len() < STATES_MAX {
                    states.push((at.as_micros(), state));
                }
            }
            Entry::Converged { at, device } => {
                self.converged[device].get_or_insert(at.as_micros());
            }
        }
    }
}

impl Recorder {
    /// A datagram reached its receiver: counted as delivered, and the receiver's refusals
    /// that follow belong to it.
    fn handling(
        &mut self,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        carrier: Option<u64>,
    ) {
        let counts = &mut self.link(from, to, Some(kind)).delivered;
        counts.0 += 1;
        counts.1 += bytes as u64;
        self.current = Some(Current {
            from,
            to,
            kind,
            carrier,
        });
    }

    fn note_for(&self, via: Via) -> String {
        match via {
            Via::Node => self.last_note.clone(),
            other => via_name(other).to_owned(),
        }
    }

    /// Packet `serial` named `id`: kept among the id's last carriers.
    fn carry(&mut self, id: u64, serial: u64, at: Instant, from: usize, to: usize) {
        if !self.carried.contains_key(&id) && self.carried.len() >= TRACKED_IDS_MAX {
            return;
        }
        let list = self.carried.entry(id).or_default();
        if list.len() == CARRIERS_PER_ID_MAX {
            list.pop_front();
        }
        list.push_back(CarrierRec {
            serial,
            at,
            from,
            to,
            fate: String::new(),
        });
    }

    fn set_fate(&mut self, serial: u64, ids: &[u64], fate: &str) {
        for id in ids {
            let Some(list) = self.carried.get_mut(id) else {
                continue;
            };
            if let Some(rec) = list.iter_mut().find(|r| r.serial == serial) {
                fate.clone_into(&mut rec.fate);
            }
        }
    }

    fn fate_of_serial(&mut self, serial: u64, fate: &str) {
        let ids: Vec<u64> = self
            .carried
            .iter()
            .filter(|(_, list)| list.iter().any(|r| r.serial == serial))
            .map(|(id, _)| *id)
            .collect();
        self.set_fate(serial, &ids, fate);
    }

    /// A copy arrived: if it carried named ids, says what became of it.
    fn arrived(&mut self, from: usize, to: usize, at: Instant, fate: &str) -> Option<u64> {
        let (serial, ids) = self.in_flight.remove(&(from, to, at.as_micros()))?;
        self.set_fate(serial, &ids, fate);
        Some(serial)
    }

    /// The finished picture. `missing` comes from the world's stores at the end.
    pub fn finish(self, summary: Summary, missing: Vec<MissingInput>) -> RunReport {
        let name = |i: usize| self.names.get(i).cloned().unwrap_or_default();
        let links = self
            .links
            .iter()
            .map(|(&(from, to, kind), c)| LinkRow {
                from: name(from),
                to: name(to),
                kind: kind.map_or("?", PacketKind::name).to_owned(),
                sent_packets: c.sent.0,
                sent_bytes: c.sent.1,
                delivered_packets: c.delivered.0,
                delivered_bytes: c.delivered.1,
                dropped: c.dropped.clone(),
            })
            .collect();
        let missing = missing
            .into_iter()
            .map(|m| Missing {
                device: m.device,
                count: m.count,
                ids: m
                    .ids
                    .into_iter()
                    .map(|(id, mut listed)| {
                        listed.carriers = self
                            .carried
                            .get(&id_key(&id))
                            .into_iter()
                            .flatten()
                            .map(|r| Carrier {
                                at_us: r.at.as_micros(),
                                from: name(r.from),
                                to: name(r.to),
                                fate: r.fate.clone(),
                            })
                            .collect();
                        listed
                    })
                    .collect(),
            })
            .collect();
        let devices = (0..self.names.len())
            .map(|i| DeviceLane {
                name: name(i),
                events: self.series[i].clone(),
                states: self.states[i].clone(),
                converged_at_us: self.converged[i],
            })
            .collect();
        let (total, stride, arrows) = self.arrows.take();
        let (marks_total, marks_stride, marks) = self.marks.take();
        RunReport {
            scenario: summary.scenario,
            seed: summary.seed,
            digest: summary.digest,
            passed: summary.failures.is_empty(),
            failures: summary.failures,
            virtual_time_us: summary.virtual_time_us,
            heal_at_us: self.heal_at,
            events: summary.events,
            devices,
            faults: self.faults,
            links,
            sequence: Sequence {
                start_us: self.options.window_start.as_micros(),
                end_us: self.options.window_end.as_micros(),
                total,
                stride,
                arrows,
                marks_total,
                marks_stride,
                marks,
            },
            missing,
        }
    }
}

/// What the run's outcome says, for the report's header.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub digest: String,
    pub failures: Vec<String>,
    pub virtual_time_us: u64,
    pub events: u64,
}

/// A device that lacks ids at the end: how many, and the first few with who holds them
/// (`carriers` is filled by the recorder).
#[derive(Clone, Debug, Default)]
pub struct MissingInput {
    pub device: String,
    pub count: usize,
    pub ids: Vec<(EventId, MissingId)>,
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::Node => "node",
        Via::Replay => "replay",
        Via::Hostile => "hostile",
        Via::Forged => "forged",
    }
}

fn truncate(note: &str) -> String {
    note.chars().take(NOTE_CHARS_MAX).collect()
}

/// The first 48 bits of an id: what a trace or a note prints (12 hex digits).
pub(crate) fn id_key(id: &EventId) -> u64 {
    u64::from_str_radix(&id.to_string(), 16).unwrap_or(0)
}

/// The ids an EVENT packet's note names (`ev 1a2b3c4d5e6f, ev …, +3 more` from a sync, or
/// `message 1a2b3c4d5e6f` from an eager push), read from its facts, as [`id_key`] keys them.
fn named_ids(note: &PacketNote) -> Vec<u64> {
    note.events().map(ShortId::to_u64).collect()
}

#[cfg(test)]
pub(super) fn named_ids_for_tests(note: &PacketNote) -> Vec<u64> {
    named_ids(note)
}
