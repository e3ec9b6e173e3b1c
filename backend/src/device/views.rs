//! The JSON shapes of `docs/API.md`: `Message`, `Stats` and `Member`.

use std::collections::BTreeMap;

use meshlog_core::member::Roster;
use meshlog_core::PacketKind;
use meshlog_net::Snapshot;
use serde::Serialize;

use crate::store::{Counts, MessageRow};

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct MessageView {
    pub id: String,
    pub author: String,
    pub text: String,
    pub created_at_ms: u64,
    pub auto: bool,
    pub reactions: Vec<ReactionView>,
    pub attachment: Option<AttachmentView>,
}

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct ReactionView {
    pub emoji: String,
    pub authors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct AttachmentView {
    pub file_id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// For a file sent as chunk events, chunks; for a blob, the blob store's 16 KiB groups.
    pub chunks_total: u32,
    pub chunks_have: u32,
    pub complete: bool,
    /// Sent by the blob transfer (a file of any size, `POST /api/files` then `file_id`), not
    /// as chunk events: its progress is also at `GET /api/files/:file_id/progress`.
    pub blob: bool,
    pub url: String,
}

impl AttachmentView {
    /// A blob's progress as `files` holds it (nothing yet if it is not there at all). A row
    /// from SQLite knows only that the file is a blob (`file_chunks` is 0: a chunked file
    /// has at least one chunk); the bits are the blob store's.
    pub fn with_blob_progress(mut self, files: &crate::files::BlobStore) -> Self {
        if !self.blob {
            return self;
        }
        let id = crate::files::BlobId::from_hex(&self.file_id);
        match id.and_then(|id| files.status(&id)) {
            Some(status) => {
                // Groups fit u32 up to 64 TiB, beyond BLOB_SIZE_MAX (1 TiB).
                self.chunks_total = status.chunks_total.try_into().unwrap_or(u32::MAX);
                self.chunks_have = status.chunks_have.try_into().unwrap_or(u32::MAX);
                self.complete = status.complete;
            }
            None => {
                let groups = crate::files::tree::group_count(self.size);
                self.chunks_total = groups.try_into().unwrap_or(u32::MAX);
                self.chunks_have = 0;
                self.complete = false;
            }
        }
        self
    }
}

impl MessageView {
    /// The view with its blob attachment's progress from `files` (see
    /// [`AttachmentView::with_blob_progress`]); a device without a blob store shows none.
    pub fn with_files(mut self, files: Option<&crate::files::BlobStore>) -> Self {
        if let (Some(files), Some(attachment)) = (files, self.attachment.take()) {
            self.attachment = Some(attachment.with_blob_progress(files));
        }
        self
    }
}

impl From<MessageRow> for MessageView {
    fn from(row: MessageRow) -> Self {
        let id = row.id.to_hex();
        MessageView {
            // The message's own attachment route: its name and type, not another message's.
            attachment: row.attachment.map(|a| {
                let file_id = a.file_id.to_hex();
                // A chunked file has at least one chunk; a blob's row stores 0.
                let blob = a.chunks_total == 0;
                AttachmentView {
                    blob,
                    url: format!("/api/messages/{id}/attachment"),
                    file_id,
                    name: a.name,
                    mime: a.mime,
                    size: a.size_bytes,
                    chunks_total: a.chunks_total,
                    chunks_have: a.chunks_have,
                    // A blob's progress is the blob store's: `with_files`.
                    complete: !blob && a.chunks_have >= a.chunks_total,
                }
            }),
            id,
            author: row.author,
            text: row.text,
            created_at_ms: row.created_at_us / 1_000,
            auto: row.auto,
            reactions: row
                .reactions
                .into_iter()
                .map(|(emoji, authors)| ReactionView {
                    emoji,
                    authors: authors.into_iter().collect(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, ts_rs::TS)]
pub struct TrafficView {
    pub count: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct OriginView {
    pub local: u64,
    pub peer: u64,
}

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct PeerView {
    pub name: String,
    pub events_advertised: Option<u32>,
    pub in_sync: bool,
    pub last_exchange_ms: Option<u64>,
    /// Datagrams to or from it are dropped (`POST /api/peers/:name/blocked`, or a cut).
    pub blocked: bool,
    /// Where it was last heard from or learned to be (`null` before either: then only its
    /// configured address is known), and how: `packet`, `joined`, `discovered`, `record`,
    /// `introduced`.
    pub address: Option<String>,
    pub address_source: Option<&'static str>,
    /// The peer its datagrams go through while no direct path works (a relay after a punch
    /// through NATs failed); `null`: direct.
    pub relayed_via: Option<String>,
    /// How this device first learned where the peer is, kept when the address later moves:
    /// `discovered` (its LAN announcement), `record` (a member passed on its address record),
    /// `joined`, `packet` (it reached out first), `introduced` (a shared peer said where it
    /// was seen, to punch through NATs); `null` for a peer known from the start
    /// (`--peer`, or remembered from an earlier run).
    pub met_by: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct StatsView {
    pub device: String,
    pub online: bool,
    pub events: u64,
    pub messages: u64,
    pub reactions: u64,
    pub events_by_origin: OriginView,
    pub packets_sent: BTreeMap<&'static str, TrafficView>,
    pub packets_received: BTreeMap<&'static str, TrafficView>,
    pub drops: BTreeMap<&'static str, u64>,
    pub peers: Vec<PeerView>,
    pub sync_percent: f64,
    /// The key epoch this device seals new events under (0: the community key; each removal
    /// or rotation starts the next).
    pub key_epoch: u32,
    /// Times a peer's address moved to follow its newest packet (roaming, a new port).
    pub peer_moves: u64,
    /// NAT traversal (`core/src/node/punch.rs`, `relay.rs`): introductions sent, and the
    /// datagrams and bytes this device forwarded as a relay between two of its peers.
    pub introductions_sent: u64,
    pub relayed_datagrams: u64,
    pub relayed_bytes: u64,
    /// The blob transfer since this device started (core's `BlobTotals`).
    pub blobs: BlobTotalsView,
}

/// What the blob transfer did since the device started: payload bytes, not datagrams (the
/// `BLOB` row of `packets_received` has those, headers and tags included).
#[derive(Clone, Copy, Debug, Default, Serialize, ts_rs::TS)]
pub struct BlobTotalsView {
    pub wants_sent: u64,
    /// Erasure-coded shard bytes (data and recovery) received and sent.
    pub shard_bytes_received: u64,
    pub shard_bytes_sent: u64,
    pub outboard_bytes_received: u64,
    /// 16 KiB groups rebuilt, verified and stored.
    pub groups_verified: u64,
    /// Groups or outboards that failed verification (a member gone bad, a corrupt link).
    pub forgeries: u64,
    pub files_fetched: u64,
}

impl StatsView {
    /// Counts come from the store (true across restarts); traffic and peers from the node.
    pub fn new(snapshot: Snapshot, counts: Counts) -> Self {
        let traffic = |map: &BTreeMap<PacketKind, meshlog_core::Traffic>| {
            PacketKind::ALL
                .iter()
                .map(|kind| {
                    let t = map.get(kind).copied().unwrap_or_default();
                    (
                        kind.name(),
                        TrafficView {
                            count: t.count,
                            bytes: t.bytes,
                        },
                    )
                })
                .collect()
        };
        StatsView {
            device: snapshot.device.to_string(),
            online: snapshot.online,
            events: counts.events,
            messages: counts.messages,
            reactions: counts.reactions,
            events_by_origin: OriginView {
                local: counts.events_authored_by,
                peer: counts.events - counts.events_authored_by.min(counts.events),
            },
            packets_sent: traffic(&snapshot.stats.sent),
            packets_received: traffic(&snapshot.stats.received),
            drops: snapshot.stats.drops.clone(),
            peers: snapshot
                .peers
                .iter()
                .map(|p| PeerView {
                    name: p.device.to_string(),
                    events_advertised: p.state.advertised.map(|s| s.count),
                    in_sync: p.state.in_sync,
                    last_exchange_ms: p.state.last_exchange.map(|t| t.as_millis()),
                    blocked: false,
                    address: p.address.map(|(addr, _)| addr.to_string()),
                    address_source: p.address.map(|(_, source)| source.name()),
                    relayed_via: p.relayed_via.as_ref().map(ToString::to_string),
                    met_by: p.met_by.map(|source| source.name()),
                })
                .collect(),
            // One decimal is all a person reads; keeps the JSON short.
            sync_percent: (snapshot.sync_percent * 10.0).round() / 10.0,
            key_epoch: snapshot.key_epoch,
            peer_moves: snapshot.stats.peer_moves,
            introductions_sent: snapshot.stats.introductions_sent,
            relayed_datagrams: snapshot.stats.relayed_datagrams,
            relayed_bytes: snapshot.stats.relayed_bytes,
            blobs: {
                let b = snapshot.stats.blobs;
                BlobTotalsView {
                    wants_sent: b.wants_sent,
                    shard_bytes_received: b.shard_bytes_received,
                    shard_bytes_sent: b.shard_bytes_sent,
                    outboard_bytes_received: b.outboard_bytes_received,
                    groups_verified: b.groups_verified,
                    forgeries: b.forgeries,
                    files_fetched: b.files_fetched,
                }
            },
        }
    }

    /// Marks the peers `is_blocked` names and counts `dropped` datagrams under `blocked`.
    pub fn with_blocked(mut self, is_blocked: impl Fn(&str) -> bool, dropped: u64) -> Self {
        for peer in &mut self.peers {
            peer.blocked = is_blocked(&peer.name);
        }
        if dropped > 0 {
            *self.drops.entry("blocked").or_default() += dropped;
        }
        self
    }
}

/// One member of the community as this device's roster settles it (`GET /api/members`).
#[derive(Clone, Debug, Serialize, ts_rs::TS)]
pub struct MemberView {
    pub name: String,
    #[ts(type = "\"admin\" | \"member\"")]
    pub role: &'static str,
    #[ts(type = "\"active\" | \"removed\"")]
    pub status: &'static str,
    /// The admin who added it; `null` for the community's first devices.
    pub added_by: Option<String>,
    pub added_at_ms: u64,
    /// The person whose device it is (their certificate is in the log); `null`: not said.
    pub person: Option<String>,
}

impl MemberView {
    /// Every member `roster` knows of, removed ones too, by name.
    pub fn all(roster: &Roster) -> Vec<MemberView> {
        roster
            .members
            .iter()
            .map(|(device, info)| MemberView {
                name: device.to_string(),
                role: info.role.name(),
                status: info.status.name(),
                added_by: info.added_by.as_ref().map(|d| d.to_string()),
                added_at_ms: info.added_at.as_micros() / 1_000,
                person: info.person.as_ref().map(|p| p.to_string()),
            })
            .collect()
    }
}
