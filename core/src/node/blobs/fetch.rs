//! Fetching a file: its outboard from one peer, then its groups from every peer that holds
//! it, each group erasure-coded so that loss costs recovery shards in the same trip, not
//! another round trip.
//!
//! Receiver-driven, as BitTorrent and iroh-blobs are: the fetcher asks each source for as
//! many groups as that source's window allows (`window.rs`: twice the rate its shards arrive
//! at times the shortest round trip) and asks for more as groups complete. Each ask names how many recovery shards a group
//! should come with, from the loss measured on that source's earlier asks, so that at loss
//! `p` about `1/(1−p)` of a file's bytes cross the network, plus a margin.
//!
//! An ask lost on the way holds its groups' place in the window until it is judged. So each
//! WANT_GROUPS is repeated beside the next two while none of its shards came, and a source
//! that falls silent with asks unanswered is sent them again a round trip later
//! (`due.rs`); the source serves each ask once.
//!
//! Nothing unverified is kept: a group is rebuilt from its shards, checked against the
//! file's tree (the outboard, itself checked against the file id) and only then written. A
//! group that fails came from a member gone bad (a corrupt datagram fails its packet tag
//! first): it is dropped, counted `blob_forged`, and that member is no longer asked.

use std::collections::{BTreeMap, BTreeSet};

use bao_tree::io::outboard::PostOrderOutboard;

use crate::blob::coding::{self, ORIGINALS_MAX, RECOVERY_MAX};
use crate::blob::tree::{self, group_count, group_len, outboard_len};
use crate::blob::{BlobItem, GROUPS_PER_WANT_MAX, OUTBOARD_PIECE_LEN};
use crate::id::{DeviceId, FileId};
use crate::packet::Payload;
use crate::store::Store;
use crate::time::{Duration, Instant};

use super::super::{Node, NodeEvent};
use super::source::{recovery_for, Source, WANTS_REPEATED};

/// Files fetched at once; the rest wait their turn. Each holds its outboard in memory
/// (64 bytes per 16 KiB: 16 MiB for 4 GiB) and its window's shards.
pub const FETCHES_MAX: usize = 4;
/// Files waiting to be fetched at most; more are dropped (counted `blob_queue_full`) and
/// found again when the message that names them is seen again or the device restarts.
pub(super) const WAITING_MAX: usize = 1_024;
/// Outboard pieces asked at once: 64 KiB, a 16 GiB file's outboard in 256 trips.
pub(super) const OUTBOARD_PIECES_IN_FLIGHT_MAX: usize = 64;
/// Beyond two round trips and the time to send what was asked, before an ask is retried.
pub(super) const DEADLINE_SLACK: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(super) struct Fetch {
    pub(super) size: u64,
    /// What this fetch's asks name the file by, for the shards that answer them
    /// (`BlobItem::Shard::handle`).
    pub(super) handle: u32,
    pub(super) outboard: Outboard,
    pub(super) sources: BTreeMap<DeviceId, Source>,
    pub(super) pending: BTreeMap<u64, Pending>,
    /// Groups below `cursor` are held, pending or in `retry`.
    cursor: u64,
    pub(super) retry: BTreeSet<u64>,
    pub(super) progress_at: Instant,
}

#[derive(Debug)]
pub(super) enum Outboard {
    /// Asked of one source at a time, so a forged outboard is that source's.
    Fetching {
        bytes: Vec<u8>,
        have: Vec<bool>,
        source: Option<DeviceId>,
        deadline: Instant,
        /// Pieces of the latest ask not yet here: at none, the next are asked at once.
        asked_left: usize,
        /// When the latest ask is judged if nothing of it comes; `deadline` is sooner once a
        /// piece of it came and the source then fell quiet (`outboard.rs`).
        asked_until: Instant,
        /// A piece of the latest ask arrived: the source is there, and once it falls quiet
        /// what did not come is asked of it again.
        heard: bool,
    },
    Ready(Vec<u8>),
}

/// Bytes of outboard read from a store at once: a store may bound its reads (the device's
/// does at 4 MiB), and a 4 GiB file's outboard is 16 MiB.
const OUTBOARD_READ_BYTES: usize = 1 << 20;

