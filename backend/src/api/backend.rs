//! What the device API needs from a device, real ([`crate::device`]) or simulated
//! ([`crate::sim_mode`]), and the pre-serialized JSON its pages answer with.

use std::future::Future;
use std::sync::{Arc, Mutex};

use meshlog_core::member::{Invite, Role};
use meshlog_core::{Duration, EventBody, EventId, FileId};
use meshlog_net::Blocked;
use tokio::sync::broadcast;

use crate::device::netlog::NetLog;
use crate::device::state::Frame;
use crate::device::views::{MemberView, MessageView, StatsView};
use crate::http::ApiError;
use crate::paging::PageRequest;
use crate::store::FileContent;

/// A page of `GET /api/messages`: oldest first, as the page shows them; `next` is the cursor
/// for the page of older ones (`null` on the last page).
#[derive(Clone, Debug, serde::Serialize)]
pub struct MessagesPage {
    pub messages: Vec<MessageView>,
    pub next: Option<String>,
}

impl MessagesPage {
    /// The page as its JSON answer. A device calls this inside its blocking read: a page of
    /// up to `PAGE_LIMIT_MAX` messages takes long enough to serialize that, done on the
    /// executor, it delayed every other request (health p99 11 ms under 50 paging clients).
    pub fn into_json(self) -> JsonBytes {
        // Strings, numbers and options only: serde_json cannot fail on them.
        JsonBytes(serde_json::to_vec(&self).expect("a messages page serializes"))
    }
}

/// `POST /api/invites`, checked (`super::members`): what the device's node is asked for.
#[derive(Clone, Debug)]
pub struct InviteRequest {
    pub role: Role,
    pub valid_for: Duration,
    pub uses: u16,
}

/// JSON already serialized (a [`MessagesPage`], the health answer), sent as `application/json`.
#[derive(Clone, Debug)]
pub struct JsonBytes(pub Vec<u8>);

impl axum::response::IntoResponse for JsonBytes {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// What the device API needs from a device, real or simulated. Every method answers for
/// this one device; errors are already the HTTP answer they should become.
pub trait DeviceBackend: Clone + Send + Sync + 'static {
    /// The device's name, as `hello` frames carry it.
    fn name(&self) -> &str;
    /// Its network log, filled by whatever drives the device.
    fn netlog(&self) -> &Arc<Mutex<NetLog>>;
    /// Its live stream's frames (`message`, `network`, `stats`).
    fn frames(&self) -> &broadcast::Sender<Frame>;

    /// Appends `bodies` as this device's own events, in order, durably; answers their ids
    /// and the view of the last one if it is a message.
    fn append(
        &self,
        bodies: Vec<EventBody>,
    ) -> impl Future<Output = Result<(Vec<EventId>, Option<MessageView>), ApiError>> + Send;
    /// One page of messages as `request` asks (`GET /api/messages?before=&limit=&q=`),
    /// serialized off the executor ([`MessagesPage::into_json`]).
    fn messages(
        &self,
        request: PageRequest,
    ) -> impl Future<Output = Result<JsonBytes, ApiError>> + Send;
    fn message(
        &self,
        id: EventId,
    ) -> impl Future<Output = Result<Option<MessageView>, ApiError>> + Send;
    fn file(
        &self,
        file: FileId,
    ) -> impl Future<Output = Result<Option<FileContent>, ApiError>> + Send;
    fn stats(&self) -> impl Future<Output = Result<StatsView, ApiError>> + Send;
    fn set_online(&self, online: bool) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// How `peer` is blocked now; `404` if it is not one of this device's peers (a real
    /// device also takes an active member it has not found yet).
    fn blocked(&self, peer: &str) -> impl Future<Output = Result<Blocked, ApiError>> + Send;
    /// Blocks (or unblocks) `peer` as given; answers what holds now.
    fn set_blocked(
        &self,
        peer: &str,
        blocked: Blocked,
    ) -> impl Future<Output = Result<Blocked, ApiError>> + Send;

    /// Every member the device's roster knows of, by name (`GET /api/members`).
    fn members(&self) -> impl Future<Output = Result<Vec<MemberView>, ApiError>> + Send;
    /// Removes `name` from the community (admins only); answers the key epoch after it.
    fn remove_member(&self, name: &str) -> impl Future<Output = Result<u32, ApiError>> + Send;
    /// Removes person `name` and every device certified for them (admins only); answers the
    /// key epoch after it.
    fn remove_person(&self, name: &str) -> impl Future<Output = Result<u32, ApiError>> + Send;
    /// Starts a new key epoch (admins only); answers it.
    fn rotate_keys(&self) -> impl Future<Output = Result<u32, ApiError>> + Send;
    /// An invite signed by this device (admins only), naming where to find it.
    fn create_invite(
        &self,
        request: InviteRequest,
    ) -> impl Future<Output = Result<Invite, ApiError>> + Send;

    /// The device's blob store (`POST /api/files`); `None` for a simulated device.
    fn files(&self) -> Option<&crate::files::FileService> {
        None
    }

    /// Sends a frame to every stream subscriber.
    fn publish(&self, frame: Frame) {
        // No subscriber is normal: nobody has the page open.
        let _ = self.frames().send(frame);
    }
}
