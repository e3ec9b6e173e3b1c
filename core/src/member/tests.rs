//! The merge rule on hand-built graphs of membership events.

use std::collections::BTreeMap;

use super::roster::settle;
use super::*;
use crate::id::{DeviceId, EventId};
use crate::testing::keys;
use crate::time::Instant;

const COMMUNITY: [u8; 16] = [5; 16];

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

fn genesis(admins: &[&str], members: &[&str]) -> BTreeMap<DeviceId, (PublicKey, Role)> {
    let mut g = BTreeMap::new();
    for a in admins {
        g.insert(id(a), (keys(a, 1).public(), Role::Admin));
    }
    for m in members {
        g.insert(id(m), (keys(m, 1).public(), Role::Member));
    }
    g
}

/// A graph of membership events, each named by a short label.
#[derive(Default)]
struct Graph {
    ops: BTreeMap<EventId, OpRecord>,
    ids: BTreeMap<&'static str, EventId>,
}

impl Graph {
    fn add(
        &mut self,
        label: &'static str,
        author: &str,
        at_ms: u64,
        parents: &[&str],
        op: MemberOp,
    ) -> EventId {
        let event = EventId::of_bytes(label.as_bytes());
        let parents = parents.iter().map(|p| self.ids[p]).collect();
        self.ops.insert(
            event,
            OpRecord {
                author: id(author),
                created_at: Instant::from_millis(at_ms),
                parents,
                op,
            },
        );
        self.ids.insert(label, event);
        event
    }
    fn settle(&self, genesis: &BTreeMap<DeviceId, (PublicKey, Role)>) -> Roster {
        settle(&COMMUNITY, genesis, &self.ops)
    }
}

fn remove(device: &str) -> MemberOp {
    MemberOp::Remove { device: id(device) }
}
fn add(device: &str, role: Role) -> MemberOp {
    MemberOp::Add {
        device: id(device),
        key: keys(device, 1).public(),
        role,
    }
}

#[test]
fn an_admin_removes_and_a_member_cannot() {
    let g0 = genesis(&["alice"], &["bob", "carol"]);
    let mut g = Graph::default();
    g.add("r1", "bob", 10, &[], remove("carol"));
    g.add("r2", "alice", 20, &[], remove("carol"));
    let roster = g.settle(&g0);
    assert_eq!(roster.refused[&g.ids["r1"]], "not_an_admin");
    assert!(!roster.is_active(&id("carol")));
    assert_eq!(
        roster.members[&id("carol")].removed.as_ref().unwrap().0,
        id("alice")
    );
    assert!(roster.is_active(&id("bob")));
}

#[test]
fn two_admins_removing_each_other_the_first_in_order_stands() {
    let g0 = genesis(&["alice", "bob"], &["carol"]);
    let mut g = Graph::default();
    g.add("a_removes_b", "alice", 10, &[], remove("bob"));
    g.add("b_removes_a", "bob", 11, &[], remove("alice"));
    let roster = g.settle(&g0);
    assert!(roster.is_admin(&id("alice")));
    assert!(!roster.is_active(&id("bob")));
    assert!(roster.refused.contains_key(&g.ids["b_removes_a"]));
}

#[test]
fn a_removed_admins_backdated_change_is_void() {
    // Bob, removed by alice, adds mallory "earlier" without naming the removal.
    let g0 = genesis(&["alice", "bob"], &["carol"]);
    let mut g = Graph::default();
    g.add("a_removes_b", "alice", 100, &[], remove("bob"));
    g.add("b_adds_m", "bob", 5, &[], add("mallory", Role::Admin));
    let roster = g.settle(&g0);
    assert!(!roster.members.contains_key(&id("mallory")));
    assert_eq!(roster.refused[&g.ids["b_adds_m"]], "voided");
}

#[test]
fn a_change_the_remover_had_seen_stands() {
    let g0 = genesis(&["alice", "bob"], &[]);
    let mut g = Graph::default();
    g.add("b_adds_d", "bob", 5, &[], add("dave", Role::Member));
    g.add("a_removes_b", "alice", 100, &["b_adds_d"], remove("bob"));
    let roster = g.settle(&g0);
    assert!(roster.is_active(&id("dave")));
    assert!(!roster.is_active(&id("bob")));
}

