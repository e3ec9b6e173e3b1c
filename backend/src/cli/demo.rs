//! `meshlog demo [--data-dir ./demo-data] [--sim SCENARIO]`: keys, alice, bob (or a simulated
//! world), the simulation service and the page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use meshlog_backend::demo::{self, DemoOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keys and each device's database live here; created on first run.
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The page's source; its built files are served from `dist/` inside it.
    #[arg(long, default_value = "frontend")]
    frontend: PathBuf,
    /// Where the page is served.
    #[arg(long, default_value = "127.0.0.1:5173")]
    web: SocketAddr,
    /// Start generating messages at once.
    #[arg(long)]
    start: bool,
    /// Simulated mode: host this scenario's devices in a meshlog-sim world instead of
    /// starting real device processes.
    #[arg(long, value_name = "SCENARIO")]
    sim: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(demo::run(DemoOptions {
        data_dir: args.data_dir,
        frontend_dir: args.frontend,
        web_addr: args.web,
        start_simulation: args.start,
        sim_scenario: args.sim,
    }))?;
    Ok(ExitCode::SUCCESS)
}
