//! `meshlog community new --devices alice,bob [--admins alice] --out DIR` and `meshlog
//! community person --name ann --out DIR`: fresh keys from OS randomness.

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
    /// Create a person's identity key (`OUT/NAME.person.json`). Copy it to each of the
    /// person's devices and start them with `--person-key FILE`: each certifies itself as
    /// theirs, and an admin can remove the person with all their devices at once.
    Person {
        /// The person's name (letters, digits, `-`, `_`).
        #[arg(long)]
        name: String,
        /// Directory to write the key file into (created if missing; never overwritten).
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
        Command::Person { name, out } => {
            let (path, _) = meshlog_backend::keys::create_person(&out, &name)?;
            println!(
                "person {name} written to {} (owner-readable only; copy it to each of {name}'s devices)",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
