//! `cut` and `restore`: one direction of one link lost, then back; `network`: a new link
//! model (latency, loss, bursts, duplication, reordering, corruption, replay, forgery) for
//! every link or one.

use crate::kernel::World;
use crate::scenario::LinkSpec;

pub(super) fn cut(world: &mut World, from: &str, to: &str, permanent: bool) {
    let (from, to) = (world.device(from), world.device(to));
    world.cut(from, to, permanent);
}

pub(super) fn restore(world: &mut World, from: &str, to: &str) {
    let (from, to) = (world.device(from), world.device(to));
    world.restore(from, to);
}

pub(super) fn change(world: &mut World, spec: &LinkSpec, permanent: bool) {
    world.change_links(spec, permanent);
}
