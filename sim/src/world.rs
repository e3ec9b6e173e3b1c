//! The world: N nodes over shared in-memory stores, the virtual network, the workload and the
//! fault schedule, driven by one queue ordered by (virtual time, sequence). Time jumps straight
//! to the next item, so idle hours cost nothing.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::rc::Rc;

use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{
    Community, Config, DeviceId, EventId, Input, Instant, Node, NodeError, PacketKind, Store,
    StoreError,
};
use thiserror::Error;

mod append;
mod appended;
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
use crate::report::{Entry, Hook, ReportOptions};
use crate::scenario::{LinkSpec, Scenario};
use crate::shelf::{SharedShelf, Shelf};
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
    /// Builds the world for a validated scenario. `seed` is the root of every random stream.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
    ) -> Result<World, SimError> {
        Self::with_options(scenario, seed, sink, WorldOptions::default())
    }

    pub fn with_options(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
        options: WorldOptions,
    ) -> Result<World, SimError> {
        Self::with_report(scenario, seed, sink, options, None)
    }

    /// A world that also records a report (see `report`); `None` records nothing.
    pub fn with_report(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
        options: WorldOptions,
        report: Option<ReportOptions>,
    ) -> Result<World, SimError> {
        let names: Vec<&str> = scenario.devices.iter().map(String::as_str).collect();
        let ids: Vec<DeviceId> = names
            .iter()
            .map(|n| DeviceId::new(n).expect("validated device name"))
            .collect();
        let index: BTreeMap<DeviceId, usize> = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, d)| (d, i))
            .collect();
        let mut community = community_of(&names, seed);
        if options.signature_memo {
            community = community.with_signature_memo();
        }
        let peer_lists = scenario.topology.peer_lists(&scenario.devices, seed);
        let shelf = Shelf::shared();
        let provider = match scenario.world.store {
            StoreKind::Memory => None,
            StoreKind::Sqlite => {
                Some(
                    options
                        .stores
                        .clone()
                        .ok_or_else(|| SimError::NoStoreProvider {
                            scenario: scenario.name.clone(),
                        })?,
                )
            }
        };
        let clocks = DeviceClock::all(scenario);
        let mut devices = Vec::with_capacity(ids.len());
        for (i, me) in ids.iter().enumerate() {
            let peers = peer_lists[i].iter().map(|&j| ids[j].clone()).collect();
            let mut config =
                Config::new(keys(me.as_str(), seed), community.clone(), peers, [0; 32]);
            let sync = &scenario.sync;
            config.sync_interval = sync.sync_interval.map_or(config.sync_interval, |d| d.0);
            config.sync_jitter = sync.sync_jitter.map_or(config.sync_jitter, |d| d.0);
            config.sync_fanout = sync.sync_fanout.unwrap_or(config.sync_fanout);
            config.events_per_round_max = sync
                .events_per_round_max
                .unwrap_or(config.events_per_round_max);
            config.leaf_items_max = sync.leaf_items_max.unwrap_or(config.leaf_items_max);
            config.eager_push = sync.eager_push.unwrap_or(config.eager_push);
            config.anti_entropy = sync.anti_entropy.unwrap_or(config.anti_entropy);
            config.relay = sync.relay.unwrap_or(config.relay);
            config.replay_protection = sync.replay_protection.unwrap_or(config.replay_protection);
            config.amplification_budget = sync
                .amplification_budget
                .unwrap_or(config.amplification_budget);
            config.test_raw_clock = options.raw_clocks;
            let attacker_only = scenario.hostiles.iter().any(|h| h.device == me.as_str());
            let store = match &provider {
                None => WorldStore::new(shelf.clone()),
                Some(p) => WorldStore::provided(shelf.clone(), p.clone(), me.as_str()).map_err(
                    |source| SimError::Store {
                        device: me.to_string(),
                        source,
                    },
                )?,
            };
            let mut device = Device {
                attacker_only,
                name: me.clone(),
                config,
                store: Rc::new(RefCell::new(store)),
                node: None,
                online: true,
                down_for_good: false,
                wake_at: None,
                incarnation: 0,
                converged_at: None,
                unsynced: BTreeSet::new(),
                clock: clocks[i],
                disk_full_for_good: false,
            };
            if attacker_only {
                device.down_for_good = true; // excused from converging: it keeps nothing
                device.incarnation = 1;
            } else {
                device.node = Some(start_node(&mut device, seed, Instant::ZERO)?);
            }
            devices.push(device);
        }
        let seeds = ["network", "network replay", "network forge"].map(|p| derive_seed(seed, p));
        let mut network = Network::new(ids.len(), seeds, &scenario.network);
        for spec in &scenario.links {
            for (from, to) in link_ends(&index, spec) {
                network.set_link(from, to, spec);
            }
        }
        let posting: Vec<usize> = match &scenario.workload.devices {
            Some(list) => list.iter().map(|n| index[&device_id(n)]).collect(),
            None => (0..ids.len())
                .filter(|&i| !devices[i].attacker_only)
                .collect(),
        };
        let workload = Workload::new(&scenario.workload, posting, derive_seed(seed, "workload"));
        let workload_end = Instant::ZERO + scenario.duration.0;
        let end = workload_end + scenario.expect.converged_within.0 + scenario.expect.quiet.0;
        let attack = Attack::new(scenario, seed, &community, &index, &peer_lists);
        let ledger = Ledger::new(devices.len());
        let mut world = World {
            scenario: scenario.clone(),
            seed,
            now: Instant::ZERO,
            queue: BTreeMap::new(),
            sequence: 0,
            devices,
            index,
            network,
            workload,
            trace: Trace::new(sink),
            appended: AppendedEvents::new(shelf.clone()),
            shelf,
            counters: Counters::default(),
            workload_end,
            heal_at: None,
            end,
            attack,
            ledger,
            prompt: Prompt::default(),
            index_breaks: Vec::new(),
            own_losses: Vec::new(),
            clock_order: ClockOrder::new(scenario.devices.len()),
            options,
            community,
            report: Hook::new(scenario.devices.clone(), report),
        };
        world.trace.line(format_args!(
            "scenario {} seed {seed} devices {}",
            scenario.name,
            names.join(",")
        ));
        for (i, fault) in scenario.faults.iter().enumerate() {
            world.schedule(Instant::ZERO + fault.at.0, Item::Fault(i));
        }
        for (i, batch) in scenario.workload.batches.iter().enumerate() {
            world.schedule(Instant::ZERO + batch.at.0, Item::Batch(i));
        }
        world.schedule(workload_end, Item::Heal);
        for (i, hostile) in scenario.hostiles.iter().enumerate() {
            world.schedule(Instant::ZERO + hostile.every.0, Item::Hostile(i));
        }
        world.schedule_tick();
        for device in 0..world.devices.len() {
            world.drain(device);
        }
        Ok(world)
    }

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
