//! Simulated mode (`meshlog sim-service --sim SCENARIO`): the simulation service hosting a
//! meshlog-sim `World` instead of talking to real devices.
//!
//! ```text
//!  sim service :3005 ── TimeController ──advance(virtual time)──┐
//!     │ generator posts over HTTP, like real mode               v
//!  device API :3001+i per simulated device ──commands──> world thread (owns the !Send World)
//!     ^ network log, stream frames <── trace tap ───────────────┘
//! ```
//! The scenario gives the devices, topology, sync settings and starting network; its own
//! workload, faults and end are left out (`World::hosted`): messages come from people and
//! the generator, faults from the page's network controls, and time from the controller.

pub mod api;
mod decoded;
pub mod entries;
pub mod outputs;
mod publish;
pub mod world_thread;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use meshlog_sim::scenario::Topology;
use meshlog_sim::{Scenario, ScenarioError};
use thiserror::Error;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::api::access::Token;
use crate::api::serve::{ServeError, Server, ServerOptions};
use crate::device::netlog::NetLog;
use crate::names::{device_id, BadDeviceName};
use crate::sim_service::{
    self, NetworkSettings, RunningService, Setup, SimServiceError, Simulation,
};
use api::SimDevice;
use outputs::DeviceOutputs;
use world_thread::{WorldError, WorldHandle};

/// Frames kept for slow stream subscribers, as on a real device.
const FRAME_QUEUE_LEN: usize = 1_024;

#[derive(Debug, Error)]
pub enum SimModeError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    World(#[from] WorldError),
    #[error("device {device}: {source}")]
    Serve { device: String, source: ServeError },
    #[error("device {device}: port {base} + {index} is past 65535")]
    Port {
        device: String,
        base: u16,
        index: usize,
    },
    #[error(transparent)]
    Service(#[from] SimServiceError),
    /// A name in `devices` (the scenario's own were checked when it loaded).
    #[error(transparent)]
    Name(#[from] BadDeviceName),
}

#[derive(Clone, Debug)]
pub struct SimModeOptions {
    pub scenario: PathBuf,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// The simulation service's address.
    pub http_addr: SocketAddr,
    /// Device i listens on `device_port_base + i`; 0 lets the OS pick each port (tests).
    pub device_port_base: u16,
    /// Where the device servers listen.
    pub device_host: IpAddr,
    /// Who may call the service and the simulated devices, and how much each takes on.
    pub server: ServerOptions,
    /// The service's API token, which its simulated devices share.
    pub token: Token,
    /// In place of the scenario's devices (the scenario's faults, hostiles, per-link settings
    /// and batches are dropped with them: they name the old devices).
    pub devices: Option<Vec<String>>,
    /// In place of the scenario's topology.
    pub topology: Option<Topology>,
    /// Where simulated mode's generator settings are kept (`sim-mode.json`, not real mode's
    /// `sim-service.json`). The world itself lives in memory: a restart starts it empty
    /// (`SimState.persistent` is false).
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug)]
pub struct RunningSimMode {
    pub service: RunningService,
    /// (name, base url) of each simulated device, in scenario order.
    pub devices: Vec<(String, String)>,
    pub device_servers: Vec<JoinHandle<std::io::Result<()>>>,
}

pub async fn start(options: SimModeOptions) -> Result<RunningSimMode, SimModeError> {
    let mut scenario = Scenario::load(&options.scenario)?;
    if let Some(devices) = &options.devices {
        for name in devices {
            device_id(name)?;
        }
        scenario.devices = devices.clone();
        scenario.faults.clear();
        scenario.hostiles.clear();
        scenario.links.clear();
        scenario.workload.batches.clear();
    }
    if let Some(topology) = options.topology {
        scenario.topology = topology;
    }
    let seed = options.seed.unwrap_or(scenario.seed);
    let names = scenario.devices.clone();
    // The world draws a `random` topology from the run's seed; the page must show the same.
    let peer_lists = scenario.topology.peer_lists(&names, seed);
    let links = crate::layout::links(&names, &scenario.topology, seed);
    let outputs: Vec<DeviceOutputs> = names
        .iter()
        .map(|name| DeviceOutputs {
            name: name.clone(),
            netlog: Arc::new(Mutex::new(NetLog::default())),
            frames: broadcast::channel(FRAME_QUEUE_LEN).0,
        })
        .collect();
    let (handle, (loss, latency_us_min, latency_us_max)) =
        WorldHandle::spawn(scenario, seed, outputs.clone()).await?;

    let mut devices = Vec::with_capacity(names.len());
    let mut device_servers = Vec::with_capacity(names.len());
    for (index, out) in outputs.into_iter().enumerate() {
        let port = crate::layout::device_http_port(
            options.device_port_base,
            index,
            options.http_addr.port(),
        )
        .ok_or_else(|| SimModeError::Port {
            device: out.name.clone(),
            base: options.device_port_base,
            index,
        })?;
        let addr = SocketAddr::new(options.device_host, port);
        let http = Server::bind(addr, &options.server, options.token.clone())
            .await
            .map_err(|source| SimModeError::Serve {
                device: out.name.clone(),
                source,
            })?;
        let local = http.local_addr();
        let device = SimDevice {
            index,
            outputs: out.clone(),
            world: handle.clone(),
            peers: peer_lists[index]
                .iter()
                .map(|&j| (names[j].clone(), j))
                .collect(),
        };
        tokio::spawn(crate::api::stream::stats_ticker(device.clone()));
        let app = crate::api::router(device, http.stream_slots());
        device_servers.push(http.spawn(app));
        devices.push((out.name.clone(), format!("http://{local}")));
    }

    let mut sim = Simulation::new(devices.clone());
    sim.network = Some(NetworkSettings {
        loss,
        latency_ms_min: latency_us_min / 1_000,
        latency_ms_max: latency_us_max / 1_000,
    });
    sim.links = links;
    sim.persistent = false;
    // The generator appends straight into the world; the tokens are for nothing else.
    let setup = Setup {
        world: Some(handle),
        data_dir: options.data_dir.clone(),
        ..Setup::default()
    };
    let service = sim_service::start_with(
        options.http_addr,
        sim,
        setup,
        &options.server,
        options.token.clone(),
    )
    .await?;
    Ok(RunningSimMode {
        service,
        devices,
        device_servers,
    })
}
