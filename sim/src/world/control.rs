//! A world hosted by the simulation service (`meshlog sim-service --sim`): instead of running
//! its own workload to an end, it waits for commands. The service advances its clock, appends
//! what people (or the service's generator) post, flips devices and the network, and reads
//! each device's node and store back for the device API.
//!
//! The packet log the page shows comes from the trace: every send, drop, delivery and insert
//! is already written there as one line, so a [`Tap`] on the trace sink sees all of them
//! without a second path through the world's drain loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::rc::Rc;

use meshlog_core::{AppendError, DeviceId, EventBody, EventId, Instant, Node, PacketKind};
use thiserror::Error;

use super::{Item, SharedStore, SimError, World};
use crate::clocks::reacts_to;
use crate::scenario::{LatencySpec, LinkSpec, Scenario, SimDuration};

/// Trace lines kept for the host between two drains; older ones fall off. A drain happens
/// after every command, so this only bounds a single huge advance.
pub const TAP_LINES_MAX: usize = 20_000;

#[derive(Debug, Error)]
pub enum HostError {
    #[error("no device {0}")]
    UnknownDevice(usize),
    #[error("device {0} is not running")]
    Down(String),
    #[error("device {device}: {source}")]
    Append { device: String, source: AppendError },
    #[error("reading the in-memory store of {0}")]
    Store(String),
}

/// The trace lines a hosted world wrote since the last [`Tap::drain`].
#[derive(Clone, Debug, Default)]
pub struct Tap {
    lines: Rc<RefCell<VecDeque<String>>>,
}

impl Tap {
    /// What happened since the last drain, in order; lines that are not about packets or
    /// stored events are skipped.
    pub fn drain(&self) -> Vec<Happening> {
        let lines: Vec<String> = self.lines.borrow_mut().drain(..).collect();
        lines.iter().filter_map(|l| Happening::parse(l)).collect()
    }
}

struct TapWriter(Tap);

impl Write for TapWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The trace writes each line whole, newline included.
        let line = String::from_utf8_lossy(buf).trim_end().to_owned();
        let mut lines = self.0.lines.borrow_mut();
        if lines.len() == TAP_LINES_MAX {
            lines.pop_front();
        }
        lines.push_back(line);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One packet or store happening, from the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening {
    /// `from` put a datagram on the wire to `to`.
    Sent {
        at: Instant,
        from: String,
        to: String,
        kind: PacketKind,
        bytes: u64,
        note: String,
    },
    /// The virtual network dropped it (`cause`: loss, burst, partition, cut).
    Lost {
        at: Instant,
        from: String,
        to: String,
        kind: PacketKind,
        bytes: u64,
        cause: String,
    },
    /// It reached `to`.
    Delivered {
        at: Instant,
        from: String,
        to: String,
        kind: PacketKind,
        bytes: u64,
    },
    /// `at_device` threw a datagram away (bad signature, garbled, ...).
    Refused {
        at: Instant,
        at_device: String,
        bytes: u64,
        code: String,
    },
    /// `device` now holds event `id` (appended there or received).
    Stored { device: String, id: String },
}

