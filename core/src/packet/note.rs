//! What a packet carries, as facts rather than text: how many items, and the first few by
//! name (an event's short id; a bucket, its event count and whether it asks for a reply).
//! A node attaches one to every datagram it sends and receives; it is `Copy` and built
//! without allocating. Text is made only where someone shows it, by its `Display`:
//! `b3* 39 ids reply`, the network log's and the trace's note.

use std::fmt;

use super::Payload;
use crate::id::EventId;
use crate::sync::prefix::Prefix;

/// Items a note names; the rest are counted (`+4 more`).
pub const NOTE_ITEMS_MAX: usize = 3;

/// An event id's first 6 bytes: what a note or a trace prints of it (12 hex digits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortId(pub [u8; 6]);

impl ShortId {
    pub fn of(id: &EventId) -> ShortId {
        let mut short = [0; 6];
        short.copy_from_slice(&id.0[..6]);
        ShortId(short)
    }
    /// The 48 bits as a number (big-endian), for maps keyed by what a trace shows.
    pub fn to_u64(self) -> u64 {
        self.0.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One named item of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoteItem {
    /// No item (fills the unused places of a note).
    #[default]
    Nothing,
    /// An event: `ev 1a2b3c4d5e6f`.
    Event(ShortId),
    /// A fresh local append, pushed to every peer at once: `message 1a2b3c4d5e6f`.
    Fresh { body: &'static str, id: ShortId },
    /// A bucket's summary, or a digest's total over its children: `3f* 12 ev`.
    Bucket { prefix: Prefix, events: u64 },
    /// A sketch of the whole id set: `* 12 ev w24 reply`.
    Sketch {
        events: u32,
        width: u32,
        reply: bool,
    },
    /// A Bloom filter of a bucket's ids: `b3* 39 ids reply`.
    Filter {
        prefix: Prefix,
        ids: u32,
        reply: bool,
    },
}

impl NoteItem {
    /// The event this item names, if it names one.
    pub fn event(&self) -> Option<ShortId> {
        match self {
            NoteItem::Event(id) | NoteItem::Fresh { id, .. } => Some(*id),
            _ => None,
        }
    }
    /// Whether the item asks its receiver to answer in kind.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            NoteItem::Sketch { reply: true, .. } | NoteItem::Filter { reply: true, .. }
        )
    }
}

impl fmt::Display for NoteItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reply = |reply: bool| if reply { " reply" } else { "" };
        match *self {
            NoteItem::Nothing => Ok(()),
            NoteItem::Event(id) => write!(f, "ev {id}"),
            NoteItem::Fresh { body, id } => write!(f, "{body} {id}"),
            NoteItem::Bucket { prefix, events } => write!(f, "{prefix} {events} ev"),
            NoteItem::Sketch {
                events,
                width,
                reply: r,
            } => write!(f, "* {events} ev w{width}{}", reply(r)),
            NoteItem::Filter {
                prefix,
                ids,
                reply: r,
            } => write!(f, "{prefix} {ids} ids{}", reply(r)),
        }
    }
}

/// A packet's items in brief: how many, and the first [`NOTE_ITEMS_MAX`] by name.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketNote {
    items: u32,
    named: u8,
    shown: [NoteItem; NOTE_ITEMS_MAX],
}

impl PacketNote {
    /// A note naming the first of `shown` (up to [`NOTE_ITEMS_MAX`]) of a packet of `items`.
    pub fn new(items: usize, shown: impl IntoIterator<Item = NoteItem>) -> PacketNote {
        let mut note = PacketNote {
            items: u32::try_from(items).unwrap_or(u32::MAX),
            ..PacketNote::default()
        };
        for item in shown.into_iter().take(NOTE_ITEMS_MAX) {
            note.shown[usize::from(note.named)] = item;
            note.named += 1;
        }
        note
    }

    /// The eager push of a fresh local append of kind `body` (`EventBody::kind_name`).
    pub fn fresh(body: &'static str, id: &EventId) -> PacketNote {
        let id = ShortId::of(id);
        PacketNote::new(1, [NoteItem::Fresh { body, id }])
    }

    /// The facts of a payload, read without copying any of it.
    pub(crate) fn of(payload: &Payload) -> PacketNote {
        let items = payload.items();
        match payload {
            Payload::Events(events) => PacketNote::new(
                items,
                events.iter().map(|e| NoteItem::Event(ShortId::of(e.id()))),
            ),
            Payload::Summary { prefix, summary } => PacketNote::new(
                items,
                [NoteItem::Bucket {
                    prefix: *prefix,
                    events: u64::from(summary.count),
                }],
            ),
            Payload::Sketch(s) => PacketNote::new(
                items,
                [NoteItem::Sketch {
                    events: s.summary.count,
                    width: u32::try_from(s.sketch.width()).unwrap_or(u32::MAX),
                    reply: s.reply,
                }],
            ),
            Payload::Digests(digests) => PacketNote::new(
                items,
                digests.iter().map(|d| NoteItem::Bucket {
                    prefix: d.prefix,
                    events: d.children.iter().map(|c| u64::from(c.count)).sum(),
                }),
            ),
            Payload::Filters(filters) => PacketNote::new(
                items,
                filters.iter().map(|f| NoteItem::Filter {
                    prefix: f.prefix,
                    ids: f.filter.items,
                    reply: f.reply,
                }),
            ),
            // Counted, not named: which devices moved is the trace's to tell.
            Payload::Addresses(_) => PacketNote::new(items, []),
            Payload::Introduction { .. }
            | Payload::Relay { .. }
            | Payload::Relayed { .. }
            | Payload::Blob(_)
            | Payload::Recovery(_) => PacketNote::new(items, []),
        }
    }

