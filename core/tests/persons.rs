//! Several devices per person on live nodes: each device certifies itself with its person's
//! key, and removing the person removes every one of their devices with one new key epoch.

use meshlog_core::member::{PersonKeys, Status};
use meshlog_core::testing::{device as id, message, Harness, Topology};
use meshlog_core::{Duration, Store};

#[test]
fn removing_a_person_removes_both_their_devices_with_one_epoch() {
    let devices = ["alice-laptop", "alice-phone", "bob", "carol"];
    let mut h = Harness::with_config(&devices, Topology::FullMesh, 11, |c| {
        c.community = c.community.clone().with_admins([id("carol")]);
    });
    let alice = PersonKeys::from_secret(id("alice"), [42; 32]);
    let now = h.now();
    for device in ["alice-laptop", "alice-phone"] {
        h.node_mut(device)
            .certify(now, &alice)
            .expect("an active member");
        // Once is enough: the verb sees its own certificate and does nothing more.
        h.node_mut(device)
            .certify(now, &alice)
            .expect("again: nothing to do");
    }
    h.run_until_converged(Duration::from_secs(30))
        .expect("converges");
    for name in devices {
        let roster = h.node(name).roster();
        assert_eq!(roster.members[&id("alice-phone")].person, Some(id("alice")));
        assert_eq!(
            roster.members[&id("alice-laptop")].person,
            Some(id("alice"))
        );
        assert_eq!(roster.members[&id("bob")].person, None);
    }

    let now = h.now();
    assert!(
        h.node_mut("bob").remove_person(now, &id("alice")).is_err(),
        "bob is no admin"
    );
    let epoch = h
        .node_mut("carol")
        .remove_person(now, &id("alice"))
        .expect("carol is the admin");
    assert_eq!(epoch, 1, "one epoch for the person, not one per device");
    h.run_for(Duration::from_secs(20));
    for name in ["bob", "carol"] {
        let roster = h.node(name).roster();
        for device in ["alice-laptop", "alice-phone"] {
            assert_eq!(
                roster.members[&id(device)].status,
                Status::Removed,
                "{device} at {name}"
            );
        }
        assert_eq!(h.node(name).key_epoch(), 1, "at {name}");
    }
    let secret = h.append("bob", message("after alice left"));
    h.run_for(Duration::from_secs(20));
    let sealed = h.node("bob").store().get(&secret).unwrap().unwrap();
    for device in ["alice-laptop", "alice-phone"] {
        assert!(!h.node(device).contains(&secret), "{device} is not sent it");
        let opened = meshlog_core::open(&sealed, &h.node(device).config().community);
        assert!(opened.is_err(), "{device}'s keys open nothing sealed after");
    }
}
