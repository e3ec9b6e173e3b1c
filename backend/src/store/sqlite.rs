//! The node's writer: core's `Store` on SQLite.

use std::path::Path;

use meshlog_core::{EventBody, EventId, OpenedEvent, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{configure, Durability, SCHEMA};
use super::DbError;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    durability: Durability,
    /// The connection's current `synchronous` setting, so it changes only when needed.
    synchronous: &'static str,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; whatever it held is there again.
    /// Commits are fully durable ([`Durability::Full`]).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with(path, Durability::Full)
    }

    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn,
            durability,
            synchronous: "FULL",
        })
    }

    fn insert_tx(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, DbError> {
        let synchronous = self.durability.synchronous_for(&event.event.author);
        if synchronous != self.synchronous {
            // Set between transactions: SQLite applies it to the next commit.
            self.conn.pragma_update(None, "synchronous", synchronous)?;
            self.synchronous = synchronous;
        }
        let tx = self.conn.transaction()?;
        let id = &event.id.0[..];
        let author = event.event.author.as_str();
        let created_at_us = i64::try_from(event.event.created_at.as_micros()).unwrap_or(i64::MAX);
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO events (event_id, account_id, received_ts, encrypted, kind)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                author,
                i64::try_from(received_at_us).unwrap_or(i64::MAX),
                event.sealed,
                event.event.body.kind_name()
            ],
        )? == 1;
        if !fresh {
            return Ok(false);
        }
        match &event.event.body {
            EventBody::Message {
                text,
                attachment,
                auto,
            } => {
                tx.execute(
                    "INSERT INTO messages (event_id, author, created_at_us, text, auto,
                        file_id, file_name, file_mime, file_size, file_chunks)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        id,
                        author,
                        created_at_us,
                        text,
                        auto,
                        attachment.as_ref().map(|f| f.file.0.to_vec()),
                        attachment.as_ref().map(|f| f.name.as_str()),
                        attachment.as_ref().map(|f| f.mime.as_str()),
                        attachment.as_ref().map(|f| f.size),
                        attachment.as_ref().map(|f| f.chunk_count),
                    ],
                )?;
            }
            EventBody::Reaction {
                message,
                emoji,
                remove,
            } => {
                tx.execute(
                    "INSERT INTO reactions (event_id, message_id, author, emoji, remove, created_at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, &message.0[..], author, emoji, remove, created_at_us],
                )?;
            }
            EventBody::FileChunk {
                file,
                index,
                count,
                bytes,
            } => {
                // Two messages may attach the same file: the first copy of a chunk is enough.
                tx.execute(
                    "INSERT OR IGNORE INTO file_chunks (file_id, chunk_index, chunk_count, bytes)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![&file.0[..], index, count, bytes],
                )?;
            }
            EventBody::DeviceStatus { .. } => {}
        }
        tx.commit()?;
        Ok(true)
    }
}

impl SqliteStore {
    /// `Store::next_epoch`, committed with a full fsync: it must outlive a power cut, or a
    /// restarted device could reuse an epoch its peers have seen.
    fn next_epoch_tx(&mut self, floor: u64) -> Result<u64, DbError> {
        if self.synchronous != "FULL" {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            self.synchronous = "FULL";
        }
        let tx = self.conn.transaction()?;
        let last: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| {
                row.get(0)
            })
            .optional()?;
        let last = last.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        // Stored as i64: clamp so the value read back is never below the one handed out.
        let epoch = meshlog_core::store::epoch_after(last, floor).min(i64::MAX as u64);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('epoch', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [epoch as i64],
        )?;
        tx.commit()?;
        Ok(epoch)
    }
}

fn backend(err: DbError) -> StoreError {
    StoreError::Backend(err.to_string())
}

impl Store for SqliteStore {
    /// Durable when it returns `Ok`: the transaction committed under `synchronous = FULL`.
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        self.insert_tx(event, received_at_us).map_err(backend)
    }

    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT encrypted FROM events WHERE event_id = ?1",
                [&id.0[..]],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| backend(err.into()))
    }

    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT event_id FROM events")
            .map_err(|err| backend(err.into()))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .map_err(|err| backend(err.into()))?;
        rows.map(|row| {
            let bytes = row.map_err(|err| backend(err.into()))?;
            let id: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    id: hex::encode(&bytes),
                    detail: format!("event id of {} bytes", bytes.len()),
                })?;
            Ok(EventId(id))
        })
        .collect()
    }

    fn len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|err| backend(err.into()))
    }

    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.next_epoch_tx(floor).map_err(backend)
    }
}
