//! The service's answer (`SimState` of `docs/API.md`) and the settings it is made from.

use serde::Serialize;

use super::error::SimServiceError;
use super::faults::Cut;

/// `SimState` of `docs/API.md`.
#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct SimState {
    #[ts(type = "\"real\" | \"sim\"")]
    pub mode: &'static str,
    pub run_id: String,
    pub persistent: bool,
    pub running: bool,
    pub speed: f64,
    pub virtual_time_ms: u64,
    /// Simulated mode: the world's own virtual time, which trails `virtual_time_ms` while it
    /// catches up (the clock holds while it is half a second behind); absent in real mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub world_time_ms: Option<u64>,
    pub messages_per_hour: f64,
    pub attachment_percent: f64,
    pub devices: Vec<DeviceState>,
    pub links: Vec<(String, String)>,
    pub network: NetworkState,
}

#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct DeviceState {
    pub name: String,
    pub url: String,
    pub enabled: bool,
    pub generated: u64,
    pub up: bool,
    pub restarts: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct NetworkState {
    pub loss: Option<f64>,
    pub latency_ms_min: Option<u64>,
    pub latency_ms_max: Option<u64>,
    pub partitioned: bool,
    pub groups: Vec<Vec<String>>,
    pub cuts: Vec<Cut>,
}

/// Whether a device runs, and how often it was restarted after dying unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub up: bool,
    pub restarts: u64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            up: true,
            restarts: 0,
        }
    }
}

/// Highest latency the network controls accept: a minute is already unusable.
pub const LATENCY_MS_MAX: u64 = 60_000;

/// What the virtual network does to every link (simulated mode).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NetworkSettings {
    pub loss: f64,
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
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

/// Every pair of `names` (the mesh topology, as the demo and the world link it).
pub fn mesh_links(names: &[String]) -> Vec<(String, String)> {
    crate::layout::links(names, &meshlog_sim::scenario::Topology::Mesh, 0)
}
