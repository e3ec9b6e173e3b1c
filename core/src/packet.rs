//! Packets: one UDP datagram each, at most `DATAGRAM_SIZE_MAX` bytes, signed by the source.
//!
//! ```text
//! magic "ML" | version:u8 | kind:u8 | source:str8 | target:str8 (empty = broadcast) | payload | signature:[u8; 64]
//! ```
//!
//! No message spans two datagrams, so a lost datagram loses only itself. Payloads are in
//! [`payload`](Payload).

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{Community, DeviceKeys, SIGNATURE_LEN};
use crate::id::{DeviceId, DEVICE_NAME_LEN_MAX};

mod payload;

pub use payload::{
    event_encoded_len, sketch_payload_len_max, BucketFilter, Digest, Payload, RootSketch,
    EVENT_FRAMING_LEN,
};

/// QUIC's safe payload size: no IP fragmentation on any sane path.
pub const DATAGRAM_SIZE_MAX: usize = 1200;
const MAGIC: &[u8; 2] = b"ML";
/// 2: payloads carry one or more items of their kind.
pub const PACKET_VERSION: u8 = 2;
/// Header and signature at their largest (two 32-byte names).
pub const PACKET_OVERHEAD_MAX: usize = 2 + 1 + 1 + (1 + DEVICE_NAME_LEN_MAX) * 2 + SIGNATURE_LEN;
const SIGNATURE_DOMAIN: &[u8] = b"meshlog packet signature v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    Event,
    Summary,
    Digest,
    Filter,
    Sketch,
}

impl PacketKind {
    pub const ALL: [PacketKind; 5] = [
        PacketKind::Event,
        PacketKind::Summary,
        PacketKind::Digest,
        PacketKind::Filter,
        PacketKind::Sketch,
    ];

    pub fn code(self) -> u8 {
        match self {
            PacketKind::Event => 1,
            PacketKind::Summary => 2,
            PacketKind::Digest => 3,
            PacketKind::Filter => 4,
            PacketKind::Sketch => 5,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        PacketKind::ALL.into_iter().find(|k| k.code() == code)
    }
    /// Upper-case name, as the network log shows it.
    pub fn name(self) -> &'static str {
        match self {
            PacketKind::Event => "EVENT",
            PacketKind::Summary => "SUMMARY",
            PacketKind::Digest => "DIGEST",
            PacketKind::Filter => "FILTER",
            PacketKind::Sketch => "SKETCH",
        }
    }
}

impl fmt::Display for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub source: DeviceId,
    /// `None` is broadcast.
    pub target: Option<DeviceId>,
    pub payload: Payload,
}

/// Why a datagram was dropped before its payload was looked at. Counted by `code()`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DropReason {
    #[error("datagram of {len} bytes, more than {DATAGRAM_SIZE_MAX}")]
    TooLarge { len: usize },
    #[error("not a meshlog packet (bad magic)")]
    BadMagic,
    #[error("packet version {0} not understood")]
    BadVersion(u8),
    #[error("malformed: {0}")]
    Malformed(DecodeError),
    #[error("source {0} is not in the roster")]
    UnknownSource(String),
    #[error("addressed to {0}, not to this device")]
    WrongTarget(String),
    #[error("packet signature does not verify")]
    BadSignature,
    #[error("device is offline")]
    Offline,
    #[error("source {0} is not a peer of this device")]
    NotAPeer(String),
}

impl DropReason {
    pub fn code(&self) -> &'static str {
        match self {
            DropReason::TooLarge { .. } => "too_large",
            DropReason::BadMagic => "bad_magic",
            DropReason::BadVersion(_) => "bad_version",
            DropReason::Malformed(_) => "malformed",
            DropReason::UnknownSource(_) => "unknown_source",
            DropReason::WrongTarget(_) => "wrong_target",
            DropReason::BadSignature => "bad_signature",
            DropReason::Offline => "offline",
            DropReason::NotAPeer(_) => "not_a_peer",
        }
    }
}

impl Packet {
    /// Encodes and signs. Panics only if the caller built a packet over the size limit,
    /// which the node's own size checks make a bug.
    pub fn seal(&self, keys: &DeviceKeys) -> Vec<u8> {
        assert_eq!(self.source, keys.device, "a packet is signed by its source");
        let mut w = Writer::new();
        w.raw(MAGIC)
            .u8(PACKET_VERSION)
            .u8(self.payload.kind().code());
        w.bytes_u8(self.source.as_str().as_bytes());
        w.bytes_u8(
            self.target
                .as_ref()
                .map_or(&[][..], |t| t.as_str().as_bytes()),
        );
        self.payload.encode(&mut w);
        let signature = keys.sign(&signed_message(&w.bytes));
        w.raw(&signature);
        assert!(
            w.bytes.len() <= DATAGRAM_SIZE_MAX,
            "{} packet of {} bytes",
            self.payload.kind(),
            w.bytes.len()
        );
        w.bytes
    }

    /// The kind and source claimed by a datagram's header, before anything is verified;
    /// for logging drops. `None` if not even the header parses.
    pub fn peek(bytes: &[u8]) -> Option<(PacketKind, String)> {
        let mut r = Reader::new(bytes);
        (r.take(2, "magic").ok()? == MAGIC).then_some(())?;
        r.u8("version").ok()?;
        let kind = PacketKind::from_code(r.u8("kind").ok()?)?;
        Some((kind, r.str_u8("source").ok()?.to_owned()))
    }

