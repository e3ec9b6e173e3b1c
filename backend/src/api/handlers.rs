//! The device API's handlers, exactly as `docs/API.md` lists them: checks and JSON here, the
//! device's work behind [`DeviceBackend`].

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use meshlog_core::event::{EMOJI_LEN_MAX, FILE_NAME_LEN_MAX, MIME_LEN_MAX, TEXT_LEN_MAX};
use meshlog_core::{chunk_file, Carrier, EventBody, EventId, FileId, FileRef};
use serde::Deserialize;
use serde_json::json;

use super::backend::{DeviceBackend, JsonBytes};
use super::files::{attachment_response, checked_mime};
use crate::device::state::Frame;
use crate::device::views::MessageView;
use crate::files::BlobId;
use crate::http::{json_body, query, ApiError};
use crate::paging::PageRequest;

pub(crate) fn parse_event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::from_hex(text)
        .ok_or_else(|| ApiError::bad_request(format!("id: {text:?} is not 64 hex characters")))
}

pub(crate) fn parse_file_id(text: &str) -> Result<FileId, ApiError> {
    FileId::from_hex(text)
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

/// Open to anyone who reaches the server, so it says nothing about the device. A constant:
/// load balancers and readiness waits poll it, and it must answer at once under load.
pub async fn health() -> JsonBytes {
    JsonBytes(br#"{"ok":true}"#.to_vec())
}

#[derive(Debug, Deserialize)]
pub struct NewMessage {
    text: String,
    /// A small file inline (`data_base64`), sent as chunk events.
    attachment: Option<NewAttachment>,
    /// Or a file already in this device's blob store (`POST /api/files`), by id, with the
    /// name and type the message gives it: sent by the blob transfer.
    file_id: Option<String>,
    name: Option<String>,
    mime: Option<String>,
    #[serde(default)]
    auto: bool,
}

#[derive(Debug, Deserialize)]
pub struct NewAttachment {
    name: String,
    mime: String,
    data_base64: String,
}

/// A complete file of the blob store a message refers to: its id and size there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredFile {
    pub file: FileId,
    pub size: u64,
}

/// The file `text` (a `file_id`) names, if it is complete in `device`'s blob store: a
/// message may only refer to what this device can serve whole, so a peer never waits on a
/// file nobody has.
async fn stored_file<B: DeviceBackend>(device: &B, text: &str) -> Result<StoredFile, ApiError> {
    let blob = BlobId::from_hex(text).ok_or_else(|| {
        ApiError::bad_request(format!("file_id: {text:?} is not 64 hex characters"))
    })?;
    let files = device.files().ok_or_else(|| {
        ApiError::bad_request("file_id: this device keeps no file store (a simulated device)")
    })?;
    let status = files.store.status(&blob).ok_or_else(|| {
        ApiError::not_found(format!(
            "file_id: file {text} is not in this device's store; upload it first (POST /api/files)"
        ))
    })?;
    if !status.complete {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "file_id: file {text} is not complete here ({} of {} groups); a message may \
                 refer only to a file this device holds whole",
                status.chunks_have, status.chunks_total
            ),
        });
    }
    Ok(StoredFile {
        file: FileId(blob.0),
        size: status.size,
    })
}

/// The events a posted message becomes, checked: chunks first, then the message (a peer that
/// has the message usually has its chunks too). A message with a `file_id` needs `stored`,
/// the file as the blob store has it ([`stored_file`]).
pub(crate) fn message_bodies(message: NewMessage) -> Result<Vec<EventBody>, ApiError> {
    message_bodies_with(message, None)
}

