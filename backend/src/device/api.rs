//! A real device behind the device API: the driver appends and reports, the SQLite reader
//! answers queries.

use std::sync::{Arc, Mutex};

use meshlog_core::{EventBody, EventId, FileId};
use tokio::sync::broadcast;

use super::netlog::NetLog;
use super::state::{DeviceState, Frame};
use super::views::{MessageView, StatsView};
use crate::api::{DeviceBackend, JsonBytes, MessagesPage};
use crate::http::ApiError;
use crate::store::{FileContent, PageRequest};

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
            Some(last) => self.message_view(last).await?,
            None => None,
        };
        Ok((ids, view))
    }

    async fn messages(&self, request: PageRequest) -> Result<JsonBytes, ApiError> {
        // Built and serialized on the blocking thread that read it, not on the executor.
        self.read(move |r| {
            let page = r.page(&request)?;
            let mut messages: Vec<MessageView> =
                page.messages.into_iter().map(MessageView::from).collect();
            messages.reverse();
            Ok(MessagesPage {
                messages,
                next: page.next.map(|c| c.to_string()),
            }
            .into_json())
        })
        .await
    }

    async fn message(&self, id: EventId) -> Result<Option<MessageView>, ApiError> {
        self.message_view(&id).await
    }

    async fn file(&self, file: FileId) -> Result<Option<FileContent>, ApiError> {
        self.read(move |r| r.file(&file)).await
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
