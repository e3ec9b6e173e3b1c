//! A file's hash tree: core's (`meshlog_core::blob::tree`), shared with the blob transfer.
pub use meshlog_core::blob::tree::*;
