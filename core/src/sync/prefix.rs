//! Buckets of the id space, named by their leading nibbles.
//!
//! Ids are uniformly random, so a prefix of `d` nibbles holds about `n / 16^d` of `n` ids.
//! Sync descends this tree only where two devices' fingerprints differ.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::EventId;

/// Deepest bucket: 16 nibbles = 8 bytes of prefix, far below where buckets hold one id.
pub const PREFIX_DEPTH_MAX: u8 = 16;
/// Children per bucket: one per nibble value.
pub const FANOUT: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    depth: u8,
    /// The `depth` leading nibbles, right-aligned.
    value: u64,
}

impl Prefix {
    pub const ROOT: Prefix = Prefix { depth: 0, value: 0 };

    pub fn new(depth: u8, value: u64) -> Option<Prefix> {
        let fits = depth <= PREFIX_DEPTH_MAX && (depth == 16 || value >> (4 * depth as u32) == 0);
        fits.then_some(Prefix { depth, value })
    }
    pub fn depth(&self) -> u8 {
        self.depth
    }
    pub fn is_leaf_depth(&self) -> bool {
        self.depth == PREFIX_DEPTH_MAX
    }
    pub fn child(&self, nibble: u8) -> Prefix {
        assert!(self.depth < PREFIX_DEPTH_MAX && nibble < 16);
        Prefix {
            depth: self.depth + 1,
            value: (self.value << 4) | u64::from(nibble),
        }
    }
    pub fn children(&self) -> impl Iterator<Item = Prefix> + '_ {
        (0..FANOUT as u8).map(|n| self.child(n))
    }
    /// The id's first 8 bytes, as a number.
    fn head(id: &EventId) -> u64 {
        u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.depth == 0 || Self::head(id) >> (64 - 4 * self.depth as u32) == self.value
    }
    /// The bucket of `id` at `depth`.
    pub fn of(id: &EventId, depth: u8) -> Prefix {
        assert!(depth <= PREFIX_DEPTH_MAX);
        let value = if depth == 0 {
            0
        } else {
            Self::head(id) >> (64 - 4 * depth as u32)
        };
        Prefix { depth, value }
    }
    /// Lowest and highest ids in the bucket, for ordered range scans.
    pub fn bounds(&self) -> (EventId, EventId) {
        let (mut lo, mut hi) = ([0u8; 32], [0xffu8; 32]);
        if self.depth > 0 {
            let shift = 64 - 4 * self.depth as u32;
            let head_lo = self.value << shift;
            let head_hi = head_lo | u64::MAX.checked_shr(4 * self.depth as u32).unwrap_or(0);
            lo[..8].copy_from_slice(&head_lo.to_be_bytes());
            hi[..8].copy_from_slice(&head_hi.to_be_bytes());
        }
        (EventId(lo), EventId(hi))
    }
    pub fn encode(&self, w: &mut Writer) {
        w.u8(self.depth);
        let bytes = self.value.to_be_bytes();
        let used = (self.depth as usize).div_ceil(2);
        w.raw(&bytes[8 - used..]);
    }
    pub fn decode(r: &mut Reader<'_>) -> Result<Prefix, DecodeError> {
        let depth = r.u8("prefix depth")?;
        if depth > PREFIX_DEPTH_MAX {
            return Err(DecodeError::invalid(
                "prefix depth",
                format!("{depth} > {PREFIX_DEPTH_MAX}"),
            ));
        }
        let used = (depth as usize).div_ceil(2);
        let mut bytes = [0u8; 8];
        bytes[8 - used..].copy_from_slice(r.take(used, "prefix")?);
        let value = u64::from_be_bytes(bytes);
        Prefix::new(depth, value)
            .ok_or_else(|| DecodeError::invalid("prefix", "value wider than its depth"))
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Prefix {
    /// `*` for the root, else the nibbles in hex followed by `*`: `3f*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.depth == 0 {
            return f.write_str("*");
        }
        write!(f, "{:0width$x}*", self.value, width = self.depth as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_partition_ids_and_bounds_enclose_them() {
        let id = EventId::of_bytes(b"x");
        for depth in 0..=PREFIX_DEPTH_MAX {
            let p = Prefix::of(&id, depth);
            assert!(p.contains(&id));
            let (lo, hi) = p.bounds();
            assert!(lo <= id && id <= hi, "depth {depth}");
            if depth < PREFIX_DEPTH_MAX {
                let holders: Vec<_> = p.children().filter(|c| c.contains(&id)).collect();
                assert_eq!(holders, vec![Prefix::of(&id, depth + 1)]);
            }
        }
    }

    #[test]
    fn prefixes_round_trip_and_bad_ones_are_rejected() {
        let id = EventId::of_bytes(b"y");
        for depth in 0..=PREFIX_DEPTH_MAX {
            let p = Prefix::of(&id, depth);
            let mut w = Writer::new();
            p.encode(&mut w);
            let mut r = Reader::new(&w.bytes);
            assert_eq!(Prefix::decode(&mut r).unwrap(), p);
            r.finish().unwrap();
        }
        assert!(Prefix::decode(&mut Reader::new(&[17])).is_err());
        assert!(
            Prefix::decode(&mut Reader::new(&[1, 0x10])).is_err(),
            "nibble value wider than depth"
        );
    }
}
