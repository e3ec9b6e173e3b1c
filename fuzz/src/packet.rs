//! Datagrams: whole packets from anyone, and payloads behind a genuine packet from alice.

use meshlog_core::testing::seal_raw;
use meshlog_core::{DropReason, Packet, PacketKind, DATAGRAM_SIZE_MAX};

use crate::{alice_to_bob_key, bob_keyring, deliver_to_bob, device, BOB_EPOCH};

/// Any bytes as a datagram to bob. Nobody can forge a tag, so the header and tag checks are
/// what is reached; an opened packet must be from a member and for bob, and bob's node then
/// handles it (only then: a node costs two key agreements to build, and a drop is a counter).
pub fn packet_open(data: &[u8]) {
    let _ = Packet::peek(data);
    if let Ok(packet) = Packet::open(data, bob_keyring()) {
        assert!(bob_keyring().is_member(&packet.source));
        assert_eq!(packet.target, device("bob"));
        deliver_to_bob(data);
    }
}

/// First byte: the kind; the rest: its payload, byte for byte, in a genuine packet from alice
/// to bob (a hostile member's power). It must open or be `malformed`, and bob's node, which
/// holds events of its own, handles it: hostile digests and filters reach reconciliation.
pub fn payload_decode(data: &[u8]) {
    let Some((kind, datagram)) = alice_to_bob(data) else {
        return;
    };
    match Packet::open(&datagram, bob_keyring()) {
        Ok(packet) => {
            assert_eq!(packet.payload.kind(), kind);
            assert_eq!((packet.epoch, packet.counter), (1, 1));
        }
        Err(DropReason::Malformed(_)) => {}
        Err(other) => panic!("a genuine packet dropped as {other:?}"),
    }
    deliver_to_bob(&datagram);
}

/// `data` as `payload_decode` reads it (kind selector, then payload) in a genuine packet from
/// alice to bob, at epoch 1, counter 1, with its kind; `None` if empty or over the datagram size.
pub(crate) fn alice_to_bob(data: &[u8]) -> Option<(PacketKind, Vec<u8>)> {
    let (&selector, payload) = data.split_first()?;
    let kind = PacketKind::ALL[usize::from(selector) % PacketKind::ALL.len()];
    let key = alice_to_bob_key();
    let datagram = seal_raw("alice", "bob", kind.code(), [1, 1, BOB_EPOCH], payload, key);
    (datagram.len() <= DATAGRAM_SIZE_MAX).then_some((kind, datagram))
}
