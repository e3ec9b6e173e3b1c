//! The run's trace: one line per send, drop, delivery, append, insert and fault, hashed as it
//! is written. The digest (blake3 of every line, each ending in `\n`) is the run's fingerprint:
//! same scenario and seed, same digest, in one process or two.
//!
//! Every line shape is written here and nowhere else: a world's happenings ([`Trace`] is an
//! observer) and a recording's replay (`replay.rs`) share them; a node event's line is core's
//! `NodeEvent::trace_line`, which core's own test harness writes too.

use std::fmt::{self, Write as _};
use std::io::Write;

use meshlog_core::record::RecordedInput;
use meshlog_core::{Instant, NodeEvent, Output, Packet};

use crate::kernel::{Happening, Observer, View};

pub struct Trace {
    hasher: blake3::Hasher,
    lines: u64,
    line: String,
    sink: Option<Box<dyn Write>>,
    sink_error: Option<std::io::Error>,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("lines", &self.lines)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Trace {
    /// A trace that is only hashed; `sink`, if given, also receives every line.
    pub fn new(sink: Option<Box<dyn Write>>) -> Self {
        Trace {
            hasher: blake3::Hasher::new(),
            lines: 0,
            line: String::with_capacity(128),
            sink,
            sink_error: None,
        }
    }

    /// Records one line (without its newline). Lines are built in a reused buffer: a busy run
    /// writes hundreds of thousands of them.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        self.line.clear();
        self.line
            .write_fmt(args)
            .expect("writing to a String cannot fail");
        self.line.push('\n');
        self.hasher.update(self.line.as_bytes());
        self.lines += 1;
        if let Some(sink) = &mut self.sink {
            if let Err(err) = sink.write_all(self.line.as_bytes()) {
                // Keep hashing (the digest must not depend on the sink); report once at the end.
                self.sink_error.get_or_insert(err);
                self.sink = None;
            }
        }
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Flushes the sink; the first write error, if any, comes back here.
    pub fn finish(&mut self) -> Result<(), std::io::Error> {
        if let Some(err) = self.sink_error.take() {
            return Err(err);
        }
        match &mut self.sink {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }
}

impl Observer for Trace {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let now = view.now;
        let name = |i: usize| view.name(i);
        match *happening {
            Happening::Start => {
                let names: Vec<&str> = (0..view.device_count()).map(|i| name(i).as_str()).collect();
                self.line(format_args!(
                    "scenario {} seed {} devices {}",
                    view.scenario.name,
                    view.seed,
                    names.join(",")
                ));
            }
            Happening::HostileSent {
                from,
                to,
                kind,
                bytes,
                attack,
            } => self.line(format_args!(
                "{now} hostile {}>{} {kind} {bytes} {attack}",
                name(from),
                name(to)
            )),
            Happening::OnWire {
                from,
                to,
                kind,
                bytes,
                note,
                copy,
                ..
            } => {
                let dup = if copy.duplicate { " dup" } else { "" };
                let late = if copy.reordered { " late" } else { "" };
                let corrupt = if copy.corrupted { " corrupt" } else { "" };
                self.line(format_args!(
                    "{now} send {}>{} {kind} {bytes} at {}{dup}{late}{corrupt} ({note})",
                    name(from),
                    name(to),
                    copy.at
                ));
            }
            Happening::Lost {
                from,
                to,
                kind,
                bytes,
                note,
                cause,
                ..
            } => self.line(format_args!(
                "{now} drop {}>{} {kind} {bytes} {} ({note})",
                name(from),
                name(to),
                cause.code()
            )),
            Happening::Replayed {
                from,
                to,
                kind,
                bytes,
                arrives,
            } => self.line(format_args!(
                "{now} replay {}>{} {kind} {bytes} at {arrives}",
                name(from),
                name(to)
            )),
            Happening::Forged {
                from,
                to,
                kind,
                bytes,
                arrives,
                stolen_keys,
            } => {
                let how = if stolen_keys { "stolen" } else { "outsider" };
                self.line(format_args!(
                    "{now} forge {}>{} {kind} {bytes} at {arrives} {how}",
                    name(from),
                    name(to)
                ));
            }
            Happening::NotRunning {
                from,
                to,
                kind,
                bytes,
                code,
                via,
            } => self.line(format_args!(
                "{now} drop {}>{} {kind} {bytes} {code}{}",
                name(from),
                name(to),
                via.tag()
            )),
            Happening::Delivered {
                from,
                to,
                kind,
                bytes,
                via,
            } => self.line(format_args!(
                "{now} deliver {}>{} {kind} {bytes}{}",
                name(from),
                name(to),
                via.tag()
            )),
            Happening::Node { device, event } => self.node_event(now, name(device), event),
            Happening::Converged { device } => {
                self.line(format_args!("{now} converged {}", name(device)));
            }
            Happening::AppendSkipped { device, kind } => {
                self.line(format_args!("{now} skip {} crashed {kind}", name(device)));
            }
            Happening::AppendRefused { device, kind } => {
                self.line(format_args!(
                    "{now} refused {} disk full {kind}",
                    name(device)
                ));
            }
            Happening::Fault {
                fault,
                applied: false,
            } => self.line(format_args!("{now} fault {}", fault.to_line())),
            Happening::Heal { done: false } => {
                self.line(format_args!("{now} heal end-of-workload"))
            }
            Happening::Member {
                change,
                outcome: Some(outcome),
            } => self.line(format_args!(
                "{now} roster {} => {outcome}",
                change.to_line()
            )),
            Happening::PowerCut { device, lost } => self.line(format_args!(
                "{now} power_cut {} lost {}",
                name(device),
                lost.len()
            )),
            Happening::Reopened {
                device,
                held,
                own_lost,
            } => self.line(format_args!(
                "{now} reopen {} held {held} lost-own {}",
                name(device),
                own_lost.len()
            )),
            Happening::Host { device, command } => {
                self.line(format_args!("{now} host {command} {}", name(device)));
            }
            Happening::JoinEnded {
                device, outcome, ..
            } => {
                self.line(format_args!("{now} join {} => {outcome}", name(device)));
            }
            Happening::Announced { device, bytes } => {
                self.line(format_args!(
                    "{now} announce {} {}",
                    name(device),
                    bytes.len()
                ));
            }
            Happening::AnnounceLost { from, to, cause } => self.line(format_args!(
                "{now} drop {}>{} ANNOUNCE {}",
                name(from),
                name(to),
                cause.code()
            )),
            Happening::AnnounceHeard { from, to, bytes } => self.line(format_args!(
                "{now} hear {}>{} ANNOUNCE {}",
                name(from),
                name(to),
                bytes.len()
            )),
            Happening::AddressChanged {
                device,
                was,
                now: at,
            } => self.line(format_args!("{now} address {} {was} -> {at}", name(device))),
            Happening::NatMapped {
                nat,
                device,
                public,
            } => self.line(format_args!(
                "{now} nat{nat} maps {} as {public}",
                name(device)
            )),
            Happening::End => self.line(format_args!("{now} end")),
            Happening::Advance { .. }
            | Happening::Transmit { .. }
            | Happening::Handled { .. }
            | Happening::Made { .. }
            | Happening::Fault { applied: true, .. }
            | Happening::Member { outcome: None, .. }
            | Happening::Heal { done: true }
            | Happening::ForgedEvent { .. }
            | Happening::Restarted { .. } => {}
        }
    }
}

impl Trace {
    /// A node event, in the one shape every trace writes (`NodeEvent::trace_line`).
    pub(crate) fn node_event(&mut self, now: Instant, name: &dyn fmt::Display, event: &NodeEvent) {
        if let Some(line) = event.trace_line(name) {
            self.line(format_args!("{now} {line}"));
        }
    }

