//! Bloom filters of a bucket's ids, on the wire without the crate's 45-byte header.
//!
//! The `bloomfilter` crate serializes `version | bitmap length | k | 32-byte seed | bitmap`.
//! Sending the seed would cost 32 bytes per filter; instead both sides derive it with blake3
//! from the filter's fresh 64-bit nonce and its prefix, so only `k` and the bitmap travel.
//! A fresh nonce per filter means a false positive in one round is independent of the next:
//! an event hidden with probability p stays hidden r rounds with probability p^r.

use bloomfilter::Bloom;

use super::prefix::Prefix;
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::EventId;

/// The crate's header: version byte, bitmap length (u64), k (u32), seed (32 bytes).
const CRATE_HEADER_LEN: usize = 1 + 8 + 4 + 32;
const CRATE_FORMAT_VERSION: u8 = 1;
/// More hash functions than this never help at any sane rate; bounds work per lookup.
const HASH_FUNCTIONS_MAX: u8 = 32;

/// A filter as it travels: the item count it was built for, `k`, and the bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFilter {
    pub nonce: u64,
    pub items: u32,
    pub hash_functions: u8,
    pub bitmap: Vec<u8>,
}

/// Bitmap bytes a filter of `items` ids at `fp_rate` takes.
pub fn bitmap_len(items: usize, fp_rate: f64) -> usize {
    Bloom::<EventId>::compute_bitmap_size(items.max(1), fp_rate)
}

/// The crate's hashing is two SipHash keys made from the seed's halves; equal halves would
/// make both hashes the same and the filter far weaker, so such a seed is derived again.
pub fn filter_seed(nonce: u64, prefix: Prefix) -> [u8; 32] {
    let mut w = Writer::new();
    w.u64(nonce);
    prefix.encode(&mut w);
    for attempt in 0u8.. {
        let mut hasher = blake3::Hasher::new_derive_key("meshlog bloom filter seed v1");
        hasher.update(&w.bytes).update(&[attempt]);
        let seed = *hasher.finalize().as_bytes();
        if seed[..16] != seed[16..] {
            return seed;
        }
    }
    unreachable!("blake3 output halves are equal with probability 2^-128 per attempt")
}

