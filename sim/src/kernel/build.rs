//! Building a world from a validated scenario: devices, their stores, clocks and nodes, the
//! network, the workload, and the first items on the queue.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{Config, DeviceId, Instant, PeerBook};

use super::address;
use super::clock::DeviceClock;
use super::network::Network;
use super::shelf::Shelf;
use super::workload::Workload;
use super::{
    device_id, link_ends, start_node, Agents, AppendedEvents, Device, Happening, Item, Members,
    Observer, SimError, World, WorldOptions, WorldStore,
};
use crate::scenario::{FaultKind, Scenario, StoreKind};

impl World {
    /// Builds the world for a validated scenario and starts it. `seed` is the root of every
    /// random stream; `observers` see everything from the first line on, in this order;
    /// `agents` (made once the world exists: they may read it) act on it.
    pub fn build(
        scenario: &Scenario,
        seed: u64,
        options: WorldOptions,
        observers: Vec<Box<dyn Observer>>,
        agents: impl FnOnce(&World) -> Box<dyn Agents>,
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
        // Devices that join with an invite are outside the genesis roster.
        let outsiders = scenario.outsiders();
        // Strangers are of another community: one of their own, with its own key.
        let genesis: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !outsiders.contains(n) && !scenario.is_stranger(n))
            .collect();
        let strangers: Vec<&str> = scenario
            .world
            .strangers
            .iter()
            .map(String::as_str)
            .collect();
        let stranger_seed = u64::from_le_bytes(
            derive_seed(seed, "strangers' community")[..8]
                .try_into()
                .expect("8 bytes"),
        );
        let stranger_community = if options.strangers_hold_the_key {
            // The members' key, with the strangers in a roster of their own.
            let all: Vec<&str> = genesis.iter().chain(&strangers).copied().collect();
            community_of(&all, seed)
        } else {
            community_of(&strangers, stranger_seed)
        };
        let mut community = community_of(&genesis, seed);
        if scenario.world.admins.is_some() {
            community = community.with_admins(scenario.admins().iter().map(|a| device_id(a)));
        }
        if options.signature_memo {
            community = community.with_signature_memo();
        }
        let peer_lists = scenario.configured_peers(seed);
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
            let outsider = outsiders.contains(&me.as_str());
            let stranger = scenario.is_stranger(me.as_str());
            // An outsider peers with nobody until its welcome names its inviter (`join.rs`),
            // and nobody peers with it: no member's config may name a stranger.
            let peers: Vec<DeviceId> = peer_lists[i]
                .iter()
                .filter(|&&j| !outsider && !outsiders.contains(&names[j]))
                .map(|&j| ids[j].clone())
                .collect();
            // Configured with each peer's address as it is at the start.
            let configured = peer_lists[i]
                .iter()
                .filter(|&&j| peers.contains(&ids[j]))
                .map(|&j| (ids[j].clone(), address::home(j)))
                .collect();
            let own_community = if stranger {
                stranger_community.clone()
            } else {
                community.clone()
            };
            // A stranger's keys come from its own community's seed (`community_of` makes the
            // roster's the same way).
            let keys_seed = if stranger && !options.strangers_hold_the_key {
                stranger_seed
            } else {
                seed
            };
            let mut config =
                Config::new(keys(me.as_str(), keys_seed), own_community, peers, [0; 32]);
            tune(&mut config, scenario, &options);
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
                removed: false,
                outsider,
                joining: None,
                book: PeerBook::default(),
                configured,
                stranger,
                announced: 0,
                announce_schedule: 0,
            };
            // A stranger runs its node, but is excused from converging on this community.
            device.down_for_good = stranger;
            if attacker_only || outsider {
                // Excused from converging: it keeps nothing (an outsider, until welcomed).
                device.down_for_good = true;
                device.incarnation = u32::from(attacker_only);
            } else {
                let own = scenario.world.peer_exchange.then(|| address::home(i));
                device.node = Some(start_node(&mut device, seed, Instant::ZERO, own)?);
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
                .filter(|&i| !devices[i].attacker_only && !devices[i].stranger)
                .collect(),
        };
        let workload = Workload::new(&scenario.workload, posting, derive_seed(seed, "workload"));
        let workload_end = Instant::ZERO + scenario.duration.0;
        let end = workload_end + scenario.expect.converged_within.0 + scenario.expect.quiet.0;
        let mut world = World {
            scenario: scenario.clone(),
            seed,
            now: Instant::ZERO,
            queue: BTreeMap::new(),
            sequence: 0,
            devices,
            index,
            network,
            addresses: address::Addresses::new(&scenario.nats, scenario.nat_of()),
            lans: scenario.lan_members(),
            workload,
            appended: AppendedEvents::new(shelf.clone()),
            shelf,
            workload_end,
            heal_at: None,
            end,
            options,
            members: Members::new(!scenario.members.is_empty()),
            file_ids: Vec::new(),
            community,
            peer_lists,
            invites: BTreeMap::new(),
            join_requests: BTreeMap::new(),
            has_power_cuts: scenario
                .faults
                .iter()
                .any(|f| matches!(f.kind, FaultKind::PowerCut(_))),
            accepted: false,
            observers,
            agents: None,
        };
        world.members.start(&world.community);
        world.agents = Some(agents(&world));
        world.emit(Happening::Start);
        for (i, fault) in scenario.faults.iter().enumerate() {
            world.schedule(Instant::ZERO + fault.at.0, Item::Fault(i));
        }
        for (i, change) in scenario.members.iter().enumerate() {
            world.schedule(Instant::ZERO + change.at.0, Item::Member(i));
        }
        for (i, batch) in scenario.workload.batches.iter().enumerate() {
            world.schedule(Instant::ZERO + batch.at.0, Item::Batch(i));
        }
        for (i, file) in scenario.workload.files.iter().enumerate() {
            world.place_file(i);
            world.schedule(Instant::ZERO + file.at.0, Item::File(i));
        }
        world.schedule(workload_end, Item::Heal);
        for (i, hostile) in scenario.hostiles.iter().enumerate() {
            world.schedule(Instant::ZERO + hostile.every.0, Item::Hostile(i));
        }
        world.schedule_tick();
        for device in 0..world.devices.len() {
            world.drain(device);
        }
        for device in 0..world.devices.len() {
            world.start_announcing(device);
        }
        Ok(world)
    }
}

/// The scenario's `[sync]` over the core's defaults, and the world's deliberate breakage.
pub(super) fn tune(config: &mut Config, scenario: &Scenario, options: &WorldOptions) {
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
    config.introductions = sync.introductions.unwrap_or(config.introductions);
    config.eager_forward = sync.eager_forward.unwrap_or(config.eager_forward);
    config.forward_fanout = sync.forward_fanout.unwrap_or(config.forward_fanout);
    config.replay_protection = sync.replay_protection.unwrap_or(config.replay_protection);
    config.amplification_budget = sync
        .amplification_budget
        .unwrap_or(config.amplification_budget);
    config.test_raw_clock = options.raw_clocks;
    if !options.ignore_key_retention {
        config.key_retention = sync.key_retention.map(|d| d.0);
    }
}
