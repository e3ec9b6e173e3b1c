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
CREATE TABLE IF NOT EXISTS file_chunks (
    file_id     BLOB NOT NULL,
    chunk_index INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    bytes       BLOB NOT NULL,
    PRIMARY KEY (file_id, chunk_index)
);
";

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous = FULL`: every commit fsyncs the log before `COMMIT` returns, so
    /// an event acknowledged with HTTP 201 survives a killed process *and* a power cut. What
    /// the device server uses: it is what "201 means on disk" promises.
    #[default]
    Full,
    /// WAL with `synchronous = NORMAL`: the log is written (to the OS) on commit but fsynced
    /// only at checkpoints. Survives a killed process, not a power cut. For measurements and
    /// throwaway stores only.
    Normal,
}

pub fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The reader may query while the writer checkpoints; wait briefly instead of failing.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}
