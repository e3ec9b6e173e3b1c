//! Files of any size between devices: blobs.
mod store;
pub mod tree;

pub use store::{BlobStatus, BlobStore, InMemoryBlobs};
