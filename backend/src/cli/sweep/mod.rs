//! `meshlog sweep SCENARIO... --seeds A..B [--jobs N] [--shard I/N] [--json FILE] [--junit FILE]`:
//! every scenario over a range of seeds, in parallel worker threads (the simulator itself stays
//! single-threaded: each run is its own world). A progress bar with ETA on a terminal, a plain
//! line per 1,000 runs otherwise; each failing seed with its repro command; a final count.
//! `meshlog sweep merge FILES...` ([`merge`]) combines the `--json` output of shards.

use std::io::{IsTerminal, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use meshlog_sim::Scenario;

pub mod merge;
pub mod results;
mod seeds;

use results::SeedResult;
use seeds::{parse_seeds, SeedRange};

/// Without a terminal, one progress line per this many runs.
const PLAIN_PROGRESS_EVERY: usize = 1_000;

/// `meshlog sweep SCENARIO... --seeds A..B`, or `meshlog sweep merge FILES...`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Command {
    #[command(subcommand)]
    pub merge: Option<Merge>,
    #[command(flatten)]
    pub run: Args,
}

#[derive(clap::Subcommand, Debug)]
pub enum Merge {
    /// Combine the `--json` output of sweep shards: one summary, every failure with its
    /// repro command, seeds no shard ran; exit 1 if any failed or is missing.
    Merge(merge::Args),
}

pub fn command(command: Command) -> anyhow::Result<ExitCode> {
    match command.merge {
        Some(Merge::Merge(args)) => merge::main(args),
        None => main(command.run),
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Seeds to run: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_parser = parse_seeds, required = true)]
    pub seeds: Option<SeedRange>,
    /// Worker threads; defaults to the number of CPUs.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (1-based): seeds whose offset in the range is I-1 modulo N.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Append one JSON line per seed to FILE as runs finish (`-`: standard output): scenario,
    /// file, seed, passed, failure, digest, virtual and wall time. Shards' files combine with
    /// `meshlog sweep merge`.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per seed) to FILE at the end.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad = || format!("{text:?}: expected I/N with 1 <= I <= N, e.g. 2/4");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let index: u64 = i.trim().parse().map_err(|_| bad())?;
    let count: u64 = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

struct Job {
    scenario: usize,
    seed: u64,
}

