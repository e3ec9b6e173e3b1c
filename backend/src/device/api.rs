//! A real device behind the device API: the driver appends and reports, the SQLite reader
//! answers queries.

use std::sync::{Arc, Mutex};

use meshlog_core::{EventBody, EventId, FileId};
use tokio::sync::broadcast;

use super::netlog::NetLog;
use super::state::{DeviceState, Frame};
use super::views::{MessageView, StatsView};
use crate::api::DeviceBackend;
use crate::http::ApiError;
use crate::store::FileContent;

impl DeviceBackend for DeviceState {
    fn name(&self) -> &str {
        &self.device
    }

    fn netlog(&self) -> &Arc<Mutex<NetLog>> {
        &self.netlog
    }

    fn frames(&self) -> &broadcast::Sender<Frame> {
        &self.frames
    }

    async fn append(
        &self,
        bodies: Vec<EventBody>,
    ) -> Result<(Vec<EventId>, Option<MessageView>), ApiError> {
        let ids = self
            .driver
            .append_all(bodies)
            .await
            .map_err(ApiError::internal)?;
        let view = match ids.last() {
            Some(last) => self.message_view(last)?,
            None => None,
        };
        Ok((ids, view))
    }

    async fn messages(&self) -> Result<Vec<MessageView>, ApiError> {
        Ok(self
            .read(|r| r.messages())?
            .into_iter()
            .map(MessageView::from)
            .collect())
    }

    async fn message(&self, id: EventId) -> Result<Option<MessageView>, ApiError> {
        self.message_view(&id)
    }

    async fn file(&self, file: FileId) -> Result<Option<FileContent>, ApiError> {
        self.read(|r| r.file(&file))
    }

    async fn stats(&self) -> Result<StatsView, ApiError> {
        DeviceState::stats(self).await
    }

    async fn set_online(&self, online: bool) -> Result<(), ApiError> {
        self.driver
            .set_online(online)
            .await
            .map_err(ApiError::internal)
    }
}
