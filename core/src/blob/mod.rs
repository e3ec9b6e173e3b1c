//! Files of any size between devices: blobs.
pub mod coding;
mod items;
mod store;
pub mod tree;

pub use items::{BlobItem, GROUPS_PER_WANT_MAX, OUTBOARD_PIECES_PER_WANT_MAX, OUTBOARD_PIECE_LEN};
pub use store::{BlobStatus, BlobStore, InMemoryBlobs};
