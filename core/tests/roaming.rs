//! A peer's address follows its newest authentic packet (WireGuard's roaming): a laptop that
//! changes networks, or a device restarted on a new port, keeps syncing; a replayed or delayed
//! old packet, sent from anywhere, moves nothing.

use std::net::SocketAddr;

use meshlog_core::node::AddressSource;
use meshlog_core::testing::wire::Wire;
use meshlog_core::testing::{community_of, keyring_of, Harness, Topology};
use meshlog_core::{BucketSummary, DeviceId, Input, NodeEvent, Output, Payload, Prefix, Transmit};

const SEED: u64 = 33;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

fn alice() -> DeviceId {
    DeviceId::new("alice").expect("a name")
}

fn bob() -> DeviceId {
    DeviceId::new("bob").expect("a name")
}

/// Bob's end of the wire in `epoch`, already knowing alice's epoch (so what it seals is
/// accepted, not refused as a stale echo).
fn bob_wire(h: &Harness, epoch: u64) -> Wire {
    let community = community_of(&["alice", "bob"], SEED);
    let mut wire = Wire::new(keyring_of("bob", &community, SEED), epoch, true);
    wire.hear(&alice(), h.node("alice").epoch());
    wire
}

fn summary() -> Payload {
    Payload::Summary {
        prefix: Prefix::ROOT,
        summary: BucketSummary::default(),
    }
}

/// Hands alice `bytes` from `from`; returns the addresses she learned and what she sent.
fn feed(h: &mut Harness, from: SocketAddr, bytes: &[u8]) -> (Vec<NodeEvent>, Vec<Transmit>) {
    let now = h.now();
    let node = h.node_mut("alice");
    node.handle_input(Input::Datagram { now, from, bytes });
    let (mut moves, mut sent) = (Vec::new(), Vec::new());
    loop {
        match node.poll_output() {
            Output::Event(event @ NodeEvent::PeerAddress { .. }) => moves.push(event),
            Output::Event(_) => {}
            Output::Transmit(t) => sent.push(t),
            Output::Timeout(_) => return (moves, sent),
        }
    }
}

fn moved_to(addr: SocketAddr) -> NodeEvent {
    NodeEvent::PeerAddress {
        peer: bob(),
        addr,
        source: AddressSource::Packet,
    }
}

#[test]
fn a_peer_is_followed_to_the_address_of_its_newest_packet_and_an_old_packet_moves_nothing() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, SEED);
    let mut wire = bob_wire(&h, 1);
    let (home, cafe, attacker) = (
        addr("10.0.0.2:8002"),
        addr("192.0.2.7:40001"),
        addr("203.0.113.9:666"),
    );

    let first = wire.seal(&alice(), &summary());
    let (moves, _) = feed(&mut h, home, &first);
    assert_eq!(
        moves,
        vec![moved_to(home)],
        "the first packet says where bob is"
    );

    // Bob moves to the café: two packets, the second arriving first (reordered).
    let older = wire.seal(&alice(), &summary());
    let newer = wire.seal(&alice(), &summary());
    let (moves, _) = feed(&mut h, cafe, &newer);
    assert_eq!(moves, vec![moved_to(cafe)]);
    let (moves, _) = feed(&mut h, home, &older);
    assert!(
        moves.is_empty(),
        "a delayed older packet moved bob back: {moves:?}"
    );
    assert_eq!(
        h.node("alice").peer_address(&bob()),
        Some((cafe, AddressSource::Packet))
    );

    // An attacker replays bob's newest packet from its own address: refused, nothing moves.
    let (moves, sent) = feed(&mut h, attacker, &newer);
    assert!(moves.is_empty(), "a replay moved bob: {moves:?}");
    assert!(sent.is_empty(), "a replay was answered: {sent:?}");
    assert_eq!(
        h.node("alice").peer_address(&bob()).map(|a| a.0),
        Some(cafe)
    );
    assert_eq!(h.node("alice").stats().peer_moves, 1);
    assert_eq!(h.node("alice").stats().drops.get("replayed"), Some(&1));
}

#[test]
fn a_peer_restarted_on_a_new_port_is_followed_by_its_first_packet_and_greeted_there() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, SEED);
    let (before, after) = (addr("10.0.0.2:8002"), addr("10.0.0.2:9102"));
    let mut old_run = bob_wire(&h, 1);
    feed(&mut h, before, &old_run.seal(&alice(), &summary()));

    // A new run: a new epoch, and it has not heard alice's epoch yet (echo 0). Alice drops the
    // packet for its stale echo, but it is bob's newest: she follows it and greets him there.
    let community = community_of(&["alice", "bob"], SEED);
    let mut new_run = Wire::new(keyring_of("bob", &community, SEED), 2, true);
    let (moves, sent) = feed(&mut h, after, &new_run.seal(&alice(), &summary()));
    assert_eq!(moves, vec![moved_to(after)]);
    assert!(
        sent.iter().any(|t| t.to == bob()),
        "alice greets the restarted bob (the driver sends it to {after})"
    );

    // The old run's packets, replayed from the old port, move nothing back.
    let (moves, _) = feed(&mut h, before, &old_run.seal(&alice(), &summary()));
    assert!(
        moves.is_empty(),
        "an old run's packet moved bob back: {moves:?}"
    );
}

#[test]
fn a_forged_packet_from_a_new_address_moves_nothing() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, SEED);
    let mut wire = bob_wire(&h, 1);
    let home = addr("10.0.0.2:8002");
    feed(&mut h, home, &wire.seal(&alice(), &summary()));
    let mut forged = wire.seal(&alice(), &summary());
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (moves, _) = feed(&mut h, addr("203.0.113.9:666"), &forged);
    assert!(moves.is_empty());
    assert_eq!(
        h.node("alice").peer_address(&bob()).map(|a| a.0),
        Some(home)
    );
}
