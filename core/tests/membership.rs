//! Membership on live nodes: a removal starts a new epoch that the removed device cannot
//! open, and its packets are strangers' from then on.

use meshlog_core::member::join::{JoinError, Joiner};
use meshlog_core::member::{Invite, Role, Status};
use meshlog_core::testing::{address, device as id, message, Harness, Topology};
use meshlog_core::{Config, Duration, EventBody, InMemoryStore, Node, Store};

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

/// Dave joins through bob (a plain member) with alice's invite: the request goes in, the
/// welcome comes out, and dave's node starts from it and catches up the history.
fn join(h: &mut Harness, name: &str, via: &str, invite: &Invite) -> Result<(), JoinError> {
    let keys = meshlog_core::testing::keys(name, 7);
    let mut joiner = Joiner::new(keys.clone(), invite.clone());
    let request = joiner
        .poll_transmit(h.now())?
        .expect("the first request is due at once");
    h.deliver_now_from(via, address(name), &request);
    for part in h.take_outside(name) {
        if let Some(welcomed) = joiner.handle_datagram(&part)? {
            let mut store = InMemoryStore::new();
            for event in &welcomed.events {
                store.insert(event, 0).unwrap();
            }
            let config = Config::new(
                keys.clone(),
                welcomed.community,
                vec![welcomed.inviter],
                meshlog_core::testing::derive_seed(7, name),
            );
            let node = Node::new(config, store, h.now()).expect("a welcomed device starts");
            h.add_node(node, &[via]);
            return Ok(());
        }
    }
    Err(JoinError::NotAdmitted)
}

#[test]
fn a_device_with_an_invite_joins_through_any_member_and_gets_the_history() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 7);
    let history = h.append("carol", message("before dave"));
    let now = h.now();
    h.node_mut("alice").rotate_keys(now).unwrap();
    h.run_until_converged(Duration::from_secs(30))
        .expect("converges");
    let now = h.now();
    let invite = h
        .node_mut("alice")
        .create_invite(
            now,
            Role::Member,
            Duration::from_secs(3600),
            1,
            String::new(),
        )
        .unwrap();
    let token = invite.to_token();
    let invite = Invite::from_token(&token).unwrap();
    join(&mut h, "dave", "bob", &invite).expect("dave is welcomed");
    h.run_until_converged(Duration::from_secs(60))
        .expect("converges");
    assert!(
        h.node("dave").contains(&history),
        "dave caught up the history"
    );
    for name in ["alice", "bob", "carol", "dave"] {
        let roster = h.node(name).roster();
        assert!(roster.is_active(&id("dave")), "at {name}");
        assert_eq!(roster.members[&id("dave")].added_by, Some(id("bob")));
        assert_eq!(h.node(name).key_epoch(), 1, "at {name}");
    }
    let from_dave = h.append("dave", message("hello from dave"));
    h.run_until_converged(Duration::from_secs(60))
        .expect("converges");
    assert!(h.node("carol").contains(&from_dave));

    // The one use is spent: a second device with the same token is refused, nothing stored.
    let events_before = h.node("bob").event_count();
    assert!(join(&mut h, "erin", "bob", &invite).is_err());
    assert_eq!(h.node("bob").event_count(), events_before);
    assert!(!h.node("bob").roster().members.contains_key(&id("erin")));
    assert_eq!(h.node("bob").stats().drops.get("join_used_up"), Some(&1));
}

