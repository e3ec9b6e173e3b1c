use super::*;
use crate::sync::filter::WireFilter;
use crate::sync::index::BucketSummary;
use crate::sync::prefix::{Prefix, FANOUT};
use crate::testing::{community_of, events_payload, keyring_of, keys, packet};

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

/// Alice's packet to bob, sealed under their key in the community of alice, bob and carol.
fn alice_to_bob(payload: Payload) -> (Packet, Vec<u8>) {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let packet = packet("alice", "bob", (7, 42), payload);
    let key = keyring_of("alice", &community, 1);
    let bytes = packet.seal(key.key(&id("bob")).unwrap());
    (packet, bytes)
}

fn at(name: &str) -> Keyring {
    keyring_of(name, &community_of(&["alice", "bob", "carol"], 1), 1)
}

fn summary() -> Payload {
    Payload::Summary {
        prefix: Prefix::ROOT,
        summary: BucketSummary {
            count: 10_000,
            fingerprint: u64::MAX,
        },
    }
}

#[test]
fn every_kind_round_trips() {
    let summary = BucketSummary {
        count: 12,
        fingerprint: 99,
    };
    let filter = WireFilter {
        nonce: 5,
        items: 3,
        hash_functions: 7,
        bitmap: vec![1, 2, 3, 4],
    };
    let digest = Digest {
        prefix: Prefix::new(2, 0xab).unwrap(),
        children: [summary; FANOUT],
    };
    let bucket_filter = BucketFilter {
        prefix: Prefix::new(1, 3).unwrap(),
        reply: true,
        filter,
    };
    let payloads = [
        events_payload(vec![vec![1, 2, 3]]),
        events_payload(vec![vec![1, 2, 3], vec![], vec![9; 300]]),
        Payload::Summary {
            prefix: Prefix::ROOT,
            summary,
        },
        Payload::Digests(vec![digest.clone()]),
        Payload::Digests(vec![digest.clone(), digest]),
        Payload::Filters(vec![bucket_filter.clone()]),
        Payload::Filters(vec![bucket_filter.clone(), bucket_filter]),
        Payload::Sketch(RootSketch {
            reply: true,
            summary,
            sketch: crate::sync::sketch::Sketch::new().folded(6),
        }),
        Payload::Addresses(vec![super::AddressRecord::sign(
            &crate::testing::keys("alice", 1),
            &[3; 16],
            &["10.0.0.2:8001".parse().unwrap()],
            1,
            2,
        )]),
        Payload::Introduction {
            peer: crate::id::DeviceId::new("carol").unwrap(),
            addr: "198.51.100.2:40000".parse().unwrap(),
        },
        Payload::Introduction {
            peer: crate::id::DeviceId::new("carol").unwrap(),
            addr: "[2001:db8::7]:7000".parse().unwrap(),
        },
        Payload::Relay {
            to: crate::id::DeviceId::new("carol").unwrap(),
            bytes: vec![1, 2, 3],
        },
        Payload::Relayed {
            from: crate::id::DeviceId::new("carol").unwrap(),
            bytes: vec![9; 300],
        },
        Payload::Blob(vec![
            crate::blob::BlobItem::NotHeld {
                file: crate::id::FileId([4; 32]),
            },
            crate::blob::BlobItem::Outboard {
                file: crate::id::FileId([4; 32]),
                piece: 3,
                bytes: vec![8; 100],
            },
        ]),
        Payload::Recovery(super::RecoveryShard {
            originals: vec![(3, 40), (5, 64)],
            recovery: 2,
            index: 1,
            shard: vec![7; 64],
        }),
    ];
    let kinds: std::collections::BTreeSet<PacketKind> =
        payloads.iter().map(Payload::kind).collect();
    assert_eq!(kinds.len(), PacketKind::ALL.len(), "every kind is tried");
    for payload in payloads {
        let (packet, bytes) = alice_to_bob(payload);
        assert_eq!(
            Packet::peek(&bytes),
            Some((packet.payload.kind(), "alice".to_owned()))
        );
        assert_eq!(Packet::open(&bytes, &at("bob")), Ok(packet));
    }
}

#[test]
fn a_blob_payload_crosses_encrypted_and_a_flipped_bit_fails_its_tag() {
    let file = crate::id::FileId([4; 32]);
    let secret = b"the plaintext of a file shard, which must not be readable on the wire";
    let payload = Payload::Blob(vec![crate::blob::BlobItem::Outboard {
        file,
        piece: 0,
        bytes: secret.to_vec(),
    }]);
    let (packet, bytes) = alice_to_bob(payload);
    assert!(
        !bytes
            .windows(16)
            .any(|w| secret.windows(16).any(|s| s == w)),
        "the file's bytes are on the wire in the clear"
    );
    assert!(
        !bytes.windows(32).any(|w| w == file.0),
        "the file id is in the clear"
    );
    assert_eq!(Packet::open(&bytes, &at("bob")), Ok(packet));
    let mut flipped = bytes.clone();
    let at_payload = flipped.len() - 40;
    flipped[at_payload] ^= 1;
    assert_eq!(Packet::open(&flipped, &at("bob")), Err(DropReason::BadMac));
}

