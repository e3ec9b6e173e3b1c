//! LAN discovery on live nodes: members that hear a member's announcement make it a peer;
//! strangers, removed members and forgers get nothing, and a flood costs a bounded number of
//! openings.

use std::net::SocketAddr;

use meshlog_core::discovery::{seal_announcement, sealing_key, Announcement, ANNOUNCEMENT_LEN};
use meshlog_core::node::{AddressSource, ANNOUNCE_OPENS_PER_SECOND_MAX};
use meshlog_core::testing::{community_of, derive_seed, device as id, keys, Harness, Topology};
use meshlog_core::{
    Community, Config, DeviceKeys, Duration, InMemoryStore, Input, Instant, Node, Output,
};

const LINK: &str = "10.1.2.3:21047";

/// A node of `community` (made by `community_of(.., seed)`) that starts with no peers.
fn lone(name: &str, community: &Community, seed: u64) -> Node<InMemoryStore> {
    let config = Config::new(
        keys(name, seed),
        community.clone(),
        Vec::new(),
        derive_seed(seed, name),
    );
    Node::new(config, InMemoryStore::new(), Instant::ZERO).expect("valid config")
}

fn hear(node: &mut Node<InMemoryStore>, now: Instant, bytes: &[u8]) {
    let from: SocketAddr = LINK.parse().unwrap();
    node.handle_input(Input::Announcement { now, from, bytes });
}

fn drops(node: &Node<InMemoryStore>, code: &str) -> u64 {
    node.stats().drops.get(code).copied().unwrap_or(0)
}

fn drain(node: &mut Node<InMemoryStore>) -> Vec<Output> {
    let mut outputs = Vec::new();
    loop {
        match node.poll_output() {
            Output::Timeout(_) => return outputs,
            output => outputs.push(output),
        }
    }
}

#[test]
fn a_member_that_hears_an_announcement_makes_its_device_a_peer_and_greets_it() {
    let community = community_of(&["alice", "bob"], 1);
    let mut alice = lone("alice", &community, 1);
    let mut bob = lone("bob", &community, 1);
    drain(&mut bob);
    assert!(bob.peers().is_empty());
    let now = Instant::from_micros(5_000_000);
    let bytes = alice.announcement(now, &[8001]).expect("alice is a member");
    hear(&mut bob, now, &bytes);
    let peers: Vec<_> = bob.peers().into_iter().map(|p| p.device).collect();
    assert_eq!(peers, vec![id("alice")]);
    assert_eq!(
        bob.peer_address(&id("alice")),
        Some(("10.1.2.3:8001".parse().unwrap(), AddressSource::Discovered))
    );
    assert_eq!(bob.stats().peers_discovered, 1);
    let outputs = drain(&mut bob);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Transmit(t) if t.to == id("alice"))),
        "bob greets alice at once: {outputs:?}"
    );
    // The same bytes again (a second copy, a replay within the skew) teach nothing.
    hear(&mut bob, now, &bytes);
    assert_eq!(drops(&bob, "announce_repeat"), 1);
    // Our own echo on the link is ignored, unopened and uncounted.
    let own = bob.announcement(now, &[8002]).unwrap();
    let opened = bob.stats().announcements_opened;
    hear(&mut bob, now, &own);
    assert_eq!(bob.stats().announcements_opened, opened);
    assert!(bob
        .stats()
        .drops
        .keys()
        .all(|code| *code == "announce_repeat"));
}

#[test]
fn a_stranger_opens_no_announcement_and_learns_no_member() {
    let community = community_of(&["alice", "bob"], 1);
    // Same names, another community (another seed, so other keys and another community key).
    let strangers = community_of(&["alice", "mallory"], 2);
    let mut alice = lone("alice", &community, 1);
    let mut mallory = lone("mallory", &strangers, 2);
    let now = Instant::from_micros(1_000_000);
    for i in 0..5 {
        let bytes = alice.announcement(now, &[8001 + i]).unwrap();
        hear(&mut mallory, now, &bytes);
    }
    assert!(mallory.peers().is_empty());
    assert_eq!(drops(&mallory, "announce_unreadable"), 5);
    assert_eq!(mallory.stats().peers_discovered, 0);
}

#[test]
fn two_announcements_of_one_device_share_no_fixed_byte_and_no_name() {
    let community = community_of(&["alice", "a-much-longer-device-name"], 1);
    let mut alice = lone("alice", &community, 1);
    let mut other = lone("a-much-longer-device-name", &community, 1);
    let now = Instant::from_micros(1_000_000);
    let alices: Vec<Vec<u8>> = (0..64)
        .map(|_| alice.announcement(now, &[8001]).unwrap())
        .collect();
    let others = other.announcement(now, &[8001, 8002]).unwrap();
    assert_eq!(
        others.len(),
        ANNOUNCEMENT_LEN,
        "a name's length does not show"
    );
    for bytes in &alices {
        assert_eq!(bytes.len(), ANNOUNCEMENT_LEN);
        assert!(!bytes.windows(5).any(|w| w == b"alice"), "no name in clear");
    }
    // A field in clear (a magic, a key id, a device hash) would hold one byte at one place in
    // every announcement; 64 random announcements agree at a position by chance with
    // probability 256^-63.
    let fixed: Vec<usize> = (0..ANNOUNCEMENT_LEN)
        .filter(|&i| alices.iter().all(|a| a[i] == alices[0][i]))
        .collect();
    assert!(fixed.is_empty(), "bytes fixed at {fixed:?}");
    assert_ne!(alices[0], alices[1]);
}

