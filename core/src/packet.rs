//! Packets: one UDP datagram each, at most `DATAGRAM_SIZE_MAX` bytes, from one member to
//! one other, authenticated with the key the two share.
//!
//! ```text
//! magic "ML" | version:u8 = 5 | kind:u8 | source:str8 | target:str8
//!   | epoch:u64 | counter:u64 | echo:u64 | payload | tag:[u8; 16]
//! ```
//!
//! All integers little-endian. `tag` is HMAC-SHA256 (truncated), under the pairwise key of source and
//! target ([`crate::crypto::pairwise`]: X25519 of the two devices' roster keys, then a BLAKE3
//! key derivation over the community and both devices), over every byte before it, except that
//! an EVENT payload is covered as each event's length and id (the BLAKE3 hash of its bytes)
//! instead of its bytes. A valid tag proves which member sent the packet and to whom.
//!
//! Why ids: a receiver hashes every event's bytes for its id anyway (to skip duplicates and to
//! file it), and a sender holds the ids of the events it sends, so covering ids makes the tag
//! of a full EVENT datagram cost a hash of about 100 bytes instead of 1,200, and the receiver
//! hashes each event once instead of three times (tag, duplicate check, store). The ids bind
//! the bytes as firmly as the bytes themselves (BLAKE3 is collision resistant). Measured on
//! this project's 2-core machine (`cargo bench -p meshlog-core`): a full EVENT packet seals in
//! 0.21 µs and opens in 1.57 µs, nearly all of it the id hash the store needs anyway; a full
//! FILTER packet, covered byte for byte, 0.83 + 0.94 µs (1.76 µs; v4's keyed BLAKE3 took
//! 2.98 µs); v2's Ed25519 signature cost 14 µs to make and 34 µs to check.
//!
//! `epoch` and `counter` make each packet acceptable once (`replay.rs`): the receiver keeps a
//! window per peer (the newest epoch, the highest counter, a bitmap of the 1,984 counters
//! below it) and drops a packet seen before, older than the window, or from an older epoch,
//! as `replayed`, after the tag verifies (a forger cannot move the window) and before the
//! payload is decoded (a replay costs one hash and gets no answer).
//!
//! `echo` is the receiver's epoch as the sender last heard it (0: not heard yet). A receiver
//! takes only packets that echo its current epoch, and drops the rest as `stale_echo`. Its
//! windows live in memory and are empty after it restarts, but it restarts into a new epoch,
//! so nothing captured before the restart echoes it: a replay across a receiver's restart is
//! refused too. The price is one round trip when two devices meet or one restarts: the first
//! packet each way only teaches the other its epoch. A node that hears a peer's new epoch this
//! way answers at once with its summary, which echoes it (once per epoch of the peer, so
//! nothing an attacker replays can make it answer twice).
//!
//! ## Epochs, restarts and lost stores
//!
//! The counter restarts at 0 with every run of a device, so each run must use a new, larger
//! epoch: `Store::next_epoch` records `max(last + 1, Config::epoch_floor)` durably before the
//! node sends anything. A restart over the same store (the simulator's crash and restart, a
//! killed process) therefore always moves up. A device that lost its store starts from the
//! floor, which production sets to the wall clock in Unix seconds: above anything its peers saw
//! as long as its clock did not go back, and since no device makes more than one run a second
//! for long, `last + 1` stays near the clock. Residual risks, accepted:
//! - a device that lost its store *and* whose clock is behind the epochs it used is refused by
//!   its peers as `replayed` until its clock passes them (or they restart and forget);
//! - a peer's windows are in the receiver's memory, so after the receiver restarts they are
//!   empty; `echo` (above) is what refuses the old packets then.
//!
//! There is no broadcast form: a push to every peer is one packet per peer, each with that
//! pair's next counter and its own tag. UDP here is unicast, so a "broadcast" was already one datagram per
//! peer; carrying every peer's tag in every copy would spend up to 64 × 16 bytes of each
//! datagram on tags its receiver cannot check, and shrink the largest event with the peer count.
//!
//! Versions: 4 (keyed BLAKE3 tags), 3 (no echo, tags over event bytes), 2 (Ed25519-signed,
//! broadcast form) and older are refused as `bad_version`.
//!
//! No message spans two datagrams, so a lost datagram loses only itself. Payloads are in
//! [`payload`](Payload).

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{Keyring, PairKey, MAC_LEN};
use crate::id::{DeviceId, EventId, DEVICE_NAME_LEN_MAX};

mod address_record;
mod note;
mod payload;
mod recovery;
pub(crate) mod replay;
pub(crate) mod wire;

