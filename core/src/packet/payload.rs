//! What a packet carries. One kind per packet, but one or more items of it: a node packs the
//! events, digests or filters it has for a peer into as few datagrams as they fit, since each
//! datagram costs a header, a tag and a syscall at each end, whatever its size.
//!
//! ```text
//! EVENT    (len:u16 | sealed event)+        (the tag covers (len:u16 | event id)+ instead)
//! SUMMARY  prefix | count:varint | fingerprint:u64 (absent when count = 0)
//! DIGEST   (prefix | 16 × summary)+
//! FILTER   (prefix | reply:u8 | nonce:u64 | items:varint | k:u8 | bitmap_len:u16 | bitmap)+
//! SKETCH   reply:u8 | count:varint | fingerprint:u64 (absent when count = 0) | width:u8 | cells
//! ADDRESSES (address record)+                (`address_record.rs`)
//! INTRO    peer:str8 | family:u8 (4 or 6) | ip:4 or 16 bytes | port:u16   (`node/punch.rs`)
//! RELAY    to:str8 | datagram:u16-prefixed bytes                         (`node/relay.rs`)
//! RELAYED  from:str8 | datagram:u16-prefixed bytes
//! BLOB     (blob item)+, encrypted              (`blob/items.rs`)
//! RECOVERY one recovery shard over EVENT packets  (`recovery.rs`)
//! ```
//!
//! Items are self-delimiting and run to the end of the payload; an empty list is malformed.

use std::net::SocketAddr;

use crate::blob::BlobItem;
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{DeviceId, EventId};
use crate::sync::filter::WireFilter;
use crate::sync::index::BucketSummary;
use crate::sync::prefix::{Prefix, FANOUT};
use crate::sync::sketch::Sketch;

use super::{AddressRecord, PacketKind, RecoveryShard};

/// Bytes an event's length prefix adds inside an `Events` payload.
pub const EVENT_FRAMING_LEN: usize = 2;

// A payload lives only between decode and dispatch, so its size does not justify boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Sealed events, each exactly its stored bytes, with its id.
    Events(Vec<WireEvent>),
    /// "This is what I hold under `prefix`": starts every anti-entropy round at the root.
    Summary {
        prefix: Prefix,
        summary: BucketSummary,
    },
    /// The descent toward differences: children summaries of differing buckets.
    Digests(Vec<Digest>),
    /// Ids under some buckets, as Bloom filters.
    Filters(Vec<BucketFilter>),
    /// The sender's whole set as an IBLT beside its root summary: a small difference decodes
    /// from it in one round trip.
    Sketch(RootSketch),
    /// Members' signed address records (peer exchange).
    Addresses(Vec<AddressRecord>),
    /// "`peer` was last seen at `addr`": a member introducing two of its peers to each other,
    /// so they can punch through their NATs (`node/punch.rs`). Only a hint.
    Introduction { peer: DeviceId, addr: SocketAddr },
    /// "Forward this datagram, sealed for `to`, to `to`" (`node/relay.rs`).
    Relay { to: DeviceId, bytes: Vec<u8> },
    /// "`from` sent you this datagram through me".
    Relayed { from: DeviceId, bytes: Vec<u8> },
    /// Asks for files' parts, and the parts (`crate::blob`).
    Blob(Vec<BlobItem>),
    /// A recovery shard over EVENT packets sent to the same peer (`node/stream_fec`).
    Recovery(RecoveryShard),
}

/// A sealed event as a packet carries it: its bytes and their id (their BLAKE3 hash). The id
/// is computed once, where the bytes enter (a decode, an append, a store read), and then
/// serves the packet's tag, the duplicate check and the store, which each hashed the bytes
/// again before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEvent {
    id: EventId,
    sealed: Vec<u8>,
}

impl WireEvent {
    /// Hashes `sealed` for its id.
    pub fn new(sealed: Vec<u8>) -> Self {
        WireEvent {
            id: EventId::of_bytes(&sealed),
            sealed,
        }
    }
    /// Bytes whose id the caller already holds (from its store, or from sealing them).
    pub fn known(id: EventId, sealed: Vec<u8>) -> Self {
        debug_assert_eq!(EventId::of_bytes(&sealed), id, "an id names its bytes");
        WireEvent { id, sealed }
    }
    pub fn id(&self) -> &EventId {
        &self.id
    }
    pub fn sealed(&self) -> &[u8] {
        &self.sealed
    }
}

