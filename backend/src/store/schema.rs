//! Tables and connection settings shared by the writer and the reader.

use rusqlite::Connection;

use super::error::DbError;

/// The layout this version writes, kept in the database's `user_version`. Version 1 (no
/// number recorded) keyed every table by the 32-byte event id; [`migrate`] rewrites it.
pub const SCHEMA_VERSION: i64 = 2;

/// The seed's plan: `events` holds every verified event as received; `messages`, `reactions`
/// and `file_chunks` are decrypted views kept current in the same transaction as the insert,
/// so the views never disagree with `events`.
///
/// Why the keys look like this (ingest speed): event ids are random hashes, so every index
/// keyed by one takes each insert to a random page, and with WAL every page a commit dirties
/// is written to the log again. Such an index costs about one page written per event once it
/// outgrows a batch; rows appended in insert order share their pages. So each stored event
/// has one random-key index (`events.event_id`, which dedupes and finds events), and the views
/// are keyed by the event's `seq` (an INTEGER rowid, appended): version 1 gave `messages` and
/// `reactions` a second random-key index each, and 512 received messages then wrote ~900 log
/// pages, not ~500. Not `WITHOUT ROWID`: there the whole ~250-byte row sits in the
/// random-key tree, which then spans five times the pages of an index of ids.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,    -- rowid, in insert order; the views refer to it
    event_id    BLOB NOT NULL UNIQUE,   -- blake3 of `encrypted`, 32 bytes
    account_id  TEXT NOT NULL,          -- author device name
    received_ts INTEGER NOT NULL,       -- microseconds since the Unix epoch, when stored here
    encrypted   BLOB NOT NULL,          -- sealed bytes, exactly as sent on the wire
    kind        TEXT NOT NULL
);
-- Membership events, read whole at every start to settle the roster: a few among millions.
CREATE INDEX IF NOT EXISTS events_membership ON events(seq) WHERE kind = 'membership';
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY REFERENCES events(seq),
    event_id      BLOB NOT NULL,        -- the event's id again: pages order by (time, id)
    author        TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    text          TEXT NOT NULL,
    auto          INTEGER NOT NULL,
    file_id       BLOB,
    file_name     TEXT,
    file_mime     TEXT,
    file_size     INTEGER,
    file_chunks   INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages(created_at_us, event_id);
