//! `meshlog sweep SCENARIO... --seeds A..B [--jobs N] [--shard I/N]`: every scenario over a
//! range of seeds, in parallel worker threads (the simulator itself stays single-threaded:
//! each run is its own world). A progress bar with ETA on a terminal, a plain line per 1,000
//! runs otherwise; each failing seed with its repro command; a final count.

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use meshlog_sim::Scenario;

/// Without a terminal, one progress line per this many runs.
const PLAIN_PROGRESS_EVERY: usize = 1_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Seeds to run: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_parser = parse_seeds)]
    pub seeds: SeedRange,
    /// Worker threads; defaults to the number of CPUs.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (1-based): seeds whose offset in the range is I-1 modulo N.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    let bad = || format!("{text:?}: expected A..B or A..=B, e.g. 0..2000");
    let (start, end, inclusive) = match text.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => {
            let (a, b) = text.split_once("..").ok_or_else(bad)?;
            (a, b, false)
        }
    };
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        end.checked_add(1).ok_or_else(bad)?
    } else {
        end
    };
    if end <= start {
        return Err(format!("{text:?}: the range is empty"));
    }
    Ok(SeedRange { start, end })
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
    /// `None` if every check held; else what failed.
    failure: Option<String>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let scenarios: Vec<Scenario> = args
        .scenarios
        .iter()
        .map(|path| Scenario::load(path))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<Job> = (0..scenarios.len())
        .flat_map(|scenario| {
            (args.seeds.start..args.seeds.end)
                .filter(|seed| match args.shard {
                    Some(shard) => (seed - args.seeds.start) % shard.count == shard.index - 1,
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
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<Verdict>();
    let mut failures: Vec<String> = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, jobs, scenarios) = (&next, &jobs, &scenarios);
            std::thread::Builder::new()
                .name("sweep-worker".into())
                .spawn_scoped(scope, move || loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    let Some(Job { scenario, seed }) = jobs.get(job) else {
                        return;
                    };
                    let failure = run_one(&scenarios[*scenario], *seed);
                    if sender.send(Verdict { job, failure }).is_err() {
                        return;
                    }
                })
                .context("cannot start a sweep worker")?;
        }
        drop(sender);
        for (done, verdict) in receiver.iter().enumerate() {
            let done = done + 1;
            if let Some(what) = verdict.failure {
                let job = &jobs[verdict.job];
                let path = args.scenarios[job.scenario].display();
                let line = format!(
                    "FAIL {} seed {}: {what}\n  reproduce: meshlog run {path} --seed {}",
                    scenarios[job.scenario].name, job.seed, job.seed
                );
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
        }
        Ok(())
    })?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let failed = failures.len();
    let passed = jobs.len() - failed;
    println!(
        "sweep: {} scenario(s), seeds {}..{}{}, {} runs on {workers} threads in {:.1}s",
        scenarios.len(),
        args.seeds.start,
        args.seeds.end,
        args.shard
            .map(|s| format!(" shard {}/{}", s.index, s.count))
            .unwrap_or_default(),
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One run; a panic inside the simulator is a failure of that seed, not of the sweep.
fn run_one(scenario: &Scenario, seed: u64) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| meshlog_sim::run(scenario, seed, None)));
    match result {
        Ok(Ok(outcome)) if outcome.passed() => None,
        Ok(Ok(outcome)) => Some(
            outcome
                .failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Ok(Err(err)) => Some(format!("cannot build the world: {err}")),
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
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
