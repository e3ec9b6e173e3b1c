//! `[[member]]`: an admin's membership change, made by its node's own verb (`remove_member`,
//! `rotate_keys`, `set_role`) through the kernel's control surface. The node decides what the
//! change does (a removal starts a new key epoch at once); the trace says what it decided.
//!
//! A removed device is not stopped: it keeps its node, its workload and its links, and so
//! keeps sending and listening as an attacker would. What it manages to read or get stored
//! is the `confidentiality` and `removed_refused` checkers' business.
//!
//! `invite` is the admin's node's `create_invite`; `join` and `replay_join` are the joining
//! device's (or an eavesdropper's) doing, carried out by the kernel (`kernel/join.rs`).
//! `steal_keys` is a thief's: the kernel says when, the `forward_secrecy` checker takes them.

use crate::kernel::World;
use crate::scenario::MemberAction;

pub(super) fn change(world: &mut World, index: usize) {
    let change = world.scenario().members[index].clone();
    // Joins act for the joining device (or its eavesdropper), not through an admin's verb.
    match &change.action {
        MemberAction::Join(join) => return world.start_join(index, join),
        MemberAction::ReplayJoin(replay) => return world.replay_join(index, replay),
        MemberAction::StealKeys(name) => return world.steal_keys(index, world.device(name)),
        _ => {}
    }
    let by = world.device(&world.scenario().member_by(&change));
    let target = change
        .action
        .device()
        .map(|name| world.name(world.device(name)).clone());
    // A refusal is an outcome like any other (a removed admin's change, for one): the trace
    // and the roster checker show it; the world goes on.
    let _ = match change.action {
        MemberAction::Remove(_) => world.member_change(index, by, |node, now| {
            node.remove_member(now, target.as_ref().expect("a device"))
                .map(drop)
        }),
        MemberAction::Rotate => {
            world.member_change(index, by, |node, now| node.rotate_keys(now).map(drop))
        }
        MemberAction::SetRole { role, .. } => world.member_change(index, by, |node, now| {
            node.set_role(now, target.as_ref().expect("a device"), role.role())
        }),
        MemberAction::Invite(spec) => {
            world.make_invite(index, by, &spec);
            Ok(0)
        }
        MemberAction::Join(_) | MemberAction::ReplayJoin(_) | MemberAction::StealKeys(_) => {
            unreachable!("handled above")
        }
    };
}