#[test]
fn forged_expired_and_foreign_invites_are_refused_with_nothing_stored() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 7);
    let now = h.now();
    let good = h
        .node_mut("alice")
        .create_invite(now, Role::Member, Duration::from_secs(60), 3, String::new())
        .unwrap();
    // Forged: the grant's role changed after signing.
    let mut forged = good.clone();
    forged.grant.role = Role::Admin;
    // Expired: used after its minute.
    let short = h
        .node_mut("alice")
        .create_invite(now, Role::Member, Duration::from_secs(1), 3, String::new())
        .unwrap();
    // Foreign: signed by alice's key in another community.
    let other = meshlog_core::testing::community_of(&["alice"], 99);
    let foreign = meshlog_core::member::Invite::new(
        &meshlog_core::testing::keys("alice", 7),
        *other.id(),
        Role::Member,
        meshlog_core::Instant::from_micros(u64::MAX),
        3,
        [1; 32],
        String::new(),
    )
    .unwrap();
    h.run_for(Duration::from_secs(5));
    let before = h.node("bob").event_count();
    assert!(join(&mut h, "dave", "bob", &forged).is_err());
    assert!(join(&mut h, "erin", "bob", &short).is_err());
    assert!(join(&mut h, "frank", "bob", &foreign).is_err());
    assert_eq!(h.node("bob").event_count(), before, "nothing stored");
    let drops = &h.node("bob").stats().drops;
    assert_eq!(drops.get("join_forged"), Some(&1));
    assert_eq!(drops.get("join_expired"), Some(&1));
    assert_eq!(drops.get("join_wrong_community"), Some(&1));
    // A replayed request of an admitted device admits nothing new.
    join(&mut h, "gina", "bob", &good).expect("the good invite works");
    let before = h.node("bob").event_count();
    let request = Joiner::new(meshlog_core::testing::keys("gina", 7), good.clone())
        .poll_transmit(h.now())
        .unwrap()
        .unwrap();
    h.deliver_now("bob", &request);
    assert_eq!(h.node("bob").event_count(), before);
    assert_eq!(h.node("bob").stats().drops.get("join_repeat"), Some(&1));
}

#[test]
fn keys_stolen_after_the_retention_open_no_earlier_epoch() {
    let retention = Duration::from_secs(10);
    let mut h = Harness::with_config(&["alice", "bob", "carol"], Topology::FullMesh, 11, |c| {
        c.key_retention = Some(retention);
    });
    h.run_for(Duration::from_secs(5));
    for name in ["alice", "bob", "carol"] {
        let roster = h.node(name).roster();
        assert!(
            roster.members[&id("bob")].receive_key.is_some(),
            "at {name}"
        );
    }
    let now = h.now();
    h.node_mut("alice").rotate_keys(now).unwrap();
    h.run_for(Duration::from_secs(5));
    let recorded = h.append("bob", message("sealed under epoch 1"));
    h.run_for(Duration::from_secs(5));
    let sealed = h.node("carol").store().get(&recorded).unwrap().unwrap();
    let now = h.now();
    h.node_mut("alice").rotate_keys(now).unwrap();
    h.run_for(Duration::from_secs(5));
    assert_eq!(h.node("bob").key_epoch(), 2);
    // Before the retention passes, bob still opens it.
    let (_, community, _) = h.node("bob").stolen_keys();
    assert!(meshlog_core::open(&sealed, &community).is_ok());

    h.run_for(Duration::from_secs(20));
    let (device, community, receive) = h.node("bob").stolen_keys();
    assert!(matches!(
        meshlog_core::open(&sealed, &community),
        Err(meshlog_core::RejectReason::UnknownEpoch(_))
    ));
    // Nor does anything in the log give epoch 1's key back to these keys.
    let ids: Vec<_> = h.node("bob").ids().copied().collect();
    for id in ids {
        let bytes = h.node("bob").store().get(&id).unwrap().unwrap();
        let Ok(opened) = meshlog_core::open(&bytes, &community) else {
            continue;
        };
        if let EventBody::Membership { op, .. } = &opened.event.body {
            let key = meshlog_core::member::unwrap_key(&device, &receive, op);
            assert!(key.is_none_or(|k| k.epoch != 1), "epoch 1 came back");
        }
    }
    // The current epoch still works for everyone.
    let fresh = h.append("carol", message("epoch 2"));
    h.run_for(Duration::from_secs(5));
    assert!(h.node("bob").contains(&fresh));
}

