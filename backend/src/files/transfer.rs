//! The store as the blob transfer (`meshlog_core::blob`) sees it: which groups are missing,
//! a verified group's bytes, the outboard, the partial files to resume; and [`NodeBlobs`],
//! core's `BlobStore` trait over this store, which the device's `SqliteStore` hands the node
//! (`Store::blobs`). The node verifies each group before it calls `insert_group`; the store
//! verifies again against its own outboard on disk (cheap beside the network, and it keeps
//! the promise "nothing unverified is written" in one place whatever the caller did).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use meshlog_core::blob::{BlobStatus as CoreStatus, BlobStore as CoreBlobs};
use meshlog_core::{FileId, StoreError};

use super::error::{BlobError, BlobId, READ_LEN_MAX_BYTES};
use super::store::{BlobStore, Inserted};
use super::tree::{self, GROUP_LEN_BYTES};

/// Most group indices one [`BlobStore::missing`] answers: a caller asks again from where the
/// answer stopped, so the list (8 bytes an index) stays small for a 4 GiB file's 262,144.
pub const MISSING_LIMIT_MAX: usize = 4_096;

impl BlobStore {
    /// Up to `limit` (at most [`MISSING_LIMIT_MAX`]) groups of `id` not verified yet, from
    /// group `from` on, in order; none for a complete or unknown file.
    pub fn missing(&self, id: &BlobId, from: u64, limit: usize) -> Vec<u64> {
        let index = self.lock();
        let Some(partial) = index.partial.get(id) else {
            return Vec::new();
        };
        (from..partial.have.groups())
            .filter(|&group| !partial.have.get(group))
            .take(limit.min(MISSING_LIMIT_MAX))
            .collect()
    }

    /// The bytes of group `index` of `id`, if it is verified here; `None` if it is not (or
    /// past the end, or the file is unknown).
    pub fn read_group(&self, id: &BlobId, index: u64) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(size) = self.size(id) else {
            return Ok(None);
        };
        if index >= tree::group_count(size) || size == 0 {
            return Ok(None);
        }
        let start = index * GROUP_LEN_BYTES;
        let range = start..start + tree::group_len(size, index);
        match self.read_range(id, range) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(BlobError::NotVerified { .. } | BlobError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `len` bytes of `id`'s outboard from `offset`, clipped at its end; `None` if the file
    /// is unknown. Complete and partial files both have their whole outboard (a partial file
    /// is created from it). Bounded by [`READ_LEN_MAX_BYTES`] per call: the outboard of a
    /// 4 GiB file is 16 MiB, and a caller reads it in pieces.
    pub fn read_outboard(
        &self,
        id: &BlobId,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(size) = self.size(id) else {
            return Ok(None);
        };
        if len as u64 > READ_LEN_MAX_BYTES {
            return Err(BlobError::ReadTooLong { len: len as u64 });
        }
        let total = tree::outboard_len(size);
        let start = offset.min(total);
        let end = start.saturating_add(len as u64).min(total);
        let mut bytes = vec![0; (end - start) as usize];
        if !bytes.is_empty() {
            let path = self.dir.join(id.outboard_name());
            File::open(&path)
                .and_then(|file| file.read_exact_at(&mut bytes, start))
                .map_err(|err| BlobError::io(&path, err))?;
        }
        Ok(Some(bytes))
    }

    /// The files still arriving, with their sizes: what a transfer resumes after a restart.
    pub fn partials(&self) -> Vec<(BlobId, u64)> {
        let index = self.lock();
        index
            .partial
            .iter()
            .map(|(id, partial)| (*id, partial.size_bytes))
            .collect()
    }
}

/// Files whose progress the device is told of, queued: a slow reader loses notes (the page
/// also polls `/progress`), never stalls the node, which calls `insert_group` on its thread.
pub const CHANGES_QUEUED: usize = 64;
/// A file arriving is noted every this many groups (1 MiB: one flush), and when complete, so
/// its message's view on the live stream moves without a frame per 16 KiB.
pub const NOTE_EVERY_GROUPS: u64 = 64;

/// Core's `BlobStore` over the device's store, shared with the HTTP API (`Arc`): the node
/// fills files the page reads and serves uploads the page made.
#[derive(Clone, Debug)]
pub struct NodeBlobs {
    store: Arc<BlobStore>,
    changed: Option<tokio::sync::mpsc::Sender<BlobId>>,
    /// Groups stored since the last note.
    unnoted_groups: u64,
}

impl NodeBlobs {
    pub fn new(store: Arc<BlobStore>) -> Self {
        NodeBlobs {
            store,
            changed: None,
            unnoted_groups: 0,
        }
    }

    /// Notes into `changed` the files that progress (every [`NOTE_EVERY_GROUPS`] groups) or
    /// complete, for the device to announce their messages again.
    pub fn notify(mut self, changed: tokio::sync::mpsc::Sender<BlobId>) -> Self {
        self.changed = Some(changed);
        self
    }

    fn note(&mut self, id: BlobId, completed: bool) {
        self.unnoted_groups += 1;
        if !completed && self.unnoted_groups < NOTE_EVERY_GROUPS {
            return;
        }
        self.unnoted_groups = 0;
        if let Some(changed) = &self.changed {
            // Full or closed: dropped (see CHANGES_QUEUED).
            let _ = changed.try_send(id);
        }
    }
}

/// A refusal the store is entitled to (a limit, a group that does not verify, an unknown
/// file) is `Refused`, which the node counts; a failing disk is `Backend`.
fn store_error(err: BlobError) -> StoreError {
    match err {
        BlobError::Io(..) => StoreError::Backend(err.to_string()),
        _ => StoreError::Refused(err.to_string()),
    }
}

impl CoreBlobs for NodeBlobs {
    fn status(&mut self, id: &FileId) -> Option<CoreStatus> {
        let status = self.store.status(&BlobId(id.0))?;
        Some(CoreStatus {
            size_bytes: status.size,
            groups_have: status.chunks_have,
            groups_total: status.chunks_total,
        })
    }

    fn missing(&mut self, id: &FileId, from: u64, limit: usize) -> Vec<u64> {
        self.store.missing(&BlobId(id.0), from, limit)
    }

    fn read_group(&mut self, id: &FileId, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .read_group(&BlobId(id.0), index)
            .map_err(store_error)
    }

    fn read_outboard(
        &mut self,
        id: &FileId,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .read_outboard(&BlobId(id.0), offset, len)
            .map_err(store_error)
    }

    fn create_partial(
        &mut self,
        id: &FileId,
        size: u64,
        outboard: &[u8],
    ) -> Result<(), StoreError> {
        // `false` (known already) is not an error: a second sender's offer for the same file.
        self.store
            .create_partial(BlobId(id.0), size, outboard)
            .map(drop)
            .map_err(store_error)
    }

    fn insert_group(&mut self, id: &FileId, index: u64, bytes: &[u8]) -> Result<bool, StoreError> {
        let blob = BlobId(id.0);
        match self.store.insert_group(&blob, index, bytes) {
            Ok(Inserted::Completed) => {
                self.note(blob, true);
                Ok(true)
            }
            Ok(Inserted::Stored) => {
                self.note(blob, false);
                Ok(false)
            }
            Ok(Inserted::Duplicate) => Ok(false),
            Err(err) => Err(store_error(err)),
        }
    }

    fn partials(&mut self) -> Vec<(FileId, u64)> {
        self.store
            .partials()
            .into_iter()
            .map(|(id, size)| (FileId(id.0), size))
            .collect()
    }
}
