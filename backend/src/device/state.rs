//! What every handler shares, and the task that turns node events into log lines and
//! stream frames.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use meshlog_core::member::Status;
use meshlog_core::{DeviceId, EventBody, EventId, FileId, NodeEvent};
use meshlog_net::{DriverEvent, DriverHandle, NetEventKind};
use serde::Serialize;
use tokio::sync::broadcast;

use super::netlog::NetLog;
use super::views::{MemberView, MessageView, StatsView};
use crate::files::FileService;
use crate::http::ApiError;
use crate::store::DbKey;
use crate::store::{DbError, ReaderPool, StoreReader};

/// Frames kept for slow stream subscribers; one further behind skips ahead.
const FRAME_QUEUE_LEN: usize = 1_024;
/// While a file arrives, its message is re-announced every this many chunks (and when complete),
/// so a 1 MB file makes tens of frames, not a thousand.
pub(crate) const CHUNK_PROGRESS_EVERY: u32 = 32;

/// One server-sent event, serialized once for every subscriber.
#[derive(Clone, Debug)]
pub struct Frame {
    pub event: &'static str,
    pub data: String,
}

impl Frame {
    pub fn new<T: Serialize>(event: &'static str, data: &T) -> Self {
        Frame {
            event,
            data: serde_json::to_string(data).expect("views serialize"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeviceState {
    pub device: String,
    pub driver: DriverHandle,
    /// Pages, searches, files and counts: the queries that can take a while.
    pub scans: ReaderPool,
    /// Single-message look-ups (a POST's answer, the stream's changed messages), on their own
    /// connections so they never queue behind 50 clients paging through history.
    pub lookups: ReaderPool,
    pub netlog: Arc<Mutex<NetLog>>,
    pub frames: broadcast::Sender<Frame>,
    /// Where this device's UDP socket listens: what its invites name.
    pub udp_addr: SocketAddr,
    /// The data directory, where the epoch keys are kept (`super::epoch_keys`).
    pub data_dir: PathBuf,
    /// The database's key, which also seals the epoch keys' file.
    at_rest: DbKey,
    /// The blob store (`crate::files`), in `DATA/files/`.
    pub files: Option<FileService>,
}

/// Where a device is: its UDP address, its data directory and the key of what is at rest there.
#[derive(Clone, Debug)]
pub struct Place {
    pub udp_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub at_rest: DbKey,
}

impl DeviceState {
    pub fn new(
        device: String,
        driver: DriverHandle,
        scans: ReaderPool,
        lookups: ReaderPool,
        place: Place,
    ) -> Self {
        DeviceState {
            device,
            driver,
            scans,
            lookups,
            udp_addr: place.udp_addr,
            data_dir: place.data_dir,
            at_rest: place.at_rest,
            files: None,
            netlog: Arc::new(Mutex::new(NetLog::default())),
            frames: broadcast::channel(FRAME_QUEUE_LEN).0,
        }
    }

    /// Runs a query that may scan many rows, off the executor.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&StoreReader) -> Result<T, DbError> + Send + 'static,
    {
        read_on(&self.scans, query).await
    }

    /// Runs a look-up of a row or two, off the executor.
    pub async fn look_up<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&StoreReader) -> Result<T, DbError> + Send + 'static,
    {
        read_on(&self.lookups, query).await
    }

    pub async fn message_view(&self, id: &EventId) -> Result<Option<MessageView>, ApiError> {
        let id = *id;
        let files = self.files.as_ref().map(|f| f.store.clone());
        Ok(self
            .look_up(move |r| r.message(&id))
            .await?
            .map(|row| MessageView::from(row).with_files(files.as_deref())))
    }

    pub async fn stats(&self) -> Result<StatsView, ApiError> {
        let snapshot = self.driver.snapshot().await.map_err(ApiError::internal)?;
        let device = self.device.clone();
        let counts = self.read(move |r| r.counts(&device)).await?;
        let (blocked, dropped) = self.driver.blocklist().snapshot();
        Ok(StatsView::new(snapshot, counts)
            .with_blocked(|peer| blocked.keys().any(|b| b.as_str() == peer), dropped))
    }

    pub fn publish(&self, frame: Frame) {
        // No subscriber is normal: nobody has the page open.
        let _ = self.frames.send(frame);
    }

    /// Announces again (`message` frames) every message that refers to `file`: its
    /// attachment's progress moved.
    pub async fn publish_messages_with_file(&self, file: FileId) {
        let messages = self
            .look_up(move |r| r.messages_with_file(&file))
            .await
            .unwrap_or_default();
        for message in messages {
            match self.message_view(&message).await {
                Ok(Some(view)) => self.publish(Frame::new("message", &view)),
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "reading a message with a changed file"),
            }
        }
    }

    /// Sends the roster to every stream subscriber (`members` frame).
    pub async fn publish_members(&self) {
        match self.driver.members().await {
            Ok(members) => self.publish(Frame::new("members", &MemberView::all(&members.roster))),
            Err(err) => tracing::warn!(%err, "reading the roster"),
        }
    }

    /// Writes the epoch keys the node holds into the data directory (`epoch-keys.json`), so
    /// a restart opens what it could open before. Called at start, on every new key, and
    /// after the pump fell behind (it may have missed one).
    pub async fn persist_epoch_keys(&self) {
        let keys = match self.driver.members().await {
            Ok(members) => members.epoch_keys,
            Err(err) => {
                tracing::warn!(%err, "reading the epoch keys");
                return;
            }
        };
        let (dir, at_rest) = (self.data_dir.clone(), self.at_rest.clone());
        let written =
            tokio::task::spawn_blocking(move || super::epoch_keys::save(&dir, &at_rest, &keys))
                .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "keeping the epoch keys"),
            Err(err) => tracing::error!(%err, "keeping the epoch keys"),
        }
    }

