//! A report of a recording's replay (`meshlog replay --report`): one device's view of a real
//! run. Its own lane (events held, online/offline), the datagrams it sent and received per
//! peer and kind, its refusals, and a sequence diagram of its datagrams. A recording knows
//! when a datagram left this device or reached it, never both ends, so arrows are drawn at
//! the one instant known; the peers' lanes hold no events of their own.

use std::collections::BTreeMap;

use meshlog_core::record::{RecordedInput, Recording};
use meshlog_core::{EventId, Instant, NodeEvent, Origin, Output, Packet, PacketKind};

use super::picture::{Entry, ReportOptions, RunReport, Via};
use super::recorder::{Recorder, Summary};

/// The lane of senders that are not the device's peers, or that no datagram header names.
const OTHER: &str = "(other)";

/// Feeds a [`Recorder`] from a replay's inputs and outputs. Device 0 is the recorded one.
#[derive(Debug)]
pub struct ReplayReport {
    recorder: Recorder,
    index: BTreeMap<String, usize>,
    /// Where senders that are not peers go; a lane only if the recording has some.
    other: usize,
    appended: u64,
    last_at: Instant,
}

impl ReplayReport {
    /// Lanes for the device, its peers and, if any datagram needs it, [`OTHER`]; `held` are
    /// the ids in its store at start.
    pub fn new(
        recording: &Recording,
        held: impl IntoIterator<Item = EventId>,
        options: ReportOptions,
    ) -> ReplayReport {
        let start = &recording.start;
        let mut names = vec![start.device.to_string()];
        names.extend(start.peers.iter().map(|(peer, _)| peer.to_string()));
        let index: BTreeMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let other = names.len();
        let strangers = recording.batches.iter().flat_map(|b| &b.inputs).any(|i| {
            matches!(i, RecordedInput::Datagram { bytes, .. }
                if Packet::peek(bytes).is_none_or(|(_, from)| !index.contains_key(&from)))
        });
        if strangers {
            names.push(OTHER.to_owned());
        }
        let mut recorder = Recorder::new(names, options);
        for id in held {
            recorder.note(Entry::stored(Instant::ZERO, 0, id, None));
        }
        ReplayReport {
            recorder,
            index,
            other,
            appended: 0,
            last_at: Instant::ZERO,
        }
    }

    fn sender(&self, name: &str) -> usize {
        self.index.get(name).copied().unwrap_or(self.other)
    }

    /// One recorded input, at `at` (from the device's start).
    pub fn input(&mut self, at: Instant, input: &RecordedInput) {
        self.last_at = at;
        match input {
            RecordedInput::Datagram { bytes, .. } => {
                // Unreadable: the node's drop, which follows, books it on `OTHER`.
                if let Some((kind, from)) = Packet::peek(bytes) {
                    let from = self.sender(&from);
                    self.recorder.note(Entry::Received {
                        at,
                        from,
                        to: 0,
                        kind,
                        bytes: bytes.len(),
                    });
                }
            }
            RecordedInput::Online { online, .. } => self.recorder.note(Entry::State {
                at,
                device: 0,
                running: true,
                online: *online,
            }),
            RecordedInput::Timeout(_) | RecordedInput::Append { .. } => {}
        }
    }

    /// One output of the replayed node, at `at`.
    pub fn output(&mut self, at: Instant, output: &Output) {
        match output {
            Output::Transmit(t) => {
                let to = self.sender(&t.to.to_string());
                self.recorder.note(Entry::transmit(at, 0, to, t));
                // Sent now; when it arrived only the peer knows.
                self.recorder.note(Entry::OnWire {
                    at,
                    from: 0,
                    to,
                    kind: t.kind,
                    bytes: t.bytes.len(),
                    arrives: at,
                    via: Via::Node,
                });
            }
            Output::Event(event) => self.event(at, event),
            Output::Timeout(_) => {}
        }
    }

    /// As the world books a node's events (`report/world.rs`, `Reporter`): the same codes.
    fn event(&mut self, at: Instant, event: &NodeEvent) {
        let refused = |from: usize, kind: Option<PacketKind>, code: String| Entry::Refused {
            at,
            from: Some(from),
            to: 0,
            kind,
            code,
        };
        let entry = match event {
            NodeEvent::EventStored {
                id,
                origin: Origin::Local,
                ..
            } => {
                self.appended += 1;
                Entry::stored(at, 0, *id, None)
            }
            NodeEvent::EventStored { id, from, .. } => {
                let from = from.as_ref().map(|f| self.sender(&f.to_string()));
                Entry::stored(at, 0, *id, from)
            }
            NodeEvent::PacketDropped {
                claimed, reason, ..
            } => {
                let (kind, from) = match claimed {
                    Some((kind, from)) => (Some(*kind), self.sender(from)),
                    None => (None, self.other),
                };
                refused(from, kind, format!("rx_{}", reason.code()))
            }
            NodeEvent::EventRejected { from, reason } => refused(
                self.sender(&from.to_string()),
                Some(PacketKind::Event),
                format!("rx_event_{}", reason.code()),
            ),
            NodeEvent::PeerSync { .. }
            | NodeEvent::StoreFailed { .. }
            | NodeEvent::PacketReceived { .. }
            | NodeEvent::MemberChanged { .. }
            | NodeEvent::KeyEpoch { .. }
            | NodeEvent::KeysForgotten { .. }
            | NodeEvent::Admitted { .. }
            | NodeEvent::JoinRefused { .. }
            | NodeEvent::PeerAddress { .. }
            | NodeEvent::BlobComplete { .. } => return,
        };
        self.recorder.note(entry);
    }

    /// The picture: `title` names the recording; `digest` and `failures` say how the replay
    /// went.
    pub fn finish(self, title: String, digest: String, failures: Vec<String>) -> RunReport {
        let summary = Summary {
            scenario: title,
            seed: 0,
            digest,
            failures,
            virtual_time_us: self.last_at.as_micros(),
            events: self.appended,
        };
        self.recorder.finish(summary, Vec::new())
    }
}
