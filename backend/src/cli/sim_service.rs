//! `meshlog sim-service --http 127.0.0.1:3005 --device alice=http://127.0.0.1:3001 ...`
//! or, simulated mode, `meshlog sim-service --sim scenarios/default-demo.toml`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshlog_backend::sim_mode::{self, SimModeOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:3005")]
    http: SocketAddr,
    /// A device as NAME=BASE_URL; repeat for more.
    #[arg(
        long = "device",
        required_unless_present = "sim",
        conflicts_with = "sim"
    )]
    devices: Vec<String>,
    /// Simulated mode: host this scenario's devices in a meshlog-sim world instead.
    #[arg(long, value_name = "SCENARIO")]
    sim: Option<PathBuf>,
    /// Simulated mode: overrides the scenario's seed.
    #[arg(long, requires = "sim")]
    seed: Option<u64>,
    /// Simulated mode: device i serves its API on this port + i (0: any free port).
    #[arg(long, default_value_t = 3001, requires = "sim")]
    device_port_base: u16,
    /// Start generating at once instead of waiting for POST /api/simulation/start.
    #[arg(long)]
    start: bool,
}

pub fn parse_device(text: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = text
        .split_once('=')
        .with_context(|| format!("device {text:?}: expected NAME=URL"))?;
    Ok((name.to_owned(), url.trim_end_matches('/').to_owned()))
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let devices = args
        .devices
        .iter()
        .map(|d| parse_device(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let running = match &args.sim {
            None => meshlog_backend::sim_service::start(args.http, devices).await?,
            Some(scenario) => {
                let sim = sim_mode::start(SimModeOptions {
                    scenario: scenario.clone(),
                    seed: args.seed,
                    http_addr: args.http,
                    device_port_base: args.device_port_base,
                    // Simulated devices listen where the service does.
                    device_host: args.http.ip(),
                })
                .await?;
                for (name, url) in &sim.devices {
                    println!("meshlog sim-service simulated device {name} http={url}");
                }
                sim.service
            }
        };
        if args.start {
            running.state.update(|sim| {
                sim.time.start();
                Ok(())
            })?;
        }
        println!(
            "meshlog sim-service listening http=http://{}",
            running.http_addr
        );
        std::io::stdout().flush()?;
        running.server.await??;
        Ok(ExitCode::SUCCESS)
    })
}
