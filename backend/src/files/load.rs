//! Opening a store: every `ID.have` read into the index, and whatever a crash left half
//! made removed.

use std::fs;

use super::bitfield::{split_have, Bitfield};
use super::error::{BlobError, BlobId, FILES_MAX, PARTIALS_MAX};
use super::partial::Partial;
use super::store::BlobStore;
use super::tree;

impl BlobStore {
    /// Reads every `ID.have` into the index; removes files of an entry that does not add up
    /// and the leftovers of a crash (data or outboard without a `.have`).
    pub(super) fn load(&self) -> Result<(), BlobError> {
        let mut index = self.lock();
        let entries = fs::read_dir(&self.dir).map_err(|err| BlobError::io(&self.dir, err))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| BlobError::io(&self.dir, err))?;
            names.extend(entry.file_name().to_str().map(str::to_owned));
        }
        for name in &names {
            let Some(id) = BlobId::from_hex(name.split('.').next().unwrap_or_default()) else {
                continue;
            };
            let have_path = self.dir.join(id.have_name());
            if !name.ends_with(".have") {
                if !have_path.exists() {
                    // A crash before the entry was committed: its pieces go.
                    let _ = fs::remove_file(self.dir.join(name));
                }
                continue;
            }
            let bytes = fs::read(&have_path).map_err(|err| BlobError::io(&have_path, err))?;
            if index.len() >= FILES_MAX {
                tracing::warn!(
                    limit = FILES_MAX,
                    "blob store: more files than the limit; the rest are not served"
                );
                break;
            }
            match self.load_entry(&id, &bytes) {
                Some((size, have)) if have.is_full() => {
                    index.complete.insert(id, size);
                }
                Some((size, have)) if index.partial.len() < PARTIALS_MAX => {
                    let partial = Partial::open(&self.dir, &id, size, have)?;
                    index.partial.insert(id, partial);
                }
                Some(_) => {
                    tracing::warn!(file = %id.to_hex(), "blob store: too many partial files; not resumed")
                }
                None => {
                    tracing::warn!(file = %id.to_hex(), "blob store: entry does not add up; removed");
                    for path in [id.have_name(), id.data_name(), id.outboard_name()] {
                        let _ = fs::remove_file(self.dir.join(path));
                    }
                }
            }
        }
        Ok(())
    }

    /// An entry's size and bits, if its files have the lengths they must.
    fn load_entry(&self, id: &BlobId, have_bytes: &[u8]) -> Option<(u64, Bitfield)> {
        let (size, bits) = split_have(have_bytes)?;
        let len = |name: String| fs::metadata(self.dir.join(name)).ok().map(|m| m.len());
        if len(id.data_name())? != size || len(id.outboard_name())? != tree::outboard_len(size) {
            return None;
        }
        Some((size, Bitfield::parse(size, bits)?))
    }
}