/// A partial file's whole outboard, read in pieces; `None` if the store cannot give it all.
fn read_whole_outboard(
    blobs: &mut dyn crate::blob::BlobStore,
    file: &FileId,
    size: u64,
) -> Option<Vec<u8>> {
    let len = outboard_len(size) as usize;
    let mut outboard = Vec::with_capacity(len);
    while outboard.len() < len {
        let want = (len - outboard.len()).min(OUTBOARD_READ_BYTES);
        let piece = blobs
            .read_outboard(file, outboard.len() as u64, want)
            .ok()??;
        if piece.is_empty() {
            return None;
        }
        outboard.extend_from_slice(&piece);
    }
    (outboard.len() == len).then_some(outboard)
}

impl Fetch {
    /// A shard of ask `seq` of `from` arrived (`first`: the ask's first). A source serves its
    /// asks in order, so every earlier ask's shards were sent before this one's: whatever of
    /// them has not arrived within the link's reordering is lost, and those asks are judged
    /// then, not at their deadline (which must allow for a queue it cannot see), as RACK
    /// judges TCP segments. A short group then holds its place in the window a reordering
    /// window long, not a deadline. The reordering is measured on every shard: one of an
    /// earlier ask arriving after a later ask's first shard says how late shards come.
    ///
    /// Asks reorder too: a later ask may reach the source first and be served first. So only
    /// asks made a reordering window before the later one (`asked_at`) are judged early; on a
    /// jittery link, judging every earlier ask retried whole groups not yet sent, and their
    /// shards, arriving after all, were waste (a quarter of a 100 MB world's groups).
    fn shard_of_ask(
        &mut self,
        now: Instant,
        from: &DeviceId,
        seq: u64,
        asked_at: Instant,
        first: bool,
    ) {
        let Some(source) = self.sources.get_mut(from) else {
            return;
        };
        match source.newest_arrived {
            Some((newest, at)) if seq < newest => {
                let late_us = now.saturating_since(at).as_micros();
                source.reorder_us = source.reorder_us.max(late_us);
            }
            Some((newest, _)) if seq == newest || !first => {}
            _ => {
                source.newest_arrived = Some((seq, now));
                let reorder_window = source.reorder_window();
                let judge_at = now + reorder_window;
                for pending in self.pending.values_mut() {
                    if &pending.source == from
                        && !pending.done
                        && pending.seq < seq
                        && pending.asked_at + reorder_window <= asked_at
                    {
                        if let Some(deadline) = &mut pending.deadline {
                            *deadline = (*deadline).min(judge_at);
                        }
                    }
                }
            }
        }
    }

    /// The latest WANT_GROUPS sent to `name` none of whose shards came, oldest first (the
    /// source takes them in order).
    fn unanswered<'a>(&'a self, name: &'a DeviceId) -> impl Iterator<Item = &'a BlobItem> + 'a {
        let recent = self.sources.get(name).map(|s| &s.recent_wants);
        recent
            .into_iter()
            .flatten()
            .filter(move |(_, group, seq)| {
                self.pending.get(group).is_some_and(|p| {
                    &p.source == name && p.seq == *seq && p.arrived == 0 && p.deadline.is_some()
                })
            })
            .map(|(want, _, _)| want)
    }

    pub(super) fn unanswered_wants(&self, name: &DeviceId) -> Vec<BlobItem> {
        self.unanswered(name).cloned().collect()
    }

    pub(super) fn has_unanswered_wants(&self, name: &DeviceId) -> bool {
        self.unanswered(name).next().is_some()
    }

    /// The groups asked of `from` and not yet complete.
    fn open_asks_of(&self, from: &DeviceId) -> Vec<u64> {
        self.pending
            .iter()
            .filter(|(_, p)| &p.source == from && !p.done)
            .map(|(group, _)| *group)
            .collect()
    }
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) source: DeviceId,
    /// When it was last asked: its first shard after that times a round trip.
    asked_at: Instant,
    /// Its place among the asks of its source (`Source::asks_made`).
    seq: u64,
    /// Asked of its source once: every shard from it answers this ask, so the first times a
    /// round trip and says earlier asks' shards were sent. A retry's shards may answer the
    /// ask before (Karn's rule): on a jittery link an old shard a moment after the retry
    /// read as a round trip of microseconds, and the window sized from it fell to its least.
    fresh: bool,
    /// When the ask is judged; `None` once judged and waiting in `retry` to be asked again.
    pub(super) deadline: Option<Instant>,
    recovery: u8,
    /// Shards held, by index; original shards are kept across a retry.
    shards: BTreeMap<u8, Vec<u8>>,
    pub(super) requested: u64,
    pub(super) arrived: u64,
    pub(super) done: bool,
}