pub use address_record::{AddressRecord, RECORD_ADDRESSES_MAX, RECORD_LEN_MAX};
pub use note::{NoteItem, PacketNote, ShortId, NOTE_ITEMS_MAX};
pub(crate) use payload::{decode_events, encode_events};
pub use payload::{
    event_encoded_len, BucketFilter, Digest, Payload, RootSketch, WireEvent, EVENT_FRAMING_LEN,
};
pub use recovery::{RecoveryShard, RECOVERY_ORIGINALS_MAX, RECOVERY_SHARDS_MAX};
pub(crate) use wire::Wire;

/// QUIC's safe payload size: no IP fragmentation on any sane path.
pub const DATAGRAM_SIZE_MAX: usize = 1200;
const MAGIC: &[u8; 2] = b"ML";
/// 5: tags are HMAC-SHA256, not keyed BLAKE3 (faster on a full datagram; `crypto::pairwise`).
/// (4: the receiver's epoch echoed, events tagged by id. 3: pairwise MACs, epoch and counter.
/// 2: payloads carry one or more items of their kind.)
pub const PACKET_VERSION: u8 = 5;
/// Magic, version, kind, epoch, counter and echo.
const FIXED_HEADER_LEN: usize = 2 + 1 + 1 + 8 + 8 + 8;
/// Header and tag at their largest (two 32-byte names).
pub const PACKET_OVERHEAD_MAX: usize = FIXED_HEADER_LEN + (1 + DEVICE_NAME_LEN_MAX) * 2 + MAC_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    Event,
    Summary,
    Digest,
    Filter,
    Sketch,
    /// Members' signed address records (`AddressRecord`), passed along for peer exchange.
    Addresses,
    /// A join request or a welcome part (`member::welcome`): not a tagged packet, so not in
    /// [`PacketKind::ALL`], the kinds a packet header may name.
    Join,
    /// A member telling a peer where another peer is (`node/punch.rs`).
    Introduction,
    /// A datagram for another peer, to forward (`node/relay.rs`).
    Relay,
    /// A datagram from another peer, forwarded.
    Relayed,
    /// Files: asks for a file's parts and the parts (`crate::blob`). Its payload is encrypted.
    Blob,
    /// A recovery shard over a group of EVENT packets to the same peer (`node/stream_fec`).
    Recovery,
}

impl PacketKind {
    /// Kinds whose payload is encrypted as well as tagged: file bytes, which (unlike events,
    /// sealed under the community key) would otherwise cross the network in the clear.
    pub fn is_confidential(self) -> bool {
        self == PacketKind::Blob
    }

    pub const ALL: [PacketKind; 11] = [
        PacketKind::Event,
        PacketKind::Summary,
        PacketKind::Digest,
        PacketKind::Filter,
        PacketKind::Sketch,
        PacketKind::Addresses,
        PacketKind::Introduction,
        PacketKind::Relay,
        PacketKind::Relayed,
        PacketKind::Blob,
        PacketKind::Recovery,
    ];

    pub fn code(self) -> u8 {
        match self {
            PacketKind::Event => 1,
            PacketKind::Summary => 2,
            PacketKind::Digest => 3,
            PacketKind::Filter => 4,
            PacketKind::Sketch => 5,
            PacketKind::Join => 6,
            PacketKind::Addresses => 7,
            // 8 and 9 unused: these were numbered while ADDRESSES was being added alongside.
            PacketKind::Introduction => 10,
            PacketKind::Relay => 11,
            PacketKind::Relayed => 12,
            PacketKind::Blob => 13,
            PacketKind::Recovery => 14,
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
            PacketKind::Join => "JOIN",
            PacketKind::Addresses => "ADDRESSES",
            PacketKind::Introduction => "INTRO",
            PacketKind::Relay => "RELAY",
            PacketKind::Relayed => "RELAYED",
            PacketKind::Blob => "BLOB",
            PacketKind::Recovery => "RECOVERY",
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
    pub target: DeviceId,
    /// The source's epoch: grows at every start of the source.
    pub epoch: u64,
    /// The source's packet number to this target within its epoch.
    pub counter: u64,
    /// The target's epoch as the source last heard it; 0 if it has not.
    pub echo: u64,
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
    #[error("packet tag does not verify (forged, corrupted, or not meant for this pair)")]
    BadMac,
    #[error("packet from epoch {epoch} counter {counter} already seen or too old")]
    Replayed { epoch: u64, counter: u64 },
    /// `first_of_epoch`: the first authentic packet heard from this epoch of the peer, which
    /// the node answers with its summary so the peer learns the epoch to echo.
    #[error("packet from {from} echoes epoch {echo}, not this device's {expected}")]
    StaleEcho {
        from: DeviceId,
        echo: u64,
        expected: u64,
        first_of_epoch: bool,
    },
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
            DropReason::BadMac => "bad_mac",
            DropReason::Replayed { .. } => "replayed",
            DropReason::StaleEcho { .. } => "stale_echo",
            DropReason::Offline => "offline",
            DropReason::NotAPeer(_) => "not_a_peer",
        }
    }
}

