//! `meshlog replay FILE --keys DIR [--trace OUT] [--report FILE.html]`: a recording of a real
//! device (`meshlog device --record FILE`) replayed on the simulator's virtual time by a fresh
//! node rebuilt from it. `--report` draws the device's view as `meshlog run --report` draws a
//! run (`report.rs`).
//! Exits 0 if every step's outputs match the recording, 1 at the first that does not (printed
//! with its inputs and what the node did instead), 2 if the recording or keys cannot be read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshlog_core::record::Recording;
use meshlog_sim::replay::{replay, ReplayOptions};
use meshlog_sim::report::trace::Trace;
use meshlog_sim::ReportOptions;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A recording made with `meshlog device --record FILE`.
    pub recording: PathBuf,
    /// The key directory the device used (`community.json`, `NAME.device.json`): keys are named
    /// in a recording, never copied into it.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// Write the replay's trace lines (the simulator's line shapes; times from the device's
    /// start) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Draw the replay as one HTML page (no network; opens from disk), as `meshlog run
    /// --report` draws a run, from this device's view: its events held and online/offline over
    /// time, the datagrams it sent and received per peer and kind and the ones it refused, and
    /// a sequence diagram of its datagrams (each drawn at the one instant the recording knows:
    /// sent or received).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// The sequence diagram's window, START..END from the device's start (at most 600
    /// datagrams are drawn, sampled evenly; the page says so).
    #[arg(long, value_name = "START..END", default_value = "0s..60s", value_parser = ReportOptions::parse_window)]
    pub report_window: ReportOptions,
    /// Replay with a one-line change to the node, to show a divergence is caught (tests).
    #[arg(long, hide = true)]
    pub test_divergence: bool,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.recording)
        .with_context(|| format!("cannot read {}", args.recording.display()))?;
    let recording = Recording::parse(&bytes)
        .with_context(|| format!("{}: not a readable recording", args.recording.display()))?;
    let device = recording.start.device.to_string();
    let community = meshlog_backend::keys::load_community(&args.keys)?;
    let keys = meshlog_backend::keys::load_device(&args.keys, &device)?;
    let sink: Option<Box<dyn Write>> = match &args.trace {
        Some(path) => Some(Box::new(BufWriter::new(File::create(path).with_context(
            || format!("cannot create trace file {}", path.display()),
        )?))),
        None => None,
    };
    let mut trace = Trace::new(sink);
    let options = ReplayOptions {
        test_divergence: args.test_divergence,
        report: args.report.is_some().then_some(args.report_window),
    };
    let started = std::time::Instant::now();
    let outcome = replay(&recording, keys, community, options, &mut trace)?;
    let wall = started.elapsed().as_secs_f64();
    trace.finish().context("writing the trace failed")?;
    if let (Some(path), Some(report)) = (&args.report, &outcome.report) {
        let title = format!("meshlog replay {}", args.recording.display());
        super::report::write(report, &title, path)?;
    }
    let ending = match (outcome.torn, outcome.full) {
        (true, _) => " (the last record was torn and left out)",
        (_, true) => " (the recording stopped at its size limit)",
        _ => "",
    };
    println!(
        "replay {device}: {} steps, {} inputs, {} outputs in {wall:.2}s{ending}",
        outcome.batches, outcome.inputs, outcome.outputs
    );
    println!("recorded digest {}", outcome.recorded_digest);
    println!("replayed digest {}", outcome.replayed_digest);
    println!(
        "trace    {} lines, digest {}",
        outcome.trace_lines, outcome.trace_digest
    );
    match &outcome.first_difference {
        None => {
            println!("result   MATCH: every step's outputs equal the recording's");
            Ok(ExitCode::SUCCESS)
        }
        Some(difference) => {
            print!("result   DIFFERS at {difference}");
            Ok(ExitCode::FAILURE)
        }
    }
}
