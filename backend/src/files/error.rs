//! The store's names and refusals: file ids, errors, status, and the limits.

use std::path::{Path, PathBuf};

use super::tree::TreeError;

/// Files the index holds (complete and partial): an entry costs ~60 bytes of memory, and
/// opening the store reads each one's `.have`; 100,000 files is a large photo library.
pub const FILES_MAX: usize = 100_000;
/// Partial files open at once: each holds three descriptors and up to 32 KiB of bits, and
/// a device receives a handful of files at a time, not hundreds.
pub const PARTIALS_MAX: usize = 64;
/// Most bytes one [`BlobStore::read_range`] returns (in memory); streaming reads use
/// [`BlobStore::open_range`].
pub const READ_LEN_MAX_BYTES: u64 = 4 << 20;
/// The default `--file-size-max`: 4 GiB.
pub const FILE_SIZE_MAX_BYTES_DEFAULT: u64 = 4 << 30;
/// The store's directory inside a device's data directory.
pub const FILES_DIR: &str = "files";
pub(super) const TMP_DIR: &str = "tmp";

/// A file id: the BLAKE3 root of its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        (text.len() == 64 && hex::decode_to_slice(text, &mut bytes).is_ok())
            .then_some(BlobId(bytes))
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub(super) fn data_name(&self) -> String {
        self.to_hex()
    }
    pub(super) fn outboard_name(&self) -> String {
        format!("{}.obao", self.to_hex())
    }
    pub(super) fn have_name(&self) -> String {
        format!("{}.have", self.to_hex())
    }
}

/// What the store refuses, and why.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("file {0} not found")]
    NotFound(String),
    #[error("{size_bytes} bytes, more than the limit of {max_bytes}")]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    #[error("the body ended after {got} of {expected} bytes")]
    Truncated { expected: u64, got: u64 },
    #[error("the body is longer than the {expected} bytes it declared")]
    TooLong { expected: u64 },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("bytes {start}..{end} are past the file's end ({size_bytes} bytes)")]
    PastEnd {
        start: u64,
        end: u64,
        size_bytes: u64,
    },
    #[error("bytes {start}..{end} are not all verified yet ({groups_have} of {groups_total} groups here)")]
    NotVerified {
        start: u64,
        end: u64,
        groups_have: u64,
        groups_total: u64,
    },
    #[error("{len} bytes asked for, at most {READ_LEN_MAX_BYTES} per read")]
    ReadTooLong { len: u64 },
    #[error("the store holds {FILES_MAX} files, its limit")]
    TooManyFiles,
    #[error("{PARTIALS_MAX} files are arriving already, the limit")]
    TooManyPartial,
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl BlobError {
    pub(super) fn io(path: &Path, err: std::io::Error) -> Self {
        BlobError::Io(path.to_owned(), err)
    }
}

/// How much of a file is here (`GET /api/files/:id/progress`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlobStatus {
    pub file_id: String,
    pub size: u64,
    pub chunks_have: u64,
    pub chunks_total: u64,
    pub complete: bool,
    /// Verified bytes from the start without a gap: what a page may already draw of a
    /// progressive image (`Range: bytes=0-(prefix_bytes - 1)`).
    pub prefix_bytes: u64,
    /// Bytes received per second over the last few seconds; 0 for a file that is complete.
    pub bytes_per_second: u64,
}
