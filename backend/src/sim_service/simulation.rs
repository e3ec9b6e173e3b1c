//! [`Simulation`]: the time controller and the generator together, and every decision the
//! service makes, with no I/O.

use std::collections::BTreeMap;

use super::error::SimServiceError;
use super::faults::Faults;
use super::generator::{Generator, Post};
use super::state::{mesh_links, DeviceState, Liveness, NetworkSettings, NetworkState, SimState};
use super::time_controller::TimeController;

/// The seed's default demo workload (scenarios/default-demo.toml): 50 messages an hour
/// overall, 30% of them with an attachment.
pub const DEFAULT_MESSAGES_PER_HOUR: f64 = 50.0;
pub const DEFAULT_ATTACHMENT_PERCENT: f64 = 30.0;
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
            world_time_ms: None,
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
