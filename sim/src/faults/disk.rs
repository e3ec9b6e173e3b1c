//! `disk_full`: every insert into the device's store fails, as on a full disk, until
//! `disk_freed` or a heal (`kernel/store.rs` refuses them); the node must neither lose nor
//! invent anything meanwhile.

use crate::kernel::World;

pub(super) fn fill(world: &mut World, name: &str, permanent: bool) {
    let device = world.device(name);
    world.fill_disk(device, permanent);
}

pub(super) fn free(world: &mut World, name: &str) {
    let device = world.device(name);
    world.free_disk(device);
}
