//! The simulation service (`meshlog sim-service`, :3005), real mode: an AutoMessageGenerator
//! that posts through each device's own `POST /api/messages`, paced by a TimeController.
//!
//! ```text
//!  ticker (every 100 ms wall) ─> Simulation::tick(wall) ─> TimeController (virtual time)
//!                                                        └> Generator::advance ─> posts queue ─> poster (HTTP)
//!  HTTP API (start, pause, speed, step, rates, devices) ─> Simulation
//! ```
//! All decisions happen in [`Simulation`], which holds no I/O: tests drive it by virtual time.
//!
//! Simulated mode (`--sim`, [`crate::sim_mode`]) is this same service with a world attached:
//! every tick and step also advances the world to the controller's virtual time, and the
//! network endpoints change the world's virtual network.

pub mod api;
pub mod generator;
pub mod poster;
pub mod time_controller;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::api::access::Token;
use crate::api::serve::{ServeError, Server, ServerOptions};
use crate::sim_mode::world_thread::WorldHandle;
use generator::{Generator, Post, RateError};
use time_controller::{TimeController, TimeError};

/// The seed's default demo workload (scenarios/default-demo.toml): 50 messages an hour
/// overall, 30% of them with an attachment.
pub const DEFAULT_MESSAGES_PER_HOUR: f64 = 50.0;
pub const DEFAULT_ATTACHMENT_PERCENT: f64 = 30.0;
/// How often the service turns wall time into virtual time.
pub const TICK_MS: u64 = 100;
/// Posts waiting for the poster; beyond this they are dropped (and logged), not queued forever.
const POST_QUEUE_LEN: usize = 1_024;

#[derive(Debug, Error)]
pub enum SimServiceError {
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Rate(#[from] RateError),
    /// A network control out of range (simulated mode).
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// `SimState` of `docs/API.md`.
#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct SimState {
    #[ts(type = "\"real\" | \"sim\"")]
    pub mode: &'static str,
    pub running: bool,
    pub speed: f64,
    pub virtual_time_ms: u64,
    pub messages_per_hour: f64,
    pub attachment_percent: f64,
    pub devices: Vec<DeviceState>,
    #[ts(type = "NetworkSettings | null")]
    pub network: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct DeviceState {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    pub generated: u64,
}

/// Highest latency the network controls accept: a minute is already unusable.
pub const LATENCY_MS_MAX: u64 = 60_000;

/// `SimState.network` in simulated mode: what the virtual network does to every link.
#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct NetworkSettings {
    pub loss: f64,
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
    /// The first device on one side, the rest on the other.
    pub partitioned: bool,
}

impl NetworkSettings {
    /// These settings with the given fields changed, if the result is in range.
    pub fn changed(
        &self,
        loss: Option<f64>,
        latency_ms_min: Option<u64>,
        latency_ms_max: Option<u64>,
    ) -> Result<NetworkSettings, SimServiceError> {
        let next = NetworkSettings {
            loss: loss.unwrap_or(self.loss),
            latency_ms_min: latency_ms_min.unwrap_or(self.latency_ms_min),
            latency_ms_max: latency_ms_max.unwrap_or(self.latency_ms_max),
            partitioned: self.partitioned,
        };
        if !(0.0..=1.0).contains(&next.loss) {
            return Err(SimServiceError::Network(format!(
                "loss: {} is outside 0..=1",
                next.loss
            )));
        }
        if next.latency_ms_max > LATENCY_MS_MAX {
            return Err(SimServiceError::Network(format!(
                "latency_ms_max: {} is above {LATENCY_MS_MAX}",
                next.latency_ms_max
            )));
        }
        if next.latency_ms_min > next.latency_ms_max {
            return Err(SimServiceError::Network(format!(
                "latency_ms_min: {} is above latency_ms_max {}",
                next.latency_ms_min, next.latency_ms_max
            )));
        }
        Ok(next)
    }
}

/// The time controller and the generator together; every change returns the posts it made due.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub time: TimeController,
    pub generator: Generator,
    /// `Some` in simulated mode only.
    pub network: Option<NetworkSettings>,
}

impl Simulation {
    pub fn new(devices: Vec<(String, String)>) -> Self {
        Simulation {
            time: TimeController::default(),
            generator: Generator::new(
                devices,
                DEFAULT_MESSAGES_PER_HOUR,
                DEFAULT_ATTACHMENT_PERCENT,
            ),
            network: None,
        }
    }

    pub fn state(&self) -> SimState {
        SimState {
            mode: if self.network.is_some() {
                "sim"
            } else {
                "real"
            },
            running: self.time.running(),
            speed: self.time.speed(),
            virtual_time_ms: self.time.virtual_time_ms(),
            messages_per_hour: self.generator.messages_per_hour(),
            attachment_percent: self.generator.attachment_percent(),
            devices: self
                .generator
                .devices()
                .iter()
                .map(|d| DeviceState {
                    name: d.name.clone(),
                    url: d.url.clone(),
                    enabled: d.enabled,
                    generated: d.generated,
                })
                .collect(),
            network: self
                .network
                .as_ref()
                .and_then(|n| serde_json::to_value(n).ok()),
        }
    }

