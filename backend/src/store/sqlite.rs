//! The node's writer: core's `Store` on SQLite, with group commit.
//!
//! Events that need `synchronous = FULL` (this device's own, under `FullForOwn`) commit before
//! `insert`/`insert_all` returns. Events that may commit less strictly (received ones) go into
//! one open transaction that `commit` ends: the driver calls it after each batch of inputs, so
//! a burst of pushed events costs one commit, not one per event.

use meshlog_core::blob::BlobStore;
use meshlog_core::{EventBody, EventId, OpenedEvent, Store, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::at_rest::Database;
use super::error::DbError;
use super::schema::{configure, make_private, migrate, Durability};

/// A batch transaction commits on its own once it holds this many events, so a caller that
/// never calls `commit` still bounds the WAL and what a crash can take back.
const BATCH_EVENTS_MAX: usize = 8_192;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    durability: Durability,
    /// The connection's current `synchronous` setting, so it changes only when needed.
    synchronous: &'static str,
    /// Whether a batch transaction (of events that may commit `NORMAL`) is open.
    batch_open: bool,
    /// Fresh events in the open batch.
    batch_len: usize,
    /// The device's files (`crate::files`), offered to the node for the blob transfer; the
    /// same store the HTTP API uploads into and serves from.
    blobs: Option<crate::files::NodeBlobs>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database; whatever it held is there again. Commits are
    /// fully durable ([`Durability::Full`]).
    pub fn open(db: &Database) -> Result<Self, DbError> {
        Self::open_with(db, Durability::Full)
    }

    /// Opens the database 0600 under its key, creating tables and the search index if
    /// missing, and encrypting it first if an older version left it in plaintext.
    pub fn open_with(db: &Database, durability: Durability) -> Result<Self, DbError> {
        let path = db.path();
        make_private(path).map_err(|err| DbError::Io(path.to_owned(), err))?;
        db.encrypt_if_plaintext()?;
        let mut conn = db.connect(OpenFlags::default())?;
        configure(&conn)?;
        migrate(&mut conn)?;
        // The WAL and its index now exist; narrow them if an older version left them wider.
        make_private(path).map_err(|err| DbError::Io(path.to_owned(), err))?;
        Ok(SqliteStore {
            conn,
            durability,
            synchronous: "FULL",
            batch_open: false,
            batch_len: 0,
            blobs: None,
        })
    }

    /// Offers `blobs` to the node ([`Store::blobs`]): it then fetches the files its messages
    /// refer to and serves the ones held here.
    pub fn with_blobs(mut self, blobs: crate::files::NodeBlobs) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Caps the database at `pages` pages (4 KiB each): beyond it, writes fail as on a full
    /// disk. A quota for the operator, and how tests make a full disk.
    pub fn limit_pages(&self, pages: u32) -> Result<(), DbError> {
        self.conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    fn set_synchronous(&mut self, synchronous: &'static str) -> Result<(), DbError> {
        if synchronous != self.synchronous {
            // Set between transactions: SQLite applies it to the next commit.
            self.conn.pragma_update(None, "synchronous", synchronous)?;
            self.synchronous = synchronous;
        }
        Ok(())
    }

    /// Ends a transaction after an error. SQLite may already have rolled it back itself (it
    /// does on a full disk), so "no transaction is active" is not a failure here.
    fn roll_back(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(err) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(%err, "rollback failed");
            }
        }
        self.batch_open = false;
        self.batch_len = 0;
    }

    /// Commits the open batch, if any.
    pub fn commit_batch(&mut self) -> Result<(), DbError> {
        if !self.batch_open {
            return Ok(());
        }
        let lost = self.batch_len;
        if let Err(err) = self.conn.execute_batch("COMMIT") {
            self.roll_back();
            tracing::error!(%err, lost, "a batch of received events failed to commit");
            return Err(err.into());
        }
        self.batch_open = false;
        self.batch_len = 0;
        Ok(())
    }

    /// One event that may wait for the batch commit.
    fn insert_batched(
        &mut self,
        event: &OpenedEvent,
        received_at_us: u64,
    ) -> Result<bool, DbError> {
        if !self.batch_open {
            self.set_synchronous("NORMAL")?;
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.batch_open = true;
        }
        match write_event(&self.conn, event, received_at_us) {
            Ok(fresh) => {
                self.batch_len += usize::from(fresh);
                if self.batch_len >= BATCH_EVENTS_MAX {
                    self.commit_batch()?;
                }
                Ok(fresh)
            }
            Err(err) => {
                if self.conn.is_autocommit() {
                    // SQLite rolled the whole batch back (a full disk does that).
                    tracing::error!(%err, lost = self.batch_len, "a batch of received events was rolled back");
                    self.batch_open = false;
                    self.batch_len = 0;
                }
                Err(err.into())
            }
        }
    }

    /// `events` in one transaction, committed before returning: all stored, or none.
    fn insert_all_tx(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<Vec<bool>, DbError> {
        self.commit_batch()?;
        let full = events
            .iter()
            .any(|e| self.durability.synchronous_for(&e.event.author) == "FULL");
        self.set_synchronous(if full { "FULL" } else { "NORMAL" })?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            match write_event(&self.conn, event, received_at_us) {
                Ok(f) => fresh.push(f),
                Err(err) => {
                    self.roll_back();
                    return Err(err.into());
                }
            }
        }
        if let Err(err) = self.conn.execute_batch("COMMIT") {
            self.roll_back();
            return Err(err.into());
        }
        Ok(fresh)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(err) = self.commit_batch() {
            tracing::error!(%err, "committing the last batch on close");
        }
    }
}

