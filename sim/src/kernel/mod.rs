//! The world: N nodes over shared in-memory stores, the virtual network, the workload and the
//! fault schedule, driven by one queue ordered by (virtual time, sequence). Time jumps straight
//! to the next item, so idle hours cost nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use meshlog_core::testing::derive_seed;
use meshlog_core::{Community, DeviceId, Input, Instant, Node, NodeError, PacketKind, StoreError};
use thiserror::Error;

pub mod address;
mod append;
mod appended;
mod build;
pub mod clock;
pub mod control;
mod deliver;
mod device;
mod drain;
mod files;
pub mod happening;
pub(crate) mod join;
mod lan;
pub mod members;
pub mod nat;
pub mod network;
mod options;
pub mod shelf;
pub mod store;
pub mod workload;

pub use appended::{Appended, AppendedEvents};
pub(crate) use device::Device;
pub use happening::{Happening, Observer, Via, View};
pub use members::Members;
pub use options::WorldOptions;
pub use shelf::SharedShelf;
pub use store::{SharedStore, StoreProvider, WorldStore};

use crate::scenario::{LinkSpec, Scenario};
use network::Network;
use workload::{Action, Workload};

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
        /// The source address the receiver sees (`address.rs`).
        source: SocketAddr,
    },
    /// `device`'s next announcement on its local links, if `schedule` is still its current
    /// one (`lan.rs`).
    Announce {
        device: usize,
        schedule: u32,
    },
    /// An announcement `from` sent reaches `to` on their local link.
    Hear {
        from: usize,
        to: usize,
        source: SocketAddr,
        bytes: Vec<u8>,
    },
    Wake(usize),
    /// A joining device's next join request is due (`join.rs`).
    JoinPoll(usize),
    /// A hostile member's next attack (index into `scenario.hostiles`).
    Hostile(usize),
    Fault(usize),
    /// A `[[member]]` change is due (index into `scenario.members`).
    Member(usize),
    Tick,
    Batch(usize),
    /// A `[[workload.file]]` is posted (index into `scenario.workload.files`).
    File(usize),
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

pub struct World {
    pub(crate) scenario: Scenario,
    pub(crate) seed: u64,
    pub(crate) now: Instant,
    pub(crate) queue: BTreeMap<(Instant, u64), Item>,
    pub(crate) sequence: u64,
    pub(crate) devices: Vec<Device>,
    pub(crate) index: BTreeMap<DeviceId, usize>,
    pub(crate) network: Network,
    /// Where each device is reached now, and the routing between them (`address.rs`).
    pub(crate) addresses: address::Addresses,
    /// The `[[lan]]`s, as device indices (`lan.rs`).
    pub(crate) lans: Vec<Vec<usize>>,
    pub(crate) workload: Workload,
    /// Every sealed event any store holds, once (`store.rs`).
    pub(crate) shelf: SharedShelf,
    /// Every event appended in this run, as its author sealed it: what the checkers trust.
    pub(crate) appended: AppendedEvents,
    pub(crate) workload_end: Instant,
    pub(crate) heal_at: Option<Instant>,
    pub(crate) end: Instant,
    pub(crate) options: WorldOptions,
    /// The roster's keys, for attackers that seal with them.
    pub(crate) community: Community,
    /// Membership events appended and the roster they settle to (`members.rs`).
    pub(crate) members: Members,
    /// The ids of `[[workload.file]]`s, in order (`files.rs`).
    pub(crate) file_ids: Vec<meshlog_core::FileId>,
    /// The devices' peer lists (indices), as the topology made them.
    pub(crate) peer_lists: Vec<Vec<usize>>,
    /// Invites made by `[[member]] invite`, by name (`join.rs`).
    pub(crate) invites: BTreeMap<String, meshlog_core::member::Invite>,
    /// Each joining device's first join request, as an eavesdropper recorded it.
    pub(crate) join_requests: BTreeMap<usize, Vec<u8>>,
    /// The scenario cuts power somewhere, so what is not yet durable must be tracked.
    has_power_cuts: bool,
    /// The datagram being delivered was accepted by its receiver (a replayer records it).
    pub(crate) accepted: bool,
    /// Whatever sees the run: the trace, counters, checkers, a report. Fanned out in order.
    observers: Vec<Box<dyn Observer>>,
    /// Whatever acts on the run besides the workload: faults, hostile members, forgers.
    /// Taken out while one acts.
    agents: Option<Box<dyn Agents>>,
}

/// What acts on a world at the times the kernel keeps for it (`faults/`): the kernel knows
/// when, an agent knows what.
pub trait Agents: fmt::Debug {
    /// The scenario's fault number `index` is due.
    fn fault(&mut self, world: &mut World, index: usize);
    /// Hostile member number `index` attacks again.
    fn hostile(&mut self, world: &mut World, index: usize);
    /// A forger on the link `from` → `to` strikes, as the network's dice said.
    fn forge(&mut self, world: &mut World, from: usize, to: usize);
    /// The scenario's membership change number `index` is due.
    fn member(&mut self, world: &mut World, index: usize);
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

impl World {
    /// Runs to the end: the workload, the heal, the liveness bound and the quiet period.
    pub fn run(&mut self) {
        self.run_until(Instant(u64::MAX));
        self.now = self.end;
        self.emit(Happening::Advance {
            at: Instant(u64::MAX),
        });
        self.resync_provided_stores();
        self.emit(Happening::End);
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
            assert!(at >= self.now, "time only moves forward");
            self.emit(Happening::Advance { at });
            self.now = at;
            self.handle(item);
        }
        self.now = self.now.max(limit.min(self.end));
    }

