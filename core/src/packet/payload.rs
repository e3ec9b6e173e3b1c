//! What a packet carries. One kind per packet, but one or more items of it: a node packs the
//! events, digests or filters it has for a peer into as few datagrams as they fit, since each
//! datagram costs a header, a tag and a syscall at each end, whatever its size.
//!
//! ```text
//! EVENT    (len:u16 | sealed event)+
//! SUMMARY  prefix | count:varint | fingerprint:u64 (absent when count = 0)
//! DIGEST   (prefix | 16 × summary)+
//! FILTER   (prefix | reply:u8 | nonce:u64 | items:varint | k:u8 | bitmap_len:u16 | bitmap)+
//! ```
//!
//! Items are self-delimiting and run to the end of the payload; an empty list is malformed.

use crate::codec::{DecodeError, Reader, Writer};
use crate::sync::filter::WireFilter;
use crate::sync::index::BucketSummary;
use crate::sync::prefix::{Prefix, FANOUT};

use super::PacketKind;

/// Bytes an event's length prefix adds inside an `Events` payload.
pub const EVENT_FRAMING_LEN: usize = 2;

// A payload lives only between decode and dispatch, so its size does not justify boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Sealed events, each exactly its stored bytes.
    Events(Vec<Vec<u8>>),
    /// "This is what I hold under `prefix`": starts every anti-entropy round at the root.
    Summary {
        prefix: Prefix,
        summary: BucketSummary,
    },
    /// The descent toward differences: children summaries of differing buckets.
    Digests(Vec<Digest>),
    /// Ids under some buckets, as Bloom filters.
    Filters(Vec<BucketFilter>),
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
        }
    }

    /// Items in the payload (1 for a summary).
    pub fn items(&self) -> usize {
        match self {
            Payload::Events(events) => events.len(),
            Payload::Summary { .. } => 1,
            Payload::Digests(digests) => digests.len(),
            Payload::Filters(filters) => filters.len(),
        }
    }

    pub(super) fn encode(&self, w: &mut Writer) {
        match self {
            Payload::Events(events) => events.iter().for_each(|e| encode_event(w, e)),
            Payload::Summary { prefix, summary } => {
                prefix.encode(w);
                encode_summary(w, summary);
            }
            Payload::Digests(digests) => digests.iter().for_each(|d| d.encode(w)),
            Payload::Filters(filters) => filters.iter().for_each(|f| f.encode(w)),
        }
    }

    pub(super) fn decode(kind: PacketKind, r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
        let payload = match kind {
            PacketKind::Event => Payload::Events(decode_items(r, "events", |r| {
                Ok(r.bytes_u16("event")?.to_vec())
            })?),
            PacketKind::Summary => Payload::Summary {
                prefix: Prefix::decode(r)?,
                summary: decode_summary(r)?,
            },
            PacketKind::Digest => Payload::Digests(decode_items(r, "digests", Digest::decode)?),
            PacketKind::Filter => {
                Payload::Filters(decode_items(r, "filters", BucketFilter::decode)?)
            }
        };
        r.finish()?;
        Ok(payload)
    }
}

/// Items until the payload ends; at least one.
fn decode_items<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
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

/// Bytes `sealed` takes inside an `Events` payload.
pub fn event_encoded_len(sealed: &[u8]) -> usize {
    EVENT_FRAMING_LEN + sealed.len()
}

fn encode_event(w: &mut Writer, sealed: &[u8]) {
    w.bytes_u16(sealed);
}

impl Digest {
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
