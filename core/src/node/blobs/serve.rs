//! Serving files: a peer's asks become jobs on its queue, sent at a bounded rate.
//!
//! A small ask (a WANT of ~100 bytes) can cost many datagrams to answer, so answers are not
//! sent in the ask's handler: each group asked for is a job on the asking peer's queue (at
//! most `JOBS_PER_PEER_MAX`), drained within a token bucket of `Config::blob_serve_rate`
//! bytes per second per peer. A member that asks for more than it takes only fills its
//! own queue; what it can make this node send is bounded by the rate, whatever it sends.

use std::collections::VecDeque;

use crate::blob::coding::{self, SHARD_LEN};
use crate::blob::tree::{group_count, group_len};
use crate::blob::{BlobItem, OUTBOARD_PIECE_LEN};
use crate::id::{DeviceId, FileId};
use crate::packet::Payload;
use crate::store::Store;
use crate::time::{Duration, Instant};

use super::super::Node;

/// Groups queued for one peer at most: 256 × 16 KiB, 4 MiB, a generous window's worth.
/// Asks past it are dropped (counted `blob_serve_full`); the asker asks again.
pub(super) const JOBS_PER_PEER_MAX: usize = 256;
/// Peers served at once at most: the queues' total is then bounded too.
pub(super) const PEERS_SERVED_MAX: usize = 64;
/// Handles of one asker whose newest ask served is remembered: twice the files fetched at
/// once (`fetch::FETCHES_MAX`); an older handle's repeated ask would be served again, which
/// costs bytes, not correctness.
pub(super) const HANDLES_SEEN_MAX: usize = 8;
/// Of one asker's handle: the handle, the newest ask served, and which of the 64 before it were
/// (`note_served`).
pub(super) type Served = (u32, u64, u64);
/// Bytes a peer's bucket may hold at most: one ask's worth of shards, sent as a burst.
const BURST_BYTES: u64 = 512 * 1024;

/// Bytes a peer's bucket holds at `rate`: an eighth of a second's worth, at most
/// `BURST_BYTES`. A fixed burst would make a low rate (a device capped at 64 KiB/s, to spare a
/// slow uplink) send its first half megabyte at once.
fn burst_bytes(rate_bytes_per_second: u64) -> i64 {
    (rate_bytes_per_second / 8).min(BURST_BYTES) as i64
}
/// The shortest wait between two drains of a queue.
const DRAIN_TICK_MIN: Duration = Duration::from_millis(2);

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Job {
    Group {
        file: FileId,
        /// The asker's name for the file, which its shards carry.
        handle: u32,
        group: u64,
        originals: bool,
        recovery: u8,
    },
    Outboard {
        file: FileId,
        piece: u64,
    },
    NotHeld {
        file: FileId,
    },
}

#[derive(Debug)]
pub(super) struct Queue {
    jobs: VecDeque<Job>,
    /// The asker's epoch (its packets' `epoch`, which grows at each of its starts) whose asks
    /// the jobs answer: a restarted asker waits for none of its earlier life's.
    asker_epoch: u64,
    /// Below zero after a job that cost more than a burst: the debt is paid before the next,
    /// so the rate holds for jobs of any size.
    tokens_bytes: i64,
    refilled_at: Instant,
    pub(super) next_at: Option<Instant>,
}

impl Queue {
    fn new(now: Instant, asker_epoch: u64, rate_bytes_per_second: u64) -> Queue {
        Queue {
            jobs: VecDeque::new(),
            asker_epoch,
            tokens_bytes: burst_bytes(rate_bytes_per_second),
            refilled_at: now,
            next_at: None,
        }
    }
    fn refill(&mut self, now: Instant, rate_bytes_per_second: u64) {
        let elapsed_us = now.saturating_since(self.refilled_at).as_micros();
        let earned = rate_bytes_per_second.saturating_mul(elapsed_us) / 1_000_000;
        if earned > 0 {
            let earned = i64::try_from(earned).unwrap_or(i64::MAX);
            self.tokens_bytes = self
                .tokens_bytes
                .saturating_add(earned)
                .min(burst_bytes(rate_bytes_per_second));
            self.refilled_at = now;
        }
    }
}

/// Bytes a job's datagrams carry, as the bucket counts them (payloads, not headers).
fn job_cost_bytes(job: &Job) -> u64 {
    match job {
        Job::Group {
            originals,
            recovery,
            ..
        } => {
            let k = if *originals { coding::ORIGINALS_MAX } else { 0 };
            ((k + usize::from(*recovery)) * SHARD_LEN) as u64
        }
        Job::Outboard { .. } => OUTBOARD_PIECE_LEN as u64,
        Job::NotHeld { .. } => 64,
    }
}

