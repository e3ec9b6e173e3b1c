//! `GET /api/stream`: server-sent events, so the page never polls.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::state::{DeviceState, Frame};

/// `hello` first on every (re)connection, then `message`, `network` and `stats` frames as
/// they happen. A subscriber too slow for the queue misses frames; on reconnect the page
/// re-reads `GET /api/messages` after `hello`, which is why `hello` exists.
pub async fn stream(
    State(state): State<DeviceState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before sending hello, so nothing between hello and the first frame is lost.
    let frames = BroadcastStream::new(state.frames.subscribe());
    let hello = Frame::new("hello", &json!({ "device": state.device }));
    let events = stream::once(async move { hello })
        .chain(frames.filter_map(|frame| async move { frame.ok() }))
        .map(|frame| Ok(Event::default().event(frame.event).data(frame.data)));
    Sse::new(events).keep_alive(KeepAlive::default())
}
