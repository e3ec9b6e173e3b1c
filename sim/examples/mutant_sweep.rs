//! The planted-bug measurement's runner (`scripts/mutants` builds it against each mutant):
//! runs every scenario given over seeds `0..SEEDS` and prints, per scenario, the first
//! failing seed and its first failure, or `missed`.
//!
//! ```text
//! cargo run --release -p meshlog-sim --example mutant_sweep -- 30 scenarios/*.toml
//! ```
//!
//! With `MUTANT_FIGURES=1` it runs every seed and prints each scenario's efficiency figures
//! instead (worst and median bytes per delivered event, worst rounds to converge, failing
//! seeds): how far a mutant moves them from the unchanged core's, to set `[expect]` bounds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use meshlog_sim::{Scenario, StoreKind};

/// Characters of the first failure shown per caught scenario.
const SHOWN_MAX: usize = 160;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((seeds, files)) = args.split_first() else {
        eprintln!("usage: mutant_sweep SEEDS FILE...");
        std::process::exit(2);
    };
    let seeds: u64 = seeds.parse().expect("SEEDS is a number");
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| Scenario::load(Path::new(f)).unwrap_or_else(|err| panic!("{err}")))
        .collect();
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    // Two threads: the machine has two cores.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(scenario) = scenarios.get(i) else {
                    return;
                };
                if scenario.world.store == StoreKind::Sqlite {
                    // Its stores come from the `meshlog` binary, which this runner is not.
                    found.lock().expect("no panics").push((i, Err(())));
                    continue;
                }
                if std::env::var_os("MUTANT_FIGURES").is_some() {
                    println!("{}", figures(&files[i], scenario, seeds));
                    continue;
                }
                // A core assertion tripping is the seed's failure: the sweep goes on and
                // names the scenario and seed, as for any other failure.
                let first = (0..seeds).find_map(|seed| {
                    match catch_unwind(AssertUnwindSafe(|| meshlog_sim::run(scenario, seed, None)))
                    {
                        Ok(outcome) => {
                            let outcome = outcome.expect("world builds");
                            Some((seed, outcome.failures.first()?.to_string()))
                        }
                        Err(panic) => Some((
                            seed,
                            format!("panicked: {}", meshlog_sim::panic_message(panic.as_ref())),
                        )),
                    }
                });
                found.lock().expect("no panics").push((i, Ok(first)));
            });
        }
    });
    let mut found = found.into_inner().expect("no panics");
    found.sort_by_key(|(i, _)| *i);
    for (i, first) in found {
        match first {
            Err(()) => println!(
                "skipped {} (a SQLite world: meshlog sweep runs it)",
                files[i]
            ),
            Ok(Some((seed, failure))) => {
                let shown: String = failure.chars().take(SHOWN_MAX).collect();
                println!("CAUGHT {} seed {seed}: {shown}", files[i]);
            }
            Ok(None) => println!("missed {}", files[i]),
        }
    }
}

/// `FIGURES file bytes/event max M median D rounds max R failed F traces T`, over seeds
/// `0..seeds` (`T`: blake3 of every seed's trace digest, so a mutant that changes no trace
/// at all shows the same `T` as the unchanged core).
fn figures(file: &str, scenario: &Scenario, seeds: u64) -> String {
    let (mut bytes, mut rounds, mut failed) = (Vec::new(), 0.0f64, 0);
    let mut traces = blake3::Hasher::new();
    for seed in 0..seeds {
        let outcome = meshlog_sim::run(scenario, seed, None).expect("world builds");
        bytes.push(outcome.figures.bytes_per_event.unwrap_or(0.0));
        rounds = rounds.max(outcome.figures.rounds_to_converge.unwrap_or(0.0));
        failed += usize::from(!outcome.passed());
        traces.update(outcome.digest.as_bytes());
    }
    bytes.sort_by(f64::total_cmp);
    let worst = bytes.last().copied().unwrap_or(0.0);
    let median = bytes.get(bytes.len() / 2).copied().unwrap_or(0.0);
    let traces = &traces.finalize().to_hex()[..16];
    format!(
        "FIGURES {file} bytes/event max {worst:.0} median {median:.0} rounds max {rounds:.2} \
         failed {failed} traces {traces}"
    )
}
