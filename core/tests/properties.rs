//! Property tests: hostile bytes never panic, tampering is always caught, strangers never get in.

use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{
    open, seal, Community, Config, DeviceId, Event, EventBody, InMemoryStore, Input, Instant, Node,
    Output, Packet, Payload, Store,
};
use proptest::prelude::*;

fn alice() -> DeviceId {
    DeviceId::new("alice").unwrap()
}
fn bob() -> DeviceId {
    DeviceId::new("bob").unwrap()
}

fn body_strategy() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        ("[a-z ]{0,200}", any::<bool>()).prop_map(|(text, auto)| EventBody::Message {
            text,
            attachment: None,
            auto
        }),
        (any::<[u8; 32]>(), "[a-z]{1,8}", any::<bool>()).prop_map(|(m, emoji, remove)| {
            EventBody::Reaction {
                message: meshlog_core::EventId(m),
                emoji,
                remove,
            }
        }),
        (
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..800)
        )
            .prop_map(|(f, bytes)| {
                EventBody::FileChunk {
                    file: meshlog_core::FileId(f),
                    index: 0,
                    count: 1,
                    bytes,
                }
            }),
        any::<bool>().prop_map(|online| EventBody::DeviceStatus { online }),
    ]
}

fn sealed_by(author: &str, community: &Community, body: EventBody, nonce: [u8; 24]) -> Vec<u8> {
    let keys = keys(author, 1);
    let event = Event {
        author: keys.device.clone(),
        created_at: Instant::from_millis(5),
        body,
    };
    seal(&event, &keys, community, nonce).unwrap().sealed
}

/// Bob's node, fed one datagram; returns how many events it then holds.
fn bob_receives(community: &Community, datagram: &[u8]) -> u64 {
    let config = Config::new(
        keys("bob", 1),
        community.clone(),
        vec![alice()],
        derive_seed(1, "bob"),
    );
    let mut node = Node::new(config, InMemoryStore::new(), Instant::ZERO).unwrap();
    node.handle_input(Input::Datagram {
        now: Instant::from_millis(1),
        bytes: datagram,
    });
    while !matches!(node.poll_output(), Output::Timeout(_)) {}
    node.store().len().unwrap()
}

fn event_packet(from: &str, sealed: Vec<u8>) -> Vec<u8> {
    Packet {
        source: DeviceId::new(from).unwrap(),
        target: Some(bob()),
        payload: Payload::Events(vec![sealed]),
    }
    .seal(&keys(from, 1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let community = community_of(&["alice", "bob"], 1);
        let _ = Packet::open(&bytes, &community, &bob());
        let _ = open(&bytes, &community);
        let _ = Packet::peek(&bytes);
        // Also behind a valid header, so the payload decoders see the bytes.
        for kind in 1u8..=4 {
            let mut framed = b"ML\x01".to_vec();
            framed.push(kind);
            framed.extend_from_slice(&bytes);
            let _ = Packet::open(&framed, &community, &bob());
        }
    }

    #[test]
    fn flipping_any_bit_of_a_packet_gets_it_rejected(body in body_strategy(), bit in any::<prop::sample::Index>()) {
        let community = community_of(&["alice", "bob"], 1);
        let packet = event_packet("alice", sealed_by("alice", &community, body, [7; 24]));
        prop_assert!(Packet::open(&packet, &community, &bob()).is_ok());
        let mut flipped = packet.clone();
        let i = bit.index(flipped.len() * 8);
        flipped[i / 8] ^= 1 << (i % 8);
        prop_assert!(Packet::open(&flipped, &community, &bob()).is_err());
        prop_assert_eq!(bob_receives(&community, &flipped), 0);
    }

    #[test]
    fn flipping_any_bit_of_an_event_gets_it_rejected(body in body_strategy(), bit in any::<prop::sample::Index>()) {
        let community = community_of(&["alice", "bob"], 1);
        let sealed = sealed_by("alice", &community, body, [9; 24]);
        prop_assert!(open(&sealed, &community).is_ok());
        let mut flipped = sealed.clone();
        let i = bit.index(flipped.len() * 8);
        flipped[i / 8] ^= 1 << (i % 8);
        prop_assert!(open(&flipped, &community).is_err());
        // Re-signed into a valid packet by a real member, the tampered event is still refused.
        prop_assert_eq!(bob_receives(&community, &event_packet("alice", flipped)), 0);
    }

    #[test]
    fn strangers_and_other_communities_never_get_stored(body in body_strategy(), nonce in any::<[u8; 24]>()) {
        let community = community_of(&["alice", "bob"], 1);
        // Mallory is not in the roster: her packets are dropped.
        let with_mallory = community_of(&["alice", "bob", "mallory"], 1);
        let from_mallory = event_packet("mallory", sealed_by("mallory", &with_mallory, body.clone(), nonce));
        prop_assert_eq!(bob_receives(&community, &from_mallory), 0);
        // An event sealed under another community's key, carried by a member: refused.
        let other = community_of(&["alice", "bob"], 2);
        let foreign = event_packet("alice", sealed_by("alice", &other, body.clone(), nonce));
        prop_assert_eq!(bob_receives(&community, &foreign), 0);
        // The genuine article is stored.
        let genuine = event_packet("alice", sealed_by("alice", &community, body, nonce));
        prop_assert_eq!(bob_receives(&community, &genuine), 1);
    }

    #[test]
    fn insert_is_idempotent(bodies in proptest::collection::vec(body_strategy(), 1..20), repeats in 1usize..4) {
        let community = community_of(&["alice", "bob"], 1);
        let config = Config::new(keys("bob", 1), community.clone(), vec![alice()], derive_seed(1, "bob"));
        let mut node = Node::new(config, InMemoryStore::new(), Instant::ZERO).unwrap();
        let mut distinct = std::collections::BTreeSet::new();
        for (i, body) in bodies.into_iter().enumerate() {
            let nonce = [i as u8; 24];
            let sealed = sealed_by("alice", &community, body, nonce);
            distinct.insert(meshlog_core::EventId::of_bytes(&sealed));
            let packet = event_packet("alice", sealed);
            for _ in 0..repeats {
                node.handle_input(Input::Datagram { now: Instant::from_millis(1), bytes: &packet });
            }
        }
        while !matches!(node.poll_output(), Output::Timeout(_)) {}
        prop_assert_eq!(node.store().len().unwrap(), distinct.len() as u64);
        prop_assert_eq!(node.stats().events_duplicate, (distinct.len() * (repeats - 1)) as u64);
    }
}
