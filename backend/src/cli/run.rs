//! `meshlog run SCENARIO [--seed N] [--trace FILE] [--json] [--report FILE.html]`: one scenario
//! on the deterministic simulator. Prints the summary and the trace digest; exits 0 only if
//! every check held, and otherwise prints the command that reproduces the run. `--report`
//! also draws the run as one self-contained HTML page (`report.rs`); the digest is the same.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use meshlog_sim::{Outcome, ReportOptions, Scenario};

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
    /// Draw the run as one HTML page (no network; opens from disk): faults, device states and
    /// events over time, packets per link, convergence, missing ids, a sequence diagram.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// The sequence diagram's window of virtual time, START..END (at most 600 datagrams are
    /// drawn, sampled evenly; the page says so).
    #[arg(long, value_name = "START..END", default_value = "0s..60s", value_parser = ReportOptions::parse_window)]
    pub report_window: ReportOptions,
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
    let options = meshlog_backend::sim_stores::world_options(&scenario)
        .context("cannot make a directory for the world's SQLite stores")?;
    let built = match &args.report {
        Some(_) => meshlog_sim::run_with_report(&scenario, seed, sink, options, args.report_window)
            .map(|(outcome, report)| (outcome, Some(report))),
        None => meshlog_sim::run_with(&scenario, seed, sink, options).map(|o| (o, None)),
    };
    let (outcome, report) =
        built.with_context(|| format!("{}: cannot build the world", args.scenario.display()))?;
    if let (Some(path), Some(report)) = (&args.report, &report) {
        let title = format!("meshlog run {} seed {}", report.scenario, report.seed);
        super::report::write(report, &title, path)?;
    }
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
