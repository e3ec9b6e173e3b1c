//! Draining a node: its datagrams go to the virtual network, its events to the trace and the
//! counters, its next wake-up to the queue.

use meshlog_core::{Event, NodeEvent, Origin, Output, PacketKind};

use crate::report::Entry;
use crate::world::{Item, Sender, World};

impl World {
    /// Hands everything the node produced to the network and the trace, until its next wake-up.
    pub(crate) fn drain(&mut self, device: usize) {
        loop {
            let Some(node) = self.devices[device].node.as_mut() else {
                return;
            };
            let output = node.poll_output();
            let now = self.now;
            match output {
                Output::Timeout(at) => {
                    // The end of a batch of inputs, where the real driver commits too.
                    self.commit_store(device);
                    let at = self.devices[device].clock.world_time_of(at).max(now);
                    if self.devices[device].wake_at != Some(at) {
                        self.devices[device].wake_at = Some(at);
                        self.schedule(at, Item::Wake(device));
                    }
                    return;
                }
                Output::Transmit(t) => {
                    let to = self.index[&t.to];
                    self.counters.sent(t.kind, t.bytes.len());
                    self.ledger.sent(now, device, to, t.kind, t.bytes.len());
                    self.attack.note_answer(to, t.kind, t.bytes.len());
                    self.report.note(|| Entry::transmit(now, device, to, &t));
                    self.put_on_wire(device, to, t.kind, t.bytes, t.note, Sender::Node);
                }
                Output::Event(event) => self.record(device, event),
            }
        }
    }

    /// The network decides the datagram's fate; the trace says it.
    pub(crate) fn put_on_wire(
        &mut self,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        note: impl std::fmt::Display,
        origin: Sender,
    ) {
        let now = self.now;
        let len = bytes.len();
        let (name, receiver) = (&self.devices[from].name, &self.devices[to].name);
        match self.network.transmit(now, from, to, bytes) {
            Err(cause) => {
                self.trace.line(format_args!(
                    "{now} drop {name}>{receiver} {kind} {len} {} ({note})",
                    cause.code(),
                ));
                self.counters.drop(cause.code());
                let via = origin.via();
                self.report
                    .note(|| Entry::lost(now, (from, to), kind, len, cause, via));
            }
            Ok(deliveries) => {
                for copy in &deliveries {
                    // Formatted straight into the trace's buffer: one line per datagram.
                    let dup = if copy.duplicate { " dup" } else { "" };
                    let late = if copy.reordered { " late" } else { "" };
                    let corrupt = if copy.corrupted { " corrupt" } else { "" };
                    self.trace.line(format_args!(
                        "{now} send {name}>{receiver} {kind} {len} at {}{dup}{late}{corrupt} \
                         ({note})",
                        copy.at
                    ));
                    self.counters.faults(copy);
                    let via = origin.via();
                    self.report
                        .note(|| Entry::on_wire(now, (from, to), kind, len, copy.at, via));
                }
                for copy in deliveries {
                    self.schedule(
                        copy.at,
                        Item::Deliver {
                            from,
                            to,
                            kind,
                            bytes: copy.bytes,
                            origin,
                            corrupted: copy.corrupted,
                        },
                    );
                }
            }
        }
        if origin == Sender::Node && self.network.forge_now(from, to) {
            self.forge(from, to);
        }
    }

    fn record(&mut self, device: usize, event: NodeEvent) {
        let now = self.now;
        let name = &self.devices[device].name;
        match event {
            NodeEvent::EventStored {
                id,
                origin: Origin::Local,
                event: Event { body, .. },
                ..
            } => {
                self.trace.line(format_args!(
                    "{now} append {name} {id} {}",
                    body.kind_name()
                ));
                *self.counters.appended.entry(body.kind_name()).or_default() += 1;
                self.note_stored(device, id, true);
                self.report.note(|| Entry::stored(now, device, id, None));
            }
            NodeEvent::EventStored { id, from, .. } => {
                let source = from.as_ref().and_then(|f| self.index.get(f).copied());
                self.report.note(|| Entry::stored(now, device, id, source));
                let from = from.as_ref().map_or("", |f| f.as_str());
                self.trace
                    .line(format_args!("{now} insert {name} {id} from {from}"));
                self.counters.inserted += 1;
                self.attack.note_accepted();
                self.prompt.arrived(device, id, now);
                self.note_stored(device, id, false);
                self.note_convergence(device);
            }
            NodeEvent::PacketDropped { reason, size, .. } => {
                let code = reason.code();
                self.trace
                    .line(format_args!("{now} drop at {name} {size} {code}"));
                self.attack.note_dropped(code);
                self.counters.drop_owned(format!("rx_{code}"));
                self.report
                    .note(|| Entry::refused(now, device, format!("rx_{code}")));
            }
            NodeEvent::EventRejected { from, reason } => {
                let code = reason.code();
                self.trace
                    .line(format_args!("{now} reject at {name} from {from} {code}"));
                self.attack.note_rejected(code);
                self.counters.drop_owned(format!("rx_event_{code}"));
                self.report
                    .note(|| Entry::refused(now, device, format!("rx_event_{code}")));
            }
            NodeEvent::PeerSync { peer, in_sync } => {
                self.trace
                    .line(format_args!("{now} peer {name} {peer} in_sync={in_sync}"));
            }
            NodeEvent::StoreFailed { detail } => {
                self.trace
                    .line(format_args!("{now} store_failed {name} {detail}"));
            }
            // The `deliver` line already says it.
            NodeEvent::PacketReceived { .. } => self.attack.note_accepted(),
        }
    }

    /// After the heal, a device has converged once it holds every appended event.
    pub(crate) fn note_convergence(&mut self, device: usize) {
        if self.heal_at.is_none() {
            return;
        }
        let d = &mut self.devices[device];
        let Some(node) = d.node.as_ref() else {
            return;
        };
        if d.converged_at.is_some() || node.event_count() != self.appended.len() {
            return;
        }
        if self.appended.all(|id| node.contains(id)) {
            d.converged_at = Some(self.now);
            let at = self.now;
            self.report.note(|| Entry::Converged { at, device });
            self.trace
                .line(format_args!("{} converged {}", self.now, d.name));
            // Once every device that should converge has, only the quiet period is left:
            // idle rounds until the liveness bound would prove nothing more.
            let all = self
                .devices
                .iter()
                .all(|d| d.down_for_good || d.converged_at.is_some());
            if all {
                self.end = self.end.min(self.now + self.scenario.expect.quiet.0);
            }
        }
    }
}
