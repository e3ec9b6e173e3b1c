//! A file's hash tree, bao's way: the `bao-tree` crate lays the tree out (chunk groups of
//! [`GROUP_LEN_BYTES`], parent pairs in post order, 64 bytes per pair) and walks it; BLAKE3's
//! own `hazmat` functions hash the leaves and merge the pairs, exactly as `bao-tree` does
//! inside. Nothing here is hand-rolled hashing: only the walk that checks each step against
//! the one above it, as `bao-tree`'s own decoder does.

use std::io::{self, Read, Write};

use bao_tree::io::sync::Outboard;
use bao_tree::iter::BaoChunk;
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

/// BLAKE3 chunks (1 KiB) per group, as a power of two: 16 chunks, 16 KiB. A group is what is
/// verified, stored and marked at once; the outboard then costs 64 bytes per 16 KiB (0.4%),
/// and a 4 GiB file's bitfield 32 KiB.
pub const GROUP_CHUNK_LOG: u8 = 4;
pub const GROUP_LEN_BYTES: u64 = 1024 << GROUP_CHUNK_LOG;
const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(GROUP_CHUNK_LOG);

/// Why a group or an outboard does not match its root.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("group {index}: {got} bytes, expected {expected}")]
    WrongLength { index: u64, expected: u64, got: u64 },
    #[error("group {index} does not hash to its place in the tree (forged or corrupt)")]
    Forged { index: u64 },
    #[error("group {index} is past the file's end ({groups} groups)")]
    OutOfRange { index: u64, groups: u64 },
    #[error("the outboard does not hash to the file id")]
    OutboardMismatch,
    #[error("outboard: {got} bytes, expected {expected}")]
    OutboardLength { expected: u64, got: u64 },
    #[error("reading the outboard: {0}")]
    Io(#[from] io::Error),
}

/// The tree of a file of `size_bytes`.
pub fn tree(size_bytes: u64) -> BaoTree {
    BaoTree::new(size_bytes, BLOCK_SIZE)
}

/// Groups in a file of `size_bytes` (an empty file has none: it is complete as it is).
pub fn group_count(size_bytes: u64) -> u64 {
    size_bytes.div_ceil(GROUP_LEN_BYTES)
}

/// Bytes of group `index` in a file of `size_bytes` (all but the last are full).
pub fn group_len(size_bytes: u64, index: u64) -> u64 {
    let start = index.saturating_mul(GROUP_LEN_BYTES);
    size_bytes.saturating_sub(start).min(GROUP_LEN_BYTES)
}

/// Bytes of the outboard of a file of `size_bytes`.
pub fn outboard_len(size_bytes: u64) -> u64 {
    tree(size_bytes).outboard_size()
}

