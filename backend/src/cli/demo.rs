//! `meshlog demo [--devices alice,bob,carol] [--topology line] [--data-dir DIR] [--sim SCENARIO]`:
//! keys, the devices (or a simulated world), the simulation service and the page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use meshlog_backend::demo::{self, DemoOptions};
use meshlog_backend::layout;
use meshlog_sim::scenario::Topology;

/// Ports: the page on 5173 (--web); the simulation service on 3005; device i's HTTP API on
/// 3001 + i, skipping 3005 (3001-3004, then 3006-3009); in real mode device i's UDP on
/// 8001 + i. All on 127.0.0.1, and all must be free.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Ports (127.0.0.1, must be free): page 5173; simulation service 3005; \
device i's HTTP 3001+i skipping 3005 (alice 3001, bob 3002, carol 3003, ..., the fifth 3006); \
real mode: device i's UDP 8001+i. Ctrl-C or SIGTERM stops every process the demo started."
)]
pub struct Args {
    /// Keys, each device's encrypted database (and its key, `db.key`) and the generator
    /// settings (`sim-service.json`) live here; created on first run, reused after (delete it
    /// to start over). With `--sim` the world lives in memory and only its own generator
    /// settings are kept (`sim-mode.json`).
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The page's source; its built files are served from `dist/` inside it (built with
    /// `npm ci && npm run build` first if missing, which needs the npm registry).
    #[arg(long, default_value = "frontend")]
    frontend: PathBuf,
    /// Where the page is served.
    #[arg(long, default_value = "127.0.0.1:5173")]
    web: SocketAddr,
    /// 2 to 8 device names, comma-separated (each 1 to 32 of a-z, 0-9, - and _; not `keys`
    /// or `api-token`, which the data directory holds). Default alice,bob (in simulated mode,
    /// the scenario's devices).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    devices: Option<Vec<String>>,
    /// mesh: every device peers with every other; line: each only with its neighbours in
    /// --devices order, so the middle ones relay. Default mesh (or the scenario's).
    #[arg(long, value_enum)]
    topology: Option<DemoTopology>,
    /// Real mode: start generating messages at once.
    #[arg(long)]
    start: bool,
    /// Simulated mode: start paused (it starts running otherwise).
    #[arg(long, requires = "sim")]
    paused: bool,
    /// Simulated mode: host this scenario's devices in a meshlog-sim world instead of
    /// starting real device processes (e.g. scenarios/default-demo.toml). The world lives in
    /// memory: each run starts empty.
    #[arg(long, value_name = "SCENARIO")]
    sim: Option<PathBuf>,
    /// The simulation service's port (the page finds the devices there).
    #[arg(long, default_value_t = layout::SIM_SERVICE_PORT)]
    service_port: u16,
    /// Device i's HTTP API on this + i, skipping the service's port.
    #[arg(long, default_value_t = layout::DEVICE_HTTP_PORT_BASE)]
    device_port_base: u16,
    /// Real mode: device i's UDP on this + i.
    #[arg(long, default_value_t = layout::DEVICE_UDP_PORT_BASE)]
    udp_port_base: u16,
    /// Real mode: file bytes per second each device sends each peer at most (`meshlog device
    /// --blob-serve-rate`): a slow link, to watch a file arrive.
    #[arg(long, value_name = "BYTES_PER_S", conflicts_with = "sim")]
    blob_serve_rate: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DemoTopology {
    Mesh,
    Line,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(demo::run(DemoOptions {
        data_dir: args.data_dir,
        frontend_dir: args.frontend,
        web_addr: args.web,
        start_simulation: args.start,
        paused: args.paused,
        sim_scenario: args.sim,
        devices: args.devices,
        topology: args.topology.map(|t| match t {
            DemoTopology::Mesh => Topology::Mesh,
            DemoTopology::Line => Topology::Line,
        }),
        ports: layout::Ports {
            service: args.service_port,
            device_http_base: args.device_port_base,
            device_udp_base: args.udp_port_base,
        },
        blob_serve_rate_bytes_per_s: args.blob_serve_rate,
    }))?;
    Ok(ExitCode::SUCCESS)
}