/// Writes one event and its decrypted view, inside the caller's transaction.
fn write_event(
    conn: &Connection,
    event: &OpenedEvent,
    received_at_us: u64,
) -> rusqlite::Result<bool> {
    let id = &event.id.0[..];
    let author = event.event.author.as_str();
    let created_at_us = i64::try_from(event.event.created_at.as_micros()).unwrap_or(i64::MAX);
    let fresh =
        conn.prepare_cached(
            "INSERT OR IGNORE INTO events (event_id, account_id, received_ts, encrypted, kind)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            author,
            i64::try_from(received_at_us).unwrap_or(i64::MAX),
            event.sealed,
            event.event.body.kind_name()
        ])? == 1;
    if !fresh {
        return Ok(false);
    }
    // The row just appended: the views are keyed by it.
    let seq = conn.last_insert_rowid();
    match &event.event.body {
        EventBody::Message {
            text,
            attachment,
            auto,
        } => {
            conn.prepare_cached(
                "INSERT INTO messages (seq, event_id, author, created_at_us, text, auto,
                    file_id, file_name, file_mime, file_size, file_chunks)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                seq,
                id,
                author,
                created_at_us,
                text,
                auto,
                attachment.as_ref().map(|f| f.file.0.to_vec()),
                attachment.as_ref().map(|f| f.name.as_str()),
                attachment.as_ref().map(|f| f.mime.as_str()),
                attachment.as_ref().map(|f| f.size),
                // 0 for a blob: a file sent as chunks has at least one.
                attachment.as_ref().map(|f| f.chunk_count().unwrap_or(0)),
            ])?;
            // Not a trigger on `messages`: a statement with a trigger opens a savepoint, and
            // FTS5 writes its pending words to disk as a new segment at every savepoint, so
            // each message became a segment to merge (a sixth of ingest's time). Written
            // here, the words of a whole batch go to disk once, at its commit.
            conn.prepare_cached(
                "INSERT INTO messages_fts (rowid, text, file_name) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                seq,
                text,
                attachment.as_ref().map(|f| f.name.as_str())
            ])?;
        }
        EventBody::Reaction {
            message,
            emoji,
            remove,
        } => {
            conn.prepare_cached(
                "INSERT INTO reactions (seq, event_id, message_id, author, emoji, remove,
                    created_at_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                seq,
                id,
                &message.0[..],
                author,
                emoji,
                remove,
                created_at_us
            ])?;
        }
        EventBody::FileChunk {
            file,
            index,
            count,
            bytes,
        } => {
            // Two messages may attach the same file: the first copy of a chunk is enough.
            conn.prepare_cached(
                "INSERT OR IGNORE INTO file_chunks (file_id, chunk_index, chunk_count, bytes)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&file.0[..], index, count, bytes])?;
        }
        EventBody::DeviceStatus { .. } | EventBody::Membership { .. } => {}
    }
    Ok(true)
}