#[test]
fn voiding_undoes_what_hung_on_the_voided_change() {
    // Bob (removed, unseen) adds mallory as admin; mallory then removes alice. Both void.
    let g0 = genesis(&["alice", "bob"], &[]);
    let mut g = Graph::default();
    g.add("b_adds_m", "bob", 5, &[], add("mallory", Role::Admin));
    g.add("m_removes_a", "mallory", 6, &["b_adds_m"], remove("alice"));
    g.add("a_removes_b", "alice", 100, &[], remove("bob"));
    let roster = g.settle(&g0);
    assert!(roster.is_admin(&id("alice")));
    assert!(!roster.members.contains_key(&id("mallory")));
    assert!(roster.refused.contains_key(&g.ids["m_removes_a"]));
}

#[test]
fn an_event_waits_for_its_parents_and_arrival_order_does_not_matter() {
    let g0 = genesis(&["alice"], &["bob"]);
    let mut g = Graph::default();
    g.add("add_d", "alice", 10, &[], add("dave", Role::Member));
    g.add("rm_d", "alice", 20, &["add_d"], remove("dave"));
    let full = g.settle(&g0);
    assert!(!full.is_active(&id("dave")));
    assert_eq!(full.heads, vec![g.ids["rm_d"]]);

    let mut partial = Graph::default();
    partial.ids.insert("add_d", g.ids["add_d"]);
    let rm = g.ids["rm_d"];
    partial.ops.insert(rm, g.ops[&rm].clone());
    let roster = partial.settle(&g0);
    assert_eq!(roster.refused[&rm], "waiting");
    assert!(!roster.members.contains_key(&id("dave")));
}

#[test]
fn the_last_admin_cannot_leave_and_removed_names_are_not_reused() {
    let g0 = genesis(&["alice"], &["bob"]);
    let mut g = Graph::default();
    g.add("self", "alice", 10, &[], remove("alice"));
    g.add("rm_b", "alice", 20, &["self"], remove("bob"));
    g.add("re_b", "alice", 30, &["rm_b"], add("bob", Role::Member));
    let roster = g.settle(&g0);
    assert_eq!(roster.refused[&g.ids["self"]], "last_admin");
    assert_eq!(roster.refused[&g.ids["re_b"]], "name_taken");
    assert!(!roster.is_active(&id("bob")));
}

fn admit(invite: &Invite, device: &str) -> MemberOp {
    let k = keys(device, 1);
    MemberOp::Admit(Box::new(op::Admission {
        grant: invite.grant.clone(),
        device: id(device),
        key: k.public(),
        proof: invite.prove(&k.device, &k.public()),
    }))
}

fn invite(uses: u16, expires_ms: u64) -> Invite {
    Invite::new(
        &keys("alice", 1),
        COMMUNITY,
        Role::Member,
        Instant::from_millis(expires_ms),
        uses,
        [4; 32],
        String::new(),
    )
    .unwrap()
}

#[test]
fn admissions_count_uses_in_order_across_a_partition() {
    let g0 = genesis(&["alice"], &["bob", "carol"]);
    let inv = invite(1, 1_000);
    let mut g = Graph::default();
    // Both sides of a partition admit someone with the one-use invite.
    g.add("bob_admits_dave", "bob", 100, &[], admit(&inv, "dave"));
    g.add("carol_admits_erin", "carol", 200, &[], admit(&inv, "erin"));
    let roster = g.settle(&g0);
    assert!(roster.is_active(&id("dave")));
    assert!(!roster.members.contains_key(&id("erin")));
    assert_eq!(roster.refused[&g.ids["carol_admits_erin"]], "used_up");
    assert_eq!(roster.invite_uses[&inv.grant.id()], 1);
}

