//! `meshlog run SCENARIO [--seed N] [--trace FILE] [--json]`: one scenario on the deterministic
//! simulator. Prints the summary and the trace digest; exits 0 only if every check held, and
//! otherwise prints the command that reproduces the run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use meshlog_sim::{Outcome, Scenario};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 if every expectation of the scenario held (convergence, \
liveness, safety checks); 1 if any failed (the failures and the command that reproduces the \
run are printed); 2 if the run could not be made (unreadable or invalid scenario, unwritable \
trace file)."
)]
pub struct Args {
    /// Scenario file (TOML), e.g. scenarios/partition-heal.toml.
    pub scenario: PathBuf,
    /// Root seed; defaults to the scenario's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write every trace line (send, drop, delivery, append, insert, fault) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    let seed = args.seed.unwrap_or(scenario.seed);
    let sink: Option<Box<dyn Write>> = match &args.trace {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("cannot create trace file {}", path.display()))?;
            Some(Box::new(BufWriter::new(file)))
        }
        None => None,
    };
    let outcome = meshlog_sim::run(&scenario, seed, sink)
        .with_context(|| format!("{}: cannot build the world", args.scenario.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!("{outcome}");
    }
    if let Some(err) = &outcome.trace_error {
        anyhow::bail!("writing the trace failed: {err}");
    }
    if outcome.passed() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("reproduce: {}", repro_command(&args.scenario, &outcome));
    Ok(ExitCode::FAILURE)
}

/// The one command line that replays this run exactly.
pub fn repro_command(path: &Path, outcome: &Outcome) -> String {
    format!("meshlog run {} --seed {}", path.display(), outcome.seed)
}