impl WireFilter {
    pub fn build<'a>(
        ids: impl Iterator<Item = &'a EventId>,
        items: usize,
        fp_rate: f64,
        nonce: u64,
        prefix: Prefix,
    ) -> WireFilter {
        let seed = filter_seed(nonce, prefix);
        let mut bloom = Bloom::new_for_fp_rate_with_seed(items.max(1), fp_rate, &seed)
            .expect("items >= 1 and fp_rate in (0, 1) are checked by Config");
        let mut inserted = 0usize;
        for id in ids {
            bloom.set(id);
            inserted += 1;
        }
        assert_eq!(inserted, items, "filter sized for the ids it holds");
        let bytes = bloom.to_bytes();
        let hash_functions = u8::try_from(bloom.number_of_hash_functions()).expect("k fits u8");
        WireFilter {
            nonce,
            items: items as u32,
            hash_functions,
            bitmap: bytes[CRATE_HEADER_LEN..].to_vec(),
        }
    }

    /// Rebuilds the crate's filter. Fails on an impossible `k` or a bitmap too short to hold
    /// the items it claims, which only a broken or hostile peer sends.
    pub fn open(&self, prefix: Prefix) -> Result<Bloom<EventId>, DecodeError> {
        if self.hash_functions == 0 || self.hash_functions > HASH_FUNCTIONS_MAX {
            return Err(DecodeError::invalid(
                "filter hash functions",
                format!("{}", self.hash_functions),
            ));
        }
        if self.bitmap.is_empty() {
            return Err(DecodeError::invalid("filter bitmap", "empty"));
        }
        let mut bytes = Vec::with_capacity(CRATE_HEADER_LEN + self.bitmap.len());
        bytes.push(CRATE_FORMAT_VERSION);
        bytes.extend_from_slice(&(self.bitmap.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&u32::from(self.hash_functions).to_le_bytes());
        bytes.extend_from_slice(&filter_seed(self.nonce, prefix));
        bytes.extend_from_slice(&self.bitmap);
        Bloom::from_bytes(bytes).map_err(|e| DecodeError::invalid("filter", e))
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.nonce)
            .varint(u64::from(self.items))
            .u8(self.hash_functions)
            .bytes_u16(&self.bitmap);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<WireFilter, DecodeError> {
        let nonce = r.u64("filter nonce")?;
        let items = r.varint("filter items")?;
        let items =
            u32::try_from(items).map_err(|_| DecodeError::invalid("filter items", "too many"))?;
        let hash_functions = r.u8("filter hash functions")?;
        let bitmap = r.bytes_u16("filter bitmap")?.to_vec();
        Ok(WireFilter {
            nonce,
            items,
            hash_functions,
            bitmap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<EventId> {
        (0..n)
            .map(|i| EventId::of_bytes(&i.to_le_bytes()))
            .collect()
    }

    #[test]
    fn members_always_match_through_the_wire_form() {
        let set = ids(500);
        let filter = WireFilter::build(set.iter(), set.len(), 0.01, 42, Prefix::ROOT);
        let mut w = Writer::new();
        filter.encode(&mut w);
        let decoded = WireFilter::decode(&mut Reader::new(&w.bytes)).unwrap();
        let bloom = decoded.open(Prefix::ROOT).unwrap();
        assert!(set.iter().all(|id| bloom.check(id)));
        // About 1.2 bytes per item at 1%, plus a dozen bytes of framing.
        assert!(
            w.bytes.len() < 500 * 12 / 10 + 16,
            "{} bytes",
            w.bytes.len()
        );
    }

    #[test]
    fn false_positive_rate_is_near_target() {
        let set = ids(1000);
        let filter = WireFilter::build(set.iter(), set.len(), 0.01, 7, Prefix::ROOT);
        let bloom = filter.open(Prefix::ROOT).unwrap();
        let outsiders: Vec<EventId> = (0..20_000u32)
            .map(|i| EventId::of_bytes(&[&i.to_le_bytes()[..], b"out"].concat()))
            .collect();
        let hits = outsiders.iter().filter(|id| bloom.check(id)).count();
        assert!(hits < 20_000 * 3 / 100, "{hits} false positives in 20,000");
    }

    #[test]
    fn a_fresh_nonce_reshuffles_which_ids_collide() {
        let set = ids(200);
        let outsiders: Vec<EventId> = (0..5_000u32)
            .map(|i| EventId::of_bytes(&[&i.to_le_bytes()[..], b"o"].concat()))
            .collect();
        let hidden_in = |nonce| {
            let bloom = WireFilter::build(set.iter(), set.len(), 0.05, nonce, Prefix::ROOT)
                .open(Prefix::ROOT)
                .unwrap();
            outsiders
                .iter()
                .filter(|id| bloom.check(id))
                .copied()
                .collect::<Vec<_>>()
        };
        let first = hidden_in(1);
        let second = hidden_in(2);
        assert!(!first.is_empty());
        let hidden_twice = first.iter().filter(|id| second.contains(id)).count();
        assert!(
            hidden_twice * 5 < first.len(),
            "{hidden_twice} of {} hidden again",
            first.len()
        );
    }

    #[test]
    fn seeds_never_have_equal_halves() {
        for nonce in 0..1000 {
            let seed = filter_seed(nonce, Prefix::ROOT);
            assert_ne!(seed[..16], seed[16..]);
        }
    }

    #[test]
    fn hostile_filters_are_refused_not_trusted() {
        let bad_k = WireFilter {
            nonce: 0,
            items: 1,
            hash_functions: 0,
            bitmap: vec![0; 4],
        };
        assert!(bad_k.open(Prefix::ROOT).is_err());
        let empty = WireFilter {
            nonce: 0,
            items: 1,
            hash_functions: 3,
            bitmap: vec![],
        };
        assert!(empty.open(Prefix::ROOT).is_err());
    }
}
