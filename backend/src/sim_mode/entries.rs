//! The device API's views over a simulated device's events: the same `MessageRow`,
//! `FileContent` and `Counts` the SQLite queries produce, folded the same way (reactions in
//! time order with removals applied, attachment chunks counted), so `MessageView` and
//! `StatsView` need not know which store they came from.
//!
//! Kept as an index that grows by one event at a time, as SQLite's tables and indexes do:
//! a page of messages costs O(page × log n), a file its chunks, a count nothing. Building
//! every message for each request (and scanning the store for each attachment's chunks)
//! made a 100× run quadratic (issue 24).

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::{Event, EventBody, EventId, FileId, FileRef, InMemoryStore};

use crate::api::MessagesPage;
use crate::device::views::MessageView;
use crate::paging::{Cursor, PageRequest};
use crate::store::{fold_reaction, AttachmentRow, Counts, FileContent, MessageRow, ReactionRow};

/// One device's messages, reactions and file chunks, indexed.
#[derive(Debug, Clone)]
pub struct DeviceIndex {
    /// The device's name: its own events are counted apart.
    device: String,
    /// Every event indexed, whether or not it decoded: a catch-up pass skips these.
    seen: BTreeSet<EventId>,
    messages: BTreeMap<EventId, Message>,
    /// Every message's place in the order pages are cut in (`crate::paging`), oldest first.
    order: BTreeSet<Cursor>,
    /// message -> its reactions by (created at µs, id): the order they are folded in.
    reactions: BTreeMap<EventId, BTreeMap<(u64, EventId), ReactionRow>>,
    /// file -> chunk index -> (the chunk's count of chunks, the chunk event). Of two events
    /// with the same chunk, the higher id is kept, as a scan in id order would end on it.
    chunks: BTreeMap<FileId, BTreeMap<u16, (u32, EventId)>>,
    /// file -> the messages that attach it.
    attached_by: BTreeMap<FileId, BTreeSet<EventId>>,
    counts: Counts,
}

#[derive(Debug, Clone)]
struct Message {
    author: String,
    text: String,
    created_at_us: u64,
    auto: bool,
    attachment: Option<FileRef>,
}

/// What an event changed, for the device's live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Nothing,
    Message(EventId),
    /// A chunk of `file` arrived: (chunks held, chunks expected).
    Chunk {
        file: FileId,
        have: u32,
        total: u32,
    },
}

