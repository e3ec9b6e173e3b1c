//! A world hosted by the simulation service (`meshlog sim-service --sim`): instead of running
//! its own workload to an end, it waits for commands. The service advances its clock, appends
//! what people (or the service's generator) post, flips devices and the network, and reads
//! each device's node and store back for the device API.
//!
//! The packet log the page shows comes from a [`Tap`]: an observer of the kernel's
//! happenings that keeps the ones about packets and stored events, as data.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use meshlog_core::{AppendError, DeviceId, EventBody, EventId, Instant, NodeEvent, PacketKind};
use thiserror::Error;

use crate::checks::Checks;
use crate::faults::Plan;
use crate::kernel::control::AppendFailure;
use crate::kernel::{Happening, Observer, SimError, View, World, WorldOptions};
use crate::report::trace::Trace;
use crate::scenario::{LatencySpec, LinkSpec, Scenario, SimDuration};

/// Happenings kept for the host between two drains; older ones fall off. A drain happens
/// after every command, so this only bounds a single huge advance.
pub const TAP_SEEN_MAX: usize = 20_000;

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

/// What a hosted world's devices did since the last [`Tap::drain`].
#[derive(Clone, Debug, Default)]
pub struct Tap {
    seen: Rc<RefCell<VecDeque<Seen>>>,
}

impl Tap {
    /// What happened since the last drain, in order.
    pub fn drain(&self) -> Vec<Seen> {
        self.seen.borrow_mut().drain(..).collect()
    }

    fn push(&self, seen: Seen) {
        let mut kept = self.seen.borrow_mut();
        if kept.len() == TAP_SEEN_MAX {
            kept.pop_front();
        }
        kept.push_back(seen);
    }
}

/// One packet or store happening, for the page's network log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// `from` put a datagram on the wire to `to`.
    Sent {
        at: Instant,
        from: String,
        to: String,
        kind: PacketKind,
        bytes: u64,
        note: String,
    },
    /// It was lost on the way (`cause`: loss, burst, partition, cut), or reached a device
    /// that was not running (`crashed`).
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
    /// `at_device` threw a datagram away (bad tag, garbled, ...) or refused an event in it.
    Refused {
        at: Instant,
        at_device: String,
        bytes: u64,
        code: String,
    },
    /// `device` now holds event `id` (appended there or received).
    Stored { device: String, id: String },
}

impl Observer for Tap {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let at = view.now;
        let name = |i: usize| view.name(i).to_string();
        let seen = match *happening {
            Happening::OnWire {
                from,
                to,
                kind,
                bytes,
                note,
                ..
            } => Seen::Sent {
                at,
                from: name(from),
                to: name(to),
                kind,
                bytes: bytes as u64,
                note: note.to_string(),
            },
            Happening::Lost {
                from,
                to,
                kind,
                bytes,
                cause,
                ..
            } => Seen::Lost {
                at,
                from: name(from),
                to: name(to),
                kind,
                bytes: bytes as u64,
                cause: cause.code().to_owned(),
            },
            Happening::NotRunning {
                from,
                to,
                kind,
                bytes,
                code,
                ..
            } => Seen::Lost {
                at,
                from: name(from),
                to: name(to),
                kind,
                bytes: bytes as u64,
                cause: code.to_owned(),
            },
            Happening::Delivered {
                from,
                to,
                kind,
                bytes,
                ..
            } => Seen::Delivered {
                at,
                from: name(from),
                to: name(to),
                kind,
                bytes: bytes as u64,
            },
            Happening::Node { device, event } => match event {
                NodeEvent::EventStored { id, .. } => Seen::Stored {
                    device: name(device),
                    id: id.to_string(),
                },
                NodeEvent::PacketDropped { reason, size, .. } => Seen::Refused {
                    at,
                    at_device: name(device),
                    bytes: *size as u64,
                    code: reason.code().to_owned(),
                },
                NodeEvent::EventRejected { reason, .. } => Seen::Refused {
                    at,
                    at_device: name(device),
                    bytes: 0,
                    code: reason.code().to_owned(),
                },
                _ => return,
            },
            _ => return,
        };
        self.push(seen);
    }
}

impl World {
    /// A world for the simulation service: the scenario's devices, topology, sync settings
    /// and network, but none of its workload, scheduled faults or end-of-run heal; it runs
    /// for as long as it is advanced.
    pub fn hosted(scenario: &Scenario, seed: u64) -> Result<(World, Tap), SimError> {
        let tap = Tap::default();
        let observers: Vec<Box<dyn Observer>> = vec![
            Box::new(Trace::new(None)),
            Box::new(Checks::new(scenario.devices.len())),
            Box::new(tap.clone()),
        ];
        let mut world = World::build(scenario, seed, WorldOptions::default(), observers, |w| {
            Box::new(Plan::new(w, w.community()))
        })?;
        world.wait_for_commands();
        Ok((world, tap))
    }

    /// Appends `bodies` on `device` now, in order, each recorded for the checkers like a
    /// workload append; the ids come back once every one is in the device's store.
    pub fn append_now(
        &mut self,
        device: usize,
        bodies: Vec<EventBody>,
    ) -> Result<Vec<EventId>, HostError> {
        if device >= self.device_count() {
            return Err(HostError::UnknownDevice(device));
        }
        let name = self.name(device).to_string();
        self.append_all(device, bodies).map_err(|err| match err {
            AppendFailure::Down => HostError::Down(name),
            AppendFailure::Refused(source) => HostError::Append {
                device: name,
                source,
            },
            AppendFailure::NotStored => HostError::Store(name),
        })
    }

