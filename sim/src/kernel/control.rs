//! The kernel's control surface: the one narrow interface through which faults, attackers
//! and the simulation service change a world. Each verb keeps the kernel's books (who is
//! down for good, what is durable) and tells the observers what it did.

use meshlog_core::{AppendError, DeviceId, EventBody, EventId, Node, PacketKind, Store};

use super::append::reacts_to;
use super::network::LinkModel;
use super::{device_id, link_ends, start_node, Happening, Item, Sender, SharedStore, World};
use crate::scenario::LinkSpec;

/// Why [`World::append_all`] stopped.
#[derive(Debug)]
pub enum AppendFailure {
    /// The device's node is down.
    Down,
    /// Its node refused the body.
    Refused(AppendError),
    /// Its store does not hold what its node appended.
    NotStored,
}

impl World {
    /// The index of a device the validated scenario names.
    pub fn device(&self, name: &str) -> usize {
        self.index[&device_id(name)]
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub fn name(&self, device: usize) -> &DeviceId {
        &self.devices[device].name
    }

    pub fn device_names(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.name.to_string()).collect()
    }

    /// The devices `device` syncs with, as the topology made them.
    pub fn peers_of(&self, device: usize) -> &[usize] {
        &self.peer_lists[device]
    }

    /// The device's running node; `None` while it is crashed.
    pub fn node(&self, device: usize) -> Option<&Node<SharedStore>> {
        self.devices.get(device)?.node.as_ref()
    }

