//! Which groups of a file are verified: one bit per group, kept in the file's `.have` file
//! after an 8-byte little-endian size header. A bit is only ever written after its group's
//! bytes are on disk (`fdatasync` of the data file first, see `partial.rs`), so a crash
//! loses at most bits, never makes unwritten bytes look verified. Bits are written in place
//! (a `pwrite` of the changed bytes): a byte is written whole, and either its old or its new
//! value is a state that was true.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use super::tree::{group_count, GROUP_LEN_BYTES};

/// Bytes before the bits: the file's size.
pub const HEADER_LEN: u64 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    groups: u64,
    bits: Vec<u8>,
    set: u64,
    /// Bytes changed since the last [`Bitfield::write_dirty`]: the range to write.
    dirty: Option<Range<usize>>,
}

impl Bitfield {
    /// No group verified, for a file of `size_bytes` (at most `file_size_max`, so the
    /// bits are bounded: 32 KiB for 4 GiB).
    pub fn empty(size_bytes: u64) -> Self {
        let groups = group_count(size_bytes);
        Bitfield {
            groups,
            bits: vec![0; groups.div_ceil(8) as usize],
            set: 0,
            dirty: None,
        }
    }

    /// Every group verified.
    pub fn full(size_bytes: u64) -> Self {
        let mut field = Bitfield::empty(size_bytes);
        for index in 0..field.groups {
            field.set(index);
        }
        field.dirty = None;
        field
    }

    /// The bits after the header in `file`'s bytes; `None` if they are not a bitfield for
    /// `size_bytes` (wrong length, or bits set past the last group).
    pub fn parse(size_bytes: u64, bytes: &[u8]) -> Option<Self> {
        let mut field = Bitfield::empty(size_bytes);
        if bytes.len() != field.bits.len() {
            return None;
        }
        for index in 0..(bytes.len() as u64 * 8) {
            let on = bytes[(index / 8) as usize] & (1 << (index % 8)) != 0;
            if on && index >= field.groups {
                return None;
            }
            if on {
                field.set(index);
            }
        }
        field.dirty = None;
        Some(field)
    }

    pub fn groups(&self) -> u64 {
        self.groups
    }

    pub fn count(&self) -> u64 {
        self.set
    }

    pub fn is_full(&self) -> bool {
        self.set == self.groups
    }

    pub fn get(&self, index: u64) -> bool {
        index < self.groups && self.bits[(index / 8) as usize] & (1 << (index % 8)) != 0
    }

    /// Marks group `index` (below [`Bitfield::groups`]) verified.
    pub fn set(&mut self, index: u64) {
        assert!(index < self.groups, "group {index} of {}", self.groups);
        if self.get(index) {
            return;
        }
        let byte = (index / 8) as usize;
        self.bits[byte] |= 1 << (index % 8);
        self.set += 1;
        self.dirty = Some(match self.dirty.take() {
            Some(range) => range.start.min(byte)..range.end.max(byte + 1),
            None => byte..byte + 1,
        });
    }

    /// Groups verified from the first one on, without a gap.
    pub fn prefix_groups(&self) -> u64 {
        // Whole bytes of set bits first: a 4 GiB file's prefix is found in 32 KiB of bytes.
        let full = self.bits.iter().take_while(|&&b| b == 0xff).count() as u64 * 8;
        (full..self.groups)
            .find(|&i| !self.get(i))
            .unwrap_or(self.groups)
    }

    /// Whether every group touching bytes `range` of a `size_bytes` file is verified.
    pub fn covers(&self, range: &Range<u64>) -> bool {
        if range.is_empty() {
            return true;
        }
        let first = range.start / GROUP_LEN_BYTES;
        let last = (range.end - 1) / GROUP_LEN_BYTES;
        (first..=last).all(|index| self.get(index))
    }

    /// The verified bytes of a `size_bytes` file, as sorted, disjoint ranges.
    pub fn byte_ranges(&self, size_bytes: u64) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for index in (0..self.groups).filter(|&i| self.get(i)) {
            let start = index * GROUP_LEN_BYTES;
            let end = (start + GROUP_LEN_BYTES).min(size_bytes);
            match ranges.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => ranges.push(start..end),
            }
        }
        ranges
    }

    /// The whole `.have` file: header and bits.
    pub fn file_bytes(&self, size_bytes: u64) -> Vec<u8> {
        let mut bytes = size_bytes.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.bits);
        bytes
    }

    /// Writes the bytes changed since the last call into `file` (a `.have` file) and syncs
    /// it. The caller has synced the data those bits stand for.
    pub fn write_dirty(&mut self, file: &File) -> io::Result<()> {
        let Some(range) = self.dirty.clone() else {
            return Ok(());
        };
        file.write_all_at(&self.bits[range.clone()], HEADER_LEN + range.start as u64)?;
        file.sync_data()?;
        self.dirty = None;
        Ok(())
    }
}

/// The size header of a `.have` file's bytes, and the bits after it.
pub fn split_have(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (header, bits) = bytes.split_at_checked(HEADER_LEN as usize)?;
    Some((u64::from_le_bytes(header.try_into().ok()?), bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_the_last_group_is_clipped() {
        let size = 3 * GROUP_LEN_BYTES + 10;
        let mut field = Bitfield::empty(size);
        assert_eq!(field.groups(), 4);
        field.set(0);
        field.set(1);
        field.set(3);
        assert_eq!(
            field.byte_ranges(size),
            vec![0..2 * GROUP_LEN_BYTES, 3 * GROUP_LEN_BYTES..size]
        );
        assert_eq!(field.prefix_groups(), 2);
        assert!(field.covers(&(5..GROUP_LEN_BYTES + 3)));
        assert!(!field.covers(&(5..2 * GROUP_LEN_BYTES + 1)));
        let bytes = field.file_bytes(size);
        let (parsed_size, bits) = split_have(&bytes).unwrap();
        assert_eq!(parsed_size, size);
        assert_eq!(Bitfield::parse(size, bits).unwrap().count(), 3);
        assert!(
            Bitfield::parse(size, &[0xff]).is_none(),
            "bits past the end"
        );
    }
}