struct Verdict {
    job: usize,
    result: SeedResult,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let seeds = args.seeds.context("--seeds A..B is required")?;
    let scenarios: Vec<Scenario> = args
        .scenarios
        .iter()
        .map(|path| Scenario::load(path))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<Job> = (0..scenarios.len())
        .flat_map(|scenario| {
            (seeds.start..seeds.end)
                .filter(|seed| match args.shard {
                    Some(shard) => (seed - seeds.start) % shard.count == shard.index - 1,
                    None => true,
                })
                .map(move |seed| Job { scenario, seed })
        })
        .collect();
    if jobs.is_empty() {
        bail!("no seeds to run in this shard");
    }
    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {msg} (ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message("0 failed");
        bar
    });
    let mut json: Option<Box<dyn Write>> = match &args.json {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
        Some(path) => Some(Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
    };
    let context = RunContext {
        files: args
            .scenarios
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        seeds: seeds.to_string(),
        shard: args.shard.map(|s| format!("{}/{}", s.index, s.count)),
    };
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<Verdict>();
    let mut failures: Vec<String> = Vec::new();
    let mut all: Vec<SeedResult> =
        Vec::with_capacity(if args.junit.is_some() { jobs.len() } else { 0 });
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, jobs, scenarios, context) = (&next, &jobs, &scenarios, &context);
            std::thread::Builder::new()
                .name("sweep-worker".into())
                .spawn_scoped(scope, move || loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    let Some(Job { scenario, seed }) = jobs.get(job) else {
                        return;
                    };
                    let result = context.run_one(&scenarios[*scenario], *scenario, *seed);
                    if sender.send(Verdict { job, result }).is_err() {
                        return;
                    }
                })
                .context("cannot start a sweep worker")?;
        }
        drop(sender);
        for (done, verdict) in receiver.iter().enumerate() {
            let done = done + 1;
            debug_assert_eq!(verdict.result.seed, jobs[verdict.job].seed);
            if let Some(out) = json.as_mut() {
                results::write_line(out, &verdict.result)?;
            }
            if let Some(line) = verdict.result.failure_line() {
                match &progress {
                    Some(bar) => bar.println(&line),
                    None => eprintln!("{line}"),
                }
                failures.push(line);
            }
            match &progress {
                Some(bar) => {
                    bar.set_message(format!("{} failed", failures.len()));
                    bar.inc(1);
                }
                None if done % PLAIN_PROGRESS_EVERY == 0 => eprintln!(
                    "sweep: {done}/{} runs, {} failed, {:.1}s",
                    jobs.len(),
                    failures.len(),
                    started.elapsed().as_secs_f64()
                ),
                None => {}
            }
            if args.junit.is_some() {
                all.push(verdict.result);
            }
        }
        Ok(())
    })?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if let Some(path) = &args.junit {
        all.sort_by(|a, b| a.key().cmp(&b.key()));
        std::fs::write(path, results::junit(&all))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let failed = failures.len();
    let passed = jobs.len() - failed;
    let summary = format!(
        "sweep: {} scenario(s), seeds {}..{}{}, {} runs on {workers} threads in {:.1}s",
        scenarios.len(),
        seeds.start,
        seeds.end,
        args.shard
            .map(|s| format!(" shard {}/{}", s.index, s.count))
            .unwrap_or_default(),
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    let counts = format!("{passed} passed, {failed} failed");
    // With the JSON lines on standard output, the summary goes to standard error.
    if args.json.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        eprintln!("{summary}\n{counts}");
    } else {
        println!("{summary}\n{counts}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What every result of this sweep shares.
struct RunContext {
    /// The scenario files as given, by index.
    files: Vec<String>,
    seeds: String,
    shard: Option<String>,
}

impl RunContext {
    /// One run; a panic inside the simulator is a failure of that seed, not of the sweep.
    fn run_one(&self, scenario: &Scenario, index: usize, seed: u64) -> SeedResult {
        let started = Instant::now();
        let run = catch_unwind(AssertUnwindSafe(|| {
            // A SQLite world gets a fresh directory per run; failing to make one fails the seed.
            let options = meshlog_backend::sim_stores::world_options(scenario)
                .map_err(|err| format!("cannot make a directory for its SQLite stores: {err}"))?;
            meshlog_sim::run_with(scenario, seed, None, options).map_err(|err| err.to_string())
        }));
        let wall_ms = started.elapsed().as_secs_f64() * 1_000.0;
        let (failure, digest, virtual_time_us) = match run {
            Ok(Ok(outcome)) => {
                let failure = (!outcome.passed()).then(|| {
                    outcome
                        .failures
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                (failure, Some(outcome.digest), Some(outcome.virtual_time_us))
            }
            Ok(Err(err)) => (Some(format!("cannot build the world: {err}")), None, None),
            Err(panic) => {
                let message = meshlog_sim::panic_message(panic.as_ref());
                (Some(format!("panicked: {message}")), None, None)
            }
        };
        SeedResult {
            scenario: scenario.name.clone(),
            file: self.files[index].clone(),
            seed,
            seeds: self.seeds.clone(),
            shard: self.shard.clone(),
            passed: failure.is_none(),
            failure,
            digest,
            virtual_time_us,
            wall_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_and_shards_parse() {
        assert_eq!(
            parse_seeds("0..2000"),
            Ok(SeedRange {
                start: 0,
                end: 2000
            })
        );
        assert_eq!(parse_seeds("5..=7"), Ok(SeedRange { start: 5, end: 8 }));
        assert!(parse_seeds("7..7").is_err());
        assert!(parse_seeds("a..b").is_err());
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
    }
}