#[test]
fn an_expired_forged_or_foreign_invite_admits_nobody() {
    let g0 = genesis(&["alice"], &["bob"]);
    let mut g = Graph::default();
    g.add("late", "bob", 2_000, &[], admit(&invite(5, 1_000), "dave"));
    let mut forged = invite(5, 9_000);
    forged.grant.role = Role::Admin;
    g.add("forged", "bob", 10, &[], admit(&forged, "erin"));
    let foreign = Invite::new(
        &keys("alice", 1),
        [6; 16],
        Role::Member,
        Instant::from_millis(9_000),
        5,
        [4; 32],
        String::new(),
    )
    .unwrap();
    g.add("foreign", "bob", 10, &[], admit(&foreign, "frank"));
    let by_member = Invite::new(
        &keys("bob", 1),
        COMMUNITY,
        Role::Member,
        Instant::from_millis(9_000),
        5,
        [4; 32],
        String::new(),
    )
    .unwrap();
    g.add("not_admin", "bob", 10, &[], admit(&by_member, "gina"));
    let roster = g.settle(&g0);
    assert_eq!(roster.refused[&g.ids["late"]], "expired");
    assert_eq!(roster.refused[&g.ids["forged"]], "forged");
    assert_eq!(roster.refused[&g.ids["foreign"]], "wrong_community");
    assert_eq!(roster.refused[&g.ids["not_admin"]], "not_an_admin");
    assert_eq!(roster.active().count(), 2);
}

#[test]
fn a_wrapped_key_opens_only_for_its_recipients() {
    let key = [42; 32];
    let receive_secret = [8; 32];
    let recipients = [
        Recipient {
            device_key: keys("alice", 1).public(),
            receive_key: None,
        },
        Recipient {
            device_key: keys("bob", 1).public(),
            receive_key: Some(crate::crypto::sealed_box::x25519_public(&receive_secret)),
        },
    ];
    let ops = share_key(1, &key, &recipients, [3; 32]);
    assert_eq!(ops.len(), 1);
    assert_eq!(
        unwrap_key(&keys("alice", 1), &[], &ops[0]),
        Some(EpochKey { epoch: 1, key })
    );
    // Bob's copy went to his receive key: his device key alone does not open it.
    assert_eq!(unwrap_key(&keys("bob", 1), &[], &ops[0]), None);
    assert_eq!(
        unwrap_key(&keys("bob", 1), &[receive_secret], &ops[0]),
        Some(EpochKey { epoch: 1, key })
    );
    assert_eq!(
        unwrap_key(&keys("carol", 1), &[receive_secret], &ops[0]),
        None
    );
}

#[test]
fn a_rotation_for_many_members_spans_several_events() {
    let members: Vec<Recipient> = (0..30)
        .map(|i| Recipient {
            device_key: keys(&format!("d{i}"), 1).public(),
            receive_key: None,
        })
        .collect();
    let ops = share_key(2, &[1; 32], &members, [3; 32]);
    assert_eq!(ops.len(), 30usize.div_ceil(WRAPS_PER_EVENT_MAX));
    for i in 0..30 {
        let holder = keys(&format!("d{i}"), 1);
        assert!(ops.iter().any(|op| unwrap_key(&holder, &[], op).is_some()));
    }
}

#[test]
fn the_newest_counted_epoch_seals_and_ties_go_to_the_lower_id() {
    let mut held = EpochKeys::default();
    assert_eq!(held.epoch(), 0);
    held.insert(EpochKey {
        epoch: 1,
        key: [1; 32],
    });
    held.insert(EpochKey {
        epoch: 2,
        key: [2; 32],
    });
    held.insert(EpochKey {
        epoch: 2,
        key: [3; 32],
    });
    held.insert(EpochKey {
        epoch: 999,
        key: [4; 32],
    });
    assert_eq!(held.epoch(), 0, "nothing seals until chosen");
    let rogue = KeyId::of(&[4; 32]);
    held.choose_sealing(|id| *id != rogue);
    let (id, key) = held.current().unwrap();
    assert_eq!(key.epoch, 2, "a key no admin started never seals");
    assert_eq!(id, KeyId::of(&[2; 32]).min(KeyId::of(&[3; 32])));
    held.remove(&id);
    assert_eq!(held.epoch(), 0);
}

