//! What every handler shares, and the task that turns node events into log lines and
//! stream frames.

use std::sync::{Arc, Mutex};

use meshlog_core::{EventBody, EventId, NodeEvent};
use meshlog_net::{DriverEvent, DriverHandle, NetEventKind};
use serde::Serialize;
use tokio::sync::broadcast;

use super::netlog::NetLog;
use super::views::{MessageView, StatsView};
use crate::http::ApiError;
use crate::store::StoreReader;

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
    pub reader: Arc<Mutex<StoreReader>>,
    pub netlog: Arc<Mutex<NetLog>>,
    pub frames: broadcast::Sender<Frame>,
}

impl DeviceState {
    pub fn new(device: String, driver: DriverHandle, reader: StoreReader) -> Self {
        DeviceState {
            device,
            driver,
            reader: Arc::new(Mutex::new(reader)),
            netlog: Arc::new(Mutex::new(NetLog::default())),
            frames: broadcast::channel(FRAME_QUEUE_LEN).0,
        }
    }

    /// Runs a query on the read connection.
    pub fn read<T>(
        &self,
        query: impl FnOnce(&StoreReader) -> Result<T, crate::store::DbError>,
    ) -> Result<T, ApiError> {
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        query(&reader).map_err(ApiError::internal)
    }

    pub fn message_view(&self, id: &EventId) -> Result<Option<MessageView>, ApiError> {
        Ok(self.read(|r| r.message(id))?.map(MessageView::from))
    }

    pub async fn stats(&self) -> Result<StatsView, ApiError> {
        let snapshot = self.driver.snapshot().await.map_err(ApiError::internal)?;
        let counts = self.read(|r| r.counts(&self.device))?;
        Ok(StatsView::new(snapshot, counts))
    }

    pub fn publish(&self, frame: Frame) {
        // No subscriber is normal: nobody has the page open.
        let _ = self.frames.send(frame);
    }

    /// Follows the driver for as long as it runs: fills the network log, and announces new
    /// and changed messages on the stream.
    /// `events` comes from `driver.subscribe()` taken *before* the driver starts, so the log
    /// misses nothing from the first round.
    pub async fn pump(self, mut events: broadcast::Receiver<DriverEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "network log fell behind; skipped events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn on_event(&self, event: &DriverEvent) {
        let logged = self
            .netlog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(&self.device, event);
        if let Some(line) = logged {
            self.publish(Frame::new("network", &line));
        }
        let NetEventKind::Node(NodeEvent::EventStored { id, event, .. }) = &event.kind else {
            return;
        };
        let changed: Vec<EventId> = match &event.body {
            EventBody::Message { .. } => vec![*id],
            EventBody::Reaction { message, .. } => vec![*message],
            EventBody::FileChunk { file, .. } => {
                let progress = self.read(|r| r.file_progress(file));
                match progress {
                    Ok(Some((have, total)))
                        if have >= total || have % CHUNK_PROGRESS_EVERY == 0 =>
                    {
                        self.read(|r| r.messages_with_file(file))
                            .unwrap_or_default()
                    }
                    _ => Vec::new(),
                }
            }
            EventBody::DeviceStatus { .. } => Vec::new(),
        };
        for message in changed {
            match self.message_view(&message) {
                Ok(Some(view)) => self.publish(Frame::new("message", &view)),
                Ok(None) => {} // a reaction or chunk that arrived before its message
                Err(err) => tracing::warn!(%err, "reading a changed message"),
            }
        }
    }
}