impl<S: Store> Node<S> {
    /// Fetches file `file` of `size` bytes from peers that hold it, unless it is held or on
    /// its way. A message naming a blob starts this when it is stored; a restart resumes
    /// every partial file.
    pub fn fetch_blob(&mut self, now: Instant, file: FileId, size: u64) {
        let now = self.advance(now);
        self.want_blob(now, file, size);
        self.flush();
    }

    pub(in crate::node) fn want_blob(&mut self, now: Instant, file: FileId, size: u64) {
        let Some(blobs) = self.store.blobs() else {
            return;
        };
        if blobs.status(&file).is_some_and(|s| s.is_complete()) {
            return;
        }
        if self.blobs.fetches.contains_key(&file) || self.blobs.waiting.iter().any(|w| w.0 == file)
        {
            return;
        }
        if size > self.config.blob_fetch_size_max {
            self.stats.drop("blob_too_large");
            return;
        }
        if self.blobs.waiting.len() >= WAITING_MAX {
            self.stats.drop("blob_queue_full");
            return;
        }
        if let Some(Err(err)) = self.store.blobs().map(|b| b.note_wanted(&file, size)) {
            // Fetched all the same; only a crash before its outboard would forget it.
            self.emit(NodeEvent::StoreFailed {
                detail: err.to_string(),
            });
        }
        self.blobs.waiting.push_back((file, size));
        self.start_waiting(now);
    }

    pub(super) fn start_waiting(&mut self, now: Instant) {
        while self.blobs.fetches.len() < FETCHES_MAX {
            let Some((file, size)) = self.blobs.waiting.pop_front() else {
                return;
            };
            let Some(blobs) = self.store.blobs() else {
                return;
            };
            let outboard = match blobs.status(&file) {
                Some(status) if status.is_complete() => continue,
                // A partial file was created from its outboard: resume from it.
                Some(status) => match read_whole_outboard(blobs, &file, status.size_bytes) {
                    Some(bytes) => Outboard::Ready(bytes),
                    None => {
                        self.stats.drop("blob_read_failed");
                        continue;
                    }
                },
                // One group: no parent pairs, nothing to fetch before it (its hash is the id).
                None if outboard_len(size) == 0 => match blobs.create_partial(&file, size, &[]) {
                    Ok(()) => Outboard::Ready(Vec::new()),
                    Err(_) => {
                        self.stats.drop("blob_refused");
                        continue;
                    }
                },
                None => {
                    let len = outboard_len(size) as usize;
                    let pieces = len.div_ceil(OUTBOARD_PIECE_LEN);
                    Outboard::Fetching {
                        bytes: vec![0; len],
                        have: vec![false; pieces],
                        source: None,
                        deadline: now,
                        asked_left: 0,
                        asked_until: now,
                        heard: false,
                    }
                }
            };
            let handle = self.blobs.next_handle;
            self.blobs.next_handle = handle.wrapping_add(1);
            self.blobs.fetches.insert(
                file,
                Fetch {
                    size,
                    handle,
                    outboard,
                    sources: BTreeMap::new(),
                    pending: BTreeMap::new(),
                    cursor: 0,
                    retry: BTreeSet::new(),
                    progress_at: now,
                },
            );
            self.pump_fetch(now, file);
        }
    }

