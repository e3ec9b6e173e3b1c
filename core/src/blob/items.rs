//! What a BLOB packet carries: asks for a file's outboard or groups, and the answers.
//!
//! ```text
//! WANT_OUTBOARD  1 | file:32 | size:u64 | piece:varint | pieces:u8
//! WANT_GROUPS    2 | file:32 | handle:varint | seq:varint | recovery:u8 | originals:u8 (0 or 1)
//!                  | n:u8 | group:varint × n
//! OUTBOARD       3 | file:32 | piece:varint | bytes:u16-prefixed     (at most OUTBOARD_PIECE_LEN)
//! SHARD          4 | handle:varint | group:varint | index:u8 | originals:u8 | recovery:u8
//!                  | bytes:u16-prefixed                             (exactly SHARD_LEN)
//! NOT_HELD       5 | file:32
//! ```
//!
//! A shard names its file by the asker's `handle` from the WANT_GROUPS it answers, not by the
//! 32-byte id: a shard is one datagram of ~1.1 KB, so the id was 3% of every shard's bytes. The
//! asker picks a handle per fetch and never reuses one in a run, and a packet must echo the
//! asker's run (its epoch), so a handle names one file wherever the shard comes from.
//!
//! A WANT_GROUPS is numbered (`seq`, per handle and source): an asker repeats its latest asks
//! not yet answered beside a new one, since at loss `p` an ask is lost as often as a shard and
//! a lost ask holds its groups' place until judged; the source serves each number once.
//!
//! A BLOB packet's payload is encrypted (`packet.rs`): files are as private as events.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::FileId;

use super::coding::{ORIGINALS_MAX, RECOVERY_MAX, SHARD_LEN};

/// Bytes of outboard per OUTBOARD item: 16 parent pairs, one datagram with room.
pub const OUTBOARD_PIECE_LEN: usize = 1024;
/// Outboard pieces one WANT_OUTBOARD asks for at most: the answer is that many datagrams.
pub const OUTBOARD_PIECES_PER_WANT_MAX: u8 = 16;
/// Groups one WANT_GROUPS names at most. Its answer is up to 32 × (16 + 64) shards, so what a
/// peer may ask of a node is bounded by the serving queue (`node/blobs/serve.rs`), not here.
pub const GROUPS_PER_WANT_MAX: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobItem {
    /// "Send me `pieces` outboard pieces of `file` (of `size` bytes) from `piece` on."
    WantOutboard {
        file: FileId,
        size: u64,
        piece: u64,
        pieces: u8,
    },
    /// "Send me these groups of `file`, each with `recovery` recovery shards, and its original
    /// shards unless `originals` is false (a retry that holds them)."
    WantGroups {
        file: FileId,
        /// What the shards of the answer name the file by (`Shard::handle`).
        handle: u32,
        /// The ask's number among this handle's asks of this source: a repeat of one served
        /// is not served again.
        seq: u64,
        recovery: u8,
        originals: bool,
        groups: Vec<u64>,
    },
    Outboard {
        file: FileId,
        piece: u64,
        bytes: Vec<u8>,
    },
    /// Shard `index` of a group coded as `originals` original and `recovery` recovery
    /// shards: `index < originals` is original shard `index`, the rest recovery shards. Of
    /// the file the asker named `handle` in its WANT_GROUPS.
    Shard {
        handle: u32,
        group: u64,
        index: u8,
        originals: u8,
        recovery: u8,
        bytes: Vec<u8>,
    },
    /// "I hold none of `file`" (or not what was asked): ask someone else.
    NotHeld { file: FileId },
}

impl BlobItem {
    /// The file it names; a shard names it by the asker's handle only.
    pub fn file(&self) -> Option<&FileId> {
        match self {
            BlobItem::WantOutboard { file, .. }
            | BlobItem::WantGroups { file, .. }
            | BlobItem::Outboard { file, .. }
            | BlobItem::NotHeld { file } => Some(file),
            BlobItem::Shard { .. } => None,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            BlobItem::WantOutboard {
                file,
                size,
                piece,
                pieces,
            } => {
                w.u8(1).raw(&file.0).u64(*size).varint(*piece).u8(*pieces);
            }
            BlobItem::WantGroups {
                file,
                handle,
                seq,
                recovery,
                originals,
                groups,
            } => {
                let n = u8::try_from(groups.len()).expect("at most GROUPS_PER_WANT_MAX");
                w.u8(2)
                    .raw(&file.0)
                    .varint(u64::from(*handle))
                    .varint(*seq)
                    .u8(*recovery)
                    .u8(u8::from(*originals))
                    .u8(n);
                for group in groups {
                    w.varint(*group);
                }
            }
            BlobItem::Outboard { file, piece, bytes } => {
                w.u8(3).raw(&file.0).varint(*piece).bytes_u16(bytes);
            }
            BlobItem::Shard {
                handle,
                group,
                index,
                originals,
                recovery,
                bytes,
            } => {
                w.u8(4)
                    .varint(u64::from(*handle))
                    .varint(*group)
                    .u8(*index)
                    .u8(*originals)
                    .u8(*recovery)
                    .bytes_u16(bytes);
            }
            BlobItem::NotHeld { file } => {
                w.u8(5).raw(&file.0);
            }
        }
    }