-- Full-text index over the text and the attachment name, written by the writer in the
-- insert's own transaction. External content: the words live in `messages`, keyed by its rowid
-- (stable, since messages are never deleted and the database is never VACUUMed).
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text, file_name, content='messages', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
-- Only messages with a file: most have none, and they need no entry.
CREATE INDEX IF NOT EXISTS messages_by_file ON messages(file_id) WHERE file_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS reactions (
    seq           INTEGER PRIMARY KEY REFERENCES events(seq),
    event_id      BLOB NOT NULL,        -- orders reactions made in the same microsecond
    message_id    BLOB NOT NULL,        -- an id, not a seq: the message may arrive later
    author        TEXT NOT NULL,
    emoji         TEXT NOT NULL,
    remove        INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reactions_by_message ON reactions(message_id);
-- Small facts about this device's store; `epoch` = the last run's packet epoch.
-- This device's receive-key secrets (forward secrecy, `core/src/node/membership.rs`): one blob,
-- replaced whole, deleted from as keys expire.
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS file_chunks (
    file_id     BLOB NOT NULL,
    chunk_index INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    bytes       BLOB NOT NULL,
    PRIMARY KEY (file_id, chunk_index)
);
";

/// Version 1's tables and indexes, renamed out of the way and copied into version 2's in
/// insert order (so `seq` follows the order events arrived in); then the search index is
/// rebuilt from the copied messages.
const FROM_VERSION_1: &str = "
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TABLE IF EXISTS messages_fts;
DROP INDEX IF EXISTS messages_by_time;
DROP INDEX IF EXISTS messages_by_file;
DROP INDEX IF EXISTS reactions_by_message;
ALTER TABLE events RENAME TO events_v1;
ALTER TABLE messages RENAME TO messages_v1;
ALTER TABLE reactions RENAME TO reactions_v1;
";

const COPY_VERSION_1: &str = "
INSERT INTO events (event_id, account_id, received_ts, encrypted, kind)
    SELECT event_id, account_id, received_ts, encrypted, kind FROM events_v1 ORDER BY rowid;
INSERT INTO messages (seq, event_id, author, created_at_us, text, auto,
        file_id, file_name, file_mime, file_size, file_chunks)
    SELECT e.seq, m.event_id, m.author, m.created_at_us, m.text, m.auto,
        m.file_id, m.file_name, m.file_mime, m.file_size, m.file_chunks
    FROM messages_v1 m JOIN events e ON e.event_id = m.event_id ORDER BY e.seq;
INSERT INTO reactions (seq, event_id, message_id, author, emoji, remove, created_at_us)
    SELECT e.seq, r.event_id, r.message_id, r.author, r.emoji, r.remove, r.created_at_us
    FROM reactions_v1 r JOIN events e ON e.event_id = r.event_id ORDER BY e.seq;
DROP TABLE reactions_v1;
DROP TABLE messages_v1;
DROP TABLE events_v1;
";

/// Creates the tables, or brings a database written by an earlier version up to this one, in
/// one transaction: a failure (a full disk) leaves the old layout as it was.
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(DbError::NewerLayout {
            version,
            supported: SCHEMA_VERSION,
        });
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let table_exists = |name: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
            [name],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )
    };
    // Layout 1 recorded no version; its `events` had no `seq`.
    let version_1 = table_exists("events")?
        && tx.query_row(
            "SELECT COUNT(*) = 0 FROM pragma_table_info('events') WHERE name = 'seq'",
            [],
            |row| row.get::<_, bool>(0),
        )?;
    let had_search = table_exists("messages_fts")?;
    if version_1 {
        tracing::info!("rewriting the database from layout 1 to {SCHEMA_VERSION}");
        tx.execute_batch(FROM_VERSION_1)?;
    }
    tx.execute_batch(SCHEMA)?;
    if version_1 {
        tx.execute_batch(COPY_VERSION_1)?;
    }
    if version_1 || !had_search {
        tx.execute_batch("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The database and its `-wal`/`-shm` files are encrypted, and still the owner's only (a
/// second guard; they show sizes and times). The file is created 0600 before SQLite opens it
/// (SQLite gives `-wal` and `-shm` the database file's mode), and files left by an older
/// version are narrowed.
pub fn make_private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// How hard a commit tries to reach the disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous = FULL`: every commit fsyncs the log before `COMMIT` returns, so
    /// the event survives a killed process *and* a power cut.
    #[default]
    Full,
    /// WAL with `synchronous = NORMAL`: the log is written (to the OS) on commit but fsynced
    /// only at checkpoints. Survives a killed process, not a power cut.
    Normal,
    /// What the device server uses. `Full` for events this device authored: those are the
    /// ones answered with HTTP 201, and nobody else may hold them yet. `Normal` for events
    /// received from peers: they survive a killed process, and the few a power cut could take
    /// are still held by the peer they came from, so the next anti-entropy round brings them
    /// back. WAL keeps commits in order, so a later `Full` commit also makes every earlier
    /// `Normal` one durable. About ten times the ingest rate of `Full` for received events.
    FullForOwn(meshlog_core::DeviceId),
}

impl Durability {
    /// The `synchronous` setting a commit of an event by `author` needs.
    pub(super) fn synchronous_for(&self, author: &meshlog_core::DeviceId) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
            Durability::FullForOwn(me) if me == author => "FULL",
            Durability::FullForOwn(_) => "NORMAL",
        }
    }
}

/// The writer's page cache: the id indexes of a few hundred thousand events.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Log pages between automatic checkpoints (4 KiB each: ~40 MB).
const WAL_CHECKPOINT_PAGES: i64 = 10_000;
/// What the log file is truncated to after a checkpoint.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// `synchronous` starts at FULL; the writer lowers it per commit as its `Durability` allows.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A replaced or deleted receive-key secret is overwritten with zeros in the file, not left
    // in a free page (forward secrecy). Rows are otherwise never deleted, so it costs nothing.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Event ids are random, so inserts land all over the id indexes: a page cache that holds
    // them (SQLite's default is 2 MB) keeps ingest off the disk. Negative = KiB; bounded.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Checkpoint every ~40 MB of log rather than SQLite's 4 MB: a batch of received events
    // with random ids dirties a page per index entry (~1,000 pages per 512 events), so the
    // default checkpointed, and fsynced, after nearly every batch, and copied pages that the
    // next batches dirty again. Reads stay correct with a longer log; it is bounded by this.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    // After a checkpoint, shrink the log file back to this, so its disk use stays bounded.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
    // The reader may query while the writer checkpoints; wait briefly instead of failing.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}
