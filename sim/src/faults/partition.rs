//! `partition`: devices in different groups cannot reach each other (unlisted devices form
//! one more group); `heal`: lifts partitions and cuts and brings devices back, except what a
//! fault marked `permanent` did.

use crate::kernel::World;

pub(super) fn partition(world: &mut World, groups: &[Vec<String>], permanent: bool) {
    let mut group_of = vec![0u32; world.device_count()];
    for (g, members) in groups.iter().enumerate() {
        for name in members {
            group_of[world.device(name)] = g as u32 + 1;
        }
    }
    world.partition(group_of, permanent);
}

pub(super) fn heal(world: &mut World) {
    world.heal_faults();
}
