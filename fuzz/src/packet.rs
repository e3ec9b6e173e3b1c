//! Datagrams: whole packets from anyone, and payloads behind a genuine packet from alice.

use meshlog_core::packet::overhead;
use meshlog_core::{Packet, PacketKind, Payload, DATAGRAM_SIZE_MAX};

use crate::{community, deliver_to_bob, device, member_keys};

/// Any bytes as a datagram to bob. Nobody can forge a signature, so the header and signature
/// checks are what is reached; an opened packet must be from a member and for bob.
pub fn packet_open(data: &[u8]) {
    let bob = device("bob");
    let _ = Packet::peek(data);
    if let Ok(packet) = Packet::open(data, community(), &bob) {
        assert!(community().member(&packet.source).is_some());
        assert!(packet.target.as_ref().is_none_or(|t| *t == bob));
    }
    deliver_to_bob(data);
}

/// First byte: the kind; the rest: its payload. What decodes is sealed by alice as a real
/// packet (so it must open to the same payload) and handled by bob's node, which holds events
/// of its own: hostile-member digests and filters reach the reconciliation code.
pub fn payload_decode(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let kind = PacketKind::ALL[usize::from(selector) % PacketKind::ALL.len()];
    let Ok(payload) = Payload::decode_bytes(kind, bytes) else {
        return;
    };
    assert_eq!(payload.kind(), kind);
    let (alice, bob) = (device("alice"), device("bob"));
    if bytes.len() + overhead(&alice, &bob) > DATAGRAM_SIZE_MAX {
        return;
    }
    let packet = Packet {
        source: alice,
        target: Some(bob.clone()),
        payload,
    };
    let sealed = packet.seal(member_keys("alice"));
    assert_eq!(Packet::open(&sealed, community(), &bob), Ok(packet));
    deliver_to_bob(&sealed);
}
