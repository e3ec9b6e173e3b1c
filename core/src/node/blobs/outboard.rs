//! A fetch's first step: the file's outboard (its tree's parent pairs, 1/256 of its size),
//! asked of one source at a time so that an outboard that does not hash to the file id is
//! that source's, which is then asked no more. Only then are groups asked (`fetch.rs`).
//!
//! A source sends an ask's pieces back to back, so once they stop coming, those still
//! missing were lost: they are asked again after a short quiet, not at the ask's deadline.
//! A source whose serve rate spaces its pieces wider than that quiet is asked again for
//! pieces still in its queue; it queues no job twice (`serve.rs`), so that costs an ask.
//! At 30% loss no ask of 64 pieces arrives whole, and a 100 MB file's 381 pieces took 5.8–6.2
//! s of deadlines over a netns link.

use bao_tree::io::outboard::PostOrderOutboard;

use crate::blob::tree;
use crate::blob::{BlobItem, OUTBOARD_PIECES_PER_WANT_MAX, OUTBOARD_PIECE_LEN};
use crate::id::{DeviceId, FileId};
use crate::packet::Payload;
use crate::store::Store;
use crate::time::{Duration, Instant};

use super::super::{Node, NodeEvent};
use super::fetch::{Outboard, DEADLINE_SLACK, OUTBOARD_PIECES_IN_FLIGHT_MAX};

/// The least quiet after an ask's latest piece before the rest are asked again: a few
/// datagrams' jitter on a fast link. Otherwise half the round trip, within which pieces sent
/// back to back still arrive on a jittery path.
const OUTBOARD_QUIET_MIN: Duration = Duration::from_millis(5);

