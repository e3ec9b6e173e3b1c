//! What the blob transfer needs of a device's file store, and a store in memory.
//!
//! The node verifies every group against the file's tree before it calls
//! [`BlobStore::insert_group`], so a store never sees a forged group from the network; a
//! store may check again (the device's does, against its outboard on disk).

use std::collections::BTreeMap;
use std::sync::Arc;

use bao_tree::io::outboard::PostOrderOutboard;

use super::tree::{self, group_count, group_len, GROUP_LEN_BYTES};
use crate::id::FileId;
use crate::store::StoreError;

/// What a store holds of one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobStatus {
    pub size_bytes: u64,
    pub groups_have: u64,
    pub groups_total: u64,
}

impl BlobStatus {
    pub fn is_complete(&self) -> bool {
        self.groups_have == self.groups_total
    }
}

/// A device's files, as the blob transfer reads and fills them. Reads answer only verified
/// bytes. Methods take `&mut self` because a store on disk opens files lazily.
pub trait BlobStore {
    /// What is held of `id`, if any of it (a partial file counts once created).
    fn status(&mut self, id: &FileId) -> Option<BlobStatus>;
    /// Up to `limit` groups of `id` not held, from group `from` on, in order.
    fn missing(&mut self, id: &FileId, from: u64, limit: usize) -> Vec<u64>;
    /// The bytes of group `index`, if held (verified).
    fn read_group(&mut self, id: &FileId, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// `len` bytes of `id`'s outboard from `offset` (clipped at its end), if the store has the
    /// outboard (a complete file, or a partial one: it was created from its outboard).
    fn read_outboard(
        &mut self,
        id: &FileId,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Starts a partial file from its outboard, which the node has checked against `id`.
    /// May refuse ([`StoreError::Refused`]): over the store's size limit, too many partials.
    fn create_partial(&mut self, id: &FileId, size: u64, outboard: &[u8])
        -> Result<(), StoreError>;
    /// Writes group `index` of a partial file, already verified by the node. `Ok(true)` when
    /// that completed the file.
    fn insert_group(&mut self, id: &FileId, index: u64, bytes: &[u8]) -> Result<bool, StoreError>;
    /// Partial files (id and size), and files noted wanted and not yet begun: to resume
    /// after a restart.
    fn partials(&mut self) -> Vec<(FileId, u64)>;
    /// Records durably that `id` (of `size` bytes) is to be fetched, before anything of it is
    /// here: a crash before its outboard arrives then does not forget it. The default keeps
    /// nothing; such a store fetches a file again only when a message names it again.
    fn note_wanted(&mut self, _id: &FileId, _size: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Blobs in memory, for the simulator and tests. Complete files may share their bytes with
/// every other store in the process (`Arc`): a simulated world of many devices holding one
/// 100 MB file keeps it once. A received group is compared with the shared bytes, when the
/// store was given them as a reference (`expect`), and then only marked, not copied.
#[derive(Clone, Debug, Default)]
pub struct InMemoryBlobs {
    blobs: BTreeMap<FileId, MemoryBlob>,
    /// Contents a received file must turn out to be (the simulator's knowledge, never the
    /// node's): byte-exactness is checked at each group, and bytes are not copied.
    expected: BTreeMap<FileId, Arc<[u8]>>,
    /// Groups that did not match `expected`: 0 unless verification is broken.
    pub mismatched_groups: u64,
    /// Files to fetch that have no entry yet (`note_wanted`).
    wanted: BTreeMap<FileId, u64>,
}

#[derive(Clone, Debug)]
struct MemoryBlob {
    size: u64,
    outboard: Arc<[u8]>,
    have: Vec<bool>,
    have_count: u64,
    /// Received groups' bytes, unless the content is `expected` (then read from there).
    groups: BTreeMap<u64, Vec<u8>>,
    shared: Option<Arc<[u8]>>,
}

impl InMemoryBlobs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a complete file (a local upload); answers its id. The bytes are shared, not copied.
    pub fn add(&mut self, content: Arc<[u8]>) -> FileId {
        let size = content.len() as u64;
        let mut outboard = Vec::new();
        let root = tree::outboard_of(&content[..], size, &mut outboard)
            .expect("hashing bytes in memory cannot fail");
        let id = FileId(*root.as_bytes());
        let groups = group_count(size);
        self.blobs.insert(
            id,
            MemoryBlob {
                size,
                outboard: outboard.into(),
                have: vec![true; groups as usize],
                have_count: groups,
                groups: BTreeMap::new(),
                shared: Some(content),
            },
        );
        id
    }

    /// A hostile member's copy: `content`'s id and outboard, but every group altered (one
    /// byte each), so that the outboard checks out and every group it serves is forged (for
    /// tests and the simulator's attacks).
    #[cfg(any(test, feature = "testing"))]
    pub fn add_forged(&mut self, content: &[u8]) -> FileId {
        let id = self.add(content.into());
        let mut altered = content.to_vec();
        for at in (0..altered.len()).step_by(GROUP_LEN_BYTES as usize) {
            altered[at] ^= 0xff;
        }
        self.blobs.get_mut(&id).expect("just added").shared = Some(altered.into());
        id
    }

    /// Tells the store what a file it will receive must contain (see the type's doc).
    pub fn expect(&mut self, id: FileId, content: Arc<[u8]>) {
        self.expected.insert(id, content);
    }

    /// The whole content of a complete file.
    pub fn content(&self, id: &FileId) -> Option<Vec<u8>> {
        let blob = self.blobs.get(id)?;
        if blob.have_count != blob.have.len() as u64 {
            return None;
        }
        let mut out = Vec::with_capacity(blob.size as usize);
        for index in 0..blob.have.len() as u64 {
            out.extend_from_slice(&blob.group(index)?);
        }
        Some(out)
    }

    /// Bytes of `id` held (verified), if any of it is here.
    pub fn held_bytes(&self, id: &FileId) -> Option<u64> {
        let blob = self.blobs.get(id)?;
        let last = blob.have.len().checked_sub(1)?;
        let whole_groups = blob.have_count - u64::from(blob.have[last]);
        Some(
            whole_groups * GROUP_LEN_BYTES
                + if blob.have[last] {
                    group_len(blob.size, last as u64)
                } else {
                    0
                },
        )
    }

    /// Every file held, whole or in part, with what is held of it.
    pub fn files(&self) -> impl Iterator<Item = (&FileId, BlobStatus)> {
        self.blobs.iter().map(|(id, blob)| (id, blob.status()))
    }
}

impl MemoryBlob {
    fn status(&self) -> BlobStatus {
        BlobStatus {
            size_bytes: self.size,
            groups_have: self.have_count,
            groups_total: self.have.len() as u64,
        }
    }
    fn group(&self, index: u64) -> Option<Vec<u8>> {
        if !*self.have.get(index as usize)? {
            return None;
        }
        if let Some(shared) = &self.shared {
            let start = (index * GROUP_LEN_BYTES) as usize;
            let end = start + group_len(self.size, index) as usize;
            return Some(shared[start..end].to_vec());
        }
        self.groups.get(&index).cloned()
    }
}

impl BlobStore for InMemoryBlobs {
    fn status(&mut self, id: &FileId) -> Option<BlobStatus> {
        self.blobs.get(id).map(MemoryBlob::status)
    }

    fn missing(&mut self, id: &FileId, from: u64, limit: usize) -> Vec<u64> {
        let Some(blob) = self.blobs.get(id) else {
            return Vec::new();
        };
        (from..blob.have.len() as u64)
            .filter(|&i| !blob.have[i as usize])
            .take(limit)
            .collect()
    }

    fn read_group(&mut self, id: &FileId, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(id).and_then(|blob| blob.group(index)))
    }

    fn read_outboard(
        &mut self,
        id: &FileId,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(id).map(|blob| {
            let start = (offset as usize).min(blob.outboard.len());
            let end = start.saturating_add(len).min(blob.outboard.len());
            blob.outboard[start..end].to_vec()
        }))
    }

    fn create_partial(
        &mut self,
        id: &FileId,
        size: u64,
        outboard: &[u8],
    ) -> Result<(), StoreError> {
        if self.blobs.contains_key(id) {
            return Ok(());
        }
        self.wanted.remove(id);
        let check = PostOrderOutboard {
            root: blake3::Hash::from_bytes(id.0),
            tree: tree::tree(size),
            data: outboard,
        };
        tree::verify_outboard(&check, outboard.len() as u64)
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let groups = group_count(size);
        self.blobs.insert(
            *id,
            MemoryBlob {
                size,
                outboard: outboard.into(),
                have: vec![false; groups as usize],
                have_count: 0,
                groups: BTreeMap::new(),
                shared: self.expected.get(id).cloned(),
            },
        );
        Ok(())
    }

    fn insert_group(&mut self, id: &FileId, index: u64, bytes: &[u8]) -> Result<bool, StoreError> {
        let blob = self
            .blobs
            .get_mut(id)
            .ok_or_else(|| StoreError::Refused(format!("no partial file {id}")))?;
        let slot = blob
            .have
            .get_mut(index as usize)
            .ok_or_else(|| StoreError::Refused(format!("group {index} past the end")))?;
        if *slot {
            return Ok(false);
        }
        match &blob.shared {
            Some(shared) => {
                let start = (index * GROUP_LEN_BYTES) as usize;
                if shared.get(start..start + bytes.len()) != Some(bytes) {
                    self.mismatched_groups += 1;
                    return Err(StoreError::Refused(format!(
                        "group {index} of {id} differs from the file's bytes"
                    )));
                }
            }
            None => {
                blob.groups.insert(index, bytes.to_vec());
            }
        }
        *slot = true;
        blob.have_count += 1;
        Ok(blob.have_count == blob.have.len() as u64)
    }

    fn partials(&mut self) -> Vec<(FileId, u64)> {
        let wanted = self
            .wanted
            .iter()
            .filter(|(id, _)| !self.blobs.contains_key(id))
            .map(|(id, size)| (*id, *size));
        self.blobs
            .iter()
            .filter(|(_, blob)| blob.have_count < blob.have.len() as u64)
            .map(|(id, blob)| (*id, blob.size))
            .chain(wanted)
            .collect()
    }

    fn note_wanted(&mut self, id: &FileId, size: u64) -> Result<(), StoreError> {
        if !self.blobs.contains_key(id) {
            self.wanted.insert(*id, size);
        }
        Ok(())
    }
}