    /// Decodes one item and checks its limits, so the node sees only well-formed items.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<BlobItem, DecodeError> {
        let tag = r.u8("blob item")?;
        if tag == 4 {
            return decode_shard(r);
        }
        let file = FileId(r.array("blob file id")?);
        let item = match tag {
            1 => {
                let size = r.u64("blob size")?;
                let piece = r.varint("outboard piece")?;
                let pieces = r.u8("outboard pieces")?;
                if pieces == 0 || pieces > OUTBOARD_PIECES_PER_WANT_MAX {
                    return Err(DecodeError::invalid("outboard pieces", format!("{pieces}")));
                }
                BlobItem::WantOutboard {
                    file,
                    size,
                    piece,
                    pieces,
                }
            }
            2 => {
                let handle = decode_handle(r)?;
                let seq = r.varint("want seq")?;
                let recovery = r.u8("recovery shards")?;
                if usize::from(recovery) > RECOVERY_MAX {
                    return Err(DecodeError::invalid(
                        "recovery shards",
                        format!("{recovery}"),
                    ));
                }
                let originals = r.bool("originals flag")?;
                let n = usize::from(r.u8("wanted groups")?);
                if n == 0 || n > GROUPS_PER_WANT_MAX {
                    return Err(DecodeError::invalid("wanted groups", format!("{n}")));
                }
                let groups = (0..n)
                    .map(|_| r.varint("wanted group"))
                    .collect::<Result<Vec<_>, _>>()?;
                BlobItem::WantGroups {
                    file,
                    handle,
                    seq,
                    recovery,
                    originals,
                    groups,
                }
            }
            3 => {
                let piece = r.varint("outboard piece")?;
                let bytes = r.bytes_u16("outboard bytes")?;
                if bytes.is_empty() || bytes.len() > OUTBOARD_PIECE_LEN {
                    return Err(DecodeError::invalid(
                        "outboard bytes",
                        format!("{}", bytes.len()),
                    ));
                }
                BlobItem::Outboard {
                    file,
                    piece,
                    bytes: bytes.to_vec(),
                }
            }
            5 => BlobItem::NotHeld { file },
            other => return Err(DecodeError::invalid("blob item", format!("{other}"))),
        };
        Ok(item)
    }
}

fn decode_handle(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let handle = r.varint("blob handle")?;
    u32::try_from(handle).map_err(|_| DecodeError::invalid("blob handle", format!("{handle}")))
}

fn decode_shard(r: &mut Reader<'_>) -> Result<BlobItem, DecodeError> {
    let handle = decode_handle(r)?;
    let group = r.varint("shard group")?;
    let index = r.u8("shard index")?;
    let originals = r.u8("shard originals")?;
    let recovery = r.u8("shard recovery")?;
    if originals == 0
        || usize::from(originals) > ORIGINALS_MAX
        || usize::from(recovery) > RECOVERY_MAX
        || u16::from(index) >= u16::from(originals) + u16::from(recovery)
    {
        return Err(DecodeError::invalid(
            "shard",
            format!("index {index} of {originals} + {recovery}"),
        ));
    }
    let bytes = r.bytes_u16("shard bytes")?;
    if bytes.len() != SHARD_LEN {
        return Err(DecodeError::invalid(
            "shard bytes",
            format!("{}", bytes.len()),
        ));
    }
    Ok(BlobItem::Shard {
        handle,
        group,
        index,
        originals,
        recovery,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_round_trips_and_bad_limits_are_refused() {
        let file = FileId([7; 32]);
        let items = [
            BlobItem::WantOutboard {
                file,
                size: 1 << 33,
                piece: 300,
                pieces: 16,
            },
            BlobItem::WantGroups {
                file,
                handle: 70_000,
                seq: 5,
                recovery: 3,
                originals: false,
                groups: vec![0, 1, 70_000],
            },
            BlobItem::Outboard {
                file,
                piece: 2,
                bytes: vec![1; 64],
            },
            BlobItem::Shard {
                handle: u32::MAX,
                group: 9,
                index: 17,
                originals: 16,
                recovery: 2,
                bytes: vec![5; SHARD_LEN],
            },
            BlobItem::NotHeld { file },
        ];
        for item in items {
            let mut w = Writer::new();
            item.encode(&mut w);
            let mut r = Reader::new(&w.bytes);
            assert_eq!(BlobItem::decode(&mut r).unwrap(), item);
            assert!(r.rest().is_empty());
        }
        let bad = BlobItem::Shard {
            handle: 1,
            group: 0,
            index: 18,
            originals: 16,
            recovery: 2,
            bytes: vec![0; SHARD_LEN],
        };
        let mut w = Writer::new();
        bad.encode(&mut w);
        assert!(BlobItem::decode(&mut Reader::new(&w.bytes)).is_err());
    }

    #[test]
    fn a_shard_names_its_file_by_a_short_handle() {
        let shard = BlobItem::Shard {
            handle: 3,
            group: 100,
            index: 0,
            originals: 16,
            recovery: 4,
            bytes: vec![0; SHARD_LEN],
        };
        let mut w = Writer::new();
        shard.encode(&mut w);
        // Tag, handle, group, index, k, m, length: 8 bytes beside the shard, not 39.
        assert_eq!(w.bytes.len(), SHARD_LEN + 8);
    }
}
