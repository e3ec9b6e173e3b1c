//! `meshlog sim-service --http 127.0.0.1:3005 --device alice=http://127.0.0.1:3001 ...`

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:3005")]
    http: SocketAddr,
    /// A device as NAME=BASE_URL; repeat for more.
    #[arg(long = "device", required = true)]
    devices: Vec<String>,
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
        let running = meshlog_backend::sim_service::start(args.http, devices).await?;
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
