//! Peer exchange: members pass each other's signed address records along with the sync, so
//! devices that know only one member find the rest; forged, stale and flooded records are
//! dropped and counted, and a stranger naming a member does not become a peer.

use meshlog_core::node::AddressSource;
use meshlog_core::testing::wire::Wire;
use meshlog_core::testing::{address, community_of, keyring_of, keys, Harness, Topology};
use meshlog_core::{
    AddressRecord, DeviceId, Duration, Input, Payload, RECORD_CHECKS_PER_PEER_PER_ROUND,
};

const SEED: u64 = 41;

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).expect("a name")
}

fn line_with_a_path_between_the_ends() -> Harness {
    // alice – bob – carol: the ends know only bob, but the network would carry them.
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::Line, SEED);
    h.set_link("alice", "carol", true);
    h
}

fn publish_addresses(h: &mut Harness) {
    let now = h.now();
    for name in ["alice", "bob", "carol"] {
        h.node_mut(name).set_own_addresses(now, &[address(name)]);
    }
}

fn is_peer(h: &Harness, of: &str, name: &str) -> bool {
    h.node(of).peers().iter().any(|p| p.device == id(name))
}

#[test]
fn devices_that_know_only_one_member_become_peers_through_its_records() {
    let mut h = line_with_a_path_between_the_ends();
    publish_addresses(&mut h);
    h.run_for(Duration::from_secs(10));
    assert!(is_peer(&h, "alice", "carol") && is_peer(&h, "carol", "alice"));
    let (addr, source) = h
        .node("alice")
        .peer_address(&id("carol"))
        .expect("an address");
    assert_eq!(addr, address("carol"));
    // Carol's own packets have confirmed the record's hint by now; how they met is kept.
    assert_eq!(source, AddressSource::Packet);
    let met_by = h.node("alice").peer_met_by(&id("carol"));
    assert_eq!(met_by, Some(AddressSource::Record));
    // Bob was named in alice's configuration: known from the start.
    assert_eq!(h.node("alice").peer_met_by(&id("bob")), None);
    assert!(h.node("alice").address_record(&id("carol")).is_some());
}

#[test]
fn without_records_the_ends_of_a_line_stay_strangers() {
    let mut h = line_with_a_path_between_the_ends();
    h.run_for(Duration::from_secs(10));
    assert!(!is_peer(&h, "alice", "carol") && !is_peer(&h, "carol", "alice"));
}

/// Bob's end of the wire towards alice, knowing her epoch, in an epoch past the harness's
/// bob (so his counters are not replays of the real bob's).
fn bob_wire(h: &Harness) -> Wire {
    let community = community_of(&["alice", "bob", "carol"], SEED);
    let mut wire = Wire::new(keyring_of("bob", &community, SEED), 1_000, true);
    wire.hear(&id("alice"), h.node("alice").epoch());
    wire
}

fn feed(h: &mut Harness, bytes: &[u8]) {
    h.deliver_now_from("alice", address("bob"), bytes);
}

fn carols_record(h: &Harness, addr: &str, issued_at_ms: u64) -> AddressRecord {
    let community = community_of(&["alice", "bob", "carol"], SEED);
    let _ = h;
    AddressRecord::sign(
        &keys("carol", SEED),
        community.id(),
        &[addr.parse().expect("an address")],
        issued_at_ms,
        issued_at_ms + 60_000,
    )
}

#[test]
fn a_record_changed_or_signed_by_another_member_is_dropped_and_counted() {
    let mut h = line_with_a_path_between_the_ends();
    // Long enough that a record issued two minutes ago is not from before time began.
    h.run_for(Duration::from_secs(180));
    let now_ms = h.now().as_millis();
    let mut wire = bob_wire(&h);

    // Bob (a member gone bad) says carol is at his accomplice's address.
    let mut moved = carols_record(&h, "10.9.9.9:9000", now_ms);
    moved.addrs[0] = "203.0.113.9:666".parse().unwrap();
    let community = community_of(&["alice", "bob", "carol"], SEED);
    let signed_by_bob = AddressRecord {
        device: id("carol"),
        ..AddressRecord::sign(
            &keys("bob", SEED),
            community.id(),
            &["203.0.113.9:666".parse().unwrap()],
            now_ms,
            now_ms + 60_000,
        )
    };
    let bytes = wire.seal(
        &id("alice"),
        &Payload::Addresses(vec![moved, signed_by_bob]),
    );
    feed(&mut h, &bytes);
    let alice = h.node("alice");
    assert_eq!(alice.stats().drops.get("record_forged"), Some(&2));
    assert!(alice.address_record(&id("carol")).is_none());
    assert!(!is_peer(&h, "alice", "carol"));

    // Expired, or issued far in the future: stale.
    let old = carols_record(&h, "10.0.0.3:9000", now_ms.saturating_sub(120_000));
    let future = carols_record(&h, "10.0.0.3:9000", now_ms + 3_600_000);
    let bytes = wire.seal(&id("alice"), &Payload::Addresses(vec![old, future]));
    feed(&mut h, &bytes);
    assert_eq!(h.node("alice").stats().drops.get("record_stale"), Some(&2));
    assert!(!is_peer(&h, "alice", "carol"));
}

#[test]
fn a_flood_of_records_costs_a_bounded_number_of_signature_checks() {
    let mut h = line_with_a_path_between_the_ends();
    h.run_for(Duration::from_secs(1));
    let now_ms = h.now().as_millis();
    let mut wire = bob_wire(&h);
    // 100 records of carol, each newer than the last, all forged: each would cost a check.
    let flood: Vec<AddressRecord> = (0..100)
        .map(|i| {
            let mut record = carols_record(&h, "10.0.0.3:9000", now_ms + i);
            record.signature[0] ^= 1;
            record
        })
        .collect();
    for chunk in flood.chunks(5) {
        let bytes = wire.seal(&id("alice"), &Payload::Addresses(chunk.to_vec()));
        feed(&mut h, &bytes);
    }
    let drops = &h.node("alice").stats().drops;
    let checked = drops.get("record_forged").copied().unwrap_or(0);
    assert_eq!(checked, u64::from(RECORD_CHECKS_PER_PEER_PER_ROUND));
    assert_eq!(
        drops.get("record_rate_limited").copied(),
        Some(100 - checked)
    );
}

#[test]
fn a_stranger_naming_a_member_does_not_become_a_peer() {
    let mut h = line_with_a_path_between_the_ends();
    h.run_for(Duration::from_secs(1));
    // A packet that says it is carol's, tagged with a key that is not carol's and alice's.
    let strangers = community_of(&["alice", "bob", "carol"], SEED + 1);
    let mut wire = Wire::new(keyring_of("carol", &strangers, SEED + 1), 1, true);
    let bytes = wire.seal(
        &id("alice"),
        &Payload::Addresses(vec![carols_record(
            &h,
            "203.0.113.9:666",
            h.now().as_millis(),
        )]),
    );
    let now = h.now();
    h.node_mut("alice").handle_input(Input::Datagram {
        now,
        from: "203.0.113.9:666".parse().unwrap(),
        bytes: &bytes,
    });
    assert!(!is_peer(&h, "alice", "carol"));
    assert!(h.node("alice").stats().drops.contains_key("not_a_peer"));
    assert!(h.node("alice").peer_address(&id("carol")).is_none());
}