impl<S: Store> Node<S> {
    /// Asks the outboard's missing pieces of one source: the one asked before, once all it
    /// was asked arrived or it fell quiet after some (pieces in flight are at most a want's
    /// worth, so a 4 MiB outboard takes 64 round trips, not 64 deadlines), or, when its time
    /// ran out with none, the next usable one in name order.
    pub(super) fn ask_outboard(&mut self, now: Instant, file: FileId) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return;
        };
        let size = fetch.size;
        let Outboard::Fetching {
            have,
            source,
            deadline,
            asked_left,
            asked_until,
            heard,
            ..
        } = &mut fetch.outboard
        else {
            return;
        };
        let answered = *asked_left == 0;
        if source.is_some() && *deadline > now && !answered {
            return;
        }
        let usable: Vec<&DeviceId> = fetch
            .sources
            .iter()
            .filter(|(_, s)| s.usable())
            .map(|(name, _)| name)
            .collect();
        // Answered, whole or in part: the same source again; else the next one.
        let again = answered || *heard;
        let next = match source.take() {
            Some(before) => usable
                .iter()
                .find(|n| if again { ***n == before } else { ***n > before })
                .or(usable.first()),
            None => usable.first(),
        };
        // None usable: asked again when a source's `NOT_HELD_RETRY` passes.
        let Some(&name) = next else {
            return;
        };
        let name = name.clone();
        let rtt_us = self.peers.get(&name).map_or(0, |p| p.rtt_estimate_us);
        *deadline = now + Duration::from_micros(2 * rtt_us) + DEADLINE_SLACK;
        *asked_until = *deadline;
        *source = Some(name.clone());
        *heard = false;
        let missing: Vec<u64> = have
            .iter()
            .enumerate()
            .filter(|(_, held)| !**held)
            .map(|(i, _)| i as u64)
            .take(OUTBOARD_PIECES_IN_FLIGHT_MAX)
            .collect();
        *asked_left = missing.len();
        // Runs of consecutive pieces, at most a want's worth each.
        let mut items: Vec<BlobItem> = Vec::new();
        for piece in missing {
            if let Some(BlobItem::WantOutboard {
                piece: start,
                pieces,
                ..
            }) = items.last_mut()
            {
                if *start + u64::from(*pieces) == piece && *pieces < OUTBOARD_PIECES_PER_WANT_MAX {
                    *pieces += 1;
                    continue;
                }
            }
            items.push(BlobItem::WantOutboard {
                file,
                size,
                piece,
                pieces: 1,
            });
        }
        for item in items {
            self.stats.blobs.wants_sent += 1;
            self.send(&name, Payload::Blob(vec![item]));
        }
    }

    pub(super) fn on_blob_outboard(
        &mut self,
        now: Instant,
        from: &DeviceId,
        file: FileId,
        piece: u64,
        bytes: Vec<u8>,
    ) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return self.stats.drop("blob_unasked");
        };
        let size = fetch.size;
        let Outboard::Fetching {
            bytes: outboard,
            have,
            source,
            asked_left,
            asked_until,
            heard,
            deadline,
        } = &mut fetch.outboard
        else {
            return self.stats.drop("blob_unasked");
        };
        if source.as_ref() != Some(from) {
            return self.stats.drop("blob_unasked");
        }
        let start = piece.saturating_mul(OUTBOARD_PIECE_LEN as u64);
        let expected = (outboard.len() as u64)
            .saturating_sub(start)
            .min(OUTBOARD_PIECE_LEN as u64);
        if expected == 0 || bytes.len() as u64 != expected {
            return self.stats.drop("blob_malformed");
        }
        let start = start as usize;
        outboard[start..start + bytes.len()].copy_from_slice(&bytes);
        if !have[piece as usize] {
            have[piece as usize] = true;
            *asked_left = asked_left.saturating_sub(1);
        }
        *heard = true;
        let rtt_us = self.peers.get(from).map_or(0, |p| p.rtt_estimate_us);
        let quiet = Duration::from_micros(rtt_us / 2).max(OUTBOARD_QUIET_MIN);
        // Quiet counts from the latest piece, within the ask's own deadline.
        *deadline = (*asked_until).min(now + quiet);
        self.stats.blobs.outboard_bytes_received += bytes.len() as u64;
        fetch.progress_at = now;
        if have.iter().all(|h| *h) {
            let outboard = std::mem::take(outboard);
            self.outboard_arrived(now, from, file, size, outboard);
        } else if *asked_left == 0 {
            self.ask_outboard(now, file);
        }
    }

    fn outboard_arrived(
        &mut self,
        now: Instant,
        from: &DeviceId,
        file: FileId,
        size: u64,
        outboard: Vec<u8>,
    ) {
        let check = PostOrderOutboard {
            root: blake3::Hash::from_bytes(file.0),
            tree: tree::tree(size),
            data: &outboard[..],
        };
        let fetch = self.blobs.fetches.get_mut(&file).expect("caller found it");
        if tree::verify_outboard(&check, outboard.len() as u64).is_err() {
            self.stats.drop("blob_forged");
            self.stats.blobs.forgeries += 1;
            fetch.sources.get_mut(from).expect("asked source").excluded = true;
            let pieces = outboard.len().div_ceil(OUTBOARD_PIECE_LEN);
            fetch.outboard = Outboard::Fetching {
                bytes: vec![0; outboard.len()],
                have: vec![false; pieces],
                source: None,
                deadline: now,
                asked_left: 0,
                asked_until: now,
                heard: false,
            };
            return self.pump_fetch(now, file);
        }
        let blobs = self.store.blobs().expect("fetching needs blobs");
        if let Err(err) = blobs.create_partial(&file, size, &outboard) {
            // Refused (too large, too many partial files) or failed: give up this fetch.
            self.stats.drop("blob_refused");
            self.blobs.fetches.remove(&file);
            self.emit(NodeEvent::StoreFailed {
                detail: err.to_string(),
            });
            return self.start_waiting(now);
        }
        fetch.outboard = Outboard::Ready(outboard);
        self.pump_fetch(now, file);
    }
}