/// The sender's root summary and its IBLT. With `reply`, a receiver that finds ids it lacks
/// answers with its own table at the same width so the sender can push them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootSketch {
    pub reply: bool,
    pub summary: BucketSummary,
    pub sketch: Sketch,
}

impl RootSketch {
    /// Bytes a root sketch of `width` takes at most (its summary at its widest).
    pub fn encoded_len_max(width: usize) -> usize {
        1 + SUMMARY_LEN_MAX + 1 + Sketch::cells_len(width)
    }
    /// Bytes it takes as a payload.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new();
        Payload::encode_sketch(&mut w, self);
        w.bytes.len()
    }
}

/// The sender's summaries of the 16 children of `prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub prefix: Prefix,
    pub children: [BucketSummary; FANOUT],
}

/// The sender's ids under `prefix`. The receiver pushes what is not in it and, if `reply`,
/// answers with its own filter so the sender can push back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketFilter {
    pub prefix: Prefix,
    pub reply: bool,
    pub filter: WireFilter,
}

impl Payload {
    pub fn kind(&self) -> PacketKind {
        match self {
            Payload::Events(_) => PacketKind::Event,
            Payload::Summary { .. } => PacketKind::Summary,
            Payload::Digests(_) => PacketKind::Digest,
            Payload::Filters(_) => PacketKind::Filter,
            Payload::Sketch(_) => PacketKind::Sketch,
            Payload::Addresses(_) => PacketKind::Addresses,
            Payload::Introduction { .. } => PacketKind::Introduction,
            Payload::Relay { .. } => PacketKind::Relay,
            Payload::Relayed { .. } => PacketKind::Relayed,
            Payload::Blob(_) => PacketKind::Blob,
            Payload::Recovery(_) => PacketKind::Recovery,
        }
    }

    /// Items in the payload (1 for a summary).
    pub fn items(&self) -> usize {
        match self {
            Payload::Events(events) => events.len(),
            Payload::Summary { .. }
            | Payload::Sketch(_)
            | Payload::Introduction { .. }
            | Payload::Relay { .. }
            | Payload::Relayed { .. }
            | Payload::Recovery(_) => 1,
            Payload::Digests(digests) => digests.len(),
            Payload::Filters(filters) => filters.len(),
            Payload::Addresses(records) => records.len(),
            Payload::Blob(items) => items.len(),
        }
    }

    pub(super) fn encode(&self, w: &mut Writer) {
        match self {
            Payload::Events(events) => events.iter().for_each(|e| encode_event(w, &e.sealed)),
            Payload::Summary { prefix, summary } => {
                prefix.encode(w);
                encode_summary(w, summary);
            }
            Payload::Digests(digests) => digests.iter().for_each(|d| d.encode(w)),
            Payload::Filters(filters) => filters.iter().for_each(|f| f.encode(w)),
            Payload::Sketch(s) => Payload::encode_sketch(w, s),
            Payload::Addresses(records) => records.iter().for_each(|r| r.encode(w)),
            Payload::Introduction { peer, addr } => {
                w.bytes_u8(peer.as_str().as_bytes());
                w.socket_addr(addr);
            }
            Payload::Relay { to: name, bytes } | Payload::Relayed { from: name, bytes } => {
                w.bytes_u8(name.as_str().as_bytes());
                w.bytes_u16(bytes);
            }
            Payload::Blob(items) => items.iter().for_each(|item| item.encode(w)),
            Payload::Recovery(shard) => shard.encode(w),
        }
    }

    fn encode_sketch(w: &mut Writer, s: &RootSketch) {
        w.u8(u8::from(s.reply));
        encode_summary(w, &s.summary);
        s.sketch.encode(w);
    }