/// A datagram whose header parsed and whose tag verified; its payload is not decoded yet.
/// The node checks the replay window between [`Packet::verify`] and [`Verified::decode`].
#[derive(Debug)]
pub struct Verified<'a> {
    pub source: DeviceId,
    pub target: DeviceId,
    pub epoch: u64,
    pub counter: u64,
    pub echo: u64,
    pub kind: PacketKind,
    /// Borrowed from the datagram, or decrypted into a copy for a confidential kind.
    payload: std::borrow::Cow<'a, [u8]>,
    /// For an EVENT packet, its events' ids, hashed once for the tag.
    event_ids: Vec<EventId>,
}

impl<'a> Verified<'a> {
    /// An EVENT packet's events with their ids (hashed for the tag), without copying them;
    /// empty for any other kind, or events that do not frame.
    pub fn events(&self) -> Vec<(EventId, &'a [u8])> {
        if self.kind != PacketKind::Event {
            return Vec::new();
        }
        let std::borrow::Cow::Borrowed(payload) = self.payload else {
            return Vec::new();
        };
        let slices = payload::decode_event_slices(&mut Reader::new(payload));
        self.event_ids
            .iter()
            .copied()
            .zip(slices.unwrap_or_default())
            .collect()
    }

    pub fn decode(self) -> Result<Packet, DropReason> {
        let mut r = Reader::new(&self.payload);
        let payload = if self.kind == PacketKind::Event {
            let slices = payload::decode_event_slices(&mut r).map_err(DropReason::Malformed)?;
            debug_assert_eq!(slices.len(), self.event_ids.len(), "verify hashed each");
            Payload::Events(
                slices
                    .into_iter()
                    .zip(self.event_ids)
                    .map(|(sealed, id)| WireEvent::known(id, sealed.to_vec()))
                    .collect(),
            )
        } else {
            Payload::decode(self.kind, &mut r).map_err(DropReason::Malformed)?
        };
        Ok(Packet {
            source: self.source,
            target: self.target,
            epoch: self.epoch,
            counter: self.counter,
            echo: self.echo,
            payload,
        })
    }
}

impl Packet {
    /// Encodes and tags under `key` (the key of source and target). Panics only if the caller
    /// built a packet over the size limit, which the node's own size checks make a bug.
    pub fn seal(&self, key: &PairKey) -> Vec<u8> {
        seal_parts(
            &self.source,
            &self.target,
            [self.epoch, self.counter, self.echo],
            &self.payload,
            key,
        )
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

    /// Parses the header of a datagram for `keyring.me()` and verifies its tag, without
    /// decoding the payload. Never panics on any input. Cheap checks go first; the tag is the
    /// only cryptography.
    pub fn verify<'a>(bytes: &'a [u8], keyring: &Keyring) -> Result<Verified<'a>, DropReason> {
        if bytes.len() > DATAGRAM_SIZE_MAX {
            return Err(DropReason::TooLarge { len: bytes.len() });
        }
        let shortest = FIXED_HEADER_LEN + 2 + MAC_LEN;
        if bytes.len() < shortest {
            return Err(DropReason::Malformed(DecodeError::Truncated {
                what: "packet",
                needed: shortest - bytes.len(),
            }));
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
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
        let target = DeviceId::new(target)
            .filter(|t| t == keyring.me())
            .ok_or_else(|| DropReason::WrongTarget(target.to_owned()))?;
        let epoch = r.u64("epoch").map_err(DropReason::Malformed)?;
        let counter = r.u64("counter").map_err(DropReason::Malformed)?;
        let echo = r.u64("echo").map_err(DropReason::Malformed)?;
        let payload = r.rest();
        let header = &body[..body.len() - payload.len()];
        let key = keyring.key(&source).ok_or_else(|| {
            if keyring.is_member(&source) {
                DropReason::NotAPeer(source.to_string())
            } else {
                DropReason::UnknownSource(source.to_string())
            }
        })?;
        let tag: &[u8; MAC_LEN] = tag.try_into().expect("split at MAC_LEN");
        let mut tagger = key.tagger();
        tagger.update(header);
        let mut event_ids = Vec::new();
        if kind == PacketKind::Event {
            // Framing is parsed before the tag is checked: lengths only, and the hashing
            // costs what hashing the bytes for the tag would.
            let slices = payload::decode_event_slices(&mut Reader::new(payload))
                .map_err(DropReason::Malformed)?;
            event_ids = slices.iter().map(|e| EventId::of_bytes(e)).collect();
            let lens = slices.iter().map(|e| e.len());
            cover_events(
                |bytes| {
                    tagger.update(bytes);
                },
                lens.zip(&event_ids),
            );
        } else {
            tagger.update(payload);
        }
        if !tagger.verify(tag) {
            return Err(DropReason::BadMac);
        }
        let payload = if kind.is_confidential() {
            let mut plain = payload.to_vec();
            key.apply_cipher(source < target, epoch, counter, &mut plain);
            std::borrow::Cow::Owned(plain)
        } else {
            std::borrow::Cow::Borrowed(payload)
        };
        Ok(Verified {
            source,
            target,
            epoch,
            counter,
            echo,
            kind,
            payload,
            event_ids,
        })
    }

