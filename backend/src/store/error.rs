//! What storage can fail with.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    /// SQLite refused the search's FTS5 query (a 400; `paging::Search` makes only valid ones).
    #[error("search query: {0}")]
    BadQuery(String),
    /// The key does not open the database (SQLCipher's check of the first page failed).
    #[error("{0}: the key does not open this database (a different --db-key-file or passphrase?)")]
    WrongKey(std::path::PathBuf),
    /// The database was written by a newer meshlog (its `user_version`).
    #[error(
        "the database has layout {version}, from a newer meshlog than this one (layout \
         {supported}): run that version, or move the data directory aside to start empty"
    )]
    NewerLayout { version: i64, supported: i64 },
}
