//! `meshlog community new --devices alice,bob --out DIR`: fresh keys from OS randomness.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create a community key, a key pair per device, and the roster.
    New {
        /// Device names, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        devices: Vec<String>,
        /// Directory to write the key files into (created if missing; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::New { devices, out } => {
            let community = meshlog_backend::keys::create_community(&out, &devices)?;
            println!(
                "community {} with {} devices written to {}",
                community.id_hex(),
                devices.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