    /// Items in the packet (1 for a summary or a sketch).
    pub fn items(&self) -> usize {
        self.items as usize
    }
    /// The items named, in the packet's order.
    pub fn shown(&self) -> &[NoteItem] {
        &self.shown[..usize::from(self.named)]
    }
    /// The events named (an EVENT packet's first ids).
    pub fn events(&self) -> impl Iterator<Item = ShortId> + '_ {
        self.shown().iter().filter_map(NoteItem::event)
    }
    /// Whether a named item asks its receiver to answer in kind.
    pub fn is_reply(&self) -> bool {
        self.shown().iter().any(NoteItem::is_reply)
    }
}

/// The text in quotes, as when the note was a `String`: a recording's output digests hash
/// node events' debug form (`record::OutputsDigest`), so this keeps them comparable across
/// versions. (The text never holds a character `Debug` would escape.)
impl fmt::Debug for PacketNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// `ev 1a2b3c4d5e6f, ev 0a0b0c0d0e0f, ev 3c3c3c3c3c3c +4 more`.
impl fmt::Display for PacketNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.shown().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            fmt::Display::fmt(item, f)?;
        }
        let more = self.items().saturating_sub(NOTE_ITEMS_MAX);
        if more > 0 {
            write!(f, " +{more} more")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{BucketFilter, Digest, RootSketch, WireEvent};
    use crate::sync::filter::WireFilter;
    use crate::sync::index::BucketSummary;
    use crate::sync::prefix::FANOUT;
    use crate::sync::sketch::Sketch;

    fn id(first: u8) -> EventId {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[5] = 0xef;
        bytes[6] = 0xff; // beyond the short id: never shown
        EventId(bytes)
    }

    #[test]
    fn notes_read_as_they_always_did() {
        // Each event's note is its id as `EventId`'s own `Display` shows it.
        let sealed: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 3]).collect();
        let events = |n: usize| {
            Payload::Events(
                sealed[..n]
                    .iter()
                    .map(|b| WireEvent::known(EventId::of_bytes(b), b.clone()))
                    .collect(),
            )
        };
        let ev = |i: usize| format!("ev {}", EventId::of_bytes(&sealed[i]));
        assert_eq!(PacketNote::of(&events(0)).to_string(), "");
        assert_eq!(
            PacketNote::of(&events(2)).to_string(),
            format!("{}, {}", ev(0), ev(1))
        );
        assert_eq!(
            PacketNote::of(&events(7)).to_string(),
            format!("{}, {}, {} +4 more", ev(0), ev(1), ev(2))
        );
        assert_eq!(
            PacketNote::fresh("message", &id(0xab)).to_string(),
            "message ab00000000ef"
        );
        let b3 = Prefix::new(2, 0xb3).unwrap();
        let summary = BucketSummary {
            count: 12,
            fingerprint: 9,
        };
        let root = Payload::Summary {
            prefix: Prefix::ROOT,
            summary,
        };
        assert_eq!(PacketNote::of(&root).to_string(), "* 12 ev");
        let sketch = Payload::Sketch(RootSketch {
            reply: true,
            summary,
            sketch: Sketch::new().folded(6),
        });
        assert_eq!(PacketNote::of(&sketch).to_string(), "* 12 ev w6 reply");
        let digests = Payload::Digests(vec![Digest {
            prefix: b3,
            children: [summary; FANOUT],
        }]);
        assert_eq!(PacketNote::of(&digests).to_string(), "b3* 192 ev");
        let ids: Vec<EventId> = (0..39).map(id).collect();
        let filter = |reply| BucketFilter {
            prefix: b3,
            reply,
            filter: WireFilter::build(ids.iter(), 39, 0.01, 7, b3),
        };
        let filters = Payload::Filters(vec![
            filter(true),
            filter(false),
            filter(true),
            filter(false),
        ]);
        let note = PacketNote::of(&filters);
        assert!(note.is_reply() && note.events().next().is_none());
        assert_eq!(
            note.to_string(),
            "b3* 39 ids reply, b3* 39 ids, b3* 39 ids reply +1 more"
        );
    }

    #[test]
    fn the_debug_form_is_the_old_strings() {
        let note = PacketNote::fresh("message", &id(0xab));
        assert_eq!(format!("{note:?}"), format!("{:?}", note.to_string()));
        let filter = NoteItem::Filter {
            prefix: Prefix::new(2, 0xb3).unwrap(),
            ids: 39,
            reply: true,
        };
        let note = PacketNote::new(5, [filter; 3]);
        assert_eq!(format!("{note:?}"), format!("{:?}", note.to_string()));
    }

    #[test]
    fn short_ids_print_as_event_ids_do() {
        let id = EventId::of_bytes(b"x");
        assert_eq!(ShortId::of(&id).to_string(), id.to_string());
        assert_eq!(
            ShortId::of(&id).to_u64(),
            u64::from_str_radix(&id.to_string(), 16).unwrap()
        );
    }
}