    /// Asks for what the fetch's windows have room for.
    pub(super) fn pump_fetch(&mut self, now: Instant, file: FileId) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return;
        };
        for peer in self.links.keys() {
            if !fetch.sources.contains_key(peer) {
                let rtt_hint_us = self.peers.get(peer).map_or(0, |p| p.rtt_estimate_us);
                fetch
                    .sources
                    .insert(peer.clone(), Source::new(now, rtt_hint_us));
            }
        }
        if matches!(fetch.outboard, Outboard::Fetching { .. }) {
            return self.ask_outboard(now, file);
        }
        if self.finish_if_complete(file) {
            return;
        }
        let fetch = self.blobs.fetches.get_mut(&file).expect("checked");
        let blobs = self.store.blobs().expect("fetching needs blobs");
        let groups_total = group_count(fetch.size);
        let mut asks: Vec<(DeviceId, u8, bool, Vec<u64>)> = Vec::new();
        for (name, source) in fetch.sources.iter_mut().filter(|(_, s)| s.usable()) {
            let mut room = source.room();
            // Retries first: they hold back a file's completion.
            while room > 0 {
                let Some(group) = fetch.retry.pop_first() else {
                    break;
                };
                let pending = fetch.pending.get(&group);
                if blobs.missing(&file, group, 1).first() != Some(&group) {
                    fetch.pending.remove(&group);
                    continue;
                }
                // What it still needs, given the original shards it kept from this source
                // (shards from another are dropped when it is asked: a group rebuilt from
                // two sources' shards could not say which one forged it).
                let kept = pending.filter(|p| &p.source == name).map_or(0, |p| {
                    p.shards
                        .keys()
                        .filter(|&&i| usize::from(i) < ORIGINALS_MAX)
                        .count()
                });
                let k = coding::originals_for(group_len(fetch.size, group) as usize);
                let (recovery, originals) = if kept == 0 {
                    (recovery_for(k, source.loss_ppm), true)
                } else {
                    // Recovery shards only: the `needed` themselves and the margin for them.
                    let needed = k - kept.min(k);
                    let m = needed + usize::from(recovery_for(needed, source.loss_ppm));
                    (m.min(RECOVERY_MAX) as u8, false)
                };
                asks.push((name.clone(), recovery, originals, vec![group]));
                room -= 1;
            }
            if room > 0 && fetch.cursor < groups_total {
                let fresh = blobs.missing(&file, fetch.cursor, room as usize);
                fetch.cursor = match fresh.last() {
                    Some(&last) if fresh.len() as u64 == room => last + 1,
                    _ => groups_total,
                };
                let recovery = recovery_for(ORIGINALS_MAX, source.loss_ppm);
                for chunk in fresh.chunks(GROUPS_PER_WANT_MAX) {
                    asks.push((name.clone(), recovery, true, chunk.to_vec()));
                }
            }
        }
        let mut sends = Vec::with_capacity(asks.len());
        for (name, recovery, originals, groups) in asks {
            let source = fetch.sources.get_mut(&name).expect("asked source");
            // Measured once shards arrive; until then the sync's estimate and the serve rate.
            // Generous: an ask is judged early when a later one's shards arrive (`on_blob_shard`).
            let rtt_us = source
                .window
                .rtt_min_us()
                .unwrap_or_else(|| self.peers.get(&name).map_or(0, |p| p.rtt_estimate_us));
            let rate = source
                .window
                .rate_bytes_per_s()
                .unwrap_or(self.config.blob_serve_rate)
                .max(1);
            source.asked += groups.len() as u64;
            // Its last shard waits behind everything asked of this source before it.
            let queued_bytes = source.asked * (ORIGINALS_MAX as u64 + u64::from(recovery)) * 1024;
            let deadline = now
                + Duration::from_micros(2 * rtt_us + queued_bytes * 1_000_000 / rate)
                + DEADLINE_SLACK;
            for &group in &groups {
                let k = coding::originals_for(group_len(fetch.size, group) as usize) as u64;
                let seq = source.asks_made;
                source.asks_made += 1;
                let fresh = fetch.pending.get(&group).is_none_or(|p| p.source != name);
                let pending = fetch.pending.entry(group).or_insert_with(|| Pending {
                    source: name.clone(),
                    asked_at: now,
                    seq,
                    fresh,
                    deadline: None,
                    recovery,
                    shards: BTreeMap::new(),
                    requested: 0,
                    arrived: 0,
                    done: false,
                });
                if pending.source != name {
                    pending.shards.clear();
                    pending.source = name.clone();
                }
                pending.asked_at = now;
                pending.seq = seq;
                pending.fresh = fresh;
                pending.deadline = Some(deadline);
                pending.recovery = recovery;
                pending.requested = if originals { k } else { 0 } + u64::from(recovery);
                pending.arrived = 0;
                // Recovery shards of an earlier code do not combine with the new one.
                pending.shards.retain(|&i, _| u64::from(i) < k);
            }
            let first = (groups[0], fetch.pending[&groups[0]].seq);
            let item = BlobItem::WantGroups {
                file,
                handle: fetch.handle,
                seq: source.wants_made,
                recovery,
                originals,
                groups,
            };
            source.wants_made += 1;
            source.silent_since = now;
            let mut items = fetch.unanswered_wants(&name);
            let source = fetch.sources.get_mut(&name).expect("asked source");
            if source.recent_wants.len() >= WANTS_REPEATED {
                source.recent_wants.pop_front();
            }
            source
                .recent_wants
                .push_back((item.clone(), first.0, first.1));
            items.push(item);
            sends.push((name, items));
        }
        for (name, items) in sends {
            self.stats.blobs.wants_sent += 1;
            self.send(&name, Payload::Blob(items));
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_blob_shard(
        &mut self,
        now: Instant,
        from: &DeviceId,
        file: FileId,
        group: u64,
        index: u8,
        originals: u8,
        recovery: u8,
        bytes: Vec<u8>,
    ) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return self.stats.drop("blob_unasked");
        };
        let Some(pending) = fetch.pending.get_mut(&group).filter(|p| &p.source == from) else {
            return self.stats.drop("blob_unasked");
        };
        self.stats.blobs.shard_bytes_received += bytes.len() as u64;
        let first_of_ask = pending.arrived == 0 && pending.fresh;
        let (seq, asked_at, fresh) = (pending.seq, pending.asked_at, pending.fresh);
        if let Some(source) = fetch.sources.get_mut(from) {
            source.silent_since = now;
            source.probes = 0;
            let rtt_us = first_of_ask.then(|| now.saturating_since(asked_at).as_micros());
            source.window.on_shard(now, bytes.len(), rtt_us);
        }
        if fresh {
            fetch.shard_of_ask(now, from, seq, asked_at, first_of_ask);
        }
        let pending = fetch.pending.get_mut(&group).expect("found above");
        pending.arrived += 1;
        if pending.done {
            return;
        }
        let len = group_len(fetch.size, group) as usize;
        let k = coding::originals_for(len);
        if usize::from(originals) != k {
            return self.stats.drop("blob_malformed");
        }
        if usize::from(index) >= k && recovery != pending.recovery {
            // A recovery shard of an earlier ask's code: it does not combine with this one.
            return;
        }
        pending.shards.insert(index, bytes);
        if pending.shards.len() < k {
            return;
        }
        let Some(rebuilt) = coding::rebuild(len, usize::from(pending.recovery), &pending.shards)
        else {
            // Enough shards that do not decode: shards of another code slipped in. Start
            // the group afresh rather than wait on it.
            self.stats.drop("blob_undecodable");
            pending.shards.clear();
            return;
        };
        let Outboard::Ready(outboard) = &fetch.outboard else {
            unreachable!("groups are asked only once the outboard is ready");
        };
        let check = PostOrderOutboard {
            root: blake3::Hash::from_bytes(file.0),
            tree: tree::tree(fetch.size),
            data: &outboard[..],
        };
        if tree::verify_group(&check, group, &rebuilt).is_err() {
            self.stats.drop("blob_forged");
            self.stats.blobs.forgeries += 1;
            let source = fetch.sources.get_mut(from).expect("asked source");
            source.excluded = true;
            source.asked = 0;
            // Everything asked of it is asked of others, from scratch.
            for group in fetch.open_asks_of(from) {
                fetch.pending.remove(&group);
                fetch.retry.insert(group);
            }
            return self.pump_fetch(now, file);
        }
        pending.done = true;
        pending.shards.clear();
        let source = fetch.sources.get_mut(from).expect("asked source");
        source.asked = source.asked.saturating_sub(1);
        source
            .window
            .on_group(k as u64 + u64::from(pending.recovery));
        fetch.progress_at = now;
        let blobs = self.store.blobs().expect("fetching needs blobs");
        match blobs.insert_group(&file, group, &rebuilt) {
            Ok(_) => {
                self.stats.blobs.groups_verified += 1;
                self.pump_fetch(now, file);
            }
            Err(err) => {
                self.stats.drop("blob_store_failed");
                self.emit(NodeEvent::StoreFailed {
                    detail: err.to_string(),
                });
            }
        }
    }

    pub(super) fn on_blob_not_held(&mut self, now: Instant, from: &DeviceId, file: FileId) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return;
        };
        let Some(source) = fetch.sources.get_mut(from) else {
            return;
        };
        source.not_held_at = Some(now);
        source.asked = 0;
        let theirs = fetch.open_asks_of(from);
        fetch.retry.extend(theirs);
        if let Outboard::Fetching {
            source, deadline, ..
        } = &mut fetch.outboard
        {
            if source.as_ref() == Some(from) {
                *source = None;
                *deadline = now;
            }
        }
        self.pump_fetch(now, file);
    }

    /// Completes the fetch if every group is held: `true` if it did (or is gone).
    fn finish_if_complete(&mut self, file: FileId) -> bool {
        let Some(blobs) = self.store.blobs() else {
            return true;
        };
        let Some(status) = blobs.status(&file) else {
            return false;
        };
        if !status.is_complete() {
            return false;
        }
        self.blobs.fetches.remove(&file);
        self.stats.blobs.files_fetched += 1;
        self.emit(NodeEvent::BlobComplete {
            file,
            size_bytes: status.size_bytes,
        });
        let now = self.now;
        self.start_waiting(now);
        true
    }
}
