//! What `meshlog demo` is asked to run.

use std::net::SocketAddr;
use std::path::PathBuf;

use meshlog_sim::scenario::Topology;

use crate::layout::Ports;

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub frontend_dir: PathBuf,
    pub web_addr: SocketAddr,
    /// Start generating messages at once (simulated mode always starts running, unless
    /// `paused`).
    pub start_simulation: bool,
    /// Simulated mode: start paused (the page then says to press start).
    pub paused: bool,
    /// Simulated mode: this scenario's world, not real devices.
    pub sim_scenario: Option<PathBuf>,
    /// The devices, in order; `None`: alice and bob (or the scenario's, in simulated mode).
    pub devices: Option<Vec<String>>,
    /// `None`: mesh (or the scenario's, in simulated mode).
    pub topology: Option<Topology>,
    pub ports: Ports,
    /// Real mode: each device's `--blob-serve-rate` (file bytes per second to each peer).
    pub blob_serve_rate_bytes_per_s: Option<u64>,
}
