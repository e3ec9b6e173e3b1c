//! The pieces of anti-entropy: id-space buckets, per-bucket summaries, wire Bloom filters.
//! `Node` (in `node.rs`) puts them together into the protocol.

pub mod filter;
pub mod ids;
pub mod index;
pub mod prefix;
pub mod sketch;
