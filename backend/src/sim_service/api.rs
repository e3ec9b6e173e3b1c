//! The simulation service's endpoints, as `docs/API.md` lists them.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;

use super::control;
use super::error::SimServiceError;
use super::service::ServiceState;
use super::state::SimState;
use crate::api::bodies::with_body_limit;
use crate::api::serve::StreamSlots;
use crate::http::{json_body, ApiError};

/// Control bodies are tiny.
const BODY_LEN_MAX: usize = 16 * 1024;

/// The service's routes; `streams` caps its open state streams. Serve it with
/// [`crate::api::serve::Server`], which adds the access checks and CORS.
pub fn router(state: ServiceState, streams: StreamSlots) -> Router {
    let routes = Router::new()
        .route("/api/health", get(health))
        .route("/api/simulation", get(get_state))
        .route("/api/simulation/start", post(start))
        .route("/api/simulation/pause", post(pause))
        .route("/api/simulation/speed", post(speed))
        .route("/api/simulation/step", post(step))
        .route("/api/simulation/message-rate", post(message_rate))
        .route("/api/simulation/attachment-rate", post(attachment_rate))
        .route("/api/simulation/stream", get(stream))
        .route("/api/devices/{id}/enabled", post(enabled))
        .route("/api/devices/{id}/crash", post(crash))
        .route("/api/devices/{id}/restart", post(restart))
        .route("/api/network", post(network))
        .route("/api/network/partition", post(partition))
        .route("/api/network/cut", post(cut))
        .fallback(crate::http::not_found);
    with_body_limit(routes, BODY_LEN_MAX)
        .layer(Extension(streams))
        .with_state(state)
}

type Answer = Result<Json<SimState>, ApiError>;

fn answer(result: Result<SimState, SimServiceError>) -> Answer {
    result.map(Json).map_err(ApiError::from)
}

impl From<SimServiceError> for ApiError {
    fn from(err: SimServiceError) -> Self {
        match err {
            SimServiceError::Rate(super::generator::RateError::UnknownDevice(_))
            | SimServiceError::UnknownDevice(_) => ApiError::not_found(err.to_string()),
            SimServiceError::Conflict(_) => ApiError {
                status: StatusCode::CONFLICT,
                message: err.to_string(),
            },
            SimServiceError::Serve(_) => ApiError::internal(err),
            _ => ApiError::bad_request(err.to_string()),
        }
    }
}

/// Open to anyone who reaches the server, so it says nothing about it.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true }))
}

async fn get_state(State(state): State<ServiceState>) -> Json<SimState> {
    Json(state.state())
}

async fn start(State(state): State<ServiceState>) -> Answer {
    answer(state.update(|sim| {
        sim.time.start();
        Ok(())
    }))
}

async fn pause(State(state): State<ServiceState>) -> Answer {
    answer(state.update(|sim| {
        sim.time.pause();
        Ok(())
    }))
}

#[derive(Debug, Deserialize)]
struct Speed {
    speed: f64,
}

async fn speed(
    State(state): State<ServiceState>,
    body: Result<Json<Speed>, JsonRejection>,
) -> Answer {
    let speed = json_body(body)?.speed;
    answer(state.update(|sim| Ok(sim.time.set_speed(speed)?)))
}

#[derive(Debug, Deserialize)]
struct Step {
    seconds: f64,
}

async fn step(
    State(state): State<ServiceState>,
    body: Result<Json<Step>, JsonRejection>,
) -> Answer {
    let seconds = json_body(body)?.seconds;
    let result = state.update(|sim| {
        let due = sim.step(seconds)?;
        state.dispatch(sim, due);
        Ok(())
    });
    let state_after = answer(result)?;
    // In simulated mode the step answers once the world has caught up, so what a caller
    // reads next has happened.
    if let Some(world) = &state.world {
        world
            .advance(state.virtual_time_us())
            .await
            .map_err(ApiError::internal)?;
        return Ok(Json(state.state()));
    }
    Ok(state_after)
}

#[derive(Debug, Deserialize)]
struct MessageRate {
    messages_per_hour: f64,
}

async fn message_rate(
    State(state): State<ServiceState>,
    body: Result<Json<MessageRate>, JsonRejection>,
) -> Answer {
    let rate = json_body(body)?.messages_per_hour;
    answer(state.update(|sim| sim.set_message_rate(rate)))
}

#[derive(Debug, Deserialize)]
struct AttachmentRate {
    percent: f64,
}

