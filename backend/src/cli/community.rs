//! `meshlog community new --devices alice,bob [--admins alice] --out DIR`: fresh keys from OS
//! randomness.

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
        /// The genesis admins, comma separated, each one of the devices (default: the first
        /// device named). Only admins may remove members, rotate keys and make invites.
        #[arg(long, value_delimiter = ',')]
        admins: Vec<String>,
        /// Directory to write the key files into (created if missing; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::New {
            devices,
            admins,
            out,
        } => {
            let community =
                meshlog_backend::keys::create_community_with_admins(&out, &devices, &admins)?;
            let admins: Vec<&str> = community.admins().iter().map(|a| a.as_str()).collect();
            println!(
                "community {} with {} devices (admins: {}) written to {}",
                community.id_hex(),
                devices.len(),
                admins.join(","),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