    /// Wall time passed: virtual time moves by it × speed (nothing while paused).
    pub fn tick(&mut self, wall_elapsed_us: u64) -> Vec<Post> {
        let now = self.time.tick(wall_elapsed_us);
        self.generator.advance(now)
    }

    pub fn step(&mut self, seconds: f64) -> Result<Vec<Post>, SimServiceError> {
        let now = self.time.step(seconds)?;
        Ok(self.generator.advance(now))
    }

    pub fn set_message_rate(&mut self, per_hour: f64) -> Result<(), SimServiceError> {
        let now = self.time.virtual_time_us();
        Ok(self.generator.set_message_rate(now, per_hour)?)
    }

    pub fn set_enabled(&mut self, device: &str, enabled: bool) -> Result<(), SimServiceError> {
        let now = self.time.virtual_time_us();
        Ok(self.generator.set_enabled(now, device, enabled)?)
    }
}

/// Shared by the HTTP handlers and the ticker.
#[derive(Clone, Debug)]
pub struct ServiceState {
    pub sim: Arc<Mutex<Simulation>>,
    posts: mpsc::Sender<Post>,
    states: broadcast::Sender<SimState>,
    /// The simulated world, in simulated mode.
    pub world: Option<WorldHandle>,
}

impl ServiceState {
    /// Runs `change` on the simulation, queues the posts it made due and announces the new state.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Simulation) -> Result<T, SimServiceError>,
    ) -> Result<SimState, SimServiceError> {
        let mut sim = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        let before = sim.clone();
        match change(&mut sim) {
            Ok(_) => {}
            Err(err) => {
                *sim = before; // a refused change leaves nothing half-applied
                return Err(err);
            }
        }
        let state = sim.state();
        drop(sim);
        let _ = self.states.send(state.clone());
        Ok(state)
    }

    pub fn queue(&self, posts: Vec<Post>) {
        for post in posts {
            if self.posts.try_send(post).is_err() {
                tracing::warn!("post queue full; a generated message was dropped");
            }
        }
    }

    pub fn state(&self) -> SimState {
        self.sim.lock().unwrap_or_else(|p| p.into_inner()).state()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SimState> {
        self.states.subscribe()
    }

    pub fn virtual_time_us(&self) -> u64 {
        self.sim
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .time
            .virtual_time_us()
    }
}

#[derive(Debug)]
pub struct RunningService {
    pub http_addr: SocketAddr,
    pub state: ServiceState,
    pub server: JoinHandle<std::io::Result<()>>,
}

/// A device the service posts to in real mode.
#[derive(Clone, Debug)]
pub struct DeviceLink {
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:3001`.
    pub url: String,
    /// The device's API token.
    pub token: Token,
}

/// Binds `http_addr` and runs the service for `devices`; clients of the service show `token`.
pub async fn start(
    http_addr: SocketAddr,
    devices: Vec<DeviceLink>,
    server: &ServerOptions,
    token: Token,
) -> Result<RunningService, SimServiceError> {
    let tokens = devices
        .iter()
        .map(|d| (d.name.clone(), d.token.clone()))
        .collect();
    let sim = Simulation::new(devices.into_iter().map(|d| (d.name, d.url)).collect());
    start_with(http_addr, sim, None, tokens, server, token).await
}

/// Binds `http_addr` and runs `sim`; with a `world`, in simulated mode. `device_tokens` are
/// the devices' API tokens by name, for posting generated messages.
pub async fn start_with(
    http_addr: SocketAddr,
    sim: Simulation,
    world: Option<WorldHandle>,
    device_tokens: BTreeMap<String, Token>,
    server: &ServerOptions,
    token: Token,
) -> Result<RunningService, SimServiceError> {
    let (posts, post_queue) = mpsc::channel(POST_QUEUE_LEN);
    let state = ServiceState {
        sim: Arc::new(Mutex::new(sim)),
        posts,
        states: broadcast::channel(64).0,
        world,
    };
    tokio::spawn(poster::run(post_queue, device_tokens));
    tokio::spawn(ticker(state.clone()));
    let http = Server::bind(http_addr, server, token).await?;
    let http_addr = http.local_addr();
    let app = api::router(state.clone(), http.stream_slots());
    let server = http.spawn(app);
    Ok(RunningService {
        http_addr,
        state,
        server,
    })
}

/// Turns wall time into virtual time every `TICK_MS`, measuring what really passed so a
/// late tick does not slow virtual time; announces the state once a second while running.
async fn ticker(state: ServiceState) {
    let mut interval = tokio::time::interval(std::time::Duration::from_millis(TICK_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut last_announced = last;
    loop {
        interval.tick().await;
        let now = tokio::time::Instant::now();
        let elapsed_us = now.duration_since(last).as_micros() as u64;
        last = now;
        let (posts, running, virtual_us) = {
            let mut sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
            let posts = sim.tick(elapsed_us);
            (posts, sim.time.running(), sim.time.virtual_time_us())
        };
        state.queue(posts);
        if let Some(world) = &state.world {
            world.advance_soon(virtual_us);
        }
        if running && now.duration_since(last_announced).as_secs() >= 1 {
            last_announced = now;
            let _ = state.states.send(state.state());
        }
    }
}
