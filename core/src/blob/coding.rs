//! Erasure coding of a group: its bytes as `k` original shards of [`SHARD_LEN`] (the last
//! padded with zeros), plus `m` recovery shards (Reed-Solomon, the `reed-solomon-simd` crate's
//! Leopard code over GF(2^16)). Any `k` of the `k + m` rebuild the group. One shard fills one
//! datagram, so a receiver at loss `p` that asked for `m ≈ k·p/(1−p)` needs no second trip
//! for most groups, where plain retransmission costs a round trip per loss.

use std::collections::BTreeMap;

use super::tree::GROUP_LEN_BYTES;

/// Bytes of a shard: a datagram's worth with room for the headers.
pub const SHARD_LEN: usize = 1024;
/// Original shards of a full group.
pub const ORIGINALS_MAX: usize = GROUP_LEN_BYTES as usize / SHARD_LEN;
/// Recovery shards one group may be asked for: four times a full group, enough at 80% loss.
/// Bounds the coding work and traffic one ask can cause.
pub const RECOVERY_MAX: usize = 4 * ORIGINALS_MAX;

/// Original shards of a group of `group_len` bytes.
pub fn originals_for(group_len: usize) -> usize {
    debug_assert!(group_len > 0 && group_len <= GROUP_LEN_BYTES as usize);
    group_len.div_ceil(SHARD_LEN).max(1)
}

/// Original shard `index` of `group`, padded to [`SHARD_LEN`].
pub fn original(group: &[u8], index: usize) -> Vec<u8> {
    let start = index * SHARD_LEN;
    let mut shard = group[start.min(group.len())..(start + SHARD_LEN).min(group.len())].to_vec();
    shard.resize(SHARD_LEN, 0);
    shard
}

/// The `recovery` recovery shards of `group`.
pub fn recovery(group: &[u8], recovery: usize) -> Vec<Vec<u8>> {
    assert!(recovery <= RECOVERY_MAX, "checked where asked");
    if recovery == 0 {
        return Vec::new();
    }
    let k = originals_for(group.len());
    let originals = (0..k).map(|i| original(group, i));
    reed_solomon_simd::encode(k, recovery, originals)
        .expect("k ≤ 16 and m ≤ 64 shards of an even length are supported")
}

/// Rebuilds a group of `group_len` bytes from the shards held (`index → bytes`, indexes as
/// sent: originals first, then recovery), coded with `recovery` recovery shards. `None`
/// until there are enough; the result is not verified here (the tree does that).
pub fn rebuild(
    group_len: usize,
    recovery: usize,
    shards: &BTreeMap<u8, Vec<u8>>,
) -> Option<Vec<u8>> {
    let k = originals_for(group_len);
    if shards.len() < k {
        return None;
    }
    let mut originals: Vec<Option<&[u8]>> = vec![None; k];
    let mut recovered = Vec::new();
    for (&index, bytes) in shards {
        let index = usize::from(index);
        if index < k {
            originals[index] = Some(bytes);
        } else if index < k + recovery {
            recovered.push((index - k, bytes));
        }
    }
    let mut restored = BTreeMap::new();
    if originals.iter().any(Option::is_none) {
        restored = reed_solomon_simd::decode(
            k,
            recovery,
            originals
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s))),
            recovered,
        )
        .ok()?;
    }
    let mut group = Vec::with_capacity(k * SHARD_LEN);
    for (i, shard) in originals.iter().enumerate() {
        group.extend_from_slice(shard.or_else(|| restored.get(&i).map(Vec::as_slice))?);
    }
    group.truncate(group_len);
    Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn any_k_of_k_plus_m_shards_rebuild_the_group() {
        for len in [1, 1000, 1024, 5000, 16 * 1024] {
            let group = bytes(len);
            let k = originals_for(len);
            let m = 3;
            let mut all: Vec<Vec<u8>> = (0..k).map(|i| original(&group, i)).collect();
            all.extend(recovery(&group, m));
            // Drop the first m shards (originals), keep the rest: exactly k remain.
            let kept: BTreeMap<u8, Vec<u8>> = all
                .iter()
                .enumerate()
                .skip(m.min(k))
                .map(|(i, s)| (i as u8, s.clone()))
                .collect();
            assert_eq!(
                rebuild(len, m, &kept).as_deref(),
                Some(&group[..]),
                "len {len}"
            );
            // One fewer is not enough.
            let mut short = kept.clone();
            short.pop_first();
            if short.len() < k {
                assert_eq!(rebuild(len, m, &short), None);
            }
        }
    }

    #[test]
    fn originals_alone_need_no_decoding() {
        let group = bytes(10_000);
        let k = originals_for(group.len());
        let held = (0..k).map(|i| (i as u8, original(&group, i))).collect();
        assert_eq!(rebuild(group.len(), 0, &held), Some(group));
    }
}