    /// Decodes and verifies a datagram addressed to `me`. Never panics on any input.
    pub fn open(bytes: &[u8], community: &Community, me: &DeviceId) -> Result<Packet, DropReason> {
        if bytes.len() > DATAGRAM_SIZE_MAX {
            return Err(DropReason::TooLarge { len: bytes.len() });
        }
        if bytes.len() < SIGNATURE_LEN + 4 {
            let needed = SIGNATURE_LEN + 4 - bytes.len();
            return Err(DropReason::Malformed(DecodeError::Truncated {
                what: "packet",
                needed,
            }));
        }
        let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let mut r = Reader::new(body);
        if r.take(2, "magic").map_err(DropReason::Malformed)? != MAGIC {
            return Err(DropReason::BadMagic);
        }
        let version = r.u8("version").map_err(DropReason::Malformed)?;
        if version != PACKET_VERSION {
            return Err(DropReason::BadVersion(version));
        }
        let code = r.u8("kind").map_err(DropReason::Malformed)?;
        let kind = PacketKind::from_code(code).ok_or_else(|| {
            DropReason::Malformed(DecodeError::invalid("packet kind", format!("{code}")))
        })?;
        let source = r.str_u8("source").map_err(DropReason::Malformed)?;
        let source =
            DeviceId::new(source).ok_or_else(|| DropReason::UnknownSource(source.to_owned()))?;
        let target = r.str_u8("target").map_err(DropReason::Malformed)?;
        let target = match target {
            "" => None,
            name => {
                Some(DeviceId::new(name).ok_or_else(|| DropReason::WrongTarget(name.to_owned()))?)
            }
        };
        if target.as_ref().is_some_and(|t| t != me) {
            return Err(DropReason::WrongTarget(
                target.map(|t| t.to_string()).unwrap_or_default(),
            ));
        }
        let key = community
            .member(&source)
            .ok_or_else(|| DropReason::UnknownSource(source.to_string()))?;
        let signature: [u8; SIGNATURE_LEN] = signature.try_into().expect("split at SIGNATURE_LEN");
        // A broadcast packet reaches every peer as the same bytes, so its check is shared;
        // a packet for one device is checked by that device alone.
        let message = signed_message(body);
        let verified = match target {
            None => community.verify_shared(key, &message, &signature),
            Some(_) => key.verify(&message, &signature),
        };
        if !verified {
            return Err(DropReason::BadSignature);
        }
        let payload = Payload::decode(kind, &mut r).map_err(DropReason::Malformed)?;
        Ok(Packet {
            source,
            target,
            payload,
        })
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNATURE_DOMAIN, body].concat()
}

/// Header and signature bytes for a packet between these two devices.
pub fn overhead(source: &DeviceId, target: &DeviceId) -> usize {
    2 + 1 + 1 + 1 + source.as_str().len() + 1 + target.as_str().len() + SIGNATURE_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::filter::WireFilter;
    use crate::sync::index::BucketSummary;
    use crate::sync::prefix::{Prefix, FANOUT};
    use crate::testing::{community_of, keys};

    fn alice_to_bob(payload: Payload) -> Packet {
        Packet {
            source: DeviceId::new("alice").unwrap(),
            target: DeviceId::new("bob"),
            payload,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let community = community_of(&["alice", "bob"], 1);
        let bob = DeviceId::new("bob").unwrap();
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
        for payload in [
            Payload::Events(vec![vec![1, 2, 3]]),
            Payload::Events(vec![vec![1, 2, 3], vec![], vec![9; 300]]),
            Payload::Summary {
                prefix: Prefix::ROOT,
                summary,
            },
            Payload::Digests(vec![digest.clone()]),
            Payload::Digests(vec![digest.clone(), digest]),
            Payload::Filters(vec![bucket_filter.clone()]),
            Payload::Filters(vec![bucket_filter.clone(), bucket_filter]),
        ] {
            let packet = alice_to_bob(payload);
            let bytes = packet.seal(&keys("alice", 1));
            assert_eq!(Packet::open(&bytes, &community, &bob), Ok(packet));
        }
    }

    #[test]
    fn an_empty_item_list_is_malformed() {
        let community = community_of(&["alice", "bob"], 1);
        let bob = DeviceId::new("bob").unwrap();
        for payload in [
            Payload::Events(vec![]),
            Payload::Digests(vec![]),
            Payload::Filters(vec![]),
        ] {
            let bytes = alice_to_bob(payload).seal(&keys("alice", 1));
            assert!(
                matches!(
                    Packet::open(&bytes, &community, &bob),
                    Err(DropReason::Malformed(_))
                ),
                "an empty list opened"
            );
        }
    }

    #[test]
    fn an_in_sync_summary_is_small() {
        let summary = BucketSummary {
            count: 10_000,
            fingerprint: u64::MAX,
        };
        let bytes = alice_to_bob(Payload::Summary {
            prefix: Prefix::ROOT,
            summary,
        })
        .seal(&keys("alice", 1));
        assert!(bytes.len() <= 100, "{} bytes", bytes.len());
    }

    #[test]
    fn drops_say_why() {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let bob = DeviceId::new("bob").unwrap();
        let carol = DeviceId::new("carol").unwrap();
        let packet = alice_to_bob(Payload::Events(vec![vec![1]]));
        let bytes = packet.seal(&keys("alice", 1));
        assert!(matches!(
            Packet::open(&bytes, &community, &carol),
            Err(DropReason::WrongTarget(_))
        ));
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(Packet::open(&flipped, &community, &bob).is_err());
        let stranger = community_of(&["bob"], 1);
        assert!(matches!(
            Packet::open(&bytes, &stranger, &bob),
            Err(DropReason::UnknownSource(_))
        ));
        assert_eq!(
            Packet::open(&[0; 2000], &community, &bob),
            Err(DropReason::TooLarge { len: 2000 })
        );
        assert_eq!(
            Packet::open(&[b'X'; 80], &community, &bob),
            Err(DropReason::BadMagic)
        );
    }
}