#[test]
fn admins_removing_each_other_across_a_partition_settle_on_one_roster_and_all_read_both_sides() {
    let mut h = Harness::with_config(
        &["alice", "bob", "carol", "dave"],
        Topology::FullMesh,
        13,
        |c| {
            c.community = c.community.clone().with_admins([id("alice"), id("bob")]);
        },
    );
    h.run_for(Duration::from_secs(5));
    for (a, b) in [
        ("alice", "bob"),
        ("alice", "dave"),
        ("carol", "bob"),
        ("carol", "dave"),
    ] {
        h.set_link(a, b, false);
    }
    let now = h.now();
    h.node_mut("alice").remove_member(now, &id("bob")).unwrap();
    h.node_mut("bob").remove_member(now, &id("alice")).unwrap();
    h.run_for(Duration::from_secs(5));
    assert_eq!(
        h.node("dave").key_epoch(),
        1,
        "dave holds bob's side's epoch"
    );
    let from_carol = h.append("carol", message("alice's side"));
    let from_dave = h.append("dave", message("bob's side, under bob's epoch"));
    h.run_for(Duration::from_secs(10));
    for (a, b) in [
        ("alice", "bob"),
        ("alice", "dave"),
        ("carol", "bob"),
        ("carol", "dave"),
    ] {
        h.set_link(a, b, true);
    }
    h.run_for(Duration::from_secs(60));
    for name in ["alice", "carol", "dave"] {
        let roster = h.node(name).roster();
        assert!(
            roster.is_admin(&id("alice")),
            "at {name}: the founder first by name stands"
        );
        assert_eq!(
            roster.members[&id("bob")].status,
            Status::Removed,
            "at {name}"
        );
        assert!(h.node(name).contains(&from_carol) && h.node(name).contains(&from_dave));
    }
    // Alice reads dave's event sealed under the voided epoch: someone on bob's side passed
    // that key on once the roster settled.
    let sealed = h.node("dave").store().get(&from_dave).unwrap().unwrap();
    assert!(meshlog_core::open(&sealed, &h.node("alice").config().community).is_ok());
    let epochs: Vec<u32> = ["alice", "carol", "dave"]
        .iter()
        .map(|n| h.node(n).key_epoch())
        .collect();
    assert!(
        epochs.iter().all(|e| *e == epochs[0]),
        "one sealing epoch: {epochs:?}"
    );
}

#[test]
fn a_key_no_admin_started_is_never_sealed_with() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 17);
    let now = h.now();
    h.node_mut("alice").rotate_keys(now).unwrap();
    h.run_for(Duration::from_secs(10));
    // Carol, a plain member, hands bob a key of epoch 999 she alone (with him) would know.
    let bob = h.node("bob").roster().members[&id("bob")].clone();
    let ops = meshlog_core::member::share_key(
        999,
        &[9; 32],
        &[meshlog_core::member::Recipient {
            device_key: bob.key,
            receive_key: None,
        }],
        [5; 32],
    );
    for op in ops {
        h.append(
            "carol",
            EventBody::Membership {
                parents: Vec::new(),
                op: Box::new(op),
            },
        );
    }
    h.run_for(Duration::from_secs(10));
    assert_eq!(
        h.node("bob").key_epoch(),
        1,
        "bob keeps sealing with the admin's epoch"
    );
    let posted = h.append("bob", message("readable by all"));
    h.run_for(Duration::from_secs(10));
    let sealed = h.node("bob").store().get(&posted).unwrap().unwrap();
    assert!(meshlog_core::open(&sealed, &h.node("alice").config().community).is_ok());
}

/// A member invite from `admin`, for one device, valid ten minutes.
fn one_use_invite(h: &mut Harness, admin: &str) -> Invite {
    let now = h.now();
    h.node_mut(admin)
        .create_invite(
            now,
            Role::Member,
            Duration::from_secs(600),
            1,
            String::new(),
        )
        .unwrap()
}

