//! Read-side queries for the HTTP layer, on their own connection.

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::{EventId, FileId};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::at_rest::Database;
use super::error::DbError;
use crate::paging::{Cursor, PageRequest, PAGE_LIMIT_MAX};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRow {
    pub id: EventId,
    pub author: String,
    pub text: String,
    pub created_at_us: u64,
    pub auto: bool,
    /// emoji -> authors currently reacting with it (removals applied in time order).
    pub reactions: BTreeMap<String, BTreeSet<String>>,
    pub attachment: Option<AttachmentRow>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Newest first.
    pub messages: Vec<MessageRow>,
    /// Ask with `before = next` for the page after this one; `None` on the last page.
    pub next: Option<Cursor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentRow {
    pub file_id: FileId,
    pub name: String,
    pub mime: String,
    pub size_bytes: u64,
    pub chunks_total: u32,
    pub chunks_have: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionRow {
    pub message: EventId,
    pub author: String,
    pub emoji: String,
    pub remove: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    pub messages: u64,
    pub reactions: u64,
    pub events_authored_by: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    Complete {
        mime: String,
        bytes: Vec<u8>,
    },
    Partial {
        chunks_have: u32,
        chunks_total: u32,
    },
    /// Every chunk is here but the bytes do not hash to the file id.
    Corrupt,
}

#[derive(Debug)]
pub struct StoreReader {
    conn: Connection,
}

const MESSAGE_COLUMNS: &str = "m.event_id, m.author, m.text, m.created_at_us, m.auto,
    m.file_id, m.file_name, m.file_mime, m.file_size, m.file_chunks,
    (SELECT COUNT(*) FROM file_chunks c WHERE c.file_id = m.file_id)";

impl StoreReader {
    /// Opens the database the writer created (open the `SqliteStore` first).
    pub fn open(db: &Database) -> Result<Self, DbError> {
        let conn =
            db.connect(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        configure_reader(&conn)?;
        Ok(StoreReader { conn })
    }

    /// One page of messages (those matching `request.search`, if any), newest first from just
    /// before `request.before`, with reactions folded in. `next` is set when older ones remain.
    pub fn page(&self, request: &PageRequest) -> Result<Page, DbError> {
        debug_assert!(request.limit >= 1 && request.limit <= PAGE_LIMIT_MAX);
        let (before_us, before_id) = match &request.before {
            Some(c) => (c.created_at_us, c.id.0.to_vec()),
            // Past every message: created_at is below i64::MAX and ids are 32 bytes.
            None => (i64::MAX, vec![0xff; 33]),
        };
        let fts5 = match &request.search {
            Some(search) if search.matches_nothing() => {
                return Ok(Page {
                    messages: Vec::new(),
                    next: None,
                })
            }
            Some(search) => Some(search.fts5()),
            None => None,
        };
        let search = fts5.as_deref();
        let matching = match search {
            None => "",
            Some(_) => {
                "AND m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?4)"
            }
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE (m.created_at_us, m.event_id) < (?1, ?2) {matching}
             ORDER BY m.created_at_us DESC, m.event_id DESC LIMIT ?3"
        );
        // One more than the page, to know whether another page follows.
        let fetch = request.limit as i64 + 1;
        let raw = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                let rows = match search {
                    None => stmt.query_map(params![before_us, before_id, fetch], message_row)?,
                    Some(q) => {
                        stmt.query_map(params![before_us, before_id, fetch, q], message_row)?
                    }
                };
                rows.collect::<Result<Vec<_>, _>>()
            })
            .map_err(|err| search_error(search, err))?;
        let mut messages = raw
            .into_iter()
            .map(MessageRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if messages.len() > request.limit {
            messages.truncate(request.limit);
            messages.last().map(|m| Cursor::at(m.created_at_us, m.id))
        } else {
            None
        };
        for message in &mut messages {
            for reaction in self.reactions(Some(&message.id))? {
                fold_reaction(&mut message.reactions, reaction);
            }
        }
        Ok(Page { messages, next })
    }

    pub fn message(&self, id: &EventId) -> Result<Option<MessageRow>, DbError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.seq = (SELECT seq FROM events WHERE event_id = ?1)"
        ))?;
        let Some(message) = stmt.query_row([&id.0[..]], message_row).optional()? else {
            return Ok(None);
        };
        let mut message = MessageRow::try_from(message)?;
        for reaction in self.reactions(Some(id))? {
            fold_reaction(&mut message.reactions, reaction);
        }
        Ok(Some(message))
    }

    /// Messages that attach `file` (usually one).
    pub fn messages_with_file(&self, file: &FileId) -> Result<Vec<EventId>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT event_id FROM messages WHERE file_id = ?1")?;
        let ids = stmt
            .query_map([&file.0[..]], |row| row.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|bytes| event_id(bytes)).collect()
    }

    /// The file's bytes if every chunk is here; `None` if no message or chunk mentions it.
    pub fn file(&self, file: &FileId) -> Result<Option<FileContent>, DbError> {
        let known: Option<(String, u32)> = self
            .conn
            .query_row(
                "SELECT file_mime, file_chunks FROM messages WHERE file_id = ?1 LIMIT 1",
                [&file.0[..]],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT chunk_count, bytes FROM file_chunks WHERE file_id = ?1 ORDER BY chunk_index",
        )?;
        let chunks = stmt
            .query_map([&file.0[..]], |row| {
                Ok((row.get::<_, u32>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let (mime, chunks_total) = match (known, chunks.first()) {
            (Some(known), _) => known,
            (None, Some((count, _))) => ("application/octet-stream".to_owned(), *count),
            (None, None) => return Ok(None),
        };
        let chunks_have = chunks.len() as u32;
        if chunks_have < chunks_total {
            return Ok(Some(FileContent::Partial {
                chunks_have,
                chunks_total,
            }));
        }
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|(_, b)| b).collect();
        if FileId::of_content(&bytes) != *file {
            return Ok(Some(FileContent::Corrupt));
        }
        Ok(Some(FileContent::Complete { mime, bytes }))
    }

    /// (chunks held, chunks expected) for a file, from its chunks alone.
    pub fn file_progress(&self, file: &FileId) -> Result<Option<(u32, u32)>, DbError> {
        let (have, total) = self.conn.query_row(
            "SELECT COUNT(*), MAX(chunk_count) FROM file_chunks WHERE file_id = ?1",
            [&file.0[..]],
            |row| Ok((row.get::<_, u32>(0)?, row.get::<_, Option<u32>>(1)?)),
        )?;
        Ok(total.map(|total| (have, total)))
    }

    /// True counts for `/api/stats`; `device` is this device, whose own events count as local.
    pub fn counts(&self, device: &str) -> Result<Counts, DbError> {
        let count = |sql: &str| -> Result<u64, DbError> {
            Ok(self.conn.query_row(sql, [], |row| row.get::<_, i64>(0))? as u64)
        };
        Ok(Counts {
            events: count("SELECT COUNT(*) FROM events")?,
            messages: count("SELECT COUNT(*) FROM messages")?,
            reactions: count("SELECT COUNT(*) FROM reactions")?,
            events_authored_by: self.conn.query_row(
                "SELECT COUNT(*) FROM events WHERE account_id = ?1",
                params![device],
                |row| row.get::<_, i64>(0),
            )? as u64,
        })
    }

    fn reactions(&self, message: Option<&EventId>) -> Result<Vec<ReactionRow>, DbError> {
        let sql = "SELECT message_id, author, emoji, remove FROM reactions
                   WHERE ?1 IS NULL OR message_id = ?1 ORDER BY created_at_us, event_id";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map([message.map(|m| m.0.to_vec())], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(message, author, emoji, remove)| {
                Ok(ReactionRow {
                    message: event_id(&message)?,
                    author,
                    emoji,
                    remove,
                })
            })
            .collect()
    }
}