async fn attachment_rate(
    State(state): State<ServiceState>,
    body: Result<Json<AttachmentRate>, JsonRejection>,
) -> Answer {
    let percent = json_body(body)?.percent;
    answer(state.update(|sim| Ok(sim.generator.set_attachment_percent(percent)?)))
}

#[derive(Debug, Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn enabled(
    State(state): State<ServiceState>,
    Path(id): Path<String>,
    body: Result<Json<Enabled>, JsonRejection>,
) -> Answer {
    // Unknown device first: a 404 says more than a complaint about the body.
    if !state.state().devices.iter().any(|d| d.name == id) {
        return Err(ApiError::not_found(format!(
            "device {id:?} is not known to the simulation"
        )));
    }
    let enabled = json_body(body)?.enabled;
    answer(state.update(|sim| sim.set_enabled(&id, enabled)))
}

fn real_mode() -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        message: "loss and latency exist only in simulated mode (meshlog sim-service --sim)".into(),
    }
}

#[derive(Debug, Deserialize)]
struct NetworkChange {
    loss: Option<f64>,
    latency_ms_min: Option<u64>,
    latency_ms_max: Option<u64>,
}

async fn network(
    State(state): State<ServiceState>,
    body: Result<Json<NetworkChange>, JsonRejection>,
) -> Answer {
    let Some(world) = state.world.clone() else {
        return Err(real_mode());
    };
    let change = json_body(body)?;
    let mut next = None;
    let result = state.update(|sim| {
        let current = sim.network.as_mut().ok_or_else(|| {
            SimServiceError::Network("simulated mode has no network settings".into())
        })?;
        *current = current.changed(change.loss, change.latency_ms_min, change.latency_ms_max)?;
        next = Some(current.clone());
        Ok(())
    });
    let state_after = answer(result)?;
    if let Some(n) = next {
        let latency_us = (n.latency_ms_min * 1_000, n.latency_ms_max * 1_000);
        world
            .set_network(n.loss, latency_us)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(state_after)
}

/// `{"groups": [[...], ...]}`, or the older `{"partitioned": bool}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Partition {
    groups: Option<Vec<Vec<String>>>,
    partitioned: Option<bool>,
}

async fn partition(
    State(state): State<ServiceState>,
    body: Result<Json<Partition>, JsonRejection>,
) -> Answer {
    let partition = json_body(body)?;
    state.update(|sim| {
        let names = sim.device_names();
        match (partition.groups, partition.partitioned) {
            (Some(groups), None) => sim.faults.set_groups(&names, groups),
            (None, Some(partitioned)) => {
                sim.faults.set_partitioned(&names, partitioned);
                Ok(())
            }
            _ => Err(SimServiceError::Network(
                "groups: give either groups or partitioned".into(),
            )),
        }
    })?;
    control::apply_faults(&state).await?;
    Ok(Json(state.state()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CutChange {
    from: String,
    to: String,
    cut: bool,
    #[serde(default)]
    both_ways: bool,
}

async fn cut(
    State(state): State<ServiceState>,
    body: Result<Json<CutChange>, JsonRejection>,
) -> Answer {
    let change = json_body(body)?;
    state.update(|sim| {
        sim.check_device(&change.from)?;
        sim.check_device(&change.to)?;
        if change.from == change.to {
            return Err(SimServiceError::Network(
                "to: a device cannot be cut from itself".into(),
            ));
        }
        sim.faults.set_cut(&change.from, &change.to, change.cut);
        if change.both_ways {
            sim.faults.set_cut(&change.to, &change.from, change.cut);
        }
        Ok(())
    })?;
    control::apply_faults(&state).await?;
    Ok(Json(state.state()))
}

async fn crash(State(state): State<ServiceState>, Path(id): Path<String>) -> Answer {
    control::crash(&state, &id).await?;
    Ok(Json(state.state()))
}

async fn restart(State(state): State<ServiceState>, Path(id): Path<String>) -> Answer {
    control::restart(&state, &id).await?;
    Ok(Json(state.state()))
}

async fn stream(
    State(state): State<ServiceState>,
    Extension(slots): Extension<StreamSlots>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = slots.take()?;
    let updates = BroadcastStream::new(state.subscribe());
    let first = state.state();
    let events = stream::once(async move { first })
        .chain(updates.filter_map(|s| async move { s.ok() }))
        .map(move |s| {
            let _held_while_the_stream_is_open = &slot;
            Ok(Event::default()
                .event("state")
                .data(serde_json::to_string(&s).expect("state serializes")))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
