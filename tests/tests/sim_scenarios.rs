//! Every file in `scenarios/`: passes its checks over many seeds; its trace digest repeats for
//! the same seed (in this process and in another) and changes with the seed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use meshlog_core::Instant;
use meshlog_sim::{Scenario, World};

/// Seeds the determinism tests use; the child process reads it from this variable.
const DIGEST_SEED_VAR: &str = "MESHLOG_SIM_DIGEST_SEED";

/// How many seeds each scenario runs in this suite. The two heavy scenarios (a ten-device
/// mesh moving 10,000 events, a 5,000-event catch-up) cost seconds per seed on a shared
/// 2-core machine, so the suite runs them for a few seeds only;
/// `meshlog sweep scenarios/*.toml --seeds 0..200` runs every scenario for 200.
fn seeds_in_suite(name: &str) -> u64 {
    match name {
        "ten-devices-10k" => 1,
        "backlog-5000" => 4,
        _ => 200,
    }
}

/// Heavy scenarios are compared on the first 20 virtual seconds of their trace (already
/// tens of thousands of lines); the others on the whole run.
fn digest(scenario: &Scenario, seed: u64) -> String {
    if seeds_in_suite(&scenario.name) < 200 {
        let mut world = World::new(scenario, seed, None).expect("world builds");
        world.run_until(Instant::from_millis(20_000));
        return world.digest();
    }
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
    // Heavy runs first, so the two threads finish together.
    let mut jobs: Vec<(usize, u64)> = Vec::new();
    for (i, (_, scenario)) in scenarios.iter().enumerate() {
        jobs.extend((0..seeds_in_suite(&scenario.name)).map(|seed| (i, seed)));
    }
    jobs.sort_by_key(|(i, _)| seeds_in_suite(&scenarios[*i].1.name));
    let failures: Vec<String> = parallel(&jobs, |(i, seed)| {
        let (path, scenario) = &scenarios[*i];
        let outcome = meshlog_sim::run(scenario, *seed, None).expect("world builds");
        (!outcome.passed()).then(|| {
            format!(
                "{}: {}\n  reproduce: meshlog run {} --seed {seed}",
                scenario.name,
                outcome.failures[0],
                path.display()
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(jobs.len() >= 9 * 200);
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
