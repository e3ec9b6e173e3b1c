//! A device offline and online (its node keeps running, unplugged), crashed (the node and
//! all its in-flight state dropped, the store kept) and restarted over its store.

use crate::kernel::World;

pub(super) fn offline(world: &mut World, name: &str, permanent: bool) {
    let device = world.device(name);
    world.set_online(device, false);
    world.set_down_for_good(device, permanent);
}

pub(super) fn online(world: &mut World, name: &str) {
    let device = world.device(name);
    world.set_down_for_good(device, false);
    world.set_online(device, true);
}

pub(super) fn crash(world: &mut World, name: &str, permanent: bool) {
    let device = world.device(name);
    world.crash(device);
    world.set_down_for_good(device, permanent);
}

pub(super) fn restart(world: &mut World, name: &str) {
    let device = world.device(name);
    world.set_down_for_good(device, false);
    world.restart(device);
}
