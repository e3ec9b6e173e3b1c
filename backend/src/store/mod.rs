//! Production storage: SQLite through rusqlite (bundled SQLite, WAL).
//!
//! [`SqliteStore`] is the node's writer and implements core's `Store`; only the driver's node
//! thread touches it. [`ReaderPool`] holds a few read-only connections for the HTTP layer's
//! queries, run on blocking threads: WAL lets them read while the node writes, so a slow page
//! stalls neither the sync loop nor the async executor.

mod pool;
mod query;
mod schema;
mod sqlite;

pub use pool::{PoolError, ReaderPool};
pub(crate) use query::fold_reaction;
pub use query::{AttachmentRow, Counts, FileContent, MessageRow, Page, ReactionRow, StoreReader};
pub use schema::Durability;
pub use sqlite::SqliteStore;

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
    /// The database was written by a newer meshlog (its `user_version`).
    #[error(
        "the database has layout {version}, from a newer meshlog than this one (layout \
         {supported}): run that version, or move the data directory aside to start empty"
    )]
    NewerLayout { version: i64, supported: i64 },
}

/// The database file inside a device's data directory.
pub fn db_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("meshlog.sqlite3")
}
