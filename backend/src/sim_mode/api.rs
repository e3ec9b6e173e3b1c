//! The device API of `docs/API.md`, served for one simulated device: the same paths, bodies,
//! checks and JSON as a real device (the checks and views are the real device's own), with
//! the world thread in place of the driver and the SQLite reader.

use std::convert::Infallible;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use meshlog_sim::world::control::HostError;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::world_thread::{DeviceOutputs, WorldError, WorldHandle};
use crate::device::api::{
    file_response, message_bodies, parse_event_id, parse_file_id, reaction_body, DeviceStatus,
    NewMessage, NewReaction, Since,
};
use crate::device::state::Frame;
use crate::device::views::MessageView;
use crate::device::BODY_LEN_MAX;
use crate::http::{json_body, query, ApiError};

/// One simulated device as its HTTP handlers see it.
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

pub fn router(device: SimDevice) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/messages", post(post_message).get(get_messages))
        .route("/api/messages/{id}/reactions", post(post_reaction))
        .route("/api/files/{id}", get(get_file))
        .route("/api/stats", get(get_stats))
        .route("/api/device-status", post(post_device_status))
        .route("/api/network-events", get(get_network_events))
        .route("/api/stream", get(stream))
        .fallback(crate::http::not_found)
        .layer(DefaultBodyLimit::max(BODY_LEN_MAX))
        .layer(crate::http::cors())
        .with_state(device)
}

async fn health(State(device): State<SimDevice>) -> Json<serde_json::Value> {
    Json(json!({ "ok": true, "device": device.outputs.name }))
}

async fn post_message(
    State(device): State<SimDevice>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let bodies = message_bodies(json_body(body)?)?;
    let (_, view) = device.world.append(device.index, bodies).await?;
    let view = view.ok_or_else(|| ApiError::internal("stored message not found"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn get_messages(
    State(device): State<SimDevice>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let messages = device.world.messages(device.index).await?;
    Ok(Json(json!({ "messages": messages })))
}

async fn post_reaction(
    State(device): State<SimDevice>,
    Path(id): Path<String>,
    body: Result<Json<NewReaction>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let message = parse_event_id(&id)?;
    let reaction = reaction_body(message, json_body(body)?)?;
    if device.world.message(device.index, message).await?.is_none() {
        return Err(ApiError::not_found(format!("message {id} not found")));
    }
    let (ids, _) = device.world.append(device.index, vec![reaction]).await?;
    let event_id = ids
        .last()
        .ok_or_else(|| ApiError::internal("reaction not appended"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "event_id": event_id.to_hex() })),
    ))
}

async fn get_file(
    State(device): State<SimDevice>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let file = parse_file_id(&id)?;
    file_response(&id, device.world.file(device.index, file).await?)
}

async fn get_stats(State(device): State<SimDevice>) -> Result<Response, ApiError> {
    Ok(Json(device.world.stats(device.index).await?).into_response())
}

async fn post_device_status(
    State(device): State<SimDevice>,
    body: Result<Json<DeviceStatus>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = json_body(body)?;
    device.world.set_online(device.index, status.online).await?;
    // The page shows online/offline from `stats`; tell it now rather than within a second.
    if let Ok(stats) = device.world.stats(device.index).await {
        let _ = device.outputs.frames.send(Frame::new("stats", &stats));
    }
    Ok(Json(json!({ "online": status.online })))
}

async fn get_network_events(
    State(device): State<SimDevice>,
    since: Result<Query<Since>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let since = query(since)?.since;
    let (events, next) = device
        .outputs
        .netlog
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .since(since);
    Ok(Json(json!({ "events": events, "next": next })))
}

/// As a real device's stream: `hello` first, then `message`, `network` and `stats` frames.
async fn stream(
    State(device): State<SimDevice>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before sending hello, so nothing between hello and the first frame is lost.
    let frames = BroadcastStream::new(device.outputs.frames.subscribe());
    let hello = Frame::new("hello", &json!({ "device": device.outputs.name }));
    let events = stream::once(async move { hello })
        .chain(frames.filter_map(|frame| async move { frame.ok() }))
        .map(|frame| Ok(Event::default().event(frame.event).data(frame.data)));
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A `stats` frame once a second while someone listens, as a real device sends.
pub async fn stats_ticker(device: SimDevice) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if device.outputs.frames.receiver_count() == 0 {
            continue;
        }
        match device.world.stats(device.index).await {
            Ok(stats) => {
                let _ = device.outputs.frames.send(Frame::new("stats", &stats));
            }
            Err(_) => return, // the world stopped: shutting down
        }
    }
}