impl SqliteStore {
    /// `Store::next_epoch`, committed with a full fsync: it must outlive a power cut, or a
    /// restarted device could reuse an epoch its peers have seen.
    fn next_epoch_tx(&mut self, floor: u64) -> Result<u64, DbError> {
        self.commit_batch()?;
        self.set_synchronous("FULL")?;
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

    /// `Store::set_secrets`, committed with a full fsync like the epoch: a receive key that
    /// peers seal epoch keys to must outlive a power cut.
    fn set_secrets_tx(&mut self, secrets: &[u8]) -> Result<(), DbError> {
        self.commit_batch()?;
        self.set_synchronous("FULL")?;
        self.conn.execute(
            "INSERT INTO secrets (name, value) VALUES ('receive_keys', ?1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [secrets],
        )?;
        Ok(())
    }
}

fn backend(err: DbError) -> StoreError {
    StoreError::Backend(err.to_string())
}

impl Store for SqliteStore {
    /// An event that needs `synchronous = FULL` is durable when this returns `Ok`; one that
    /// may commit `NORMAL` waits in the batch for `commit`.
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        let result = if self.durability.synchronous_for(&event.event.author) == "FULL" {
            self.insert_all_tx(std::slice::from_ref(event), received_at_us)
                .map(|fresh| fresh[0])
        } else {
            self.insert_batched(event, received_at_us)
        };
        result.map_err(backend)
    }

    /// One transaction, committed (durably, for own events) before it returns.
    fn insert_all(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<(), StoreError> {
        self.insert_all_tx(events, received_at_us)
            .map(|_| ())
            .map_err(backend)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.commit_batch().map_err(backend)
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

    /// Messages and reactions carry the times (a message's file chunks are stamped before
    /// it). Once per start: the index on message times makes that half cheap.
    fn created_at_max(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(created_at_us) FROM messages), 0),
                            COALESCE((SELECT MAX(created_at_us) FROM reactions), 0))",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|us| us.max(0) as u64)
            .map_err(|err| backend(err.into()))
    }

    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.next_epoch_tx(floor).map_err(backend)
    }

    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM secrets WHERE name = 'receive_keys'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| backend(err.into()))
    }

    fn set_secrets(&mut self, secrets: &[u8]) -> Result<bool, StoreError> {
        self.set_secrets_tx(secrets).map_err(backend)?;
        Ok(true)
    }

    fn blobs(&mut self) -> Option<&mut dyn BlobStore> {
        self.blobs.as_mut().map(|blobs| blobs as &mut dyn BlobStore)
    }

    /// From the partial index on membership events: a start reads only those.
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT event_id, encrypted FROM events WHERE kind = 'membership' ORDER BY seq",
            )
            .map_err(|err| backend(err.into()))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|err| backend(err.into()))?;
        rows.map(|row| {
            let (id, sealed) = row.map_err(|err| backend(err.into()))?;
            let id: [u8; 32] = id.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                id: hex::encode(&id),
                detail: format!("event id of {} bytes", id.len()),
            })?;
            Ok((EventId(id), sealed))
        })
        .collect()
    }
}
