//! The world: N nodes over shared in-memory stores, the virtual network, the workload and the
//! fault schedule, driven by one queue ordered by (virtual time, sequence). Time jumps straight
//! to the next item, so idle hours cost nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use meshlog_core::testing::derive_seed;
use meshlog_core::{
    Community, Config, DeviceId, EventId, Input, Instant, Node, NodeError, PacketKind, Store,
    StoreError,
};
use thiserror::Error;

mod append;
mod appended;
mod build;
pub mod control;

pub use appended::AppendedEvents;

use crate::attack::Attack;
use crate::budget::Ledger;
use crate::check::Failure;
use crate::clocks::{ClockOrder, DeviceClock};
use crate::index_check::IndexBreak;
use crate::network::Network;
use crate::outcome::{Counters, DeviceReport, Outcome};
use crate::power::OwnLoss;
use crate::prompt::Prompt;
use crate::report::{Entry, Hook};
use crate::scenario::{LinkSpec, Scenario};
use crate::shelf::SharedShelf;
use crate::trace::Trace;
use crate::workload::{Action, Workload};

pub use crate::store::{SharedStore, StoreKind, StoreProvider, WorldStore};

#[derive(Debug, Error)]
pub enum SimError {
    #[error("device {device}: {source}")]
    Node { device: String, source: NodeError },
    #[error("device {device}: opening its store: {source}")]
    Store { device: String, source: StoreError },
    /// The scenario asks for a real store and the world was given no way to open one.
    #[error(
        "scenario {scenario}: `[world] store = \"sqlite\"` needs a store provider, which \
         `meshlog run` and `meshlog sweep` supply; this world has none"
    )]
    NoStoreProvider { scenario: String },
}

#[derive(Debug)]
pub(crate) enum Item {
    Deliver {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        origin: Sender,
        /// The network flipped a bit of it: the receiver must refuse it at the door.
        corrupted: bool,
    },
    Wake(usize),
    /// A hostile member's next attack (index into `scenario.hostiles`).
    Hostile(usize),
    Fault(usize),
    Tick,
    Batch(usize),
    /// End of the workload: every fault not marked permanent is lifted.
    Heal,
}

/// Who put a datagram on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sender {
    /// The source's node.
    Node,
    /// An attacker on the link, re-sending what the receiver's incarnation `incarnation`
    /// accepted earlier.
    Replay { incarnation: u32 },
    /// A hostile member's worst-case packet.
    Hostile,
    /// An attacker's packet claiming to come from the source (`forge.rs`).
    Forged,
}

pub(crate) struct Device {
    pub(crate) name: DeviceId,
    pub(crate) config: Config,
    pub(crate) store: SharedStore,
    /// `None` while crashed.
    pub(crate) node: Option<Node<SharedStore>>,
    /// What the scenario last said (a restart keeps an offline device offline).
    pub(crate) online: bool,
    /// Down (crashed or offline) by a permanent fault: excused from converging.
    pub(crate) down_for_good: bool,
    pub(crate) wake_at: Option<Instant>,
    pub(crate) incarnation: u32,
    pub(crate) converged_at: Option<Instant>,
    /// A hostile member: it never has a node.
    pub(crate) attacker_only: bool,
    /// Events its store holds but has not made durable (`power.rs`).
    pub(crate) unsynced: BTreeSet<EventId>,
    /// A permanent `disk_full`: no heal frees it.
    pub(crate) disk_full_for_good: bool,
    /// Its clock's reading of world time (`clocks.rs`): all its node ever sees.
    pub(crate) clock: DeviceClock,
}