fn message_bodies_with(
    message: NewMessage,
    stored: Option<StoredFile>,
) -> Result<Vec<EventBody>, ApiError> {
    check_len("text", &message.text, TEXT_LEN_MAX)?;
    let attached = message.attachment.is_some() || message.file_id.is_some();
    if message.text.trim().is_empty() && !attached {
        return Err(ApiError::bad_request(
            "text: empty, and there is no attachment",
        ));
    }
    let mut bodies = Vec::new();
    let attachment =
        match (message.attachment, message.file_id, stored) {
            (Some(_), Some(_), _) => return Err(ApiError::bad_request(
                "attachment and file_id: one or the other (a small file inline, or one uploaded)",
            )),
            (None, Some(_), None) => return Err(ApiError::internal("file_id not looked up")),
            (None, Some(_), Some(stored)) => {
                let name = message
                    .name
                    .ok_or_else(|| ApiError::bad_request("name: required with file_id"))?;
                let mime = message
                    .mime
                    .ok_or_else(|| ApiError::bad_request("mime: required with file_id"))?;
                check_len("name", &name, FILE_NAME_LEN_MAX)?;
                check_len("mime", &mime, MIME_LEN_MAX)?;
                Some(FileRef {
                    file: stored.file,
                    size: stored.size,
                    name,
                    mime: checked_mime(&mime)?,
                    carrier: Carrier::Blob,
                })
            }
            (attachment, None, _) => {
                if message.name.is_some() || message.mime.is_some() {
                    return Err(ApiError::bad_request(
                        "name, mime: only with file_id (an inline file has them in attachment)",
                    ));
                }
                match attachment {
                    None => None,
                    Some(file) => {
                        check_len("attachment.name", &file.name, FILE_NAME_LEN_MAX)?;
                        check_len("attachment.mime", &file.mime, MIME_LEN_MAX)?;
                        let mime = checked_mime(&file.mime)?;
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(file.data_base64.as_bytes())
                            .map_err(|err| {
                                ApiError::bad_request(format!(
                                    "attachment.data_base64: not base64: {err}"
                                ))
                            })?;
                        let (file_ref, chunks) = chunk_file(&file.name, &mime, &bytes)
                            .map_err(|err| ApiError::bad_request(format!("attachment: {err}")))?;
                        bodies.extend(chunks);
                        Some(file_ref)
                    }
                }
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

#[derive(Debug, Deserialize)]
pub struct NewReaction {
    emoji: String,
    #[serde(default)]
    remove: bool,
}

/// The reaction event for `message`, checked.
fn reaction_body(message: EventId, reaction: NewReaction) -> Result<EventBody, ApiError> {
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

/// `201` only once every event of the message is in the store.
pub async fn post_message<B: DeviceBackend>(
    State(device): State<B>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let message = json_body(body)?;
    let stored = match &message.file_id {
        Some(text) => Some(stored_file(&device, text).await?),
        None => None,
    };
    let bodies = message_bodies_with(message, stored)?;
    let (_, view) = device.append(bodies).await?;
    let view = view.ok_or_else(|| ApiError::internal("stored message not found"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/messages?before=&limit=&q=`: the query string, as clients send it.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    limit: Option<usize>,
    q: Option<String>,
}

/// Checks a page query by the one rule of [`crate::paging`].
pub(crate) fn page_request(query: PageQuery) -> Result<PageRequest, ApiError> {
    PageRequest::parse(query.before.as_deref(), query.limit, query.q.as_deref())
        .map_err(|err| ApiError::bad_request(err.to_string()))
}

pub async fn get_messages<B: DeviceBackend>(
    State(device): State<B>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<JsonBytes, ApiError> {
    let request = page_request(query(page)?)?;
    device.messages(request).await
}

pub async fn post_reaction<B: DeviceBackend>(
    State(device): State<B>,
    Path(id): Path<String>,
    body: Result<Json<NewReaction>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let message = parse_event_id(&id)?;
    let reaction = reaction_body(message, json_body(body)?)?;
    if device.message(message).await?.is_none() {
        return Err(ApiError::not_found(format!("message {id} not found")));
    }
    let (ids, _) = device.append(vec![reaction]).await?;
    let event_id = ids
        .last()
        .ok_or_else(|| ApiError::internal("reaction not appended"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "event_id": event_id.to_hex() })),
    ))
}

/// The message's attachment, under the message's own name and type.
pub async fn get_attachment<B: DeviceBackend>(
    State(device): State<B>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let message = parse_event_id(&id)?;
    let view = device
        .message(message)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("message {id} not found")))?;
    let attachment = view
        .attachment
        .ok_or_else(|| ApiError::not_found(format!("message {id} has no attachment")))?;
    if attachment.blob {
        let blob = super::blobs::parse_blob_id(&attachment.file_id)?;
        let named = super::blobs::Named {
            name: &attachment.name,
            mime: &attachment.mime,
        };
        return super::blobs::serve_blob(&device, blob, &headers, Some(named)).await;
    }
    let file = parse_file_id(&attachment.file_id)?;
    attachment_response(&attachment, device.file(file).await?)
}

pub async fn get_stats<B: DeviceBackend>(State(device): State<B>) -> Result<Response, ApiError> {
    Ok(Json(device.stats().await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct DeviceStatus {
    online: bool,
}

pub async fn post_device_status<B: DeviceBackend>(
    State(device): State<B>,
    body: Result<Json<DeviceStatus>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = json_body(body)?;
    device.set_online(status.online).await?;
    // The page shows online/offline from `stats`; tell it now rather than within a second.
    if let Ok(stats) = device.stats().await {
        device.publish(Frame::new("stats", &stats));
    }
    Ok(Json(json!({ "online": status.online })))
}

#[derive(Debug, Deserialize)]
pub struct Since {
    #[serde(default)]
    since: u64,
}

pub async fn get_network_events<B: DeviceBackend>(
    State(device): State<B>,
    since: Result<Query<Since>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let since = query(since)?.since;
    let (events, next) = device
        .netlog()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .since(since);
    Ok(Json(json!({ "events": events, "next": next })))
}