fn hash_leaf(start_chunk: u64, bytes: &[u8], is_root: bool) -> blake3::Hash {
    if is_root {
        return blake3::hash(bytes);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(start_chunk * 1024);
    hasher.update(bytes);
    blake3::Hash::from(hasher.finalize_non_root())
}

fn merge(left: &blake3::Hash, right: &blake3::Hash, is_root: bool) -> blake3::Hash {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if is_root {
        merge_subtrees_root(left, right, Mode::Hash)
    } else {
        blake3::Hash::from(merge_subtrees_non_root(left, right, Mode::Hash))
    }
}

/// Walks the tree down to group `index` (or every group, with `None`), checking each parent
/// pair read from `outboard` against the hash above it, and each leaf with `leaf`.
fn walk(
    outboard: &impl Outboard,
    ranges: &ChunkRanges,
    mut leaf: impl FnMut(ChunkNum, usize, bool, &blake3::Hash) -> Result<(), TreeError>,
) -> Result<(), TreeError> {
    let tree = outboard.tree();
    // Expected hashes of the subtrees still to visit; as deep as the tree (64 levels at most).
    let mut stack = vec![outboard.root()];
    for item in tree.ranges_pre_order_chunks_iter_ref(ranges, 0) {
        let expected = stack.pop().ok_or(TreeError::OutboardMismatch)?;
        match item {
            BaoChunk::Parent {
                node,
                is_root,
                left,
                right,
                ..
            } => {
                let (l, r) = outboard.load(node)?.ok_or(TreeError::OutboardMismatch)?;
                if merge(&l, &r, is_root) != expected {
                    return Err(TreeError::OutboardMismatch);
                }
                if right {
                    stack.push(r);
                }
                if left {
                    stack.push(l);
                }
            }
            BaoChunk::Leaf {
                start_chunk,
                size,
                is_root,
                ..
            } => leaf(start_chunk, size, is_root, &expected)?,
        }
    }
    Ok(())
}

/// Checks `bytes` as group `index` of the file `outboard` describes: its length, then its
/// hash against the path from the root. Reads only the outboard; writes nothing.
pub fn verify_group(outboard: &impl Outboard, index: u64, bytes: &[u8]) -> Result<(), TreeError> {
    let size = outboard.tree().size();
    let groups = group_count(size);
    if index >= groups {
        return Err(TreeError::OutOfRange { index, groups });
    }
    let expected_len = group_len(size, index);
    if bytes.len() as u64 != expected_len {
        return Err(TreeError::WrongLength {
            index,
            expected: expected_len,
            got: bytes.len() as u64,
        });
    }
    let start = ChunkNum(index << GROUP_CHUNK_LOG);
    let ranges = ChunkRanges::from(start..ChunkNum((index + 1) << GROUP_CHUNK_LOG));
    let mut seen = false;
    walk(outboard, &ranges, |start_chunk, _, is_root, expected| {
        seen = true;
        if hash_leaf(start_chunk.0, bytes, is_root) == *expected {
            Ok(())
        } else {
            Err(TreeError::Forged { index })
        }
    })?;
    // The walk always ends at the group's leaf; if it did not, nothing was checked.
    if seen {
        Ok(())
    } else {
        Err(TreeError::Forged { index })
    }
}

/// Checks that every parent pair of `outboard` hashes up to its root: once, when a partial
/// file is created from an outboard someone else sent, so that each group later needs only
/// its own path. Cost: one 64-byte hash per pair (a 4 GiB file: 262,143 pairs).
pub fn verify_outboard(outboard: &impl Outboard, outboard_bytes: u64) -> Result<(), TreeError> {
    let expected = outboard_len(outboard.tree().size());
    if outboard_bytes != expected {
        return Err(TreeError::OutboardLength {
            expected,
            got: outboard_bytes,
        });
    }
    if outboard.tree().size() == 0 {
        return if outboard.root() == blake3::hash(b"") {
            Ok(())
        } else {
            Err(TreeError::OutboardMismatch)
        };
    }
    walk(outboard, &ChunkRanges::all(), |_, _, _, _| Ok(()))
}

/// Reads exactly `size_bytes` from `data` (a short read is `UnexpectedEof`), writing the
/// post-order outboard to `outboard`; answers the root, which is `blake3::hash` of the data.
/// Memory: one group and the tree's stack.
pub fn outboard_of(
    data: impl Read,
    size_bytes: u64,
    outboard: impl Write,
) -> io::Result<blake3::Hash> {
    bao_tree::io::sync::outboard_post_order(data, tree(size_bytes), outboard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bao_tree::io::outboard::PostOrderOutboard;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    fn outboard_for(data: &[u8]) -> PostOrderOutboard<Vec<u8>> {
        let mut out = Vec::new();
        let root = outboard_of(data, data.len() as u64, &mut out).unwrap();
        PostOrderOutboard {
            root,
            tree: tree(data.len() as u64),
            data: out,
        }
    }

    #[test]
    fn the_root_is_blake3_and_every_group_verifies() {
        for len in [0, 1, 1024, 16 * 1024, 16 * 1024 + 1, 100_000, 1 << 20] {
            let data = bytes(len);
            let outboard = outboard_for(&data);
            assert_eq!(outboard.root, blake3::hash(&data), "len {len}");
            assert_eq!(outboard.data.len() as u64, outboard_len(len as u64));
            verify_outboard(&outboard, outboard.data.len() as u64).unwrap();
            for index in 0..group_count(len as u64) {
                let start = (index * GROUP_LEN_BYTES) as usize;
                let end = (start + GROUP_LEN_BYTES as usize).min(len);
                verify_group(&outboard, index, &data[start..end]).unwrap();
            }
        }
    }

    #[test]
    fn a_flipped_bit_a_wrong_length_or_a_bad_pair_is_caught() {
        let data = bytes(100_000);
        let mut outboard = outboard_for(&data);
        let mut group = data[16_384..32_768].to_vec();
        group[5] ^= 1;
        assert!(matches!(
            verify_group(&outboard, 1, &group),
            Err(TreeError::Forged { index: 1 })
        ));
        assert!(matches!(
            verify_group(&outboard, 1, &data[16_384..32_000]),
            Err(TreeError::WrongLength { .. })
        ));
        assert!(matches!(
            verify_group(&outboard, 9, &data[..1]),
            Err(TreeError::OutOfRange { .. })
        ));
        outboard.data[3] ^= 1;
        assert!(verify_outboard(&outboard, outboard.data.len() as u64).is_err());
    }
}
