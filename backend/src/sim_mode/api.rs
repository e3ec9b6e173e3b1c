//! A simulated device behind the device API (`crate::api`): the world thread in place of the
//! driver and the SQLite reader, so the same routes, checks and JSON serve it.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use meshlog_core::{EventBody, EventId, FileId};
use meshlog_sim::world::control::HostError;
use tokio::sync::broadcast;

use super::world_thread::{DeviceOutputs, WorldError, WorldHandle};
use crate::api::{DeviceBackend, JsonBytes, MessagesPage};
use crate::device::netlog::NetLog;
use crate::device::state::Frame;
use crate::device::views::{MessageView, StatsView};
use crate::http::ApiError;
use crate::store::{FileContent, PageRequest};

/// One simulated device as the device API sees it.
#[derive(Clone, Debug)]
pub struct SimDevice {
    pub index: usize,
    pub outputs: DeviceOutputs,
    pub world: WorldHandle,
}

impl From<WorldError> for ApiError {
    fn from(err: WorldError) -> Self {
        match &err {
            WorldError::Host(HostError::Append { .. }) => ApiError::bad_request(err.to_string()),
            WorldError::Host(HostError::UnknownDevice(_)) => ApiError::not_found(err.to_string()),
            WorldError::Host(HostError::Down(_)) => ApiError {
                status: StatusCode::CONFLICT,
                message: err.to_string(),
            },
            _ => ApiError::internal(err),
        }
    }
}

impl DeviceBackend for SimDevice {
    fn name(&self) -> &str {
        &self.outputs.name
    }

    fn netlog(&self) -> &Arc<Mutex<NetLog>> {
        &self.outputs.netlog
    }

    fn frames(&self) -> &broadcast::Sender<Frame> {
        &self.outputs.frames
    }

    async fn append(
        &self,
        bodies: Vec<EventBody>,
    ) -> Result<(Vec<EventId>, Option<MessageView>), ApiError> {
        Ok(self.world.append(self.index, bodies).await?)
    }

    /// Every message (a simulated device holds few, in memory): no pages, and `q` matched as
    /// plain words, not FTS5 syntax.
    async fn messages(&self, request: PageRequest) -> Result<JsonBytes, ApiError> {
        let mut messages = self.world.messages(self.index).await?;
        if let Some(q) = &request.search {
            let words: Vec<String> = q
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '"' || c == '*').to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            messages.retain(|m| {
                let name = m.attachment.as_ref().map(|a| a.name.as_str()).unwrap_or("");
                let hay = format!("{} {}", m.text, name).to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            });
        }
        Ok(MessagesPage {
            messages,
            next: None,
        }
        .into_json())
    }

    async fn message(&self, id: EventId) -> Result<Option<MessageView>, ApiError> {
        Ok(self.world.message(self.index, id).await?)
    }

    async fn file(&self, file: FileId) -> Result<Option<FileContent>, ApiError> {
        Ok(self.world.file(self.index, file).await?)
    }

    async fn stats(&self) -> Result<StatsView, ApiError> {
        Ok(self.world.stats(self.index).await?)
    }

    async fn set_online(&self, online: bool) -> Result<(), ApiError> {
        Ok(self.world.set_online(self.index, online).await?)
    }
}