    pub fn set_device_online(&mut self, device: usize, online: bool) -> Result<(), HostError> {
        if device >= self.device_count() {
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
        self.change_links(&spec, true);
    }

    /// The first device on one side, the rest on the other; `false` joins them again.
    pub fn set_partitioned(&mut self, partitioned: bool) {
        let groups = (0..self.device_count())
            .map(|i| u32::from(partitioned && i == 0))
            .collect();
        self.partition(groups, true);
    }

    /// (loss 0..=1, latency min µs, latency max µs) of the first link, which a hosted world
    /// keeps equal to every other one.
    pub fn network_settings(&self) -> (f64, u64, u64) {
        let to = usize::from(self.device_count() > 1);
        let model = self.link_model(0, to);
        (
            f64::from(model.loss_ppm) / 1_000_000.0,
            model.latency_us_min,
            model.latency_us_max,
        )
    }

    /// The page's partition: `group_of[i]` is device i's group; all equal heals.
    pub fn set_partition_groups(&mut self, group_of: Vec<u32>) {
        if group_of.len() == self.device_count() {
            self.partition(group_of, true);
        }
    }

    /// Cuts (or restores) the one-way link `from` → `to`.
    pub fn set_cut(&mut self, from: usize, to: usize, cut: bool) -> Result<(), HostError> {
        let n = self.device_count();
        for device in [from, to] {
            if device >= n {
                return Err(HostError::UnknownDevice(device));
            }
        }
        if cut {
            self.cut(from, to, true);
        } else {
            self.restore(from, to);
        }
        Ok(())
    }

    /// The crash fault: the node and its in-flight state are dropped, the store kept; the
    /// device stays down until [`World::restart_device`].
    pub fn crash_device(&mut self, device: usize) -> Result<(), HostError> {
        if device >= self.device_count() {
            return Err(HostError::UnknownDevice(device));
        }
        self.host_command(device, "crash");
        self.crash(device);
        Ok(())
    }

    /// A new node over the crashed device's store (nothing if it is running).
    pub fn restart_device(&mut self, device: usize) -> Result<(), HostError> {
        if device >= self.device_count() {
            return Err(HostError::UnknownDevice(device));
        }
        self.host_command(device, "restart");
        self.restart(device);
        Ok(())
    }

    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.view().index_of(&DeviceId::new(name)?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A trace sink the test can read back.
    #[derive(Clone, Default)]
    struct Lines(Rc<RefCell<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The page's log and the trace observe the same stream: every datagram sent, delivered
    /// or lost and every event stored that the trace writes, the tap holds too, in order.
    #[test]
    fn the_tap_sees_what_the_trace_writes() {
        let scenario = Scenario::parse(
            "name = \"t\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"carol\"]\n\
             [network]\nloss = 0.3\n",
            "t.toml",
        )
        .unwrap();
        let (mut world, tap) = World::hosted(&scenario, 1).unwrap();
        let lines = Lines::default();
        world.observe_with(Box::new(Trace::new(Some(Box::new(lines.clone())))));
        tap.drain();
        let body = EventBody::Message {
            text: "hello".into(),
            attachment: None,
            auto: false,
        };
        world.set_cut(1, 2, true).unwrap();
        let ids = world.append_now(0, vec![body]).unwrap();
        world.run_until(world.now() + meshlog_core::Duration::from_secs(20));
        let seen = tap.drain();
        let text = String::from_utf8(lines.0.borrow().clone()).unwrap();
        let from_trace: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let w: Vec<&str> = line.split(' ').collect();
                match w[1] {
                    "send" => Some(format!("sent {} {} {}", w[2], w[3], w[4])),
                    "deliver" => Some(format!("delivered {} {} {}", w[2], w[3], w[4])),
                    "drop" if w[2] != "at" => {
                        Some(format!("lost {} {} {} {}", w[2], w[3], w[4], w[5]))
                    }
                    "append" | "insert" => Some(format!("stored {} {}", w[2], w[3])),
                    _ => None,
                }
            })
            .collect();
        let from_tap: Vec<String> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Sent {
                    from,
                    to,
                    kind,
                    bytes,
                    ..
                } => Some(format!("sent {from}>{to} {kind} {bytes}")),
                Seen::Delivered {
                    from,
                    to,
                    kind,
                    bytes,
                    ..
                } => Some(format!("delivered {from}>{to} {kind} {bytes}")),
                Seen::Lost {
                    from,
                    to,
                    kind,
                    bytes,
                    cause,
                    ..
                } => Some(format!("lost {from}>{to} {kind} {bytes} {cause}")),
                Seen::Stored { device, id } => Some(format!("stored {device} {id}")),
                Seen::Refused { .. } => None,
            })
            .collect();
        assert_eq!(from_tap, from_trace);
        let id = ids[0].to_string();
        for device in ["alice", "bob", "carol"] {
            assert!(
                from_tap.contains(&format!("stored {device} {id}")),
                "{device} should hold {id}: {from_tap:?}"
            );
        }
        for cause in ["loss", "cut"] {
            assert!(
                from_tap
                    .iter()
                    .any(|s| s.starts_with("lost ") && s.ends_with(cause)),
                "some datagrams are lost to {cause}: {from_tap:?}"
            );
        }
    }
}
