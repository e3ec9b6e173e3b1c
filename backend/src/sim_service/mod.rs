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

/// How often the service turns wall time into virtual time (real mode; the longest wait in
/// simulated mode).
pub const TICK_MS: u64 = 100;
/// Simulated mode: the virtual time a tick adds at any speed (the wait between ticks is this
/// over the speed, within `SIM_TICK_MS_MIN..=TICK_MS`): at 100×, a tick every 2.5 ms. The
/// world's target moves by ticks, so small ticks keep the devices close behind the clock.
pub const SIM_TICK_VIRTUAL_US: u64 = 250_000;
/// Simulated mode: the most virtual time one tick adds; a tick later than that lets the rest
/// of its wall time go. With `WORLD_LAG_MAX_US`, the world is never more than a second of
/// virtual time behind the clock the page shows (issue 24).
pub const SIM_TICK_VIRTUAL_US_MAX: u64 = 500_000;
/// Simulated mode: the shortest wait between ticks, whatever the speed.
const SIM_TICK_MS_MIN: u64 = 2;
/// Simulated mode: virtual time stands still while the world is further behind it than this,
/// so a world that cannot keep up with the speed asked slows the clock rather than falling
/// behind for ever (it fell an hour behind at 100×, issue 24).
pub const WORLD_LAG_MAX_US: u64 = 500_000;

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

/// Turns wall time into virtual time every `TICK_MS` (in simulated mode, often enough that a
/// tick adds about `SIM_TICK_VIRTUAL_US`), measuring what really passed so a late tick does
/// not slow virtual time (in simulated mode, up to `SIM_TICK_VIRTUAL_US_MAX`); announces the
/// state once a second while running.
async fn ticker(state: ServiceState) {
    let mut last = tokio::time::Instant::now();
    let mut last_announced = last;
    loop {
        tokio::time::sleep(tick_wait(&state)).await;
        let now = tokio::time::Instant::now();
        let elapsed_us = now.duration_since(last).as_micros() as u64;
        last = now;
        let running = {
            let mut sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
            let elapsed_us = match &state.world {
                None => elapsed_us,
                // A world that is behind holds virtual time: the wall time passed is let go.
                Some(world)
                    if sim.time.virtual_time_us().saturating_sub(world.now_us())
                        > WORLD_LAG_MAX_US =>
                {
                    0
                }
                Some(_) => {
                    let most_us = SIM_TICK_VIRTUAL_US_MAX as f64 / sim.time.speed();
                    elapsed_us.min(most_us as u64)
                }
            };
            let posts = sim.tick(elapsed_us);
            state.dispatch(&sim, posts);
            sim.time.running()
        };
        if running && now.duration_since(last_announced).as_secs() >= 1 {
            last_announced = now;
            let _ = state.states.send(state.state());
        }
    }
}

/// Wall time to the next tick: `TICK_MS`, shorter in simulated mode at speed.
fn tick_wait(state: &ServiceState) -> std::time::Duration {
    let wait_us = match &state.world {
        None => TICK_MS * 1_000,
        Some(_) => {
            let speed = state
                .sim
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .time
                .speed();
            (SIM_TICK_VIRTUAL_US as f64 / speed)
                .clamp((SIM_TICK_MS_MIN * 1_000) as f64, (TICK_MS * 1_000) as f64)
                as u64
        }
    };
    std::time::Duration::from_micros(wait_us)
}
