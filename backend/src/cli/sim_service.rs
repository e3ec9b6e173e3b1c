//! `meshlog sim-service --http 127.0.0.1:3005 --data DIR --device alice=http://127.0.0.1:3001 ...`
//! or, simulated mode, `meshlog sim-service --data DIR --sim scenarios/default-demo.toml`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::Context;
use meshlog_backend::api::access::Token;
use meshlog_backend::names::device_id;
use meshlog_backend::sim_mode::{self, SimModeOptions};
use meshlog_backend::sim_service::{self, DeviceLink, Setup, Simulation};

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
    /// Data directory: the service's API token and the generator settings
    /// (`sim-service.json`) live here (kept 0700).
    #[arg(long)]
    data: PathBuf,
    /// A device's API token file as NAME=FILE (e.g. alice=alice-data/api-token); a device
    /// without one is called with the service's own token (as the demo sets them up).
    #[arg(
        long = "device-token",
        value_name = "NAME=FILE",
        conflicts_with = "sim"
    )]
    device_tokens: Vec<String>,
    #[command(flatten)]
    server: super::ServerArgs,
}

/// `NAME=VALUE` with NAME a device name, or an error naming the flag and the form it wants.
fn name_value<'a>(text: &'a str, form: &str) -> anyhow::Result<(&'a str, &'a str)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("{text:?}: expected {form}"))?;
    device_id(name).with_context(|| form.to_owned())?;
    Ok((name, value))
}

pub fn parse_device(text: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = name_value(text, "--device NAME=URL")?;
    Ok((name.to_owned(), url.trim_end_matches('/').to_owned()))
}

/// Reads `NAME=FILE` into the device's name and the token in the file.
fn device_token(text: &str) -> anyhow::Result<(String, Token)> {
    let (name, file) = name_value(text, "--device-token NAME=FILE")?;
    let read = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let token = Token::parse(&read).with_context(|| format!("{file}: not an API token"))?;
    Ok((name.to_owned(), token))
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let token = Token::load_or_create(&args.data)?;
    let device_tokens = args
        .device_tokens
        .iter()
        .map(|d| device_token(d))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let devices = args
        .devices
        .iter()
        .map(|d| {
            let (name, url) = parse_device(d)?;
            let token = device_tokens.get(&name).unwrap_or(&token).clone();
            Ok(DeviceLink { name, url, token })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let server = args.server.options();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let running = match &args.sim {
            None => {
                let tokens = devices
                    .iter()
                    .map(|d| (d.name.clone(), d.token.clone()))
                    .collect();
                let sim = Simulation::new(devices.into_iter().map(|d| (d.name, d.url)).collect());
                let setup = Setup {
                    device_tokens: tokens,
                    data_dir: Some(args.data.clone()),
                    ..Setup::default()
                };
                sim_service::start_with(args.http, sim, setup, &server, token.clone()).await?
            }
            Some(scenario) => {
                let sim = sim_mode::start(SimModeOptions {
                    scenario: scenario.clone(),
                    seed: args.seed,
                    http_addr: args.http,
                    device_port_base: args.device_port_base,
                    // Simulated devices listen where the service does.
                    device_host: args.http.ip(),
                    server: server.clone(),
                    token: token.clone(),
                    devices: None,
                    topology: None,
                    data_dir: Some(args.data.clone()),
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
        super::print_token("meshlog sim-service", &token, &args.data);
        println!(
            "meshlog sim-service listening http=http://{}",
            running.http_addr
        );
        std::io::stdout().flush()?;
        running.server.await??;
        Ok(ExitCode::SUCCESS)
    })
}
