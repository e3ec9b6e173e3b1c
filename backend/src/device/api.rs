//! The device server's handlers, exactly as `docs/API.md` lists them.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use meshlog_core::event::{EMOJI_LEN_MAX, FILE_NAME_LEN_MAX, MIME_LEN_MAX, TEXT_LEN_MAX};
use meshlog_core::{chunk_file, EventBody, EventId, FileId};
use serde::Deserialize;
use serde_json::json;

use super::state::{DeviceState, Frame};
use super::views::MessageView;
use crate::http::{json_body, query, ApiError};
use crate::store::{
    Cursor, FileContent, Page, PageRequest, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, SEARCH_LEN_MAX,
};

pub(crate) fn parse_event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::from_hex(text)
        .ok_or_else(|| ApiError::bad_request(format!("id: {text:?} is not 64 hex characters")))
}

fn check_len(field: &str, text: &str, max_bytes: usize) -> Result<(), ApiError> {
    if text.len() > max_bytes {
        return Err(ApiError::bad_request(format!(
            "{field}: {} bytes, at most {max_bytes}",
            text.len()
        )));
    }
    Ok(())
}

pub async fn health(State(state): State<DeviceState>) -> Json<serde_json::Value> {
    Json(json!({ "ok": true, "device": state.device }))
}

#[derive(Debug, Deserialize)]
pub struct NewMessage {
    text: String,
    attachment: Option<NewAttachment>,
    #[serde(default)]
    auto: bool,
}

#[derive(Debug, Deserialize)]
pub struct NewAttachment {
    name: String,
    mime: String,
    data_base64: String,
}

/// The events a posted message becomes, checked: chunks first, then the message (a peer that
/// has the message usually has its chunks too). Shared with simulated mode.
pub(crate) fn message_bodies(message: NewMessage) -> Result<Vec<EventBody>, ApiError> {
    check_len("text", &message.text, TEXT_LEN_MAX)?;
    if message.text.trim().is_empty() && message.attachment.is_none() {
        return Err(ApiError::bad_request(
            "text: empty, and there is no attachment",
        ));
    }
    let mut bodies = Vec::new();
    let attachment = match message.attachment {
        None => None,
        Some(file) => {
            check_len("attachment.name", &file.name, FILE_NAME_LEN_MAX)?;
            check_len("attachment.mime", &file.mime, MIME_LEN_MAX)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(file.data_base64.as_bytes())
                .map_err(|err| {
                    ApiError::bad_request(format!("attachment.data_base64: not base64: {err}"))
                })?;
            let (file_ref, chunks) = chunk_file(&file.name, &file.mime, &bytes)
                .map_err(|err| ApiError::bad_request(format!("attachment: {err}")))?;
            bodies.extend(chunks);
            Some(file_ref)
        }
    };
    let body = EventBody::Message {
        text: message.text,
        attachment,
        auto: message.auto,
    };
    body.validate()
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    bodies.push(body);
    Ok(bodies)
}

/// The reaction event for `message`, checked. Shared with simulated mode.
pub(crate) fn reaction_body(
    message: EventId,
    reaction: NewReaction,
) -> Result<EventBody, ApiError> {
    if reaction.emoji.is_empty() {
        return Err(ApiError::bad_request("emoji: empty"));
    }
    check_len("emoji", &reaction.emoji, EMOJI_LEN_MAX)?;
    Ok(EventBody::Reaction {
        message,
        emoji: reaction.emoji,
        remove: reaction.remove,
    })
}

pub(crate) fn parse_file_id(text: &str) -> Result<FileId, ApiError> {
    FileId::from_hex(text)
        .ok_or_else(|| ApiError::bad_request(format!("id: {text:?} is not 64 hex characters")))
}

