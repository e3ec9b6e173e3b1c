//! A few read-only connections for the HTTP layer, used on blocking threads.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::at_rest::Database;
use super::error::DbError;
use super::query::StoreReader;

/// A bounded set of [`StoreReader`]s. A query waits (asynchronously) for a free connection,
/// then runs on tokio's blocking pool, so neither SQLite nor the pool's lock is ever held on
/// the async executor. At most `size` queries run at once, whatever the number of clients.
#[derive(Clone, Debug)]
pub struct ReaderPool {
    idle: Arc<Mutex<Vec<StoreReader>>>,
    permits: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a query thread failed: {0}")]
    Join(String),
}

impl ReaderPool {
    /// Opens `size` connections to the database the writer created.
    pub fn open(db: &Database, size: usize) -> Result<Self, DbError> {
        assert!(size > 0, "a pool needs a connection");
        let readers = (0..size)
            .map(|_| StoreReader::open(db))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReaderPool {
            idle: Arc::new(Mutex::new(readers)),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `query` on a free connection, off the executor.
    pub async fn read<T, F>(&self, query: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&StoreReader) -> Result<T, DbError> + Send + 'static,
    {
        // The semaphore has one permit per idle connection, so a holder always finds one.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| PoolError::Join(err.to_string()))?;
        let idle = Arc::clone(&self.idle);
        let run = move || {
            let reader = Borrowed {
                reader: Some(
                    lock(&idle)
                        .pop()
                        .expect("a permit guarantees an idle reader"),
                ),
                idle: &idle,
            };
            query(reader.reader.as_ref().expect("held until drop"))
        };
        Ok(tokio::task::spawn_blocking(run)
            .await
            .map_err(|err| PoolError::Join(err.to_string()))??)
    }
}

/// Gives the connection back even if the query panics, so permits and idle readers stay equal.
struct Borrowed<'a> {
    reader: Option<StoreReader>,
    idle: &'a Mutex<Vec<StoreReader>>,
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            lock(self.idle).push(reader);
        }
    }
}

fn lock(idle: &Mutex<Vec<StoreReader>>) -> std::sync::MutexGuard<'_, Vec<StoreReader>> {
    // A panicking query returned no reader but left the list itself consistent.
    idle.lock().unwrap_or_else(|p| p.into_inner())
}