/// A stranger floods bob with join requests under a tampered invite, from one address, 40
/// every second; dave, from another address, asks once a second with a good invite. Bob
/// checks at most 8 requests a round, so first come first served gave them all to the flood
/// and dave was never checked; with a share per address and a backoff for refused ones, dave
/// is admitted within a round, and the flood costs bob a few checks, not 8 a round.
#[test]
fn a_flood_of_bad_join_requests_from_one_address_does_not_keep_an_honest_joiner_out() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 7);
    let good = one_use_invite(&mut h, "alice");
    h.run_for(Duration::from_secs(5));
    let mut forged = good.clone();
    forged.grant.role = Role::Admin;
    let bad = Joiner::new(meshlog_core::testing::keys("mallory", 7), forged)
        .poll_transmit(h.now())
        .unwrap()
        .unwrap();
    let attacker = address("mallory");
    let mut dave = Joiner::new(meshlog_core::testing::keys("dave", 7), good);
    let started = h.now();
    let mut admitted_after = None;
    for second in 0..60u64 {
        for _ in 0..40 {
            h.deliver_now_from("bob", attacker, &bad);
        }
        if let Some(request) = dave.poll_transmit(h.now()).unwrap() {
            h.deliver_now_from("bob", address("dave"), &request);
        }
        let mut welcomed = false;
        for part in h.take_outside("dave") {
            welcomed |= dave.handle_datagram(&part).unwrap().is_some();
        }
        if welcomed {
            admitted_after = Some(second);
            break;
        }
        h.run_for(Duration::from_secs(1));
    }
    let drops = &h.node("bob").stats().drops;
    let seconds = h.now().as_micros().saturating_sub(started.as_micros()) / 1_000_000;
    // Within one round (5 s): his first request is checked in the round it arrives.
    assert!(
        admitted_after.is_some_and(|s| s <= 5),
        "dave not admitted within a round: {drops:?} after {seconds} s"
    );
    assert!(h.node("bob").roster().is_active(&id("dave")));
    // The flood's own checks: its share of its first round, then it waits.
    let forged_checked = drops.get("join_forged").copied().unwrap_or(0);
    assert!(
        (1..=u64::from(meshlog_core::node::JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX))
            .contains(&forged_checked),
        "{drops:?}"
    );
}

/// A restart settles the configured peers against the roster the store holds: a device
/// admitted after genesis may be named as a peer (it was refused as outside the genesis
/// roster), a name no roster ever held is refused, and a removed device is no peer again.
#[test]
fn a_restart_takes_an_admitted_peer_refuses_a_stranger_and_leaves_a_removed_one_out() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 7);
    let invite = one_use_invite(&mut h, "alice");
    join(&mut h, "dave", "alice", &invite).expect("dave is welcomed");
    h.run_until_converged(Duration::from_secs(60))
        .expect("converges");
    // As a device restarts: the community file holds the genesis roster only.
    let restart = |h: &Harness, peers: &[&str]| {
        let alice = h.node("alice");
        let mut config = alice.config().clone();
        config.community = meshlog_core::testing::community_of(&["alice", "bob"], 7)
            .with_epoch_keys(alice.epoch_keys().clone());
        assert!(config.community.member(&id("dave")).is_none());
        config.peers = peers.iter().map(|p| id(p)).collect();
        Node::new(config, alice.store().clone(), h.now())
    };
    let peers = |node: &Node<InMemoryStore>| -> Vec<String> {
        node.peers().iter().map(|p| p.device.to_string()).collect()
    };
    let again = restart(&h, &["bob", "dave"]).expect("dave is an active member");
    assert_eq!(peers(&again), ["bob", "dave"]);
    match restart(&h, &["bob", "zed"]) {
        Err(meshlog_core::NodeError::Config(meshlog_core::ConfigError::UnknownPeer(name))) => {
            assert_eq!(name, "zed")
        }
        other => panic!("zed was taken: {other:?}"),
    }

    let now = h.now();
    h.node_mut("alice").remove_member(now, &id("dave")).unwrap();
    h.node_mut("alice").remove_member(now, &id("bob")).unwrap();
    h.run_for(Duration::from_secs(10));
    let again = restart(&h, &["bob", "dave"]).expect("removed peers are left out, not refused");
    assert!(peers(&again).is_empty(), "{:?}", peers(&again));
}
