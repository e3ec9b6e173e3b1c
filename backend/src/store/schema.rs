//! Tables and connection settings shared by the writer and the reader.

use rusqlite::Connection;

/// The seed's plan: `events` holds every verified event as received; `messages`, `reactions`
/// and `file_chunks` are decrypted views kept current in the same transaction as the insert,
/// so the views never disagree with `events`.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    event_id    BLOB PRIMARY KEY,       -- blake3 of `encrypted`, 32 bytes
    account_id  TEXT NOT NULL,          -- author device name
    received_ts INTEGER NOT NULL,       -- microseconds since the Unix epoch, when stored here
    encrypted   BLOB NOT NULL,          -- sealed bytes, exactly as sent on the wire
    kind        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    event_id      BLOB PRIMARY KEY REFERENCES events(event_id),
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
-- Full-text index over the text and the attachment name, kept by the trigger below in the
-- insert's own transaction. External content: the words live in `messages`, keyed by its rowid
-- (stable, since messages are never deleted and the database is never VACUUMed).
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text, file_name, content='messages', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text, file_name) VALUES (new.rowid, new.text, new.file_name);
END;
CREATE INDEX IF NOT EXISTS messages_by_file ON messages(file_id);
CREATE TABLE IF NOT EXISTS reactions (
    event_id      BLOB PRIMARY KEY REFERENCES events(event_id),
    message_id    BLOB NOT NULL,
    author        TEXT NOT NULL,
    emoji         TEXT NOT NULL,
    remove        INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reactions_by_message ON reactions(message_id);
-- Small facts about this device's store; `epoch` = the last run's packet epoch.
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

/// Creates the tables, and the search index of a database written before it existed.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let had_search: bool = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_fts'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    conn.execute_batch(SCHEMA)?;
    if !had_search {
        conn.execute_batch("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")?;
    }
    Ok(())
}

/// The database and its `-wal`/`-shm` files hold decrypted messages: owner only. The file is
/// created 0600 before SQLite opens it (SQLite gives `-wal` and `-shm` the database file's
/// mode), and files left by an older version are narrowed.
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