/// SQLite reports a malformed MATCH expression as a plain `SQLITE_ERROR` ("fts5: syntax
/// error", "no such column", "unterminated string"): with a search in the query that is the
/// client's mistake. Full disks, I/O and busy errors have their own codes and stay 5xx.
fn search_error(search: Option<&str>, err: rusqlite::Error) -> DbError {
    match (&err, search) {
        (rusqlite::Error::SqliteFailure(code, message), Some(_))
            if code.code == rusqlite::ErrorCode::Unknown =>
        {
            DbError::BadQuery(message.clone().unwrap_or_else(|| err.to_string()))
        }
        _ => err.into(),
    }
}

fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    // journal_mode is a property of the database file, which the writer already set to WAL.
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

/// Later reactions win: an author's `remove` takes them off that emoji.
pub(crate) fn fold_reaction(into: &mut BTreeMap<String, BTreeSet<String>>, reaction: ReactionRow) {
    if reaction.remove {
        if let Some(authors) = into.get_mut(&reaction.emoji) {
            authors.remove(&reaction.author);
            if authors.is_empty() {
                into.remove(&reaction.emoji);
            }
        }
    } else {
        into.entry(reaction.emoji)
            .or_default()
            .insert(reaction.author);
    }
}

fn event_id(bytes: &[u8]) -> Result<EventId, DbError> {
    let id: [u8; 32] = bytes
        .try_into()
        .map_err(|_| DbError::Corrupt(format!("id of {} bytes", bytes.len())))?;
    Ok(EventId(id))
}

/// A `messages` row as SQLite holds it, before ids are checked.
struct RawMessage {
    id: Vec<u8>,
    author: String,
    text: String,
    created_at_us: i64,
    auto: bool,
    file: Option<(Vec<u8>, String, String, i64, u32, u32)>,
}

fn message_row(row: &Row<'_>) -> rusqlite::Result<RawMessage> {
    let file_id: Option<Vec<u8>> = row.get(5)?;
    let file = match file_id {
        None => None,
        Some(file) => Some((
            file,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
        )),
    };
    Ok(RawMessage {
        id: row.get(0)?,
        author: row.get(1)?,
        text: row.get(2)?,
        created_at_us: row.get(3)?,
        auto: row.get(4)?,
        file,
    })
}

impl TryFrom<RawMessage> for MessageRow {
    type Error = DbError;
    fn try_from(raw: RawMessage) -> Result<Self, DbError> {
        let attachment = match raw.file {
            None => None,
            Some((file, name, mime, size_bytes, chunks_total, chunks_have)) => {
                let file: [u8; 32] = file
                    .as_slice()
                    .try_into()
                    .map_err(|_| DbError::Corrupt(format!("file id of {} bytes", file.len())))?;
                Some(AttachmentRow {
                    file_id: FileId(file),
                    name,
                    mime,
                    size_bytes: size_bytes.max(0) as u64,
                    chunks_total,
                    chunks_have,
                })
            }
        };
        Ok(MessageRow {
            id: event_id(&raw.id)?,
            author: raw.author,
            text: raw.text,
            created_at_us: raw.created_at_us.max(0) as u64,
            auto: raw.auto,
            reactions: BTreeMap::new(),
            attachment,
        })
    }
}
