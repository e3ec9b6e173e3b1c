//! [`ServiceState`]: the [`Simulation`] behind a lock, shared by the HTTP handlers and the
//! ticker, and where its posts go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::error::SimServiceError;
use super::generator::Post;
use super::poster::Posters;
use super::settings::Settings;
use super::simulation::Simulation;
use super::state::SimState;
use crate::api::access::Token;
use crate::demo::supervisor::Supervisor;
use crate::sim_mode::world_thread::{Generated, WorldHandle};

/// Shared by the HTTP handlers and the ticker.
#[derive(Clone, Debug)]
pub struct ServiceState {
    pub sim: Arc<Mutex<Simulation>>,
    /// Real mode: a poster per device.
    pub(super) posters: Posters,
    pub(super) states: broadcast::Sender<SimState>,
    /// The simulated world, in simulated mode.
    pub world: Option<WorldHandle>,
    /// Real mode under `meshlog demo`: the device processes, to crash and restart.
    pub processes: Option<Supervisor>,
    /// Real mode: each device's API token, for telling it what to block.
    pub(super) device_tokens: BTreeMap<String, Token>,
    /// Where the generator settings are kept, if anywhere.
    pub(super) settings: Option<PathBuf>,
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
        let state = self.with_world(sim.state());
        drop(sim);
        if let Some(path) = &self.settings {
            if settings != Settings::of(&before) {
                settings.save(path);
            }
        }
        let _ = self.states.send(state.clone());
        Ok(state)
    }

    /// Sends generated messages on: in simulated mode into the world's schedule (each
    /// appended at its own virtual time, and the world's target raised to the simulation's
    /// time: one batch per tick), in real mode to each device's poster. Called with the
    /// simulation locked (`sim`), so posts and targets reach the world in time order: a post
    /// is appended at its own time, never at a later tick's.
    pub fn dispatch(&self, sim: &Simulation, posts: Vec<Post>) {
        let Some(world) = &self.world else {
            posts.into_iter().for_each(|p| self.posters.queue(p));
            return;
        };
        let names = sim.device_names();
        let generated = posts.into_iter().filter_map(|post| {
            let device = names.iter().position(|n| *n == post.device)?;
            Some(Generated { device, post })
        });
        world.schedule(sim.time.virtual_time_us(), generated);
    }

    pub fn state(&self) -> SimState {
        let state = self.sim.lock().unwrap_or_else(|p| p.into_inner()).state();
        self.with_world(state)
    }

    /// `state` with the world's own time, in simulated mode.
    fn with_world(&self, mut state: SimState) -> SimState {
        state.world_time_ms = self.world.as_ref().map(|w| w.now_us() / 1_000);
        state
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