    /// [`verify`](Packet::verify) then decode, with no replay check: for tests and tools.
    /// A node opens through its wire (`packet::wire`), which checks the window between the two.
    pub fn open(bytes: &[u8], keyring: &Keyring) -> Result<Packet, DropReason> {
        Self::verify(bytes, keyring)?.decode()
    }
}

/// [`Packet::seal`] without owning the payload: a push to every peer seals one payload many times.
pub(crate) fn seal_parts(
    source: &DeviceId,
    target: &DeviceId,
    [epoch, counter, echo]: [u64; 3],
    payload: &Payload,
    key: &PairKey,
) -> Vec<u8> {
    // Sized once: growing the buffer would copy the payload a few times over.
    let mut w = Writer {
        bytes: Vec::with_capacity(DATAGRAM_SIZE_MAX),
    };
    w.raw(MAGIC).u8(PACKET_VERSION).u8(payload.kind().code());
    w.bytes_u8(source.as_str().as_bytes());
    w.bytes_u8(target.as_str().as_bytes());
    w.u64(epoch).u64(counter).u64(echo);
    let header_len = w.bytes.len();
    payload.encode(&mut w);
    if payload.kind().is_confidential() {
        key.apply_cipher(source < target, epoch, counter, &mut w.bytes[header_len..]);
    }
    let mut tagger = key.tagger();
    tagger.update(&w.bytes[..header_len]);
    match payload {
        Payload::Events(events) => cover_events(
            |bytes| {
                tagger.update(bytes);
            },
            events.iter().map(|e| (e.sealed().len(), e.id())),
        ),
        _ => {
            tagger.update(&w.bytes[header_len..]);
        }
    }
    let tag = tagger.tag();
    w.raw(&tag);
    assert!(
        w.bytes.len() <= DATAGRAM_SIZE_MAX,
        "{} packet of {} bytes",
        payload.kind(),
        w.bytes.len()
    );
    w.bytes
}

/// What the tag covers of an EVENT payload: each event's length and id.
fn cover_events<'a>(
    mut feed: impl FnMut(&[u8]),
    events: impl Iterator<Item = (usize, &'a EventId)>,
) {
    for (len, id) in events {
        let len = u16::try_from(len).expect("an event in a datagram is under 64 KiB");
        feed(&len.to_le_bytes());
        feed(&id.0);
    }
}

/// What the tag covers of a payload of raw kind `kind`, when that differs from its bytes (a
/// well-framed EVENT payload): for tests and fuzzing, which build datagrams by hand.
#[doc(hidden)]
pub fn event_cover(kind: u8, payload: &[u8]) -> Option<Vec<u8>> {
    if kind != PacketKind::Event.code() {
        return None;
    }
    let slices = payload::decode_event_slices(&mut Reader::new(payload)).ok()?;
    let ids: Vec<EventId> = slices.iter().map(|e| EventId::of_bytes(e)).collect();
    let mut cover = Vec::with_capacity(slices.len() * 34);
    let lens = slices.iter().map(|e| e.len());
    cover_events(|bytes| cover.extend_from_slice(bytes), lens.zip(&ids));
    Some(cover)
}

/// Header and tag bytes for a packet between these two devices.
pub fn overhead(source: &DeviceId, target: &DeviceId) -> usize {
    FIXED_HEADER_LEN + 1 + source.as_str().len() + 1 + target.as_str().len() + MAC_LEN
}

#[cfg(test)]
mod tests;