    pub(super) fn decode(kind: PacketKind, r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
        let payload = match kind {
            PacketKind::Event => Payload::Events(
                decode_event_slices(r)?
                    .into_iter()
                    .map(|sealed| WireEvent::new(sealed.to_vec()))
                    .collect(),
            ),
            PacketKind::Summary => Payload::Summary {
                prefix: Prefix::decode(r)?,
                summary: decode_summary(r)?,
            },
            PacketKind::Digest => Payload::Digests(decode_items(r, "digests", Digest::decode)?),
            PacketKind::Filter => {
                Payload::Filters(decode_items(r, "filters", BucketFilter::decode)?)
            }
            PacketKind::Sketch => Payload::Sketch(RootSketch {
                reply: r.bool("sketch reply flag")?,
                summary: decode_summary(r)?,
                sketch: Sketch::decode(r)?,
            }),
            PacketKind::Addresses => {
                Payload::Addresses(decode_items(r, "address records", AddressRecord::decode)?)
            }
            PacketKind::Introduction => {
                let peer = r.str_u8("introduced peer")?;
                let peer = DeviceId::new(peer)
                    .ok_or_else(|| DecodeError::invalid("introduced peer", "not a device name"))?;
                Payload::Introduction {
                    peer,
                    addr: r.socket_addr("introduced address")?,
                }
            }
            PacketKind::Blob => Payload::Blob(decode_items(r, "blob items", BlobItem::decode)?),
            PacketKind::Recovery => Payload::Recovery(RecoveryShard::decode(r)?),
            PacketKind::Relay | PacketKind::Relayed => {
                let name = r.str_u8("relay peer")?;
                let name = DeviceId::new(name)
                    .ok_or_else(|| DecodeError::invalid("relay peer", "not a device name"))?;
                let bytes = r.bytes_u16("relayed datagram")?.to_vec();
                if kind == PacketKind::Relay {
                    Payload::Relay { to: name, bytes }
                } else {
                    Payload::Relayed { from: name, bytes }
                }
            }
            PacketKind::Join => {
                return Err(DecodeError::invalid(
                    "packet kind",
                    "JOIN is not a tagged packet",
                ))
            }
        };
        r.finish()?;
        Ok(payload)
    }
}

/// Items until the payload ends; at least one.
fn decode_items<'a, T>(
    r: &mut Reader<'a>,
    what: &'static str,
    mut item: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut items = Vec::new();
    while r.remaining() > 0 {
        items.push(item(r)?);
    }
    if items.is_empty() {
        return Err(DecodeError::invalid(what, "none in the packet"));
    }
    Ok(items)
}

/// The events of an `Events` payload, as slices of it: at least one, and nothing after them.
pub(super) fn decode_event_slices<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, DecodeError> {
    let events = decode_items(r, "events", |r| r.bytes_u16("event"))?;
    r.finish()?;
    Ok(events)
}

/// An `Events` payload's bytes: what a recovery shard codes (`node/stream_fec`).
pub(crate) fn encode_events(events: &[WireEvent]) -> Vec<u8> {
    let mut w = Writer::new();
    events.iter().for_each(|e| encode_event(&mut w, &e.sealed));
    w.bytes
}

/// The events of an `Events` payload rebuilt from recovery shards, each hashed for its id.
pub(crate) fn decode_events(bytes: &[u8]) -> Result<Vec<WireEvent>, DecodeError> {
    let mut r = Reader::new(bytes);
    Ok(decode_event_slices(&mut r)?
        .into_iter()
        .map(|sealed| WireEvent::new(sealed.to_vec()))
        .collect())
}

/// Bytes a prefix takes at most: its depth and the 8 bytes of 16 nibbles.
const PREFIX_LEN_MAX: usize = 1 + 8;
/// Bytes a summary takes at most: a `u32` count as a varint, and the fingerprint.
const SUMMARY_LEN_MAX: usize = 5 + 8;

/// Bytes `sealed` takes inside an `Events` payload.
pub fn event_encoded_len(sealed: &[u8]) -> usize {
    EVENT_FRAMING_LEN + sealed.len()
}

fn encode_event(w: &mut Writer, sealed: &[u8]) {
    w.bytes_u16(sealed);
}

impl Digest {
    /// Bytes a digest takes at most. The budget reserves it before building one, so it must
    /// be an upper bound (see the tests).
    pub const ENCODED_LEN_MAX: usize = PREFIX_LEN_MAX + FANOUT * SUMMARY_LEN_MAX;

