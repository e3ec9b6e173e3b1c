//! `GET /api/stream` (server-sent events, so the page never polls) and the stats ticker that
//! feeds it, for any [`DeviceBackend`].

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::backend::DeviceBackend;
use super::serve::StreamSlots;
use crate::device::state::Frame;
use crate::http::ApiError;

/// `hello` first on every (re)connection, then `message`, `network` and `stats` frames as
/// they happen. A subscriber too slow for the queue misses frames; on reconnect the page
/// re-reads `GET /api/messages` after `hello`, which is why `hello` exists. Past the cap on
/// open streams, 503.
pub async fn stream<B: DeviceBackend>(
    State(device): State<B>,
    Extension(slots): Extension<StreamSlots>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = slots.take()?;
    // Subscribe before sending hello, so nothing between hello and the first frame is lost.
    let frames = BroadcastStream::new(device.frames().subscribe());
    let hello = Frame::new("hello", &json!({ "device": device.name() }));
    let events = stream::once(async move { hello })
        .chain(frames.filter_map(|frame| async move { frame.ok() }))
        .map(move |frame| {
            let _held_while_the_stream_is_open = &slot;
            Ok(Event::default().event(frame.event).data(frame.data))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Sends a `stats` frame once a second while someone is listening; ends when the device
/// stops answering (it is shutting down).
pub async fn stats_ticker<B: DeviceBackend>(device: B) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if device.frames().receiver_count() == 0 {
            continue;
        }
        match device.stats().await {
            Ok(stats) => device.publish(Frame::new("stats", &stats)),
            Err(_) => return,
        }
    }
}
