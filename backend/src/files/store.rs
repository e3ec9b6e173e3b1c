//! The store itself: the index of files, opening, starting a partial file, inserting
//! verified groups, and the write path every new entry goes through (`tmp/`, sync, rename).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bao_tree::io::outboard::PostOrderOutboard;

use super::bitfield::Bitfield;
use super::error::{BlobError, BlobId, FILES_MAX, PARTIALS_MAX, TMP_DIR};
use super::partial::Partial;
use super::tree;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Complete files and their sizes.
    pub(super) complete: BTreeMap<BlobId, u64>,
    pub(super) partial: BTreeMap<BlobId, Partial>,
}

impl Index {
    pub(super) fn len(&self) -> usize {
        self.complete.len() + self.partial.len()
    }
}

/// What [`BlobStore::insert_group`] did with a verified group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored; more groups are missing.
    Stored,
    /// Stored, and it was the last: the file is complete.
    Completed,
    /// Already here: nothing written.
    Duplicate,
}

/// A device's blob store. Calls block on disk I/O: run them off the executor.
#[derive(Debug)]
pub struct BlobStore {
    pub(super) dir: PathBuf,
    pub(super) file_size_max_bytes: u64,
    index: Mutex<Index>,
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| BlobError::io(dir, err))
}

impl BlobStore {
    /// Opens (or makes, 0700) the store in `dir`, dropping a crash's leftovers.
    pub fn open(dir: &Path, file_size_max_bytes: u64) -> Result<Self, BlobError> {
        let io = |err| BlobError::io(dir, err);
        fs::create_dir_all(dir).map_err(io)?;
        // The files are not encrypted at rest (see above): the owner's eyes only.
        fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io)?;
        let tmp = dir.join(TMP_DIR);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|err| BlobError::io(&tmp, err))?;
        }
        fs::create_dir(&tmp).map_err(|err| BlobError::io(&tmp, err))?;
        let store = BlobStore {
            dir: dir.to_owned(),
            file_size_max_bytes,
            index: Mutex::new(Index::default()),
        };
        store.load()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_size_max_bytes(&self) -> u64 {
        self.file_size_max_bytes
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock left the maps consistent (they change last).
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a partial file `id` of `size_bytes` from its `outboard` (post order, as
    /// `ID.obao` holds it), which must hash to `id`; `Ok(false)` if the file is known
    /// already. Nothing is written unless the outboard checks out.
    pub fn create_partial(
        &self,
        id: BlobId,
        size_bytes: u64,
        outboard: &[u8],
    ) -> Result<bool, BlobError> {
        if size_bytes > self.file_size_max_bytes {
            return Err(BlobError::TooLarge {
                size_bytes,
                max_bytes: self.file_size_max_bytes,
            });
        }
        let check = PostOrderOutboard {
            root: blake3::Hash::from_bytes(id.0),
            tree: tree::tree(size_bytes),
            data: outboard,
        };
        tree::verify_outboard(&check, outboard.len() as u64)?;
        let mut index = self.lock();
        if index.complete.contains_key(&id) || index.partial.contains_key(&id) {
            return Ok(false);
        }
        if index.len() >= FILES_MAX {
            return Err(BlobError::TooManyFiles);
        }
        if index.partial.len() >= PARTIALS_MAX && size_bytes > 0 {
            return Err(BlobError::TooManyPartial);
        }
        let have = Bitfield::empty(size_bytes);
        self.commit(&id, size_bytes, outboard, &have)?;
        if have.is_full() {
            index.complete.insert(id, size_bytes);
        } else {
            let partial = Partial::open(&self.dir, &id, size_bytes, have)?;
            index.partial.insert(id, partial);
        }
        Ok(true)
    }

    /// Writes a new entry's three files through `tmp/`: data (full length, sparse), outboard,
    /// then `.have`, each synced, then the directory.
    fn commit(
        &self,
        id: &BlobId,
        size: u64,
        outboard: &[u8],
        have: &Bitfield,
    ) -> Result<(), BlobError> {
        let data = self.temp_file()?;
        data.as_file()
            .set_len(size)
            .map_err(|err| BlobError::io(data.path(), err))?;
        self.persist(data, &id.data_name())?;
        self.write_file(&id.outboard_name(), outboard)?;
        self.write_file(&id.have_name(), &have.file_bytes(size))?;
        sync_dir(&self.dir)
    }

    pub(super) fn temp_file(&self) -> Result<tempfile::NamedTempFile, BlobError> {
        let tmp = self.dir.join(TMP_DIR);
        tempfile::Builder::new()
            .tempfile_in(&tmp)
            .map_err(|err| BlobError::io(&tmp, err))
    }

    /// Syncs `file` and renames it to `name` in the store.
    pub(super) fn persist(
        &self,
        file: tempfile::NamedTempFile,
        name: &str,
    ) -> Result<(), BlobError> {
        file.as_file()
            .sync_all()
            .map_err(|err| BlobError::io(file.path(), err))?;
        let path = self.dir.join(name);
        file.persist(&path)
            .map_err(|err| BlobError::io(&path, err.error))?;
        Ok(())
    }

    pub(super) fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let file = self.temp_file()?;
        file.as_file()
            .write_all_at(bytes, 0)
            .map_err(|err| BlobError::io(file.path(), err))?;
        self.persist(file, name)
    }

    /// Verifies `bytes` as group `index` of the partial file `id`, then stores it. A group
    /// that does not verify is an error ([`BlobError::Tree`]) and nothing is written.
    pub fn insert_group(
        &self,
        id: &BlobId,
        index: u64,
        bytes: &[u8],
    ) -> Result<Inserted, BlobError> {
        let mut guard = self.lock();
        if guard.complete.contains_key(id) {
            return Ok(Inserted::Duplicate);
        }
        let partial = guard
            .partial
            .get_mut(id)
            .ok_or_else(|| BlobError::NotFound(id.to_hex()))?;
        if !partial.insert(index, bytes, Instant::now())? {
            return Ok(Inserted::Duplicate);
        }
        if !partial.have.is_full() {
            return Ok(Inserted::Stored);
        }
        let size = partial.size_bytes;
        guard.partial.remove(id);
        guard.complete.insert(*id, size);
        Ok(Inserted::Completed)
    }

    /// Persists every partial file's verified groups now (they are otherwise synced every
    /// [`partial::FLUSH_EVERY_GROUPS`]); for a clean shutdown.
    pub fn flush(&self) -> Result<(), BlobError> {
        for partial in self.lock().partial.values_mut() {
            partial.flush()?;
        }
        Ok(())
    }
}
