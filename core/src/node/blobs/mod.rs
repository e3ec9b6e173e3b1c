//! The blob transfer: files of any size, fetched from the peers that hold them and served
//! to the peers that ask (`crate::blob` has the formats, the tree and the coding).
//!
//! A message whose attachment is a blob (`Carrier::Blob`) starts a fetch when it is stored
//! here and the file is not (`fetch.rs`; each source's window, loss and asks in `source.rs`,
//! the deadlines and probes in `due.rs`); a restart resumes every partial file. A peer's
//! asks are queued and served at a bounded rate (`serve.rs`). Only complete files are
//! served, so a file spreads from its author to its first fetchers and from them on.

use std::collections::{BTreeMap, VecDeque};

use crate::blob::BlobItem;
use crate::event::{Carrier, EventBody};
use crate::id::{DeviceId, FileId};
use crate::store::Store;
use crate::time::Instant;

use super::Node;

mod due;
mod fetch;
mod outboard;
mod serve;
mod source;
mod window;

#[derive(Debug, Default)]
pub(super) struct Blobs {
    /// At most `FETCHES_MAX`.
    fetches: BTreeMap<FileId, fetch::Fetch>,
    /// At most `fetch::WAITING_MAX`, first come first served.
    waiting: VecDeque<(FileId, u64)>,
    /// At most `serve::PEERS_SERVED_MAX` queues of `serve::JOBS_PER_PEER_MAX` jobs.
    serving: BTreeMap<DeviceId, serve::Queue>,
    /// Per peer that asked for groups: its epoch, and for each of its latest handles (at most
    /// `serve::HANDLES_SEEN_MAX`) the newest ask served and which of the 64 before it were,
    /// so a repeated ask is served once. At most one entry per peer, and peers are bounded by
    /// membership.
    wants_seen: BTreeMap<DeviceId, (u64, VecDeque<serve::Served>)>,
    /// The handle the next fetch started gets (`Fetch::handle`): never reused in a run, and
    /// 2^32 fetches outlast any run.
    next_handle: u32,
}

impl<S: Store> Node<S> {
    /// `epoch`: the sender's, from the packet (see `serve.rs`).
    pub(super) fn on_blob_items(
        &mut self,
        now: Instant,
        from: &DeviceId,
        epoch: u64,
        items: Vec<BlobItem>,
    ) {
        if self.store.blobs().is_none() {
            return self.stats.drop("blob_unsupported");
        }
        for item in items {
            match item {
                BlobItem::WantOutboard { .. } | BlobItem::WantGroups { .. } => {
                    self.on_blob_want(now, from, epoch, item)
                }
                BlobItem::Outboard { file, piece, bytes } => {
                    self.on_blob_outboard(now, from, file, piece, bytes)
                }
                BlobItem::Shard {
                    handle,
                    group,
                    index,
                    originals,
                    recovery,
                    bytes,
                } => {
                    // At most `FETCHES_MAX` to look through.
                    let file = self.blobs.fetches.iter().find(|(_, f)| f.handle == handle);
                    let Some(file) = file.map(|(file, _)| *file) else {
                        self.stats.drop("blob_unasked");
                        continue;
                    };
                    self.on_blob_shard(now, from, file, group, index, originals, recovery, bytes)
                }
                BlobItem::NotHeld { file } => self.on_blob_not_held(now, from, file),
            }
        }
    }

    /// A stored message that names a blob: fetch it if it is not here.
    pub(super) fn observe_blob_ref(&mut self, now: Instant, body: &EventBody) {
        if let EventBody::Message {
            attachment: Some(file),
            ..
        } = body
        {
            if file.carrier == Carrier::Blob {
                self.want_blob(now, file.file, file.size);
            }
        }
    }

    /// Partial files left by an earlier run: fetched again from where they stopped.
    pub(super) fn resume_blobs(&mut self, now: Instant) {
        let Some(blobs) = self.store.blobs() else {
            return;
        };
        for (file, size) in blobs.partials() {
            self.want_blob(now, file, size);
        }
    }

    pub(super) fn blobs_due(&mut self, now: Instant) {
        self.fetches_due(now);
        self.serve_due(now);
    }

    pub(super) fn blobs_next_at(&self) -> Option<Instant> {
        match (self.fetch_next_at(), self.serve_next_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is held of a file, and whether it is being fetched.
    pub fn blob_fetching(&self, file: &FileId) -> bool {
        self.blobs.fetches.contains_key(file) || self.blobs.waiting.iter().any(|w| &w.0 == file)
    }
}