impl Happening {
    fn parse(line: &str) -> Option<Happening> {
        let words: Vec<&str> = line.split(' ').collect();
        let at = parse_instant(words.first()?)?;
        let pair = |w: &str| -> Option<(String, String)> {
            let (a, b) = w.split_once('>')?;
            Some((a.to_owned(), b.to_owned()))
        };
        match (words.get(1).copied()?, words.get(2).copied()?) {
            ("send", link) => {
                let (from, to) = pair(link)?;
                let note = line
                    .split_once(" (")
                    .map(|(_, n)| n.trim_end_matches(')').to_owned())
                    .unwrap_or_default();
                Some(Happening::Sent {
                    at,
                    from,
                    to,
                    kind: parse_kind(words.get(3)?)?,
                    bytes: words.get(4)?.parse().ok()?,
                    note,
                })
            }
            ("drop", "at") => Some(Happening::Refused {
                at,
                at_device: (*words.get(3)?).to_owned(),
                bytes: words.get(4)?.parse().ok()?,
                code: (*words.get(5)?).to_owned(),
            }),
            ("reject", "at") => Some(Happening::Refused {
                at,
                at_device: (*words.get(3)?).to_owned(),
                bytes: 0,
                code: (*words.get(6)?).to_owned(),
            }),
            ("drop", link) => {
                let (from, to) = pair(link)?;
                Some(Happening::Lost {
                    at,
                    from,
                    to,
                    kind: parse_kind(words.get(3)?)?,
                    bytes: words.get(4)?.parse().ok()?,
                    cause: (*words.get(5)?).to_owned(),
                })
            }
            ("deliver", link) => {
                let (from, to) = pair(link)?;
                Some(Happening::Delivered {
                    at,
                    from,
                    to,
                    kind: parse_kind(words.get(3)?)?,
                    bytes: words.get(4)?.parse().ok()?,
                })
            }
            ("append" | "insert", device) => Some(Happening::Stored {
                device: device.to_owned(),
                id: (*words.get(3)?).to_owned(),
            }),
            _ => None,
        }
    }
}

/// `12.345678s` (the trace's `Instant`) back to an `Instant`.
fn parse_instant(text: &str) -> Option<Instant> {
    let (secs, micros) = text.strip_suffix('s')?.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let micros: u64 = micros.parse().ok()?;
    Some(Instant(secs.checked_mul(1_000_000)?.checked_add(micros)?))
}

fn parse_kind(text: &str) -> Option<PacketKind> {
    PacketKind::ALL.into_iter().find(|k| k.name() == text)
}

impl World {
    /// A world for the simulation service: the scenario's devices, topology, sync settings
    /// and network, but none of its workload, scheduled faults or end-of-run heal; it runs
    /// for as long as it is advanced.
    pub fn hosted(scenario: &Scenario, seed: u64) -> Result<(World, Tap), SimError> {
        let tap = Tap::default();
        let mut world = World::new(scenario, seed, Some(Box::new(TapWriter(tap.clone()))))?;
        // Only what the nodes themselves started stays queued: their packets and timers.
        world
            .queue
            .retain(|_, item| matches!(item, Item::Deliver { .. } | Item::Wake(_)));
        world.workload_end = Instant(u64::MAX);
        world.end = Instant(u64::MAX);
        Ok((world, tap))
    }

