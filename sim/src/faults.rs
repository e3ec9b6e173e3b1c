//! Faults as the scenario schedules them: partitions, cuts, link changes, devices offline and
//! online, crashes (the node and its in-flight state dropped, the store kept), restarts and
//! full disks.

use std::collections::BTreeMap;

use meshlog_core::DeviceId;

use crate::scenario::FaultSpec;
use crate::world::{device_id, link_ends, start_node, World};

impl World {
    pub(crate) fn apply_fault(&mut self, fault: &FaultSpec) {
        let now = self.now;
        let permanent = fault.permanent;
        let lookup = |index: &BTreeMap<DeviceId, usize>, name: &str| index[&device_id(name)];
        // The world changes under every push in flight: none of them is judged.
        self.prompt.excuse_all();
        self.trace.line(format_args!(
            "{now} fault {}",
            toml::to_string(fault)
                .unwrap_or_default()
                .replace('\n', "; ")
        ));
        if let Some(groups) = &fault.partition {
            let mut group_of = vec![0u32; self.devices.len()];
            for (g, members) in groups.iter().enumerate() {
                for name in members {
                    group_of[lookup(&self.index, name)] = g as u32 + 1;
                }
            }
            self.network.partition(group_of, permanent);
        } else if fault.heal.is_some() {
            self.network.heal(false);
            for device in 0..self.devices.len() {
                if !self.devices[device].down_for_good {
                    self.bring_up(device);
                }
            }
        } else if let Some(pair) = &fault.cut {
            let (from, to) = (lookup(&self.index, &pair[0]), lookup(&self.index, &pair[1]));
            self.network.cut(from, to, permanent);
        } else if let Some(pair) = &fault.restore {
            let (from, to) = (lookup(&self.index, &pair[0]), lookup(&self.index, &pair[1]));
            self.network.restore(from, to);
        } else if let Some(name) = &fault.offline {
            let device = lookup(&self.index, name);
            self.set_online(device, false);
            self.devices[device].down_for_good = permanent;
        } else if let Some(name) = &fault.online {
            let device = lookup(&self.index, name);
            self.devices[device].down_for_good = false;
            self.set_online(device, true);
        } else if let Some(name) = &fault.crash {
            let device = lookup(&self.index, name);
            let d = &mut self.devices[device];
            d.node = None; // in-flight state, timers and queued outputs die with it
            d.wake_at = None;
            d.down_for_good = permanent;
        } else if let Some(name) = &fault.power_cut {
            let device = lookup(&self.index, name);
            self.power_cut(device);
            self.devices[device].down_for_good = permanent;
        } else if let Some(name) = &fault.restart {
            let device = lookup(&self.index, name);
            self.devices[device].down_for_good = false;
            self.restart(device);
        } else if let Some(name) = &fault.disk_full {
            let device = lookup(&self.index, name);
            self.devices[device].store.borrow_mut().full = true;
            self.devices[device].disk_full_for_good = permanent;
        } else if let Some(name) = &fault.disk_freed {
            let device = lookup(&self.index, name);
            self.free_disk(device);
        } else if let Some(spec) = &fault.network {
            let links = link_ends(&self.index, spec);
            if links.is_empty() {
                self.network.change(None, spec, permanent);
            }
            for link in links {
                self.network.change(Some(link), spec, permanent);
            }
        }
    }

    pub(crate) fn set_online(&mut self, device: usize, online: bool) {
        let now = self.now;
        let d = &mut self.devices[device];
        d.online = online;
        if let Some(node) = d.node.as_mut() {
            node.set_online(d.clock.read(now), online);
            self.drain(device);
        }
    }

    pub(crate) fn restart(&mut self, device: usize) {
        if self.devices[device].node.is_some() || self.devices[device].attacker_only {
            return;
        }
        let now = self.now;
        let d = &mut self.devices[device];
        let node = start_node(d, self.seed, now).expect("the config was valid at the start");
        d.node = Some(node);
        self.ledger.started(device);
        let online = d.online;
        self.check_index(device, "restart");
        let d = &mut self.devices[device];
        if !online {
            d.online = true; // a fresh node starts online; apply the scenario's state again
            self.set_online(device, false);
        }
        self.drain(device);
    }

    pub(crate) fn free_disk(&mut self, device: usize) {
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
}
