//! Production storage: SQLite through rusqlite (bundled SQLCipher, WAL), encrypted at rest
//! ([`Database`]: the file and its key; `at_rest.rs` says where keys come from).
//!
//! [`SqliteStore`] is the node's writer and implements core's `Store`; only the driver's node
//! thread touches it. [`ReaderPool`] holds a few read-only connections for the HTTP layer's
//! queries, run on blocking threads: WAL lets them read while the node writes, so a slow page
//! stalls neither the sync loop nor the async executor.

mod at_rest;
mod error;
mod pool;
mod query;
mod schema;
#[cfg(test)]
mod schema_tests;
mod sqlite;

pub use at_rest::{db_path, AtRestError, Database, DbKey, KeySource, KEY_FILE, PASSPHRASE_LEN_MIN};
pub use error::DbError;
pub use pool::{PoolError, ReaderPool};
pub(crate) use query::fold_reaction;
pub use query::{AttachmentRow, Counts, FileContent, MessageRow, Page, ReactionRow, StoreReader};
pub use schema::Durability;
pub use sqlite::SqliteStore;