    /// Keeps `peers.json` (`known_peers.rs`) as the node's peers change; in the pump's task,
    /// so two writes of the file never overlap.
    async fn keep_known_peers(&self, change: KnownPeer) {
        let dir = self.data_dir.clone();
        let written = tokio::task::spawn_blocking(move || match change {
            KnownPeer::Remember(device, addr) => super::known_peers::remember(&dir, device, addr),
            KnownPeer::Forget(device) => super::known_peers::retain(&dir, |d| *d != device),
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "keeping the peers' addresses"),
            Err(err) => tracing::error!(%err, "keeping the peers' addresses"),
        }
    }

    /// Follows the driver for as long as it runs: fills the network log, and announces new
    /// and changed messages on the stream.
    /// `events` comes from `driver.subscribe()` taken *before* the driver starts, so the log
    /// misses nothing from the first round.
    pub async fn pump(self, mut events: broadcast::Receiver<DriverEvent>) {
        // Keys the node re-derived from the log at start are kept too; in this task, so two
        // writes of the file never overlap.
        self.persist_epoch_keys().await;
        loop {
            match events.recv().await {
                Ok(event) => self.on_event(&event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "network log fell behind; skipped events");
                    // A new epoch key may have been among them.
                    self.persist_epoch_keys().await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn on_event(&self, event: &DriverEvent) {
        let logged = self
            .netlog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(&self.device, event);
        // Frames only for a page that listens: with none (a device nobody watches, a catch-up
        // before the page is opened), rendering each received message for it (a read of the
        // store, then JSON) was per-event work on the executor beside the node thread. A page
        // opened later reads the messages and the log through the API.
        let listening = self.frames.receiver_count() > 0;
        if let Some(line) = logged.filter(|_| listening) {
            self.publish(Frame::new("network", &line));
        }
        let (id, event) = match &event.kind {
            NetEventKind::Node(NodeEvent::EventStored { id, event, .. }) => (id, event),
            NetEventKind::Node(NodeEvent::KeyEpoch { .. } | NodeEvent::KeysForgotten { .. }) => {
                self.persist_epoch_keys().await;
                return;
            }
            NetEventKind::Node(NodeEvent::MemberChanged { device, status, .. }) => {
                if *status == Status::Removed {
                    self.keep_known_peers(KnownPeer::Forget(device.clone()))
                        .await;
                }
                self.publish_members().await;
                return;
            }
            NetEventKind::PeerLearned { device, addr, .. } => {
                self.keep_known_peers(KnownPeer::Remember(device.clone(), *addr))
                    .await;
                return;
            }
            _ => return,
        };
        if !listening {
            return;
        }
        let changed: Vec<EventId> = match &event.body {
            EventBody::Message { .. } => vec![*id],
            EventBody::Reaction { message, .. } => vec![*message],
            EventBody::FileChunk { file, .. } => {
                let file = *file;
                let progress = self.look_up(move |r| r.file_progress(&file)).await;
                match progress {
                    Ok(Some((have, total)))
                        if have >= total || have % CHUNK_PROGRESS_EVERY == 0 =>
                    {
                        self.publish_messages_with_file(file).await;
                        Vec::new()
                    }
                    _ => Vec::new(),
                }
            }
            EventBody::DeviceStatus { .. } | EventBody::Membership { .. } => Vec::new(),
        };
        for message in changed {
            match self.message_view(&message).await {
                Ok(Some(view)) => self.publish(Frame::new("message", &view)),
                Ok(None) => {} // a reaction or chunk that arrived before its message
                Err(err) => tracing::warn!(%err, "reading a changed message"),
            }
        }
    }
}

async fn read_on<T, F>(pool: &ReaderPool, query: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&StoreReader) -> Result<T, DbError> + Send + 'static,
{
    pool.read(query).await.map_err(|err| match err {
        crate::store::PoolError::Db(DbError::BadQuery(message)) => {
            ApiError::bad_request(format!("q: {message}"))
        }
        err => ApiError::internal(err),
    })
}

/// A change to `peers.json`.
#[derive(Debug)]
enum KnownPeer {
    Remember(DeviceId, SocketAddr),
    Forget(DeviceId),
}