pub struct World {
    pub(crate) scenario: Scenario,
    pub(crate) seed: u64,
    pub(crate) now: Instant,
    pub(crate) queue: BTreeMap<(Instant, u64), Item>,
    pub(crate) sequence: u64,
    pub(crate) devices: Vec<Device>,
    pub(crate) index: BTreeMap<DeviceId, usize>,
    pub(crate) network: Network,
    pub(crate) workload: Workload,
    pub(crate) trace: Trace,
    /// Every sealed event any store holds, once (`store.rs`).
    pub(crate) shelf: SharedShelf,
    /// Every event appended in this run, as its author sealed it: what the checkers trust.
    pub(crate) appended: AppendedEvents,
    pub(crate) counters: Counters,
    pub(crate) workload_end: Instant,
    pub(crate) heal_at: Option<Instant>,
    pub(crate) end: Instant,
    pub(crate) attack: Attack,
    pub(crate) ledger: Ledger,
    pub(crate) prompt: Prompt,
    /// Devices whose node's index differed from its store (`index_check.rs`).
    pub(crate) index_breaks: Vec<IndexBreak>,
    /// Own events power cuts took (`power.rs`): each a failure.
    pub(crate) own_losses: Vec<OwnLoss>,
    /// Event times that sort against the order events were made (`clocks.rs`).
    pub(crate) clock_order: ClockOrder,
    pub(crate) options: WorldOptions,
    /// The roster's keys, for attackers that seal with them.
    pub(crate) community: Community,
    /// Off unless a report was asked for (`with_report`).
    pub(crate) report: Hook,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.seed)
            .field("now", &self.now)
            .finish()
    }
}

/// How a world runs, beyond its scenario and seed. `signature_memo` changes no trace;
/// `stores` opens the devices' stores when the scenario asks for real ones; the other fields
/// break the world on purpose.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// Share signature checks between the devices (see `meshlog_core::crypto::SignatureMemo`):
    /// all ten devices of a mesh check each event's author signature, and a check costs more
    /// than the rest of a delivery together. On by default; off only to show it changes no
    /// digest.
    pub signature_memo: bool,
    /// A broken driver, only to show the prompt-delivery checker failing (it changes the
    /// trace): what a device appends waits in its node's queue until the device next wakes or
    /// receives a datagram, instead of going out at once.
    pub hold_appends: bool,
    /// A store that commits the device's own events as lazily as received ones, only to show
    /// the own-event checker failing: a power cut takes them too.
    pub power_cut_loses_own: bool,
    /// Nodes that stamp events with their device's raw clock, not the hybrid clock, only to
    /// show the clock-order checker failing under skew.
    pub raw_clocks: bool,
    /// Opens each device's store for a scenario with `[world] store = "sqlite"` (the
    /// `meshlog` binary's SQLite files); unused by a memory world. A SQLite scenario without
    /// one does not build.
    pub stores: Option<Rc<dyn StoreProvider>>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            signature_memo: true,
            hold_appends: false,
            power_cut_loses_own: false,
            raw_clocks: false,
            stores: None,
        }
    }
}

impl World {
    /// Runs to the end: the workload, the heal, the liveness bound and the quiet period.
    pub fn run(&mut self) {
        self.run_until(Instant(u64::MAX));
        self.now = self.end;
        self.prompt.overdue(Instant(u64::MAX));
        self.resync_provided_stores();
        self.check_index_all("end");
        self.trace.line(format_args!("{} end", self.now));
    }

