//! A file still arriving: its data file (full length, holes where groups are missing), its
//! outboard (verified against the id before the entry exists) and its bitfield. A group is
//! verified before a byte of it is written; its bit is persisted only after its bytes are
//! synced, every [`FLUSH_EVERY_GROUPS`] groups and when the file completes.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bao_tree::io::outboard::PostOrderOutboard;

use super::bitfield::Bitfield;
use super::error::{BlobError, BlobId};
use super::tree::{self, GROUP_LEN_BYTES};

/// Groups written between two syncs of the data file and its bitfield: 64 groups, 1 MiB.
/// A crash loses at most this much verified data (it is fetched again); a sync per group
/// would cap a transfer at a disk's fsync rate (a few hundred a second, a few MB/s).
pub const FLUSH_EVERY_GROUPS: u64 = 64;
/// The window `bytes_per_second` is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Bytes are counted in buckets this long: a window's worth of buckets is a few dozen,
/// whatever the rate (one sample per group capped a count of 256 at 4 MiB, so the rate read
/// 4 MiB/s for a transfer at 30 MB/s).
const RATE_BUCKET: Duration = Duration::from_millis(100);
/// Buckets kept: the window's.
const RATE_BUCKETS_MAX: usize = 50;
/// The least span a rate is measured over, so the first groups do not read as a spike.
const RATE_SPAN_MIN: Duration = Duration::from_secs(1);

/// Bytes received per second over the last few seconds.
#[derive(Debug, Default)]
pub struct Rate {
    /// (start, bytes) of each bucket, oldest first (at most `RATE_BUCKETS_MAX`).
    buckets: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub fn note(&mut self, now: Instant, bytes: u64) {
        if let Some((start, total)) = self.buckets.back_mut() {
            if now.saturating_duration_since(*start) < RATE_BUCKET {
                *total += bytes;
                return;
            }
        }
        if self.buckets.len() == RATE_BUCKETS_MAX {
            self.buckets.pop_front();
        }
        self.buckets.push_back((now, bytes));
    }

    pub fn per_second(&self, now: Instant) -> u64 {
        let recent = self
            .buckets
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= RATE_WINDOW);
        let (mut oldest, mut total) = (now, 0u64);
        for (at, bytes) in recent {
            oldest = oldest.min(*at);
            total += bytes;
        }
        let span = now.saturating_duration_since(oldest).max(RATE_SPAN_MIN);
        (total as f64 / span.as_secs_f64()) as u64
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_fast_transfer_reads_its_rate_not_a_cap() {
        let start = Instant::now();
        let mut rate = Rate::default();
        // 30 MB/s for two seconds, a 16 KiB group every 546 µs.
        let group_bytes = 16 * 1024;
        let gap = Duration::from_micros(546);
        let mut at = start;
        for _ in 0..(2_000_000 / 546) {
            at += gap;
            rate.note(at, group_bytes);
        }
        let read = rate.per_second(at);
        assert!((28_000_000..=31_000_000).contains(&read), "read {read} B/s");
        // Nothing for ten seconds: nothing.
        assert_eq!(rate.per_second(at + Duration::from_secs(10)), 0);
        assert!(rate.buckets.len() <= RATE_BUCKETS_MAX);
    }
}

/// An open partial file.
#[derive(Debug)]
pub struct Partial {
    pub size_bytes: u64,
    data: File,
    outboard: PostOrderOutboard<File>,
    pub have: Bitfield,
    have_file: File,
    /// Groups written since the last flush.
    unsynced_groups: u64,
    pub rate: Rate,
}

fn open_rw(path: &Path) -> Result<File, BlobError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|err| BlobError::io(path, err))
}

impl Partial {
    /// Opens the files of `id` (they exist: the entry was committed), with `have` as read.
    pub fn open(
        dir: &Path,
        id: &BlobId,
        size_bytes: u64,
        have: Bitfield,
    ) -> Result<Self, BlobError> {
        let outboard_path = dir.join(id.outboard_name());
        let outboard = PostOrderOutboard {
            root: blake3::Hash::from_bytes(id.0),
            tree: tree::tree(size_bytes),
            data: open_rw(&outboard_path)?,
        };
        Ok(Partial {
            size_bytes,
            data: open_rw(&dir.join(id.data_name()))?,
            outboard,
            have,
            have_file: open_rw(&dir.join(id.have_name()))?,
            unsynced_groups: 0,
            rate: Rate::default(),
        })
    }

    /// Verifies `bytes` as group `index`, then writes it; `Ok(false)` if it was already here.
    /// A group that fails verification is an error and nothing is written.
    pub fn insert(&mut self, index: u64, bytes: &[u8], now: Instant) -> Result<bool, BlobError> {
        if self.have.get(index) {
            return Ok(false);
        }
        tree::verify_group(&self.outboard, index, bytes)?;
        let offset = index * GROUP_LEN_BYTES;
        self.data
            .write_all_at(bytes, offset)
            .map_err(|err| BlobError::Io("data file".into(), err))?;
        self.have.set(index);
        self.rate.note(now, bytes.len() as u64);
        self.unsynced_groups += 1;
        if self.unsynced_groups >= FLUSH_EVERY_GROUPS || self.have.is_full() {
            self.flush()?;
        }
        Ok(true)
    }

    /// Syncs the data, then writes and syncs the bits for it.
    pub fn flush(&mut self) -> Result<(), BlobError> {
        if self.unsynced_groups == 0 {
            return Ok(());
        }
        self.data
            .sync_data()
            .map_err(|err| BlobError::Io("data file".into(), err))?;
        self.have
            .write_dirty(&self.have_file)
            .map_err(|err| BlobError::Io("bitfield".into(), err))?;
        self.unsynced_groups = 0;
        Ok(())
    }
}