fn certify(person: &PersonKeys, device: &str) -> MemberOp {
    let cert = person.certify(&COMMUNITY, &id(device), &keys(device, 1).public());
    MemberOp::Certify(Box::new(cert))
}

#[test]
fn removing_a_person_removes_each_of_their_devices_even_one_certified_late() {
    let g0 = genesis(&["carol"], &["alice-phone", "alice-laptop", "bob"]);
    let alice = PersonKeys::from_secret(id("alice"), [9; 32]);
    let mut g = Graph::default();
    g.add("c1", "alice-phone", 10, &[], certify(&alice, "alice-phone"));
    g.add(
        "c2",
        "alice-laptop",
        11,
        &["c1"],
        certify(&alice, "alice-laptop"),
    );
    g.add(
        "add",
        "carol",
        12,
        &["c2"],
        add("alice-tablet", Role::Member),
    );
    let roster = g.settle(&g0);
    assert_eq!(
        roster.members[&id("alice-laptop")].person,
        Some(id("alice"))
    );
    assert_eq!(roster.persons[&id("alice")].key, alice.public());

    g.add(
        "rp",
        "carol",
        20,
        &["add"],
        MemberOp::RemovePerson {
            person: id("alice"),
        },
    );
    // The tablet certifies itself without having seen the removal: it goes too.
    g.add(
        "c3",
        "alice-tablet",
        21,
        &["add"],
        certify(&alice, "alice-tablet"),
    );
    let roster = g.settle(&g0);
    for device in ["alice-phone", "alice-laptop", "alice-tablet"] {
        let member = &roster.members[&id(device)];
        assert_eq!(member.status, Status::Removed, "{device}");
        assert_eq!(
            member.removed.as_ref().map(|r| r.0.clone()),
            Some(id("carol"))
        );
    }
    assert!(roster.is_active(&id("bob")));
    assert_eq!(roster.persons[&id("alice")].status, Status::Removed);
    assert!(roster.refused.is_empty(), "{:?}", roster.refused);
}

#[test]
fn nobody_pins_a_device_on_a_person_or_takes_a_persons_name() {
    let g0 = genesis(&["carol"], &["alice-phone", "bob"]);
    let alice = PersonKeys::from_secret(id("alice"), [9; 32]);
    let impostor = PersonKeys::from_secret(id("alice"), [10; 32]);
    let mut g = Graph::default();
    // Bob publishes alice's certificate for alice's phone as if it were his.
    let stolen = g.add("stolen", "bob", 5, &[], certify(&alice, "alice-phone"));
    let real = g.add(
        "real",
        "alice-phone",
        10,
        &["stolen"],
        certify(&alice, "alice-phone"),
    );
    let again = g.add(
        "again",
        "alice-phone",
        11,
        &["real"],
        certify(&alice, "alice-phone"),
    );
    // Bob certifies himself under a key of his own that claims alice's name.
    let taken = g.add("taken", "bob", 12, &["again"], certify(&impostor, "bob"));
    let by_member = g.add(
        "by_member",
        "bob",
        13,
        &["taken"],
        MemberOp::RemovePerson {
            person: id("alice"),
        },
    );
    let nobody = g.add(
        "nobody",
        "carol",
        14,
        &["by_member"],
        MemberOp::RemovePerson { person: id("zed") },
    );
    let roster = g.settle(&g0);
    assert_eq!(roster.refused.get(&stolen), Some(&"certificate_forged"));
    assert_eq!(roster.refused.get(&again), Some(&"already_certified"));
    assert_eq!(roster.refused.get(&taken), Some(&"person_key_mismatch"));
    assert_eq!(roster.refused.get(&by_member), Some(&"not_an_admin"));
    assert_eq!(roster.refused.get(&nobody), Some(&"not_a_person"));
    assert!(!roster.refused.contains_key(&real));
    assert_eq!(roster.members[&id("alice-phone")].person, Some(id("alice")));
    assert_eq!(roster.members[&id("bob")].person, None);
    assert!(roster.is_active(&id("alice-phone")) && roster.is_active(&id("bob")));
}