    fn encode(&self, w: &mut Writer) {
        self.prefix.encode(w);
        self.children.iter().for_each(|c| encode_summary(w, c));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Digest, DecodeError> {
        let prefix = Prefix::decode(r)?;
        if prefix.is_leaf_depth() {
            return Err(DecodeError::invalid(
                "digest prefix",
                "leaf buckets have no children",
            ));
        }
        let mut children = [BucketSummary::default(); FANOUT];
        for child in children.iter_mut() {
            *child = decode_summary(r)?;
        }
        Ok(Digest { prefix, children })
    }
    /// Bytes it takes inside a `Digests` payload.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.bytes.len()
    }
}

impl BucketFilter {
    /// Bytes a filter with a bitmap of `bitmap_len` bytes takes at most: prefix, reply flag,
    /// nonce, item count (a `u32` varint), k, the bitmap's length and the bitmap.
    pub const fn encoded_len_max(bitmap_len: usize) -> usize {
        PREFIX_LEN_MAX + 1 + 8 + 5 + 1 + 2 + bitmap_len
    }

    fn encode(&self, w: &mut Writer) {
        self.prefix.encode(w);
        w.u8(u8::from(self.reply));
        self.filter.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<BucketFilter, DecodeError> {
        Ok(BucketFilter {
            prefix: Prefix::decode(r)?,
            reply: r.bool("filter reply flag")?,
            filter: WireFilter::decode(r)?,
        })
    }
    /// Bytes it takes inside a `Filters` payload.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.bytes.len()
    }
}

/// An empty bucket's fingerprint is always 0, so it is not sent.
fn encode_summary(w: &mut Writer, s: &BucketSummary) {
    w.varint(u64::from(s.count));
    if s.count > 0 {
        w.u64(s.fingerprint);
    }
}

fn decode_summary(r: &mut Reader<'_>) -> Result<BucketSummary, DecodeError> {
    let count = u32::try_from(r.varint("bucket count")?)
        .map_err(|_| DecodeError::invalid("bucket count", "over u32"))?;
    let fingerprint = if count > 0 {
        r.u64("bucket fingerprint")?
    } else {
        0
    };
    Ok(BucketSummary { count, fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::prefix::PREFIX_DEPTH_MAX;
    use crate::sync::sketch::WIDTHS;

    /// The widest summary: the largest count and a fingerprint.
    const WIDEST: BucketSummary = BucketSummary {
        count: u32::MAX,
        fingerprint: u64::MAX,
    };

    /// The deepest prefix a digest may carry (leaf buckets have no children).
    fn deepest_digest_prefix() -> Prefix {
        Prefix::new(
            PREFIX_DEPTH_MAX - 1,
            (1 << (4 * (PREFIX_DEPTH_MAX as u32 - 1))) - 1,
        )
        .expect("valid")
    }

    #[test]
    fn the_widest_digest_takes_exactly_its_bound() {
        let digest = Digest {
            prefix: deepest_digest_prefix(),
            children: [WIDEST; FANOUT],
        };
        assert_eq!(digest.encoded_len(), Digest::ENCODED_LEN_MAX);
        let narrow = Digest {
            prefix: Prefix::ROOT,
            children: [BucketSummary::default(); FANOUT],
        };
        assert!(narrow.encoded_len() < Digest::ENCODED_LEN_MAX);
    }

    #[test]
    fn the_widest_filter_takes_exactly_its_bound() {
        for bitmap_len in [0, 1, 300, 1_100] {
            let filter = BucketFilter {
                prefix: Prefix::new(PREFIX_DEPTH_MAX, u64::MAX).expect("valid"),
                reply: true,
                filter: WireFilter {
                    nonce: u64::MAX,
                    items: u32::MAX,
                    hash_functions: u8::MAX,
                    bitmap: vec![0xff; bitmap_len],
                },
            };
            assert_eq!(
                filter.encoded_len(),
                BucketFilter::encoded_len_max(bitmap_len)
            );
        }
    }

    #[test]
    fn the_widest_sketch_takes_exactly_its_bound() {
        for width in WIDTHS {
            let sketch = RootSketch {
                reply: true,
                summary: WIDEST,
                sketch: Sketch::new().folded(width),
            };
            assert_eq!(sketch.encoded_len(), RootSketch::encoded_len_max(width));
        }
    }
}