    pub fn device_online(&self, device: usize) -> bool {
        self.devices.get(device).is_some_and(|d| d.online)
    }

    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        let n = self.devices.len();
        from < n && to < n && self.network.is_cut(from, to)
    }

    /// Instead of running its own workload to an end, the world waits for commands: only
    /// what the nodes themselves started stays queued (their packets and timers), and it
    /// runs for as long as it is advanced.
    pub fn wait_for_commands(&mut self) {
        self.queue.retain(|_, item| {
            matches!(
                item,
                Item::Deliver { .. } | Item::Wake(_) | Item::Announce { .. } | Item::Hear { .. }
            )
        });
        self.workload_end = meshlog_core::Instant(u64::MAX);
        self.end = meshlog_core::Instant(u64::MAX);
    }

    /// A command of whoever drives the world (the simulation service), for the trace.
    pub fn host_command(&mut self, device: usize, command: &'static str) {
        self.emit(Happening::Host { device, command });
    }

    /// Appends `bodies` on `device` now, in order, each recorded for the checkers like a
    /// workload append.
    pub fn append_all(
        &mut self,
        device: usize,
        bodies: Vec<EventBody>,
    ) -> Result<Vec<EventId>, AppendFailure> {
        let mut ids = Vec::with_capacity(bodies.len());
        let device_now = self.devices[device].clock.read(self.now);
        for body in bodies {
            let reacts_to = reacts_to(&body);
            let node = self.devices[device]
                .node
                .as_mut()
                .ok_or(AppendFailure::Down)?;
            let id = node
                .append(device_now, body)
                .map_err(AppendFailure::Refused)?;
            self.made(device, id, reacts_to, true)
                .ok_or(AppendFailure::NotStored)?;
            ids.push(id);
        }
        self.drain(device);
        Ok(ids)
    }

    /// Its node is up (not crashed, not a hostile member's).
    pub fn is_running(&self, device: usize) -> bool {
        self.devices[device].node.is_some()
    }

    /// The epoch of `device`'s running node, as any packet from it says (0 while it is down).
    pub fn epoch_of(&self, device: usize) -> u64 {
        self.devices[device].node.as_ref().map_or(0, |n| n.epoch())
    }

    /// `by`'s node makes a membership change now (`change`: the node's verb), and the
    /// observers hear what became of it: `Ok(epoch)`, the key epoch its node seals under
    /// after, or why the node refused (not an admin, removed, the last admin, ...).
    pub fn member_change(
        &mut self,
        index: usize,
        by: usize,
        change: impl FnOnce(
            &mut Node<SharedStore>,
            meshlog_core::Instant,
        ) -> Result<(), meshlog_core::node::MemberError>,
    ) -> Result<u32, String> {
        let now = self.devices[by].clock.read(self.now);
        let result = match self.devices[by].node.as_mut() {
            None => Err("its node is down".to_owned()),
            Some(node) => change(node, now)
                .map(|()| node.key_epoch())
                .map_err(|err| err.to_string()),
        };
        self.drain(by);
        let outcome = match &result {
            Ok(epoch) => format!("epoch {epoch}"),
            Err(why) => format!("refused: {why}"),
        };
        let change = self.scenario.members[index].clone();
        self.emit(Happening::Member {
            change: &change,
            outcome: Some(&outcome),
        });
        result
    }

    /// `[[member]] steal_keys`: the device's keys are taken now. The world only says so
    /// (`keys taken at epoch N`); the forward-secrecy checker, which watches, reads them
    /// from the node (`Node::stolen_keys`). A node that is down has nothing to take.
    pub fn steal_keys(&mut self, index: usize, device: usize) {
        let outcome = match self.devices[device].node.as_ref() {
            None => "refused: its node is down".to_owned(),
            Some(node) => format!("keys taken at epoch {}", node.key_epoch()),
        };
        self.member_outcome(index, &outcome);
    }

    /// Membership events appended and the roster they settle to (`members.rs`).
    pub fn members(&self) -> &super::Members {
        &self.members
    }

    /// `group_of[i]` is device i's group; datagrams between groups are lost.
    pub fn partition(&mut self, group_of: Vec<u32>, permanent: bool) {
        self.network.partition(group_of, permanent);
    }

    /// Lifts partitions and cuts and brings every device up, except what a permanent fault did.
    pub fn heal_faults(&mut self) {
        self.network.heal(false);
        for device in 0..self.devices.len() {
            if !self.devices[device].down_for_good {
                self.bring_up(device);
            }
        }
    }

    pub fn cut(&mut self, from: usize, to: usize, permanent: bool) {
        self.network.cut(from, to, permanent);
    }

    pub fn restore(&mut self, from: usize, to: usize) {
        self.network.restore(from, to);
    }

    /// Layers `spec` over the links it names (every link, if it names none).
    pub fn change_links(&mut self, spec: &LinkSpec, permanent: bool) {
        let links = link_ends(&self.index, spec);
        if links.is_empty() {
            self.network.change(None, spec, permanent);
        }
        for link in links {
            self.network.change(Some(link), spec, permanent);
        }
    }

    /// How the link `from` → `to` treats datagrams now.
    pub fn link_model(&self, from: usize, to: usize) -> &LinkModel {
        self.network.model(from, to)
    }

    /// The forger's own dice (`network.rs`): an attack shifts no other stream.
    pub(crate) fn forge_draw(&mut self) -> u64 {
        self.network.forge_draw()
    }

    /// Kept down (or not) by a permanent fault: excused from converging.
    pub fn set_down_for_good(&mut self, device: usize, down: bool) {
        self.devices[device].down_for_good = down;
    }

    pub fn set_online(&mut self, device: usize, online: bool) {
        let now = self.now;
        let d = &mut self.devices[device];
        d.online = online;
        if let Some(node) = d.node.as_mut() {
            node.set_online(d.clock.read(now), online);
            self.drain(device);
        }
    }

    /// The node and its in-flight state, timers and queued outputs die; the store survives.
    pub fn crash(&mut self, device: usize) {
        let d = &mut self.devices[device];
        d.node = None;
        d.wake_at = None;
    }

    /// A new node over the device's store (nothing if it is running).
    pub fn restart(&mut self, device: usize) {
        let d = &self.devices[device];
        if d.node.is_some() || d.attacker_only || d.outsider {
            return;
        }
        self.reopen_store(device);
        let now = self.now;
        let d = &mut self.devices[device];
        let own = self
            .scenario
            .world
            .peer_exchange
            .then(|| self.addresses.of(device));
        let node = start_node(d, self.seed, now, own).expect("the config was valid at the start");
        d.node = Some(node);
        let online = d.online;
        self.emit(Happening::Restarted { device });
        if !online {
            self.devices[device].online = true; // a fresh node starts online; apply the scenario's state again
            self.set_online(device, false);
        }
        self.drain(device);
        self.start_announcing(device);
    }

    /// Every insert into the device's store fails until it is freed (`permanent`: no heal
    /// frees it).
    pub fn fill_disk(&mut self, device: usize, permanent: bool) {
        self.devices[device].store.borrow_mut().full = true;
        self.devices[device].disk_full_for_good = permanent;
    }

    pub fn free_disk(&mut self, device: usize) {
        self.devices[device].store.borrow_mut().full = false;
        self.devices[device].disk_full_for_good = false;
    }

    /// What every heal does for a device: back up, online, with room on its disk (unless a
    /// permanent fault said otherwise).
    pub(crate) fn bring_up(&mut self, device: usize) {
        if !self.devices[device].disk_full_for_good {
            self.free_disk(device);
        }
        self.restart(device);
        if !self.devices[device].online {
            self.set_online(device, true);
        }
    }

    /// A datagram from someone other than `from`'s node, claiming to be from it: the network
    /// decides its fate as for any other (`note` says what it is).
    pub(crate) fn send_as(
        &mut self,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        note: &'static str,
    ) {
        self.emit(Happening::HostileSent {
            from,
            to,
            kind,
            bytes: bytes.len(),
            attack: note,
        });
        let source = self.addresses.of(from);
        self.put_on_wire((from, source), to, kind, bytes, &note, Sender::Hostile);
    }

    /// A forgery claiming to be `from`'s, put straight on the link to arrive `latency_us`
    /// from now: the forger sends from its own socket, past the link's faults.
    pub(crate) fn forge_onto(
        &mut self,
        (from, to): (usize, usize),
        kind: PacketKind,
        bytes: Vec<u8>,
        latency_us: u64,
        stolen_keys: bool,
    ) {
        let arrives = self.now + meshlog_core::Duration::from_micros(latency_us);
        self.emit(Happening::Forged {
            from,
            to,
            kind,
            bytes: bytes.len(),
            arrives,
            stolen_keys,
        });
        self.schedule(
            arrives,
            Item::Deliver {
                from,
                to,
                kind,
                bytes,
                origin: Sender::Forged,
                corrupted: false,
                // The forger spoofs the claimed sender's address.
                source: self.addresses.of(from),
            },
        );
    }

    /// A hostile member made `event`, forged in another's name, for `to`: the checkers learn
    /// its id. A world broken on purpose (`store_forged_events`) stores it at `to` as if
    /// the author-signature check were skipped.
    pub(crate) fn forged_event(
        &mut self,
        from: usize,
        to: usize,
        event: meshlog_core::OpenedEvent,
    ) {
        self.emit(Happening::ForgedEvent {
            from,
            to,
            id: event.id,
        });
        if self.options.store_forged_events {
            let mut store = self.devices[to].store.borrow_mut();
            let _ = store.insert(&event, self.now.as_micros());
            let _ = store.commit();
        }
    }

    /// Asks for the agents' `hostile` act number `index` at `at`.
    pub(crate) fn schedule_hostile(&mut self, at: meshlog_core::Instant, index: usize) {
        self.schedule(at, Item::Hostile(index));
    }

    /// `device` stored `id`: its own (`local`) append makes everything before it durable.
    pub(crate) fn note_stored(&mut self, device: usize, id: EventId, local: bool) {
        // Only a power cut reads it: without one in the scenario, a device that never appends
        // would keep every id it received.
        if !self.has_power_cuts {
            return;
        }
        let unsynced = &mut self.devices[device].unsynced;
        if local && !self.options.power_cut_loses_own {
            unsynced.clear();
        } else {
            unsynced.insert(id);
        }
    }

    /// The device's node dies, and its store loses every event not yet durable
    /// (`faults/power.rs` says why that is what a power cut takes).
    pub fn power_cut(&mut self, device: usize) {
        let d = &mut self.devices[device];
        d.node = None;
        d.wake_at = None;
        let lost = std::mem::take(&mut d.unsynced);
        d.store
            .borrow_mut()
            .events_mut()
            .retain(|id| !lost.contains(id), &self.community);
        self.emit(Happening::PowerCut {
            device,
            lost: &lost,
        });
    }

    /// A restart of a device whose store a provider opened: the old handle is dropped and the
    /// store opened again; every event the device appended must be there.
    fn reopen_store(&mut self, device: usize) {
        let d = &self.devices[device];
        let reopened = d.store.borrow_mut().reopen(&self.community);
        match reopened {
            Ok(false) => return,
            Ok(true) => {}
            // The disk under the world failed, not the protocol: nothing to judge.
            Err(err) => panic!("{}: reopening its store failed: {err}", d.name),
        }
        let name = d.name.clone();
        let store = d.store.borrow();
        let view = self.view();
        let mut own: Vec<EventId> = self
            .appended
            .keys()
            .filter(|id| !matches!(store.get(id), Ok(Some(_))))
            .filter(|id| {
                view.appended_event(id)
                    .is_some_and(|a| a.event.author == name)
            })
            .collect();
        // In id order, as the world listed them before `appended` kept shelf slots.
        own.sort_unstable();
        let held = store.len().unwrap_or(0);
        drop(store);
        self.emit(Happening::Reopened {
            device,
            held,
            own_lost: &own,
        });
    }

    /// Ends the device's batch of inputs at its store, as the real driver does after each. A
    /// failed commit took the batch back: the mirror follows what the store holds.
    pub(crate) fn commit_store(&mut self, device: usize) {
        let mut store = self.devices[device].store.borrow_mut();
        if store.commit().is_err() {
            store
                .resync(&self.community)
                .expect("the store reads back after a failed commit");
        }
    }

    /// Before the final checks: every mirror holds exactly what its provided store holds.
    pub(crate) fn resync_provided_stores(&mut self) {
        for d in &self.devices {
            let mut store = d.store.borrow_mut();
            if let Err(err) = store.resync(&self.community) {
                panic!("{}: reading its store at the end failed: {err}", d.name);
            }
        }
    }
}
