//! Every file in `scenarios/`: passes its checks for 200 seeds (a large world for 50); its
//! trace digest repeats for the same seed (in this process and in another) and changes with
//! the seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use meshlog_core::Instant;
use meshlog_sim::{Scenario, World, WorldOptions};

/// Seeds the determinism tests use; the child process reads it from this variable.
const DIGEST_SEED_VAR: &str = "MESHLOG_SIM_DIGEST_SEED";

/// Seeds every scenario runs in this suite.
const SEEDS_IN_SUITE: u64 = 200;
/// Seeds a large world runs in this suite. One run of `ten-devices-10k` (over 10,000 events)
/// costs as much as one of every other scenario together, so at 200 seeds it alone took
/// five of CI's minutes; `meshlog sweep` runs it over as many seeds as wanted.
const SEEDS_IN_SUITE_LARGE: u64 = 50;
/// A world whose workload posts more events than this is large.
const LARGE_WORLD_EVENTS: u64 = 5_000;

/// The seeds `scenario` runs in this suite: 0 up to its count.
fn seeds_in_suite(scenario: &Scenario) -> u64 {
    let hours = scenario.duration.as_micros() as f64 / 3_600e6;
    let events = f64::from(scenario.workload.messages_per_hour) * hours;
    if events > LARGE_WORLD_EVENTS as f64 {
        SEEDS_IN_SUITE_LARGE
    } else {
        SEEDS_IN_SUITE
    }
}

fn digest(scenario: &Scenario, seed: u64) -> String {
    meshlog_sim::run(scenario, seed, None)
        .expect("world builds")
        .digest
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 11,
        "expected at least 11 scenarios, found {}",
        files.len()
    );
    files
}

fn scenarios() -> Vec<(PathBuf, Scenario)> {
    scenario_files()
        .into_iter()
        .map(|path| {
            let scenario = Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
            (path, scenario)
        })
        .collect()
}

/// Runs `work` over `jobs` on two threads (the machine has two cores), in order.
fn parallel<J: Sync, R: Send>(jobs: &[J], work: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { return };
                let result = work(job);
                results.lock().unwrap().push((i, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn every_scenario_passes_its_checks_over_many_seeds() {
    let scenarios = scenarios();
    // Seed-major order mixes heavy and light scenarios, so the two threads finish together.
    let seeds: Vec<u64> = scenarios.iter().map(|(_, s)| seeds_in_suite(s)).collect();
    assert!(
        seeds.iter().filter(|&&n| n == SEEDS_IN_SUITE).count() * 4 >= scenarios.len() * 3,
        "most scenarios run every seed of the suite: {seeds:?}"
    );
    let jobs: Vec<(usize, u64)> = (0..SEEDS_IN_SUITE)
        .flat_map(|seed| (0..scenarios.len()).map(move |i| (i, seed)))
        .filter(|&(i, seed)| seed < seeds[i])
        .collect();
    // Each job answers with the (scenario, seed) its world says it ran, and its failure.
    let outcomes: Vec<(String, u64, Option<String>)> = parallel(&jobs, |(i, seed)| {
        let (path, scenario) = &scenarios[*i];
        let outcome = meshlog_sim::run(scenario, *seed, None).expect("world builds");
        let failure = (!outcome.passed()).then(|| {
            format!(
                "{}: {}\n  reproduce: meshlog run {} --seed {seed}",
                scenario.name,
                outcome.failures[0],
                path.display()
            )
        });
        (outcome.scenario, outcome.seed, failure)
    });
    // Every scenario ran at every seed exactly once: a runner that drops, repeats or mixes up
    // jobs (or a world that runs another seed than asked) would pass the check below on
    // fewer runs than it claims.
    let mut owed: BTreeMap<(&str, u64), i64> = BTreeMap::new();
    for ((_, scenario), &count) in scenarios.iter().zip(&seeds) {
        for seed in 0..count {
            *owed.entry((scenario.name.as_str(), seed)).or_default() += 1;
        }
    }
    for (name, seed, _) in &outcomes {
        *owed.entry((name.as_str(), *seed)).or_default() -= 1;
    }
    let wrong: Vec<String> = owed
        .iter()
        .filter(|(_, owed)| **owed != 0)
        .map(|((name, seed), owed)| match owed {
            1.. => format!("{name} seed {seed}: not run"),
            _ => format!("{name} seed {seed}: {} extra run(s)", -owed),
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} runs for {} jobs, not one per scenario and seed: {}",
        outcomes.len(),
        jobs.len(),
        wrong.join("; ")
    );
    let failures: Vec<String> = outcomes.into_iter().filter_map(|(_, _, f)| f).collect();
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_shared_signature_memo_changes_no_digest() {
    // Every scenario's first minute (faults, loss, corruption and all), with and without the
    // memo: the same trace, so the memo only saves time.
    let scenarios = scenarios();
    parallel(&scenarios, |(_, scenario)| {
        let digest_with = |signature_memo| {
            let options = WorldOptions {
                signature_memo,
                ..WorldOptions::default()
            };
            let mut world = World::with_options(scenario, 3, None, options).expect("world builds");
            world.run_until(Instant::from_millis(60_000));
            world.digest()
        };
        assert_eq!(digest_with(true), digest_with(false), "{}", scenario.name);
    });
}

#[test]
fn digests_repeat_in_one_process_and_in_two_and_change_with_the_seed() {
    let scenarios = scenarios();
    let seed = 7;
    let child = std::thread::spawn(move || {
        let exe = std::env::current_exe().expect("test executable");
        Command::new(exe)
            .args([
                "--exact",
                "child_prints_digests",
                "--ignored",
                "--nocapture",
            ])
            .env(DIGEST_SEED_VAR, seed.to_string())
            .output()
            .expect("child test process runs")
    });
    let here = parallel(&scenarios, |(_, scenario)| {
        let first = digest(scenario, seed);
        assert_eq!(
            first,
            digest(scenario, seed),
            "{}: same seed, other digest",
            scenario.name
        );
        assert_ne!(
            first,
            digest(scenario, seed + 1),
            "{}: seeds {seed} and {} agree",
            scenario.name,
            seed + 1
        );
        first
    });
    let output = child.join().expect("child thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for ((_, scenario), digest) in scenarios.iter().zip(&here) {
        let line = format!("digest {} {digest}", scenario.name);
        assert!(
            stdout.lines().any(|l| l == line),
            "{}: the other process printed another digest (want {digest}):\n{stdout}",
            scenario.name
        );
    }
}

/// The other process of the determinism test: prints each scenario's digest for the seed in
/// `MESHLOG_SIM_DIGEST_SEED`.
#[test]
#[ignore = "run as a child process by the two-process determinism test"]
fn child_prints_digests() {
    let seed: u64 = std::env::var(DIGEST_SEED_VAR)
        .expect("set MESHLOG_SIM_DIGEST_SEED (the determinism test does)")
        .parse()
        .expect("a seed number");
    for (_, scenario) in scenarios() {
        println!("digest {} {}", scenario.name, digest(&scenario, seed));
    }
}