    /// Tells every observer, in the order they were registered.
    pub(crate) fn emit(&mut self, happening: Happening<'_>) {
        // Out for the call, so the observers can read the rest of the world.
        let mut observers = std::mem::take(&mut self.observers);
        let view = self.view();
        for observer in &mut observers {
            observer.observe(&view, &happening);
        }
        self.observers = observers;
    }

    /// The first registered observer of type `T`.
    pub fn observer<T: Observer>(&self) -> Option<&T> {
        self.observers
            .iter()
            .find_map(|o| o.as_any().downcast_ref::<T>())
    }

    /// The first registered observer of type `T`, to change or take what it gathered.
    pub fn observer_mut<T: Observer>(&mut self) -> Option<&mut T> {
        self.observers
            .iter_mut()
            .find_map(|o| o.as_any_mut().downcast_mut::<T>())
    }

    /// Removes and returns the first registered observer of type `T`.
    pub fn take_observer<T: Observer>(&mut self) -> Option<Box<T>> {
        let at = self
            .observers
            .iter()
            .position(|o| o.as_any().downcast_ref::<T>().is_some())?;
        let observer = self.observers.remove(at);
        Some(observer.into_any().downcast::<T>().expect("checked above"))
    }

    /// Registers one more observer: it sees what happens from now on, after the others.
    pub fn observe_with(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    /// The read-only view observers get, for reading the world after a run.
    pub fn view(&self) -> View<'_> {
        View {
            now: self.now,
            seed: self.seed,
            scenario: &self.scenario,
            devices: &self.devices,
            index: &self.index,
            network: &self.network,
            addresses: &self.addresses,
            lans: &self.lans,
            appended: &self.appended,
            shelf: &self.shelf,
            community: &self.community,
            members: &self.members,
            heal_at: self.heal_at,
            file_ids: &self.file_ids,
        }
    }

    /// Lends the agents to `act` (they act on the world they live in).
    fn with_agents(&mut self, act: impl FnOnce(&mut dyn Agents, &mut World)) {
        if let Some(mut agents) = self.agents.take() {
            act(agents.as_mut(), self);
            self.agents = Some(agents);
        }
    }

    /// Every event appended so far, as its author sealed it.
    pub fn appended(&self) -> &AppendedEvents {
        &self.appended
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// When the end-of-workload heal happened, once it has.
    pub fn heal_at(&self) -> Option<Instant> {
        self.heal_at
    }

    /// The end of the workload (the heal), as scheduled.
    pub fn workload_end(&self) -> Instant {
        self.workload_end
    }

    /// The device's store, shared with its node (it survives crashes).
    pub fn store(&self, device: usize) -> &SharedStore {
        &self.devices[device].store
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
                source,
            } => self.deliver((from, source), to, kind, bytes, origin, corrupted),
            Item::Announce { device, schedule } => self.announce(device, schedule),
            Item::Hear {
                from,
                to,
                source,
                bytes,
            } => self.hear(from, to, source, &bytes),
            Item::JoinPoll(device) => self.join_poll(device),
            Item::Hostile(h) => self.with_agents(|agents, world| agents.hostile(world, h)),
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
                self.emit(Happening::Fault {
                    fault: &fault,
                    applied: false,
                });
                self.with_agents(|agents, world| agents.fault(world, i));
                self.emit(Happening::Fault {
                    fault: &fault,
                    applied: true,
                });
            }
            Item::Member(i) => {
                let change = self.scenario.members[i].clone();
                self.emit(Happening::Member {
                    change: &change,
                    outcome: None,
                });
                self.with_agents(|agents, world| agents.member(world, i));
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
            Item::File(i) => self.post_file(i),
            Item::Heal => {
                self.emit(Happening::Heal { done: false });
                self.network.heal(true);
                for device in 0..self.devices.len() {
                    if !self.devices[device].down_for_good {
                        self.bring_up(device);
                    }
                }
                self.heal_at = Some(now);
                self.emit(Happening::Heal { done: true });
                for device in 0..self.devices.len() {
                    self.note_convergence(device);
                }
            }
        }
    }
}

/// A node over the device's store. Each incarnation gets its own seed, as a real restart
/// would draw a fresh one from the OS: nonces must never repeat. With `own_address` (`[world]
/// peer_exchange`), its driver tells it where it listens, as the backend does. Its driver's
/// book starts again from the configured addresses.
pub(crate) fn start_node(
    device: &mut Device,
    seed: u64,
    now: Instant,
    own_address: Option<SocketAddr>,
) -> Result<Node<SharedStore>, SimError> {
    device.incarnation += 1;
    let purpose = format!("node {} incarnation {}", device.name, device.incarnation);
    let mut config = device.config.clone();
    config.seed = derive_seed(seed, &purpose);
    let device_now = device.clock.read(now);
    let mut node =
        Node::new(config, device.store.clone(), device_now).map_err(|source| SimError::Node {
            device: device.name.to_string(),
            source,
        })?;
    if let Some(addr) = own_address {
        node.set_own_addresses(device_now, &[addr]);
    }
    device.book = meshlog_core::PeerBook::new(device.configured.clone());
    device.announced = 0;
    Ok(node)
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
