//! What is here and reading it: status, verified ranges, and reads that only ever return
//! verified bytes.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::error::{BlobError, BlobId, BlobStatus, READ_LEN_MAX_BYTES};
use super::store::BlobStore;
use super::tree;

impl BlobStore {
    /// How much of `id` is here; `None` if it is unknown.
    pub fn status(&self, id: &BlobId) -> Option<BlobStatus> {
        let index = self.lock();
        let file_id = id.to_hex();
        if let Some(&size) = index.complete.get(id) {
            let groups = tree::group_count(size);
            return Some(BlobStatus {
                file_id,
                size,
                chunks_have: groups,
                chunks_total: groups,
                complete: true,
                prefix_bytes: size,
                bytes_per_second: 0,
            });
        }
        let partial = index.partial.get(id)?;
        Some(BlobStatus {
            file_id,
            size: partial.size_bytes,
            chunks_have: partial.have.count(),
            chunks_total: partial.have.groups(),
            complete: false,
            prefix_bytes: (partial.have.prefix_groups() * tree::GROUP_LEN_BYTES)
                .min(partial.size_bytes),
            bytes_per_second: partial.rate.per_second(Instant::now()),
        })
    }

    /// The verified bytes of `id`, as sorted, disjoint ranges.
    pub fn have(&self, id: &BlobId) -> Result<Vec<Range<u64>>, BlobError> {
        let index = self.lock();
        if let Some(&size) = index.complete.get(id) {
            return Ok(if size == 0 {
                Vec::new()
            } else {
                std::iter::once(0..size).collect()
            });
        }
        let partial = index
            .partial
            .get(id)
            .ok_or_else(|| BlobError::NotFound(id.to_hex()))?;
        Ok(partial.have.byte_ranges(partial.size_bytes))
    }

    /// Checks that bytes `range` of `id` are all verified; answers the file's size.
    fn check_range(&self, id: &BlobId, range: &Range<u64>) -> Result<u64, BlobError> {
        let index = self.lock();
        let (size, have) = match (index.complete.get(id), index.partial.get(id)) {
            (Some(&size), _) => (size, None),
            (None, Some(partial)) => (partial.size_bytes, Some(&partial.have)),
            (None, None) => return Err(BlobError::NotFound(id.to_hex())),
        };
        if range.start > range.end || range.end > size {
            return Err(BlobError::PastEnd {
                start: range.start,
                end: range.end,
                size_bytes: size,
            });
        }
        match have {
            Some(have) if !have.covers(range) => Err(BlobError::NotVerified {
                start: range.start,
                end: range.end,
                groups_have: have.count(),
                groups_total: have.groups(),
            }),
            _ => Ok(size),
        }
    }

    /// Bytes `range` of `id`, only if every one of them is verified.
    pub fn read_range(&self, id: &BlobId, range: Range<u64>) -> Result<Vec<u8>, BlobError> {
        let len = range.end.saturating_sub(range.start);
        if len > READ_LEN_MAX_BYTES {
            return Err(BlobError::ReadTooLong { len });
        }
        let file = self.open_range(id, &range)?;
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, range.start)
            .map_err(|err| BlobError::io(&self.dir.join(id.data_name()), err))?;
        Ok(bytes)
    }

    /// The data file of `id`, to read bytes `range` from (with positioned reads or after a
    /// seek), only if every one of them is verified. Groups are never un-verified, so the
    /// check stays true while the caller reads.
    pub fn open_range(&self, id: &BlobId, range: &Range<u64>) -> Result<File, BlobError> {
        self.check_range(id, range)?;
        let path = self.dir.join(id.data_name());
        File::open(&path).map_err(|err| BlobError::io(&path, err))
    }

    /// The size of `id`, if it is known.
    pub fn size(&self, id: &BlobId) -> Option<u64> {
        let index = self.lock();
        index
            .complete
            .get(id)
            .copied()
            .or_else(|| index.partial.get(id).map(|p| p.size_bytes))
    }
}
