//! The device API's views over a simulated device's in-memory store: the same `MessageRow`,
//! `FileContent` and `Counts` the SQLite queries produce, folded the same way (reactions in
//! time order with removals applied, attachment chunks counted), so `MessageView` and
//! `StatsView` need not know which store they came from.

use std::collections::BTreeMap;

use meshlog_core::store::StoredEntry;
use meshlog_core::{EventBody, EventId, FileId, InMemoryStore};

use crate::store::{fold_reaction, AttachmentRow, Counts, FileContent, MessageRow, ReactionRow};

/// Every message with its reactions and attachment progress, oldest first (as SQLite orders
/// them: by creation time, then id).
pub fn messages(store: &InMemoryStore) -> Vec<MessageRow> {
    let mut rows: Vec<MessageRow> = store
        .entries()
        .filter_map(|(id, entry)| message_row(store, id, entry))
        .collect();
    rows.sort_by_key(|m| (m.created_at_us, m.id));
    let mut by_id: BTreeMap<EventId, usize> = BTreeMap::new();
    for (i, m) in rows.iter().enumerate() {
        by_id.insert(m.id, i);
    }
    for reaction in reactions(store, None) {
        if let Some(&i) = by_id.get(&reaction.message) {
            fold_reaction(&mut rows[i].reactions, reaction);
        }
    }
    rows
}

pub fn message(store: &InMemoryStore, id: &EventId) -> Option<MessageRow> {
    let entry = store.entries().find(|(i, _)| *i == id)?.1;
    let mut row = message_row(store, id, entry)?;
    for reaction in reactions(store, Some(id)) {
        fold_reaction(&mut row.reactions, reaction);
    }
    Some(row)
}

/// Messages that attach `file`.
pub fn messages_with_file(store: &InMemoryStore, file: &FileId) -> Vec<EventId> {
    store
        .entries()
        .filter(|(_, e)| {
            matches!(&e.event.body, EventBody::Message { attachment: Some(f), .. } if f.file == *file)
        })
        .map(|(id, _)| *id)
        .collect()
}

/// The file's bytes once every chunk is here; `None` if nothing mentions it.
pub fn file(store: &InMemoryStore, file: &FileId) -> Option<FileContent> {
    let known = store.entries().find_map(|(_, e)| match &e.event.body {
        EventBody::Message {
            attachment: Some(f),
            ..
        } if f.file == *file => Some((f.mime.clone(), u32::from(f.chunk_count))),
        _ => None,
    });
    let chunks = chunks(store, file);
    let (mime, chunks_total) = match (known, chunks.first_key_value()) {
        (Some(known), _) => known,
        (None, Some((_, (count, _)))) => ("application/octet-stream".to_owned(), *count),
        (None, None) => return None,
    };
    let chunks_have = chunks.len() as u32;
    if chunks_have < chunks_total {
        return Some(FileContent::Partial {
            chunks_have,
            chunks_total,
        });
    }
    let bytes: Vec<u8> = chunks.into_values().flat_map(|(_, b)| b.to_vec()).collect();
    if FileId::of_content(&bytes) != *file {
        return Some(FileContent::Corrupt);
    }
    Some(FileContent::Complete { mime, bytes })
}

/// (chunks held, chunks expected) of a file, from its chunks alone.
pub fn file_progress(store: &InMemoryStore, file: &FileId) -> Option<(u32, u32)> {
    let chunks = chunks(store, file);
    let total = chunks.values().map(|(count, _)| *count).max()?;
    Some((chunks.len() as u32, total))
}

pub fn counts(store: &InMemoryStore, device: &str) -> Counts {
    let mut counts = Counts {
        events: 0,
        messages: 0,
        reactions: 0,
        events_authored_by: 0,
    };
    for (_, entry) in store.entries() {
        counts.events += 1;
        match entry.event.body {
            EventBody::Message { .. } => counts.messages += 1,
            EventBody::Reaction { .. } => counts.reactions += 1,
            _ => {}
        }
        if entry.event.author.as_str() == device {
            counts.events_authored_by += 1;
        }
    }
    counts
}

/// index -> (chunk count, bytes) of `file`'s chunks held.
fn chunks<'a>(store: &'a InMemoryStore, file: &FileId) -> BTreeMap<u16, (u32, &'a [u8])> {
    store
        .entries()
        .filter_map(|(_, e)| match &e.event.body {
            EventBody::FileChunk {
                file: f,
                index,
                count,
                bytes,
            } if f == file => Some((*index, (u32::from(*count), bytes.as_slice()))),
            _ => None,
        })
        .collect()
}

fn message_row(store: &InMemoryStore, id: &EventId, entry: &StoredEntry) -> Option<MessageRow> {
    let EventBody::Message {
        text,
        attachment,
        auto,
    } = &entry.event.body
    else {
        return None;
    };
    let attachment = attachment.as_ref().map(|f| AttachmentRow {
        file_id: f.file,
        name: f.name.clone(),
        mime: f.mime.clone(),
        size_bytes: u64::from(f.size),
        chunks_total: u32::from(f.chunk_count),
        chunks_have: chunks(store, &f.file).len() as u32,
    });
    Some(MessageRow {
        id: *id,
        author: entry.event.author.to_string(),
        text: text.clone(),
        created_at_us: entry.event.created_at.as_micros(),
        auto: *auto,
        reactions: BTreeMap::new(),
        attachment,
    })
}

/// Reactions (to `message`, or to any), in time order then id, as SQLite returns them.
fn reactions(store: &InMemoryStore, message: Option<&EventId>) -> Vec<ReactionRow> {
    let mut found: Vec<(u64, EventId, ReactionRow)> = store
        .entries()
        .filter_map(|(id, e)| match &e.event.body {
            EventBody::Reaction {
                message: m,
                emoji,
                remove,
            } if message.is_none_or(|wanted| wanted == m) => Some((
                e.event.created_at.as_micros(),
                *id,
                ReactionRow {
                    message: *m,
                    author: e.event.author.to_string(),
                    emoji: emoji.clone(),
                    remove: *remove,
                },
            )),
            _ => None,
        })
        .collect();
    found.sort_by_key(|r| (r.0, r.1));
    found.into_iter().map(|(_, _, r)| r).collect()
}