impl DeviceIndex {
    pub fn new(device: &str) -> Self {
        DeviceIndex {
            device: device.to_owned(),
            seen: BTreeSet::new(),
            messages: BTreeMap::new(),
            order: BTreeSet::new(),
            reactions: BTreeMap::new(),
            chunks: BTreeMap::new(),
            attached_by: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    /// An index of everything in `store` (tests, and the table that checks both paths).
    pub fn of_store(store: &InMemoryStore, device: &str) -> Self {
        let mut index = DeviceIndex::new(device);
        for (id, entry) in store.entries() {
            index.insert(*id, Some(&entry.event));
        }
        index
    }

    /// Events indexed, decoded or not.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn contains(&self, id: &EventId) -> bool {
        self.seen.contains(id)
    }

    /// Indexes event `id` (`None`: held but not readable, so only counted as seen); what it
    /// changed. An id seen before changes nothing.
    pub fn insert(&mut self, id: EventId, event: Option<&Event>) -> Changed {
        if !self.seen.insert(id) {
            return Changed::Nothing;
        }
        let Some(event) = event else {
            return Changed::Nothing;
        };
        self.counts.events += 1;
        if event.author.as_str() == self.device {
            self.counts.events_authored_by += 1;
        }
        let created_at_us = event.created_at.as_micros();
        match &event.body {
            EventBody::Message {
                text,
                attachment,
                auto,
            } => {
                self.counts.messages += 1;
                if let Some(file) = attachment {
                    self.attached_by.entry(file.file).or_default().insert(id);
                }
                self.messages.insert(
                    id,
                    Message {
                        author: event.author.to_string(),
                        text: text.clone(),
                        created_at_us,
                        auto: *auto,
                        attachment: attachment.clone(),
                    },
                );
                self.order.insert(Cursor::at(created_at_us, id));
                Changed::Message(id)
            }
            EventBody::Reaction {
                message,
                emoji,
                remove,
            } => {
                self.counts.reactions += 1;
                self.reactions.entry(*message).or_default().insert(
                    (created_at_us, id),
                    ReactionRow {
                        message: *message,
                        author: event.author.to_string(),
                        emoji: emoji.clone(),
                        remove: *remove,
                    },
                );
                Changed::Message(*message)
            }
            EventBody::FileChunk {
                file, index, count, ..
            } => {
                let held = self.chunks.entry(*file).or_default();
                let slot = held.entry(*index).or_insert((u32::from(*count), id));
                if id > slot.1 {
                    *slot = (u32::from(*count), id);
                }
                let (have, total) = progress(held);
                Changed::Chunk {
                    file: *file,
                    have,
                    total,
                }
            }
            EventBody::DeviceStatus { .. } | EventBody::Membership { .. } => Changed::Nothing,
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The message with its reactions folded and its attachment's progress.
    pub fn message(&self, id: &EventId) -> Option<MessageRow> {
        let m = self.messages.get(id)?;
        let mut reactions = BTreeMap::new();
        for reaction in self.reactions.get(id).into_iter().flat_map(|r| r.values()) {
            fold_reaction(&mut reactions, reaction.clone());
        }
        let attachment = m.attachment.as_ref().map(|f| AttachmentRow {
            file_id: f.file,
            name: f.name.clone(),
            mime: f.mime.clone(),
            size_bytes: f.size,
            chunks_total: u32::from(f.chunk_count().unwrap_or(0)),
            chunks_have: self.chunks.get(&f.file).map_or(0, |c| c.len() as u32),
        });
        Some(MessageRow {
            id: *id,
            author: m.author.clone(),
            text: m.text.clone(),
            created_at_us: m.created_at_us,
            auto: m.auto,
            reactions,
            attachment,
        })
    }

    /// The page `request` asks for, by the rule of [`crate::paging`]: the newest `limit`
    /// messages strictly older than `before` that match the search, answered oldest first,
    /// with the cursor of the page before. Only the page's rows are built; a search reads
    /// texts until the page is full.
    pub fn page(&self, request: &PageRequest) -> MessagesPage {
        let older = match request.before {
            Some(before) => self.order.range(..before),
            None => self.order.range(..),
        };
        let mut picked: Vec<Cursor> = Vec::with_capacity(request.limit + 1);
        for cursor in older.rev() {
            let matches = request.search.as_ref().is_none_or(|search| {
                self.messages.get(&cursor.id).is_some_and(|m| {
                    search.matches(&m.text, m.attachment.as_ref().map(|a| a.name.as_str()))
                })
            });
            if matches {
                picked.push(*cursor);
                if picked.len() > request.limit {
                    break;
                }
            }
        }
        let next = (picked.len() > request.limit).then(|| picked[request.limit - 1]);
        picked.truncate(request.limit);
        MessagesPage {
            messages: picked
                .iter()
                .rev()
                .filter_map(|c| self.message(&c.id))
                .map(MessageView::from)
                .collect(),
            next: next.map(|c| c.to_string()),
        }
    }

    /// Messages that attach `file`.
    pub fn messages_with_file(&self, file: &FileId) -> Vec<EventId> {
        self.attached_by
            .get(file)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The file's bytes once every chunk is here; `None` if nothing mentions it. `chunk`
    /// reads one chunk event's bytes (the index keeps ids, not bytes).
    pub fn file(
        &self,
        file: &FileId,
        chunk: impl Fn(&EventId) -> Option<Vec<u8>>,
    ) -> Option<FileContent> {
        let known = self
            .attached_by
            .get(file)
            .and_then(|ids| ids.first())
            .and_then(|id| self.messages.get(id))
            .and_then(|m| m.attachment.as_ref())
            .map(|f| (f.mime.clone(), u32::from(f.chunk_count().unwrap_or(0))));
        let held = self.chunks.get(file);
        let first = held.and_then(|h| h.first_key_value());
        let (mime, chunks_total) = match (known, first) {
            (Some(known), _) => known,
            (None, Some((_, (count, _)))) => ("application/octet-stream".to_owned(), *count),
            (None, None) => return None,
        };
        let chunks_have = held.map_or(0, |h| h.len() as u32);
        if chunks_have < chunks_total {
            return Some(FileContent::Partial {
                chunks_have,
                chunks_total,
            });
        }
        let mut bytes = Vec::new();
        for (_, id) in held.into_iter().flat_map(|h| h.values()) {
            match chunk(id) {
                Some(part) => bytes.extend_from_slice(&part),
                None => return Some(FileContent::Corrupt),
            }
        }
        if FileId::of_content(&bytes) != *file {
            return Some(FileContent::Corrupt);
        }
        Some(FileContent::Complete { mime, bytes })
    }
}

/// (chunks held, chunks expected) of a file, from its chunks alone.
fn progress(held: &BTreeMap<u16, (u32, EventId)>) -> (u32, u32) {
    let total = held.values().map(|(count, _)| *count).max().unwrap_or(0);
    (held.len() as u32, total)
}

/// The bytes of a chunk event, if that is what `event` is.
pub fn chunk_bytes(event: &Event) -> Option<Vec<u8>> {
    match &event.body {
        EventBody::FileChunk { bytes, .. } => Some(bytes.to_vec()),
        _ => None,
    }
}
