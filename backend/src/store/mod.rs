//! Production storage: SQLite through rusqlite (bundled SQLite, WAL).
//!
//! [`SqliteStore`] is the node's writer and implements core's `Store`. [`StoreReader`] is a
//! second connection for the HTTP layer's queries: WAL lets it read while the node writes,
//! so a slow page never stalls the sync loop.

mod query;
mod schema;
mod sqlite;

pub(crate) use query::fold_reaction;
pub use query::{AttachmentRow, Counts, FileContent, MessageRow, ReactionRow, StoreReader};
pub use schema::Durability;
pub use sqlite::SqliteStore;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

/// The database file inside a device's data directory.
pub fn db_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("meshlog.sqlite3")
}