    /// One input of a recording's replay, at `now` from the device's start.
    pub(crate) fn replay_input(&mut self, now: Instant, name: &str, input: &RecordedInput) {
        match input {
            RecordedInput::Datagram { from, bytes, .. } => {
                let (kind, source) = Packet::peek(bytes)
                    .map_or(("UNKNOWN".to_owned(), "?".to_owned()), |(k, s)| {
                        (k.name().to_owned(), s)
                    });
                self.line(format_args!(
                    "{now} deliver {source}>{name} {kind} {} from {from}",
                    bytes.len()
                ));
            }
            RecordedInput::Timeout(_) => {}
            RecordedInput::Append { bodies, .. } => self.line(format_args!(
                "{now} api append {name} {} bodies",
                bodies.len()
            )),
            RecordedInput::Online { online, .. } => {
                self.line(format_args!("{now} api online {name} {online}"));
            }
        }
    }

    /// One output of a recording's replay (the node's datagrams have no network to cross).
    pub(crate) fn replay_output(&mut self, now: Instant, name: &str, output: &Output) {
        match output {
            Output::Transmit(t) => self.line(format_args!(
                "{now} send {name}>{} {} {} ({})",
                t.to,
                t.kind,
                t.bytes.len(),
                t.note
            )),
            Output::Event(event) => self.node_event(now, &name, event),
            Output::Timeout(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_covers_every_line_and_its_order() {
        let mut a = Trace::new(None);
        a.line(format_args!("one"));
        a.line(format_args!("two"));
        let mut b = Trace::new(None);
        b.line(format_args!("two"));
        b.line(format_args!("one"));
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), blake3::hash(b"one\ntwo\n").to_hex().to_string());
        assert_eq!(a.lines(), 2);
    }
}