    /// Handles every item due by `limit` (or the run's end, if sooner). A run may be stopped
    /// part-way to look at it or tamper with it; `run` then carries on.
    pub fn run_until(&mut self, limit: Instant) {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > self.end.min(limit) {
                break;
            }
            let item = entry.remove();
            self.prompt.overdue(at);
            self.now = at;
            self.handle(item);
        }
        self.now = self.now.max(limit.min(self.end));
    }

    /// blake3 of the trace so far.
    pub fn digest(&self) -> String {
        self.trace.digest()
    }

    /// Every event appended so far, as its author sealed it.
    pub fn appended(&self) -> &AppendedEvents {
        &self.appended
    }

    /// Ends the run: the summary, the checkers' verdicts, the digest.
    pub fn finish(mut self, failures: Vec<Failure>) -> Outcome {
        let trace_error = self.trace.finish().err().map(|e| e.to_string());
        let (bytes_per_event, rounds_to_converge) =
            (self.bytes_per_event(), self.rounds_to_converge());
        Outcome {
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            digest: self.trace.digest(),
            trace_lines: self.trace.lines(),
            trace_error,
            virtual_time_us: self.now.as_micros(),
            heal_at_us: self.workload_end.as_micros(),
            events: self.appended.len() as u64,
            devices: self.device_reports(),
            counters: std::mem::take(&mut self.counters),
            attacks: std::mem::take(&mut self.attack.counters),
            budget_worst_share: self.ledger.worst_share_ppm as f64 / 1e6,
            bytes_per_event,
            rounds_to_converge,
            pushes_judged: self.prompt.judged,
            pushes_on_time: self.prompt.on_time,
            failures,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// The device's store, shared with its node (it survives crashes).
    pub fn store(&self, device: usize) -> &SharedStore {
        &self.devices[device].store
    }

    pub(crate) fn device_reports(&self) -> Vec<DeviceReport> {
        self.devices
            .iter()
            .map(|d| DeviceReport {
                name: d.name.to_string(),
                events: d.store.borrow().len().expect("in-memory store"),
                up: d.node.is_some() && d.online,
                excused: d.down_for_good,
                restarts: d.incarnation - 1,
                converged_at_us: d.converged_at.map(Instant::as_micros),
            })
            .collect()
    }

    pub(crate) fn schedule(&mut self, at: Instant, item: Item) {
        self.sequence += 1;
        self.queue.insert((at, self.sequence), item);
    }

    fn schedule_tick(&mut self) {
        if let Some(gap) = self.workload.next_gap() {
            let at = self.now + gap;
            if at < self.workload_end {
                self.schedule(at, Item::Tick);
            }
        }
    }

    fn handle(&mut self, item: Item) {
        let now = self.now;
        match item {
            Item::Deliver {
                from,
                to,
                kind,
                bytes,
                origin,
                corrupted,
            } => self.deliver(from, to, kind, bytes, origin, corrupted),
            Item::Hostile(h) => self.attack_once(h),
            Item::Wake(device) => {
                let d = &mut self.devices[device];
                if d.wake_at != Some(now) {
                    return; // superseded by a later wake-up
                }
                d.wake_at = None;
                if let Some(node) = d.node.as_mut() {
                    node.handle_input(Input::Timeout(d.clock.read(now)));
                    self.drain(device);
                }
            }
            Item::Fault(i) => {
                let fault = self.scenario.faults[i].clone();
                self.apply_fault(&fault);
                self.report.note(|| Entry::fault(now, &fault));
                self.note_states();
            }
            Item::Tick => {
                let action = self.workload.next_action();
                self.perform(action);
                self.schedule_tick();
            }
            Item::Batch(i) => {
                let batch = self.scenario.workload.batches[i].clone();
                let device = self.index[&device_id(&batch.device)];
                for n in 0..batch.messages {
                    let text = Workload::batch_text(&batch.device, n);
                    self.perform(Action::Message {
                        device,
                        text,
                        attachment: None,
                    });
                }
            }
            Item::Heal => {
                self.trace.line(format_args!("{now} heal end-of-workload"));
                self.prompt.excuse_all();
                self.network.heal(true);
                for device in 0..self.devices.len() {
                    if !self.devices[device].down_for_good {
                        self.bring_up(device);
                    }
                }
                self.heal_at = Some(now);
                self.report.note(|| Entry::Heal { at: now });
                self.note_states();
                for device in 0..self.devices.len() {
                    self.note_convergence(device);
                }
            }
        }
    }
}

/// A node over the device's store. Each incarnation gets its own seed, as a real restart
/// would draw a fresh one from the OS: nonces must never repeat.
pub(crate) fn start_node(
    device: &mut Device,
    seed: u64,
    now: Instant,
) -> Result<Node<SharedStore>, SimError> {
    device.incarnation += 1;
    let purpose = format!("node {} incarnation {}", device.name, device.incarnation);
    let mut config = device.config.clone();
    config.seed = derive_seed(seed, &purpose);
    Node::new(config, device.store.clone(), device.clock.read(now)).map_err(|source| {
        SimError::Node {
            device: device.name.to_string(),
            source,
        }
    })
}

pub(crate) fn device_id(name: &str) -> DeviceId {
    DeviceId::new(name).expect("validated device name")
}

/// The directed links a `from`/`to` spec names: none for an all-links spec.
pub(crate) fn link_ends(index: &BTreeMap<DeviceId, usize>, spec: &LinkSpec) -> Vec<(usize, usize)> {
    match (&spec.from, &spec.to) {
        (Some(from), Some(to)) => {
            let (a, b) = (index[&device_id(from)], index[&device_id(to)]);
            if spec.both {
                vec![(a, b), (b, a)]
            } else {
                vec![(a, b)]
            }
        }
        _ => Vec::new(),
    }
}