/// `201` only once every event of the message is in the store.
pub async fn post_message(
    State(state): State<DeviceState>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let bodies = message_bodies(json_body(body)?)?;
    let ids = state
        .driver
        .append_all(bodies)
        .await
        .map_err(ApiError::internal)?;
    let id = ids.last().expect("the message was appended");
    let view = state
        .message_view(id)
        .await?
        .ok_or_else(|| ApiError::internal("stored message not found"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/messages?before=&limit=&q=`: the query string, as clients send it.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    limit: Option<usize>,
    q: Option<String>,
}

/// Checks a page query: a cursor from an earlier page, a limit within bounds, a short search.
/// Shared with simulated mode.
pub(crate) fn page_request(query: PageQuery) -> Result<PageRequest, ApiError> {
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!("before: {text:?} is not a cursor from `next`"))
        })?),
    };
    let limit = query.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit}, must be 1 to {PAGE_LIMIT_MAX}"
        )));
    }
    let search = match query.q {
        None => None,
        Some(q) if q.trim().is_empty() => None,
        Some(q) => {
            check_len("q", &q, SEARCH_LEN_MAX)?;
            Some(q)
        }
    };
    Ok(PageRequest {
        before,
        limit,
        search,
    })
}

/// A page as JSON: messages oldest first (as the page shows them), and the cursor for the
/// page of older ones, or null.
pub(crate) fn page_json(page: Page) -> serde_json::Value {
    let mut messages: Vec<MessageView> = page.messages.into_iter().map(MessageView::from).collect();
    messages.reverse();
    json!({ "messages": messages, "next": page.next.map(|c| c.to_string()) })
}

pub async fn get_messages(
    State(state): State<DeviceState>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = page_request(query(page)?)?;
    let page = state.read(move |r| r.page(&request)).await?;
    Ok(Json(page_json(page)))
}

#[derive(Debug, Deserialize)]
pub struct NewReaction {
    emoji: String,
    #[serde(default)]
    remove: bool,
}

pub async fn post_reaction(
    State(state): State<DeviceState>,
    Path(id): Path<String>,
    body: Result<Json<NewReaction>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let message = parse_event_id(&id)?;
    let reaction = reaction_body(message, json_body(body)?)?;
    if state.look_up(move |r| r.message(&message)).await?.is_none() {
        return Err(ApiError::not_found(format!("message {id} not found")));
    }
    let event_id = state
        .driver
        .append(reaction)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "event_id": event_id.to_hex() })),
    ))
}

pub async fn get_file(
    State(state): State<DeviceState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let file = parse_file_id(&id)?;
    file_response(&id, state.read(move |r| r.file(&file)).await?)
}

/// `GET /api/files/:id`'s answer for what the store holds of the file; shared with simulated mode.
pub(crate) fn file_response(id: &str, content: Option<FileContent>) -> Result<Response, ApiError> {
    match content {
        None => Err(ApiError::not_found(format!("file {id} not found"))),
        Some(FileContent::Partial {
            chunks_have,
            chunks_total,
        }) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "complete": false, "chunks_have": chunks_have, "chunks_total": chunks_total })),
        )
            .into_response()),
        Some(FileContent::Complete { mime, bytes }) => {
            Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
        }
        Some(FileContent::Corrupt) => Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!("file {id}: its chunks do not hash to the file id"),
        }),
    }
}

pub async fn get_stats(State(state): State<DeviceState>) -> Result<Response, ApiError> {
    Ok(Json(state.stats().await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct DeviceStatus {
    pub(crate) online: bool,
}

pub async fn post_device_status(
    State(state): State<DeviceState>,
    body: Result<Json<DeviceStatus>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = json_body(body)?;
    state
        .driver
        .set_online(status.online)
        .await
        .map_err(ApiError::internal)?;
    // The page shows online/offline from `stats`; tell it now rather than within a second.
    if let Ok(stats) = state.stats().await {
        state.publish(Frame::new("stats", &stats));
    }
    Ok(Json(json!({ "online": status.online })))
}

#[derive(Debug, Deserialize)]
pub struct Since {
    #[serde(default)]
    pub(crate) since: u64,
}

pub async fn get_network_events(
    State(state): State<DeviceState>,
    since: Result<Query<Since>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let since = query(since)?.since;
    let (events, next) = state
        .netlog
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .since(since);
    Ok(Json(json!({ "events": events, "next": next })))
}
