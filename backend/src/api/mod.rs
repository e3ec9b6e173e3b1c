//! The device API of `docs/API.md`, once: one router, one live stream and one stats ticker
//! over [`DeviceBackend`], which a real device (driver + SQLite, [`crate::device`]) and a
//! simulated one (the world thread, [`crate::sim_mode`]) both implement.
//!
//! ```text
//!  router ── handlers (checks, JSON) ──> DeviceBackend ──> DeviceState (driver, StoreReader)
//!     └── stream, stats ticker ──────────┘            └──> SimDevice (world thread)
//! ```

pub mod access;
mod backend;
pub mod blobs;
pub mod bodies;
mod connections;
pub mod files;
pub mod handlers;
pub mod members;
pub mod peers;
mod raw_errors;
pub mod serve;
pub mod stream;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Extension;
use axum::Router;

pub use backend::{DeviceBackend, JsonBytes, MessagesPage};
use serve::StreamSlots;

/// Request bodies above this get 413: a 384 KB attachment, base64'd, plus the message.
pub const BODY_LEN_MAX: usize = 512 * 1024;

/// Every route of `docs/API.md` for `device`; `streams` caps its open live streams.
/// Serve it with [`serve::Server`], which adds the access checks and CORS.
pub fn router<B: DeviceBackend>(device: B, streams: StreamSlots) -> Router {
    let routes = Router::new()
        .route("/api/health", get(handlers::health))
        .route(
            "/api/messages",
            post(handlers::post_message::<B>).get(handlers::get_messages::<B>),
        )
        .route(
            "/api/messages/{id}/reactions",
            post(handlers::post_reaction::<B>),
        )
        .route(
            "/api/messages/{id}/attachment",
            get(handlers::get_attachment::<B>),
        )
        .route("/api/stats", get(handlers::get_stats::<B>))
        .route(
            "/api/device-status",
            post(handlers::post_device_status::<B>),
        )
        .route(
            "/api/network-events",
            get(handlers::get_network_events::<B>),
        )
        .route("/api/peers/{name}/blocked", post(peers::post_blocked::<B>))
        .route("/api/members", get(members::get_members::<B>))
        .route("/api/members/{name}", delete(members::delete_member::<B>))
        .route("/api/people/{name}", delete(members::delete_person::<B>))
        .route("/api/keys/rotate", post(members::post_rotate::<B>))
        .route("/api/invites", post(members::post_invite::<B>))
        .route("/api/stream", get(stream::stream::<B>))
        .route("/api/files/{id}", get(blobs::get_file::<B>))
        .route("/api/files/{id}/progress", get(blobs::get_progress::<B>))
        .fallback(crate::http::not_found);
    // Uploads are files, not JSON: their own limit (`--file-size-max`, checked by the
    // handler from Content-Length before the body is read) instead of `BODY_LEN_MAX`.
    let uploads = Router::new()
        .route("/api/files", post(blobs::post_file::<B>))
        .layer(DefaultBodyLimit::disable());
    bodies::with_body_limit(routes, BODY_LEN_MAX)
        .merge(uploads)
        .layer(Extension(streams))
        .with_state(device)
}
