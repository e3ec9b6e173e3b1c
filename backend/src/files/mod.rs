//! The blob store: files of any size (up to `--file-size-max`), content-addressed, in
//! `DATA/files/`, each verified piece by piece against its id. `docs/FILES.md` has the
//! longer story; this is the screenful a reader of the code needs.
//!
//! **Ids and trees.** A file's id is the BLAKE3 root hash of its content (equal to
//! `blake3::hash(content)`). Beside the data lies an *outboard*: the BLAKE3 tree's parent
//! pairs down to groups of 16 KiB, in `bao-tree`'s post-order layout (64 bytes per group,
//! [`tree`]). With it any one group can be checked against the id alone.
//!
//! **On disk,** per file `ID` (64 hex digits): `ID` (the data, full length, holes where
//! groups are missing), `ID.obao` (the outboard) and `ID.have` (size header and one bit per
//! verified group, [`bitfield`]). `ID.have` is written last: a file without one is a crash's
//! leftover and is removed on open, as is everything in `tmp/`.
//!
//! **Two ways in.** A local upload ([`BlobStore::ingest`]) streams into `tmp/`, hashing as it
//! goes, and is renamed into place whole: the id is what it hashed to, so it cannot lie. A
//! transfer (core's `blob` protocol, through [`NodeBlobs`], which the device's SQLite store
//! hands the node) starts a partial file from `(id, size, outboard)`
//! ([`BlobStore::create_partial`], the outboard checked against the id first) and adds groups
//! with [`BlobStore::insert_group`], which verifies each group before a byte is written.
//!
//! **Threat model.** Bytes from the network or a client are hostile. A forged group (from a
//! hostile member or a corrupt link) fails its hash and is refused with
//! [`BlobError::Tree`]`(Forged)`, which the caller counts as a drop; nothing is stored. A
//! wrong-length group, an outboard that does not hash to the id, a size over the limit: the
//! same, refused before any write. A lying `Content-Length` on upload (the body shorter or
//! longer) is [`BlobError::Truncated`] / [`BlobError::TooLong`] and the temporary file is
//! removed; a longer one than the limit is refused before the body is read (the API's 413).
//! Only verified bytes are ever read out ([`BlobStore::read_range`], [`BlobStore::open_range`]),
//! and a file is listed complete only when every group's bit is set. Crash safety: a group's
//! bit is written only after its bytes are synced (`partial.rs`), so a torn write loses bits,
//! never makes unwritten bytes look verified. Not covered: the disk itself is trusted (bytes
//! are not re-hashed when read back), and files are **not encrypted at rest** (the SQLite
//! store is): whoever can read the data directory can read the files.
//!
//! **Bounds.** A file's size by `file_size_max_bytes` (its bitfield by size / 16 KiB / 8,
//! 32 KiB for 4 GiB; its outboard, on disk, 16 MiB); [`FILES_MAX`] entries in the index;
//! [`PARTIALS_MAX`] partial files open at once (each holds three descriptors and its bits);
//! [`READ_LEN_MAX_BYTES`] per `read_range`; [`UPLOADS_MAX`] uploads at once (each a blocking
//! thread, an early-sync thread, two temporary files and 2 MiB of buffers).

pub mod bitfield;
mod error;
mod ingest;
mod load;
pub mod partial;
mod read;
mod service;
mod store;
mod transfer;
pub mod tree;

pub use error::{
    BlobError, BlobId, BlobStatus, FILES_DIR, FILES_MAX, FILE_SIZE_MAX_BYTES_DEFAULT, PARTIALS_MAX,
    READ_LEN_MAX_BYTES,
};
pub use ingest::Ingested;
pub use service::{FileService, UPLOADS_MAX};
pub use store::{BlobStore, Inserted};
pub use transfer::{NodeBlobs, CHANGES_QUEUED, MISSING_LIMIT_MAX, NOTE_EVERY_GROUPS};
pub use tree::{TreeError, GROUP_LEN_BYTES};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