#[test]
fn a_removed_member_cannot_open_announcements_sealed_after_the_rotation() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 7);
    let now = h.now();
    h.node_mut("alice")
        .remove_member(now, &id("carol"))
        .expect("alice is the admin");
    h.run_for(Duration::from_secs(20));
    assert_eq!(h.node("bob").key_epoch(), 1);
    assert_eq!(h.node("carol").key_epoch(), 0, "carol was given no key");
    let now = h.now();
    let bytes = h.node_mut("bob").announcement(now, &[8002]).unwrap();
    hear(h.node_mut("carol"), now, &bytes);
    assert_eq!(drops(h.node("carol"), "announce_unreadable"), 1);
    // alice, a member, opens it (bob is her peer already: a repeat of nothing new, so no drop).
    hear(h.node_mut("alice"), now, &bytes);
    assert_eq!(h.node("alice").stats().announcements_opened, 1);
    assert!(h
        .node("alice")
        .stats()
        .drops
        .keys()
        .all(|c| !c.starts_with("announce")));
    // carol's own announcement, sealed under the only key she has (epoch 0), opens for alice
    // but names a device that is not an active member (or, if carol learned of her removal,
    // she announces nothing).
    if let Some(carols) = h.node_mut("carol").announcement(now, &[8003]) {
        hear(h.node_mut("alice"), now, &carols);
        assert_eq!(drops(h.node("alice"), "announce_not_a_member"), 1);
    }
}

#[test]
fn a_member_cannot_announce_for_another() {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let mut carol = lone("carol", &community, 1);
    // bob, a member gone bad, holds the community key: he seals an announcement naming alice,
    // signed with his own key.
    let forger = DeviceKeys::from_secret(id("alice"), keys("bob", 1).secret());
    let now = Instant::from_micros(1_000_000);
    let forged = Announcement {
        device: id("alice"),
        ports: vec![6666],
        issued_at: now,
    };
    let bytes = seal_announcement(
        &forged,
        &forger,
        community.id(),
        &sealing_key(&community),
        [9; 24],
    );
    hear(&mut carol, now, &bytes);
    assert_eq!(drops(&carol, "announce_forged"), 1);
    assert!(carol.peers().is_empty());
}

#[test]
fn stale_and_future_announcements_are_refused() {
    let community = community_of(&["alice", "bob"], 1);
    let mut alice = lone("alice", &community, 1);
    let mut bob = lone("bob", &community, 1);
    let old = alice
        .announcement(Instant::from_micros(1), &[8001])
        .unwrap();
    let future = alice
        .announcement(Instant::from_micros(200_000_000), &[8001])
        .unwrap();
    let mut bob_now = Instant::from_micros(100_000_000);
    hear(&mut bob, bob_now, &old);
    bob_now = bob_now + Duration::from_secs(1);
    hear(&mut bob, bob_now, &future);
    // 99 s old, then 99 s ahead of bob's clock: both beyond `ANNOUNCE_SKEW_MAX`.
    assert_eq!(drops(&bob, "announce_stale"), 2);
    assert!(bob.peers().is_empty());
}

#[test]
fn a_flood_of_garbage_costs_at_most_the_rate_limits_openings() {
    let community = community_of(&["alice", "bob"], 1);
    let mut alice = lone("alice", &community, 1);
    let mut bob = lone("bob", &community, 1);
    let mut garbage = [0u8; ANNOUNCEMENT_LEN];
    let start = Instant::from_micros(10_000_000);
    for i in 0..10_000u32 {
        garbage[..4].copy_from_slice(&i.to_le_bytes());
        // 10,000 in half a second.
        hear(
            &mut bob,
            start + Duration::from_micros(u64::from(i) * 50),
            &garbage,
        );
    }
    let opened = bob.stats().announcements_opened;
    println!(
        "10000 garbage announcements: {opened} opened, {} rate limited, {} unreadable",
        drops(&bob, "announce_rate_limited"),
        drops(&bob, "announce_unreadable")
    );
    assert_eq!(opened, u64::from(ANNOUNCE_OPENS_PER_SECOND_MAX));
    assert_eq!(drops(&bob, "announce_unreadable"), opened);
    assert_eq!(drops(&bob, "announce_rate_limited"), 10_000 - opened);
    // A second later the limit has room again and a member is heard.
    let now = start + Duration::from_secs(1);
    let bytes = alice.announcement(now, &[8001]).unwrap();
    hear(&mut bob, now, &bytes);
    assert_eq!(bob.peers().len(), 1);
}