    pub fn device_names(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.name.to_string()).collect()
    }

    /// The device's running node; `None` while it is crashed (a hosted world never crashes
    /// one itself).
    pub fn node(&self, device: usize) -> Option<&Node<SharedStore>> {
        self.devices.get(device)?.node.as_ref()
    }

    pub fn device_online(&self, device: usize) -> bool {
        self.devices.get(device).is_some_and(|d| d.online)
    }

    /// Appends `bodies` on `device` now, in order, each recorded for the checkers like a
    /// workload append; the ids come back once every one is in the device's store.
    pub fn append_now(
        &mut self,
        device: usize,
        bodies: Vec<EventBody>,
    ) -> Result<Vec<EventId>, HostError> {
        let now = self.now;
        let name = self
            .devices
            .get(device)
            .ok_or(HostError::UnknownDevice(device))?
            .name
            .clone();
        let mut ids = Vec::with_capacity(bodies.len());
        let device_now = self.devices[device].clock.read(now);
        for body in bodies {
            let reacts_to = reacts_to(&body);
            let node = self.devices[device]
                .node
                .as_mut()
                .ok_or_else(|| HostError::Down(name.to_string()))?;
            let id = node
                .append(device_now, body)
                .map_err(|source| HostError::Append {
                    device: name.to_string(),
                    source,
                })?;
            let appended = self
                .appended_of(device, id)
                .ok_or_else(|| HostError::Store(name.to_string()))?;
            self.check_event_time(device, id, &appended, reacts_to);
            self.appended.insert(id, appended);
            ids.push(id);
        }
        self.drain(device);
        Ok(ids)
    }

    pub fn set_device_online(&mut self, device: usize, online: bool) -> Result<(), HostError> {
        if device >= self.devices.len() {
            return Err(HostError::UnknownDevice(device));
        }
        self.set_online(device, online);
        Ok(())
    }

    /// Every link's loss (0..=1) and latency range from now on.
    pub fn set_network(&mut self, loss: f64, latency_us_min: u64, latency_us_max: u64) {
        let spec = LinkSpec {
            loss: Some(loss),
            latency: Some(LatencySpec {
                min: SimDuration(meshlog_core::Duration::from_micros(latency_us_min)),
                max: SimDuration(meshlog_core::Duration::from_micros(latency_us_max)),
            }),
            ..LinkSpec::default()
        };
        self.network.change(None, &spec, true);
    }

    /// The first device on one side, the rest on the other; `false` joins them again.
    pub fn set_partitioned(&mut self, partitioned: bool) {
        let groups = (0..self.devices.len())
            .map(|i| u32::from(partitioned && i == 0))
            .collect();
        self.network.partition(groups, true);
    }

    /// (loss 0..=1, latency min µs, latency max µs) of the first link, which a hosted world
    /// keeps equal to every other one.
    pub fn network_settings(&self) -> (f64, u64, u64) {
        let to = usize::from(self.devices.len() > 1);
        let model = self.network.model(0, to);
        (
            f64::from(model.loss_ppm) / 1_000_000.0,
            model.latency_us_min,
            model.latency_us_max,
        )
    }

    /// The page's partition: `group_of[i]` is device i's group; all equal heals.
    pub fn set_partition_groups(&mut self, group_of: Vec<u32>) {
        if group_of.len() == self.devices.len() {
            self.network.partition(group_of, true);
        }
    }

    /// Cuts (or restores) the one-way link `from` → `to`.
    pub fn set_cut(&mut self, from: usize, to: usize, cut: bool) -> Result<(), HostError> {
        let n = self.devices.len();
        for device in [from, to] {
            if device >= n {
                return Err(HostError::UnknownDevice(device));
            }
        }
        if cut {
            self.network.cut(from, to, true);
        } else {
            self.network.restore(from, to);
        }
        Ok(())
    }

    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        let n = self.devices.len();
        from < n && to < n && self.network.is_cut(from, to)
    }

    /// The crash fault: the node and its in-flight state are dropped, the store kept; the
    /// device stays down until [`World::restart_device`].
    pub fn crash_device(&mut self, device: usize) -> Result<(), HostError> {
        let d = self
            .devices
            .get_mut(device)
            .ok_or(HostError::UnknownDevice(device))?;
        let now = self.now;
        self.trace.line(format_args!("{now} host crash {}", d.name));
        d.node = None;
        d.wake_at = None;
        Ok(())
    }

    /// A new node over the crashed device's store (nothing if it is running).
    pub fn restart_device(&mut self, device: usize) -> Result<(), HostError> {
        if device >= self.devices.len() {
            return Err(HostError::UnknownDevice(device));
        }
        let now = self.now;
        let name = self.devices[device].name.clone();
        self.trace.line(format_args!("{now} host restart {name}"));
        self.restart(device);
        Ok(())
    }

    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.index.get(&DeviceId::new(name)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_parse() {
        let sent = Happening::parse("1.000005s send alice>bob EVENT 300 at 1.002s (message ab)");
        assert!(
            matches!(sent, Some(Happening::Sent { bytes: 300, ref note, .. }) if note == "message ab")
        );
        let lost = Happening::parse("2.000000s drop alice>bob FILTER 90 partition (b3)");
        assert!(matches!(lost, Some(Happening::Lost { ref cause, .. }) if cause == "partition"));
        let got = Happening::parse("2.500000s deliver bob>alice SUMMARY 40");
        assert!(matches!(got, Some(Happening::Delivered { bytes: 40, .. })));
        let stored = Happening::parse("3.000000s insert bob abcd from alice");
        assert!(matches!(stored, Some(Happening::Stored { ref id, .. }) if id == "abcd"));
        assert_eq!(Happening::parse("0.000000s heal end-of-workload"), None);
    }
}
