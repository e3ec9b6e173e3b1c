//! The RECOVERY payload: one Reed-Solomon recovery shard over a group of EVENT packets a
//! device sent to the same peer (`node/stream_fec`). The group is named by the packets'
//! counters, which the receiver knows from their headers, so an EVENT packet carries nothing
//! extra.
//!
//! ```text
//! RECOVERY  first:u64 | originals:u8 | recovery:u8 | index:u8
//!           | len:u16 | (gap:u16 | len:u16) × (originals − 1) | shard
//! ```
//!
//! `first` is the counter of the group's first EVENT packet, each `gap` the distance from the
//! one before (at least 1), each `len` the length of that packet's payload. The shard runs to
//! the end: as long as the longest payload rounded up to even (the coding works on 16-bit
//! words), every original padded with zeros to it.

use crate::codec::{DecodeError, Reader, Writer};

/// EVENT packets in one group at most: enough to code a stream's burst, few enough that one
/// recovery datagram's list of lengths stays small (4 bytes each) and that rebuilding a group
/// reads at most this many payloads.
pub const RECOVERY_ORIGINALS_MAX: usize = 16;
/// Recovery shards of one group at most: four times a full group, enough for about 80% loss.
/// Bounds what a group costs to send and to decode.
pub const RECOVERY_SHARDS_MAX: usize = 4 * RECOVERY_ORIGINALS_MAX;

/// One recovery shard of a group of EVENT packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryShard {
    /// The group's packets: each one's counter and payload length, counters rising.
    pub originals: Vec<(u64, u16)>,
    /// Recovery shards made for the group.
    pub recovery: u8,
    /// Which of them this is, below `recovery`.
    pub index: u8,
    pub shard: Vec<u8>,
}

impl RecoveryShard {
    /// Bytes before the shard for a group of `originals` packets.
    pub const fn header_len(originals: usize) -> usize {
        8 + 3 + 2 + 4 * (originals - 1)
    }

    pub(super) fn encode(&self, w: &mut Writer) {
        let (first, len) = self.originals[0];
        w.u64(first)
            .u8(self.originals.len() as u8)
            .u8(self.recovery)
            .u8(self.index)
            .u16(len);
        for pair in self.originals.windows(2) {
            let gap = u16::try_from(pair[1].0 - pair[0].0).expect("checked when grouped");
            w.u16(gap).u16(pair[1].1);
        }
        w.raw(&self.shard);
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<RecoveryShard, DecodeError> {
        let invalid = |detail: &'static str| DecodeError::invalid("recovery shard", detail);
        let first = r.u64("recovery first counter")?;
        let count = usize::from(r.u8("recovery originals")?);
        let recovery = r.u8("recovery count")?;
        let index = r.u8("recovery index")?;
        if count == 0 || count > RECOVERY_ORIGINALS_MAX {
            return Err(invalid("originals out of range"));
        }
        if recovery == 0 || usize::from(recovery) > RECOVERY_SHARDS_MAX || index >= recovery {
            return Err(invalid("recovery count or index out of range"));
        }
        let mut originals = vec![(first, r.u16("recovery length")?)];
        for _ in 1..count {
            let gap = r.u16("recovery gap")?;
            let counter = originals[originals.len() - 1]
                .0
                .checked_add(u64::from(gap))
                .filter(|_| gap > 0)
                .ok_or_else(|| invalid("counters must rise"))?;
            originals.push((counter, r.u16("recovery length")?));
        }
        let shard = r.rest().to_vec();
        let longest = originals.iter().map(|(_, len)| *len).max().unwrap_or(0);
        if shard.is_empty() || shard.len() % 2 != 0 || shard.len() < usize::from(longest) {
            return Err(invalid("shard length"));
        }
        if originals.iter().any(|(_, len)| *len == 0) {
            return Err(invalid("an empty original"));
        }
        Ok(RecoveryShard {
            originals,
            recovery,
            index,
            shard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecoveryShard {
        RecoveryShard {
            originals: vec![(7, 100), (8, 31), (40, 2)],
            recovery: 3,
            index: 2,
            shard: vec![9; 100],
        }
    }

    #[test]
    fn a_shard_round_trips_and_its_header_is_as_long_as_said() {
        let shard = sample();
        let mut w = Writer::new();
        shard.encode(&mut w);
        assert_eq!(w.bytes.len(), RecoveryShard::header_len(3) + 100);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(RecoveryShard::decode(&mut r), Ok(shard));
    }

    #[test]
    fn inconsistent_shards_are_refused() {
        let mut odd = sample();
        odd.shard.push(0);
        let mut short = sample();
        short.shard.truncate(98);
        let mut index = sample();
        index.index = 3;
        for bad in [odd, short, index] {
            let mut w = Writer::new();
            bad.encode(&mut w);
            assert!(RecoveryShard::decode(&mut Reader::new(&w.bytes)).is_err());
        }
        // Counters that do not rise.
        let mut w = Writer::new();
        w.u64(5).u8(2).u8(1).u8(0).u16(4).u16(0).u16(4).raw(&[0; 4]);
        assert!(RecoveryShard::decode(&mut Reader::new(&w.bytes)).is_err());
    }
}
