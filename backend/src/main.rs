//! `meshlog`: every command-line verb. Each verb lives in its own module under `cli/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser, Debug)]
#[command(
    name = "meshlog",
    version,
    about = "Peer-to-peer, local-first event store and its deterministic simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario file on the deterministic simulator.
    Run(cli::run::Args),
    /// Replay a device's recording (`meshlog device --record`) on virtual time and check every
    /// output against it.
    Replay(cli::replay::Args),
    /// Run scenarios over many seeds, in parallel.
    Sweep(cli::sweep::Command),
    /// Community keys: `meshlog community new --devices alice,bob --out DIR`.
    Community(cli::community::Args),
    /// Run one device: UDP sync, SQLite store, HTTP API.
    // Boxed: its options are the largest of the commands by far.
    Device(Box<cli::device::Args>),
    /// The simulation service: generates messages on virtual time, posts them to devices.
    SimService(cli::sim_service::Args),
    /// The whole demo: keys, the devices (alice, bob, ...), the simulation service and the page.
    /// Ports: page 5173, service 3005, devices 3001+ (HTTP) and 8001+ (UDP).
    Demo(cli::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::main(args),
        Command::Replay(args) => cli::replay::main(args),
        Command::Sweep(args) => cli::sweep::command(args),
        Command::Community(args) => cli::community::main(args),
        Command::Device(args) => cli::device::main(*args),
        Command::SimService(args) => cli::sim_service::main(args),
        Command::Demo(args) => cli::demo::main(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and each cause once. Our error types put their source's text into their own
/// message (`"node: {0}"`), so anyhow's `{:#}`, which appends every cause, would say it twice
/// or three times over: a cause already at the end of what is said is skipped.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;
    use meshlog_core::{ConfigError, NodeError};

    #[test]
    fn an_error_and_its_causes_are_each_said_once() {
        let config = ConfigError::OutOfRange {
            field: "blob_serve_rate",
            value: "5".into(),
            why: "1 KiB/s to 1 TiB/s",
        };
        let err = anyhow::Error::new(NodeError::from(config)).context("starting alice");
        assert_eq!(
            describe(&err),
            "starting alice: invalid config: blob_serve_rate = 5: 1 KiB/s to 1 TiB/s"
        );
        // A context that does not repeat its cause keeps it.
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(io).context("reading keys.json");
        assert_eq!(describe(&err), "reading keys.json: no such file");
    }
}
