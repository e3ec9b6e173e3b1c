//! A simulated device behind the device API (`crate::api`): the world thread in place of the
//! driver and the SQLite reader, so the same routes, checks and JSON serve it.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use meshlog_core::{EventBody, EventId, FileId};
use meshlog_sim::world::control::HostError;
use tokio::sync::broadcast;

use super::outputs::DeviceOutputs;
use super::world_thread::{WorldError, WorldHandle};
use crate::api::peers::unknown_peer;
use crate::api::{DeviceBackend, JsonBytes, MessagesPage};
use crate::device::netlog::NetLog;
use crate::device::state::Frame;
use crate::device::views::{MessageView, StatsView};
use crate::http::ApiError;
use crate::store::{Cursor, FileContent, PageRequest};
use meshlog_net::Blocked;

/// One simulated device as the device API sees it.
#[derive(Clone, Debug)]
pub struct SimDevice {
    pub index: usize,
    pub outputs: DeviceOutputs,
    pub world: WorldHandle,
    /// (name, world index) of each device it peers with, from the topology.
    pub peers: Vec<(String, usize)>,
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

    /// Pages as a real device pages (the same cursor and limit), over the messages the world
    /// holds in memory; `q` is matched as plain words, not FTS5 syntax.
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
        Ok(page_of(messages, &request).into_json())
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

    /// Simulated devices block a peer by cutting the virtual links to and from it.
    async fn blocked(&self, peer: &str) -> Result<Blocked, ApiError> {
        let peer = self.peer_index(peer)?;
        let (outbound, inbound) = self.world.is_cut(self.index, peer).await?;
        Ok(Blocked { inbound, outbound })
    }

    async fn set_blocked(&self, peer: &str, blocked: Blocked) -> Result<Blocked, ApiError> {
        let index = self.peer_index(peer)?;
        self.world
            .set_cut(self.index, index, blocked.outbound)
            .await?;
        self.world
            .set_cut(index, self.index, blocked.inbound)
            .await?;
        self.blocked(peer).await
    }
}

impl SimDevice {
    /// The world's index of `peer`, if it is one of this device's peers.
    fn peer_index(&self, peer: &str) -> Result<usize, ApiError> {
        self.peers
            .iter()
            .find(|(name, _)| name == peer)
            .map(|(_, index)| *index)
            .ok_or_else(|| unknown_peer(peer))
    }
}

/// Where a message stands in the order pages walk: newest first by creation time, then id.
fn cursor_of(message: &MessageView) -> Option<Cursor> {
    Some(Cursor {
        created_at_us: i64::try_from(message.created_at_ms.checked_mul(1_000)?).ok()?,
        id: EventId::from_hex(&message.id)?,
    })
}

/// The page `request` asks for: up to `limit` messages strictly older than its cursor, oldest
/// first within the page (as a real device answers), and the cursor of the page before.
fn page_of(messages: Vec<MessageView>, request: &PageRequest) -> MessagesPage {
    let mut keyed: Vec<(Cursor, MessageView)> = messages
        .into_iter()
        .filter_map(|m| Some((cursor_of(&m)?, m)))
        .filter(|(at, _)| request.before.as_ref().is_none_or(|before| at < before))
        .collect();
    keyed.sort_by_key(|(at, _)| *at);
    let skip = keyed.len().saturating_sub(request.limit);
    let next = (skip > 0).then(|| keyed[skip].0.to_string());
    MessagesPage {
        messages: keyed.into_iter().skip(skip).map(|(_, m)| m).collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: u64, at_ms: u64) -> MessageView {
        MessageView {
            id: EventId::of_bytes(&i.to_le_bytes()).to_hex(),
            author: "alice".into(),
            text: format!("m{i}"),
            created_at_ms: at_ms,
            auto: false,
            reactions: Vec::new(),
            attachment: None,
        }
    }

    #[test]
    fn pages_walk_every_message_once_newest_page_first() {
        // Two messages share each millisecond: the id breaks the tie.
        let all: Vec<MessageView> = (0..23).map(|i| message(i, 1_000 + i / 2)).collect();
        let mut request = PageRequest {
            before: None,
            limit: 5,
            search: None,
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = page_of(all.clone(), &request);
            assert!(page.messages.len() <= 5);
            let times: Vec<u64> = page.messages.iter().map(|m| m.created_at_ms).collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "oldest first in a page"
            );
            seen.splice(0..0, page.messages.iter().map(|m| m.text.clone()));
            pages += 1;
            match page.next {
                Some(next) => request.before = Cursor::parse(&next),
                None => break,
            }
        }
        assert_eq!(pages, 5);
        let mut expected: Vec<MessageView> = all.clone();
        expected.sort_by_key(|m| cursor_of(m).unwrap());
        let expected: Vec<String> = expected.into_iter().map(|m| m.text).collect();
        assert_eq!(seen, expected, "each message once, in order");
    }
}
