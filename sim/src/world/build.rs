//! Building a world from a validated scenario: devices, their stores, clocks and nodes, the
//! network, the workload, and the first items on the queue.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::rc::Rc;

use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{Config, DeviceId, Instant};

use super::{
    device_id, link_ends, start_node, AppendedEvents, Device, Item, SimError, StoreKind, World,
    WorldOptions, WorldStore,
};
use crate::attack::Attack;
use crate::budget::Ledger;
use crate::clocks::{ClockOrder, DeviceClock};
use crate::network::Network;
use crate::outcome::Counters;
use crate::prompt::Prompt;
use crate::report::{Hook, ReportOptions};
use crate::scenario::Scenario;
use crate::shelf::Shelf;
use crate::trace::Trace;
use crate::workload::Workload;

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
}
