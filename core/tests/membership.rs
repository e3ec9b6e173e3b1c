//! Membership on live nodes: a removal starts a new epoch that the removed device cannot
//! open, and its packets are strangers' from then on.

use meshlog_core::member::{Role, Status};
use meshlog_core::testing::{Harness, Topology};
use meshlog_core::{DeviceId, Duration, EventBody, Store};

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

fn message(text: &str) -> EventBody {
    EventBody::Message {
        text: text.into(),
        attachment: None,
        auto: false,
    }
}

#[test]
fn a_removed_device_reads_nothing_sealed_after_and_is_refused_at_the_door() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 7);
    h.append("alice", message("before"));
    h.run_until_converged(Duration::from_secs(30))
        .expect("converges");
    assert_eq!(h.node("bob").key_epoch(), 0);

    let now = h.now();
    let epoch = h
        .node_mut("alice")
        .remove_member(now, &id("carol"))
        .expect("alice is the admin");
    assert_eq!(epoch, 1);
    h.run_for(Duration::from_secs(20));
    for name in ["alice", "bob", "carol"] {
        let roster = h.node(name).roster();
        assert_eq!(
            roster.members[&id("carol")].status,
            Status::Removed,
            "at {name}"
        );
    }
    assert_eq!(h.node("bob").key_epoch(), 1);
    assert_eq!(h.node("carol").key_epoch(), 0, "carol was given no key");

    let secret = h.append("bob", message("after"));
    let carols = h.append("carol", message("from the removed"));
    h.run_for(Duration::from_secs(20));
    assert!(h.node("alice").contains(&secret));
    assert!(!h.node("carol").contains(&secret), "never reaches carol");
    let sealed = h.node("bob").store().get(&secret).unwrap().unwrap();
    let opened = meshlog_core::open(&sealed, &h.node("carol").config().community);
    assert!(
        opened.is_err(),
        "carol's keys open nothing after her removal"
    );
    assert!(!h.node("alice").contains(&carols));
    assert!(!h.node("bob").contains(&carols));
    assert!(
        h.node("alice")
            .stats()
            .drops
            .get("unknown_source")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn a_member_may_not_remove_and_the_last_admin_stays() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 7);
    let now = h.now();
    assert!(h.node_mut("bob").remove_member(now, &id("alice")).is_err());
    assert!(h
        .node_mut("alice")
        .remove_member(now, &id("alice"))
        .is_err());
    h.node_mut("alice")
        .set_role(now, &id("bob"), Role::Admin)
        .unwrap();
    h.run_for(Duration::from_secs(10));
    assert!(h.node("bob").roster().is_admin(&id("bob")));
}

#[test]
fn on_demand_rotation_reaches_a_member_that_was_offline() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 9);
    h.set_online("carol", false);
    let now = h.now();
    h.node_mut("alice").rotate_keys(now).unwrap();
    h.append("alice", message("sealed under epoch 1"));
    h.run_for(Duration::from_secs(10));
    assert_eq!(h.node("bob").key_epoch(), 1);
    h.set_online("carol", true);
    h.run_until_converged(Duration::from_secs(60))
        .expect("converges");
    assert_eq!(h.node("carol").key_epoch(), 1);
}
