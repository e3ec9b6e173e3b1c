//! Power cuts: a crash that also takes back what the device's store had not made durable.
//!
//! The device server's store (`backend/src/store/schema.rs`, `Durability::FullForOwn`)
//! commits the device's own events with `synchronous = FULL` and received ones with NORMAL:
//! a received event survives a killed process but not a power cut, until a later FULL commit
//! (the next own append) fsyncs the write-ahead log, which holds commits in order. The world
//! keeps, per device, the received events since its last own append; a power cut removes
//! them from its store. (A checkpoint would make them durable too, but one comes only every
//! ~40 MB of log: assuming none is the harsher world.)
//!
//! A world running provided stores (`[world] store = "sqlite"`, `kernel/store.rs`) has no power cuts
//! (a process cannot cut its own power); there a crash drops the store's connection and the
//! restart opens the file again, and the same checker reads what the reopened store holds.
//!
//! The kernel keeps the books (`World::note_stored`, `World::power_cut`); the checker that no
//! event a device appended is ever lost is `checks/own_loss.rs`.

use crate::kernel::World;

pub(super) fn power_cut(world: &mut World, name: &str, permanent: bool) {
    let device = world.device(name);
    world.power_cut(device);
    world.set_down_for_good(device, permanent);
}
