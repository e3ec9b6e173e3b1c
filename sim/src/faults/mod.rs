//! Faults and attackers: whatever acts on a world besides its workload. Each kind of
//! scheduled fault (`[[fault]]`, a [`FaultKind`]) is one module here, acting on the kernel only
//! through its control surface (`kernel/control.rs`); so are the hostile members
//! (`[[hostile]]`), the forger a link may carry (`forge`) and the admins' membership changes
//! (`[[member]]`, `member`). The link models themselves
//! (loss, bursts, latency, reordering, duplication, corruption, replay) are the network's,
//! in `kernel/network.rs`, changed over time by the `network` fault.
//!
//! Adding a fault kind is one variant in `scenario/fault.rs`, one module here, and one arm in
//! [`Plan::fault`].

use meshlog_core::Community;

use crate::kernel::{Agents, World};
use crate::scenario::FaultKind;

mod address;
mod device;
mod disk;
mod forge;
mod hostile;
mod link;
mod member;
mod partition;
mod power;

/// The scenario's faults and attackers, as agents of one world.
#[derive(Debug)]
pub struct Plan {
    hostiles: Vec<hostile::Hostile>,
    forger: forge::Forger,
}

impl Plan {
    /// The agents of `world`'s scenario (hostile members take their keys from its roster).
    pub fn new(world: &World, community: &Community) -> Plan {
        Plan {
            hostiles: world
                .scenario()
                .hostiles
                .iter()
                .map(|spec| hostile::Hostile::new(spec, world, community))
                .collect(),
            forger: forge::Forger::default(),
        }
    }
}

impl Agents for Plan {
    fn fault(&mut self, world: &mut World, index: usize) {
        let fault = world.scenario().faults[index].clone();
        let permanent = fault.permanent;
        match &fault.kind {
            FaultKind::Partition(groups) => partition::partition(world, groups, permanent),
            FaultKind::Heal => partition::heal(world),
            FaultKind::Cut { from, to } => link::cut(world, from, to, permanent),
            FaultKind::Restore { from, to } => link::restore(world, from, to),
            FaultKind::Network(spec) => link::change(world, spec, permanent),
            FaultKind::Offline(name) => device::offline(world, name, permanent),
            FaultKind::Online(name) => device::online(world, name),
            FaultKind::Crash(name) => device::crash(world, name, permanent),
            FaultKind::Restart(name) => device::restart(world, name),
            FaultKind::PowerCut(name) => power::power_cut(world, name, permanent),
            FaultKind::DiskFull(name) => disk::fill(world, name, permanent),
            FaultKind::DiskFreed(name) => disk::free(world, name),
            FaultKind::AddressChange { device, address } => {
                address::change(world, device, *address);
            }
        }
    }

    fn hostile(&mut self, world: &mut World, index: usize) {
        self.hostiles[index].attack(world, index);
    }

    fn forge(&mut self, world: &mut World, from: usize, to: usize) {
        self.forger.forge(world, from, to);
    }

    fn member(&mut self, world: &mut World, index: usize) {
        member::change(world, index);
    }
}
