//! The store as a device serves it: shared between requests, with its upload slots.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::store::BlobStore;

/// Uploads at once: each holds a blocking thread, two temporary files and their 1 MiB write
/// buffers; two cores hash and write at most two well. Beyond, the API answers 503.
pub const UPLOADS_MAX: usize = 4;

/// A device's blob store and its upload slots; cheap to clone.
#[derive(Clone, Debug)]
pub struct FileService {
    pub store: Arc<BlobStore>,
    uploads: Arc<Semaphore>,
}

impl FileService {
    pub fn new(store: BlobStore) -> Self {
        FileService {
            store: Arc::new(store),
            uploads: Arc::new(Semaphore::new(UPLOADS_MAX)),
        }
    }

    /// A slot for one upload, held until it ends; `None` while [`UPLOADS_MAX`] run.
    pub fn upload_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.uploads.clone().try_acquire_owned().ok()
    }
}
