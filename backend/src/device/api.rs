//! A real device behind the device API: the driver appends and reports, the SQLite reader
//! answers queries.

use std::sync::{Arc, Mutex};

use meshlog_core::member::{Invite, PersonKeys};
use meshlog_core::{EventBody, EventId, FileId};
use meshlog_net::{Blocked, MemberOutcome, MemberVerb};
use tokio::sync::broadcast;

use super::netlog::NetLog;
use super::state::{DeviceState, Frame};
use super::views::{MemberView, MessageView, StatsView};
use crate::api::members::{driver_error, InviteRequest};
use crate::api::peers::unknown_peer;
use crate::api::{DeviceBackend, JsonBytes, MessagesPage};
use crate::http::ApiError;
use crate::names::device_id;
use crate::paging::PageRequest;
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

    fn files(&self) -> Option<&crate::files::FileService> {
        self.files.as_ref()
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
        let files = self.files.as_ref().map(|f| f.store.clone());
        self.read(move |r| {
            let page = r.page(&request)?;
            let mut messages: Vec<MessageView> = page
                .messages
                .into_iter()
                .map(|row| MessageView::from(row).with_files(files.as_deref()))
                .collect();
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

    /// A peer, or an active member that is not one yet: devices that find each other by
    /// discovery become peers a second or so after start, and a cut set before that must
    /// hold from their first packet (the blocklist is by name, so it applies when they come).
    async fn blocked(&self, peer: &str) -> Result<Blocked, ApiError> {
        let id = device_id(peer).map_err(|_| unknown_peer(peer))?;
        let snapshot = self.driver.snapshot().await.map_err(ApiError::internal)?;
        let is_peer = snapshot.peers.iter().any(|p| p.device == id);
        if !is_peer {
            let members = self.driver.members().await.map_err(ApiError::internal)?;
            if !members.roster.is_active(&id) || id == snapshot.device {
                return Err(unknown_peer(peer));
            }
        }
        Ok(self.driver.blocklist().get(&id))
    }

    async fn set_blocked(&self, peer: &str, blocked: Blocked) -> Result<Blocked, ApiError> {
        self.blocked(peer).await?; // a peer or a member, so the name is a valid id
        let id = device_id(peer).map_err(|_| unknown_peer(peer))?;
        self.driver.set_blocked(id.clone(), blocked);
        Ok(self.driver.blocklist().get(&id))
    }

    async fn set_online(&self, online: bool) -> Result<(), ApiError> {
        self.driver
            .set_online(online)
            .await
            .map_err(ApiError::internal)
    }

    async fn members(&self) -> Result<Vec<MemberView>, ApiError> {
        let members = self.driver.members().await.map_err(ApiError::internal)?;
        Ok(MemberView::all(&members.roster))
    }

    async fn remove_member(&self, name: &str) -> Result<u32, ApiError> {
        let device = device_id(name)
            .map_err(|_| ApiError::not_found(format!("{name:?} is not an active member")))?;
        match self.member(MemberVerb::Remove(device)).await? {
            MemberOutcome::KeyEpoch(epoch) => Ok(epoch),
            MemberOutcome::Invite(_) => Err(ApiError::internal("removal answered an invite")),
        }
    }

    async fn remove_person(&self, name: &str) -> Result<u32, ApiError> {
        let person = device_id(name)
            .map_err(|_| ApiError::not_found(format!("{name:?} is not a person")))?;
        match self.member(MemberVerb::RemovePerson(person)).await? {
            MemberOutcome::KeyEpoch(epoch) => Ok(epoch),
            MemberOutcome::Invite(_) => Err(ApiError::internal("removal answered an invite")),
        }
    }

    async fn rotate_keys(&self) -> Result<u32, ApiError> {
        match self.member(MemberVerb::RotateKeys).await? {
            MemberOutcome::KeyEpoch(epoch) => Ok(epoch),
            MemberOutcome::Invite(_) => Err(ApiError::internal("rotation answered an invite")),
        }
    }

    async fn create_invite(&self, request: InviteRequest) -> Result<Invite, ApiError> {
        let verb = MemberVerb::Invite {
            role: request.role,
            valid_for: request.valid_for,
            uses: request.uses,
            address: self.udp_addr.to_string(),
        };
        match self.member(verb).await? {
            MemberOutcome::Invite(invite) => Ok(*invite),
            MemberOutcome::KeyEpoch(_) => Err(ApiError::internal("invite answered an epoch")),
        }
    }
}

impl DeviceState {
    /// Publishes `person`'s certificate for this device unless the roster already holds it
    /// (`meshlog device --person-key`).
    pub async fn certify(&self, person: PersonKeys) -> Result<(), ApiError> {
        self.member(MemberVerb::Certify(Box::new(person))).await?;
        Ok(())
    }

    async fn member(&self, verb: MemberVerb) -> Result<MemberOutcome, ApiError> {
        let outcome = self.driver.member(verb).await.map_err(driver_error)?;
        // The pane shows the roster and the key epoch from these: tell it now.
        if let Ok(stats) = DeviceState::stats(self).await {
            self.publish(Frame::new("stats", &stats));
        }
        self.publish_members().await;
        Ok(outcome)
    }
}