/// Notes ask `seq` served, given the newest served and a mask of the 64 before it (bit `i`:
/// `newest - 1 - i` served), as a replay window does: `false` if it was served already. Asks
/// reorder on the way (a later one overtook an earlier one on a jittery link), so one older
/// than the newest may still be new; one older than the mask is taken as served.
fn note_served(newest: &mut u64, served: &mut u64, seq: u64) -> bool {
    if seq > *newest {
        let shift = seq - *newest;
        *served = if shift > 64 {
            0
        } else {
            (*served << (shift - 1) << 1) | (1 << (shift - 1))
        };
        *newest = seq;
        return true;
    }
    let Some(bit) = (*newest - seq).checked_sub(1).filter(|&b| b < 64) else {
        return false;
    };
    let was = *served & (1 << bit) != 0;
    *served |= 1 << bit;
    !was
}

impl<S: Store> Node<S> {
    /// A peer's ask, in a packet of its epoch `asker_epoch`: queued as jobs, served by
    /// `serve_due`.
    pub(super) fn on_blob_want(
        &mut self,
        now: Instant,
        from: &DeviceId,
        asker_epoch: u64,
        item: BlobItem,
    ) {
        if let BlobItem::WantGroups { handle, seq, .. } = item {
            let seen = self
                .blobs
                .wants_seen
                .entry(from.clone())
                .or_insert_with(|| (asker_epoch, VecDeque::new()));
            if asker_epoch > seen.0 {
                *seen = (asker_epoch, VecDeque::new());
            }
            match seen.1.iter_mut().find(|(h, _, _)| *h == handle) {
                Some((_, newest, served)) => {
                    if !note_served(newest, served, seq) {
                        return; // a repeat of an ask served
                    }
                }
                None => {
                    if seen.1.len() >= HANDLES_SEEN_MAX {
                        seen.1.pop_front();
                    }
                    seen.1.push_back((handle, seq, 0));
                }
            }
        }
        let complete = self
            .store
            .blobs()
            .and_then(|blobs| item.file().and_then(|file| blobs.status(file)))
            .filter(|status| status.is_complete());
        let jobs: Vec<Job> = match (item, complete) {
            (item, None) => item
                .file()
                .map(|&file| Job::NotHeld { file })
                .into_iter()
                .collect(),
            (
                BlobItem::WantOutboard {
                    file,
                    size,
                    piece,
                    pieces,
                },
                Some(status),
            ) => {
                if size != status.size_bytes {
                    vec![Job::NotHeld { file }]
                } else {
                    (piece..piece.saturating_add(u64::from(pieces)))
                        .map(|piece| Job::Outboard { file, piece })
                        .collect()
                }
            }
            (
                BlobItem::WantGroups {
                    file,
                    handle,
                    recovery,
                    originals,
                    groups,
                    ..
                },
                Some(status),
            ) => {
                let total = group_count(status.size_bytes);
                groups
                    .into_iter()
                    .filter(|&group| group < total)
                    .map(|group| Job::Group {
                        file,
                        handle,
                        group,
                        originals,
                        recovery,
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        if !self.blobs.serving.contains_key(from) && self.blobs.serving.len() >= PEERS_SERVED_MAX {
            self.stats.drop("blob_serve_full");
            return;
        }
        let rate = self.config.blob_serve_rate;
        let queue = self
            .blobs
            .serving
            .entry(from.clone())
            .or_insert_with(|| Queue::new(now, asker_epoch, rate));
        if asker_epoch > queue.asker_epoch {
            // It restarted: what its earlier life asked would take the link from what it
            // asks now (a full queue is seconds of a slow link), and nobody waits for it.
            queue.jobs.clear();
            queue.asker_epoch = asker_epoch;
        }
        for job in jobs {
            // Asked again while still queued (an outboard asker that judged a slow uplink's
            // pace as loss): sent once. At most `JOBS_PER_PEER_MAX` to look through.
            if queue.jobs.contains(&job) {
                continue;
            }
            if queue.jobs.len() >= JOBS_PER_PEER_MAX {
                self.stats.drop("blob_serve_full");
                continue;
            }
            queue.jobs.push_back(job);
        }
        queue.next_at = Some(now);
    }

    /// Sends what each queue's bucket allows, in peer-name order.
    pub(super) fn serve_due(&mut self, now: Instant) {
        let due: Vec<DeviceId> = self
            .blobs
            .serving
            .iter()
            .filter(|(_, q)| q.next_at.is_some_and(|at| at <= now))
            .map(|(peer, _)| peer.clone())
            .collect();
        let rate = self.config.blob_serve_rate;
        for peer in due {
            loop {
                let queue = self.blobs.serving.get_mut(&peer).expect("due peer");
                queue.refill(now, rate);
                let Some(cost) = queue.jobs.front().map(job_cost_bytes) else {
                    // An idle queue is dropped only once its bucket is full again: dropped
                    // sooner, the next ask would find a fresh bucket, and an asker asking a
                    // group at a time would be served a burst each time, not the rate.
                    let burst = burst_bytes(rate);
                    if queue.tokens_bytes >= burst {
                        self.blobs.serving.remove(&peer);
                    } else {
                        let missing = (burst - queue.tokens_bytes) as u64;
                        let wait_us = (missing * 1_000_000).div_ceil(rate.max(1));
                        queue.next_at =
                            Some(now + Duration::from_micros(wait_us).max(DRAIN_TICK_MIN));
                    }
                    break;
                };
                // A job goes when the bucket holds its cost, or a full burst for a job that
                // costs more (then the bucket goes into debt).
                let cost = i64::try_from(cost).unwrap_or(i64::MAX);
                let threshold = cost.min(burst_bytes(rate));
                if queue.tokens_bytes < threshold {
                    // When the bucket will hold it again.
                    let missing = (threshold - queue.tokens_bytes) as u64;
                    let wait_us = (missing * 1_000_000).div_ceil(rate.max(1));
                    queue.next_at = Some(now + Duration::from_micros(wait_us).max(DRAIN_TICK_MIN));
                    break;
                }
                queue.tokens_bytes -= cost;
                let job = queue.jobs.pop_front().expect("front checked");
                self.serve_job(&peer, job);
            }
        }
    }

    fn serve_job(&mut self, peer: &DeviceId, job: Job) {
        let Some(blobs) = self.store.blobs() else {
            return;
        };
        match job {
            Job::NotHeld { file } => {
                self.send(peer, Payload::Blob(vec![BlobItem::NotHeld { file }]));
            }
            Job::Outboard { file, piece } => {
                let offset = piece.saturating_mul(OUTBOARD_PIECE_LEN as u64);
                match blobs.read_outboard(&file, offset, OUTBOARD_PIECE_LEN) {
                    Ok(Some(bytes)) if !bytes.is_empty() => {
                        let item = BlobItem::Outboard { file, piece, bytes };
                        self.send(peer, Payload::Blob(vec![item]));
                    }
                    // Past the end: nothing to send (the asker knows the length).
                    Ok(_) => {}
                    Err(_) => self.stats.drop("blob_read_failed"),
                }
            }
            Job::Group {
                file,
                handle,
                group,
                originals,
                recovery,
            } => {
                let bytes = match blobs.read_group(&file, group) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return,
                    Err(_) => return self.stats.drop("blob_read_failed"),
                };
                let size = blobs.status(&file).map_or(0, |s| s.size_bytes);
                debug_assert_eq!(bytes.len() as u64, group_len(size, group));
                let k = coding::originals_for(bytes.len());
                let recovery_shards = coding::recovery(&bytes, usize::from(recovery));
                let originals_sent = if originals { k } else { 0 };
                let shards = (0..originals_sent)
                    .map(|i| (i, coding::original(&bytes, i)))
                    .chain(
                        recovery_shards
                            .into_iter()
                            .enumerate()
                            .map(|(i, s)| (k + i, s)),
                    );
                for (index, shard) in shards {
                    let item = BlobItem::Shard {
                        handle,
                        group,
                        index: u8::try_from(index).expect("k + m ≤ 80"),
                        originals: u8::try_from(k).expect("k ≤ 16"),
                        recovery,
                        bytes: shard,
                    };
                    let sent = self.send(peer, Payload::Blob(vec![item]));
                    self.stats.blobs.shard_bytes_sent += sent as u64;
                }
            }
        }
    }

    pub(super) fn serve_next_at(&self) -> Option<Instant> {
        self.blobs.serving.values().filter_map(|q| q.next_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::note_served;

    #[test]
    fn an_ask_overtaken_on_the_way_is_still_served_once() {
        let (mut newest, mut served) = (0, 0);
        assert!(note_served(&mut newest, &mut served, 2));
        // Ask 1 overtaken by 2: new, served; its repeat is not.
        assert!(note_served(&mut newest, &mut served, 1));
        assert!(!note_served(&mut newest, &mut served, 1));
        assert!(!note_served(&mut newest, &mut served, 2));
        assert!(note_served(&mut newest, &mut served, 70));
        assert!(
            !note_served(&mut newest, &mut served, 2),
            "older than the mask"
        );
        assert!(note_served(&mut newest, &mut served, 69));
        assert!(!note_served(&mut newest, &mut served, 69));
    }
}
