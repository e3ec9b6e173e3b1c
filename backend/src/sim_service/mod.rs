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
pub mod faults;
pub mod generator;
pub mod image;
pub mod poster;
pub mod settings;
mod state;
pub mod time_controller;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::api::access::Token;
use crate::api::serve::{ServeError, Server, ServerOptions};
use crate::demo::supervisor::Supervisor;
use crate::sim_mode::world_thread::WorldHandle;
pub use faults::{Cut, Faults};
use generator::{Generator, Post, RateError};
use poster::Posters;
use settings::Settings;
pub use state::{
    mesh_links, DeviceState, Liveness, NetworkSettings, NetworkState, SimState, LATENCY_MS_MAX,
};
use time_controller::{TimeController, TimeError};

/// The seed's default demo workload (scenarios/default-demo.toml): 50 messages an hour
/// overall, 30% of them with an attachment.
pub const DEFAULT_MESSAGES_PER_HOUR: f64 = 50.0;
pub const DEFAULT_ATTACHMENT_PERCENT: f64 = 30.0;
/// How often the service turns wall time into virtual time.
pub const TICK_MS: u64 = 100;
#[derive(Debug, Error)]
pub enum SimServiceError {
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Rate(#[from] RateError),
    /// A network control out of range, or bad partition groups.
    #[error("{0}")]
    Network(String),
    #[error("device {0:?} is not known to the simulation")]
    UnknownDevice(String),
    /// Asked of the wrong mode, e.g. loss in real mode, or a crash without the processes.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// 16 hex digits of OS randomness: a fresh run's id.
fn new_run_id() -> String {
    use rand_core::{OsRng, RngCore};
    format!("{:016x}", OsRng.next_u64())
}

/// The time controller and the generator together; every change returns the posts it made due.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub time: TimeController,
    pub generator: Generator,
    /// `Some` in simulated mode only.
    pub network: Option<NetworkSettings>,
    pub faults: Faults,
    /// Which pairs of devices peer (from the topology).
    pub links: Vec<(String, String)>,
    /// By device name; a device not listed is up.
    pub liveness: BTreeMap<String, Liveness>,
    pub run_id: String,
    /// False when nothing survives a restart (simulated mode keeps its world in memory).
    pub persistent: bool,
}

impl Simulation {
    /// Every device peering with every other, until `links` says otherwise.
    pub fn new(devices: Vec<(String, String)>) -> Self {
        let names: Vec<String> = devices.iter().map(|(n, _)| n.clone()).collect();
        Simulation {
            time: TimeController::default(),
            generator: Generator::new(
                devices,
                DEFAULT_MESSAGES_PER_HOUR,
                DEFAULT_ATTACHMENT_PERCENT,
            ),
            network: None,
            faults: Faults::default(),
            links: mesh_links(&names),
            liveness: BTreeMap::new(),
            run_id: new_run_id(),
            persistent: true,
        }
    }

    pub fn device_names(&self) -> Vec<String> {
        self.generator
            .devices()
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    pub fn check_device(&self, name: &str) -> Result<usize, SimServiceError> {
        self.generator
            .devices()
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| SimServiceError::UnknownDevice(name.to_owned()))
    }

    /// The devices `device` peers with.
    pub fn peers_of(&self, device: &str) -> Vec<String> {
        self.links
            .iter()
            .filter_map(|(a, b)| match (a == device, b == device) {
                (true, _) => Some(b.clone()),
                (_, true) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn state(&self) -> SimState {
        let groups = self.faults.groups().to_vec();
        SimState {
            mode: if self.network.is_some() {
                "sim"
            } else {
                "real"
            },
            run_id: self.run_id.clone(),
            persistent: self.persistent,
            running: self.time.running(),
            speed: self.time.speed(),
            virtual_time_ms: self.time.virtual_time_ms(),
            messages_per_hour: self.generator.messages_per_hour(),
            attachment_percent: self.generator.attachment_percent(),
            devices: self
                .generator
                .devices()
                .iter()
                .map(|d| {
                    let live = self.liveness.get(&d.name).copied().unwrap_or_default();
                    DeviceState {
                        name: d.name.clone(),
                        url: d.url.clone(),
                        enabled: d.enabled,
                        generated: d.generated,
                        up: live.up,
                        restarts: live.restarts,
                    }
                })
                .collect(),
            links: self.links.clone(),
            network: NetworkState {
                loss: self.network.as_ref().map(|n| n.loss),
                latency_ms_min: self.network.as_ref().map(|n| n.latency_ms_min),
                latency_ms_max: self.network.as_ref().map(|n| n.latency_ms_max),
                partitioned: groups.len() > 1,
                groups,
                cuts: self.faults.cuts(),
            },
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
    /// Real mode: a poster per device.
    posters: Posters,
    states: broadcast::Sender<SimState>,
    /// The simulated world, in simulated mode.
    pub world: Option<WorldHandle>,
    /// Real mode under `meshlog demo`: the device processes, to crash and restart.
    pub processes: Option<Supervisor>,
    /// Real mode: each device's API token, for telling it what to block.
    device_tokens: BTreeMap<String, Token>,
    /// Where the generator settings are kept, if anywhere.
    settings: Option<PathBuf>,
}

impl ServiceState {
    /// Runs `change` on the simulation and announces the new state; a change of the generator
    /// settings is saved.
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
        let settings = Settings::of(&sim);
        let state = sim.state();
        drop(sim);
        if let Some(path) = &self.settings {
            if settings != Settings::of(&before) {
                settings.save(path);
            }
        }
        let _ = self.states.send(state.clone());
        Ok(state)
    }

    /// Sends generated messages on: in simulated mode into the world at each one's exact
    /// virtual time, in real mode to each device's poster. Called with the simulation
    /// locked (`sim`), so posts and advances reach the world in time order: a post is
    /// appended at its own time, never at a later tick's.
    pub fn dispatch(&self, sim: &Simulation, posts: Vec<Post>) {
        let Some(world) = &self.world else {
            posts.into_iter().for_each(|p| self.posters.queue(p));
            return;
        };
        let names = sim.device_names();
        for post in posts {
            if let Some(index) = names.iter().position(|n| *n == post.device) {
                world.append_at(index, post.due_us, poster::bodies(&post));
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
    /// A data directory to keep the generator settings in (`sim-service.json`).
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
    let settings = setup.data_dir.as_deref().map(Settings::path);
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