#[test]
fn an_empty_item_list_is_malformed() {
    for payload in [
        events_payload(vec![]),
        Payload::Digests(vec![]),
        Payload::Filters(vec![]),
    ] {
        let (_, bytes) = alice_to_bob(payload);
        assert!(
            matches!(
                Packet::open(&bytes, &at("bob")),
                Err(DropReason::Malformed(_))
            ),
            "an empty list opened"
        );
    }
}

#[test]
fn an_in_sync_summary_is_small() {
    let (_, bytes) = alice_to_bob(summary());
    assert!(bytes.len() <= 80, "{} bytes", bytes.len());
    let mut payload = Writer::new();
    summary().encode(&mut payload);
    assert_eq!(
        bytes.len(),
        overhead(&id("alice"), &id("bob")) + payload.bytes.len(),
        "overhead() counts every header byte"
    );
}

#[test]
fn a_flipped_bit_anywhere_fails() {
    let (_, bytes) = alice_to_bob(events_payload(vec![vec![5; 40]]));
    let bob = at("bob");
    assert!(Packet::open(&bytes, &bob).is_ok());
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(Packet::open(&flipped, &bob).is_err(), "bit {bit}");
    }
    // Cut short or lengthened, too.
    assert!(Packet::open(&bytes[..bytes.len() - 1], &bob).is_err());
    assert!(Packet::open(&[&bytes[..], &[0]].concat(), &bob).is_err());
}

#[test]
fn only_the_pair_can_make_a_tag() {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let bob = at("bob");
    let claim = packet("alice", "bob", (1, 0), summary());
    // Mallory, outside the roster, makes "alice's" packet with the key she would share
    // with bob if she were alice.
    let mallory = Keyring::for_roster(&keys("mallory", 1), &community);
    let forged = claim.seal(mallory.key(&id("bob")).unwrap());
    assert_eq!(Packet::open(&forged, &bob), Err(DropReason::BadMac));
    // Carol, a member, signs as alice with her own key with bob.
    let forged = claim.seal(at("carol").key(&id("bob")).unwrap());
    assert_eq!(Packet::open(&forged, &bob), Err(DropReason::BadMac));
    // Alice's real packet to carol, readdressed to bob.
    let to_carol = packet("alice", "carol", (1, 0), summary());
    let real = to_carol.seal(at("alice").key(&id("carol")).unwrap());
    let readdressed =
        packet("alice", "bob", (1, 0), summary()).seal(at("alice").key(&id("bob")).unwrap());
    let mut mixed = readdressed[..readdressed.len() - MAC_LEN].to_vec();
    mixed.extend_from_slice(&real[real.len() - MAC_LEN..]);
    assert_eq!(Packet::open(&mixed, &bob), Err(DropReason::BadMac));
    // A community with the same devices but another key: no tag carries over.
    let other = community_of(&["alice", "bob", "carol"], 2);
    let foreign = claim.seal(keyring_of("alice", &other, 2).key(&id("bob")).unwrap());
    assert_eq!(Packet::open(&foreign, &bob), Err(DropReason::BadMac));
}

#[test]
fn drops_say_why() {
    let (_, bytes) = alice_to_bob(events_payload(vec![vec![1]]));
    assert!(matches!(
        Packet::open(&bytes, &at("carol")),
        Err(DropReason::WrongTarget(t)) if t == "bob"
    ));
    let strangers = keyring_of("bob", &community_of(&["bob", "carol"], 1), 1);
    assert!(matches!(
        Packet::open(&bytes, &strangers),
        Err(DropReason::UnknownSource(s)) if s == "alice"
    ));
    let community = community_of(&["alice", "bob", "carol"], 1);
    let carol_only = Keyring::new(&keys("bob", 1), &community, &[id("carol")]);
    assert!(matches!(
        Packet::open(&bytes, &carol_only),
        Err(DropReason::NotAPeer(s)) if s == "alice"
    ));
    let bob = at("bob");
    assert_eq!(
        Packet::open(&[0; 2000], &bob),
        Err(DropReason::TooLarge { len: 2000 })
    );
    assert_eq!(Packet::open(&[b'X'; 80], &bob), Err(DropReason::BadMagic));
    assert!(matches!(
        Packet::open(b"ML", &bob),
        Err(DropReason::Malformed(_))
    ));
}

#[test]
fn an_older_version_is_refused_by_name() {
    let (_, bytes) = alice_to_bob(summary());
    for version in [1, 2, 3, 4, PACKET_VERSION + 1] {
        let mut old = bytes.clone();
        old[2] = version;
        assert_eq!(
            Packet::open(&old, &at("bob")),
            Err(DropReason::BadVersion(version))
        );
    }
    assert_eq!(DropReason::BadVersion(2).code(), "bad_version");
}
