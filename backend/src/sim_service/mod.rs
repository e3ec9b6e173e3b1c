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
mod control;
mod error;
pub mod faults;
pub mod generator;
pub mod image;
pub mod poster;
mod service;
pub mod settings;
mod simulation;
mod state;
pub mod time_controller;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::api::access::Token;
use crate::api::serve::{Server, ServerOptions};
use crate::demo::supervisor::Supervisor;
use crate::sim_mode::world_thread::WorldHandle;
pub use error::SimServiceError;
pub use faults::{Cut, Faults};
use poster::Posters;
pub use service::ServiceState;
use settings::Settings;
pub use simulation::{Simulation, DEFAULT_ATTACHMENT_PERCENT, DEFAULT_MESSAGES_PER_HOUR};
pub use state::{
    mesh_links, DeviceState, Liveness, NetworkSettings, NetworkState, SimState, LATENCY_MS_MAX,
};

/// How often the service turns wall time into virtual time.
pub const TICK_MS: u64 = 100;
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

/// Binds `http_addr` and runs the service for `devices` (a mesh); clients of the service show
/// `token`.
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
    start_with(
        http_addr,
        sim,
        Setup {
            device_tokens: tokens,
            ..Setup::default()
        },
        server,
        token,
    )
    .await
}

/// What the service runs with besides its simulation.
#[derive(Debug, Default)]
pub struct Setup {
    /// Simulated mode: the world.
    pub world: Option<WorldHandle>,
    /// Real mode under the demo: the device processes.
    pub processes: Option<Supervisor>,
    /// The devices' API tokens by name, for posting and blocking.
    pub device_tokens: BTreeMap<String, Token>,
    /// A data directory to keep the generator settings in (`sim-service.json`; simulated
    /// mode's own are `sim-mode.json`).
    pub data_dir: Option<PathBuf>,
}

/// Binds `http_addr` and runs `sim` as `setup` says.
pub async fn start_with(
    http_addr: SocketAddr,
    mut sim: Simulation,
    setup: Setup,
    server: &ServerOptions,
    token: Token,
) -> Result<RunningService, SimServiceError> {
    let simulated = setup.world.is_some();
    let settings = setup
        .data_dir
        .as_deref()
        .map(|dir| Settings::path(dir, simulated));
    if let Some(saved) = settings.as_deref().and_then(Settings::load) {
        saved.apply(&mut sim);
    }
    let posters = match setup.world {
        Some(_) => Posters::default(),
        None => Posters::start(setup.device_tokens.clone()),
    };
    let state = ServiceState {
        sim: Arc::new(Mutex::new(sim)),
        posters,
        states: broadcast::channel(64).0,
        world: setup.world,
        processes: setup.processes,
        device_tokens: setup.device_tokens,
        settings,
    };
    tokio::spawn(ticker(state.clone()));
    if state.processes.is_some() {
        tokio::spawn(control::follow_processes(state.clone()));
    }
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
        let running = {
            let mut sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
            let posts = sim.tick(elapsed_us);
            state.dispatch(&sim, posts);
            if let Some(world) = &state.world {
                world.advance_soon(sim.time.virtual_time_us());
            }
            sim.time.running()
        };
        if running && now.duration_since(last_announced).as_secs() >= 1 {
            last_announced = now;
            let _ = state.states.send(state.state());
        }
    }
}
