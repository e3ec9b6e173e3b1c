//! Skewed and drifting device clocks (issue 12): the hybrid clock keeps every author's events
//! and every reaction after what it follows; the same world with raw clocks is caught.

use std::path::Path;

use meshlog_sim::Failure;
use meshlog_sim::{Outcome, Scenario, WorldOptions};

mod sim_support;
use sim_support::{not_converged, run_world as run};

fn skew_scenario() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/clock-skew.toml");
    Scenario::load(&path).expect("clock-skew.toml parses")
}

fn clock_failures(outcome: &Outcome) -> Vec<&Failure> {
    outcome
        .failures
        .iter()
        .filter(|f| matches!(f, Failure::ClockOrder { .. }))
        .collect()
}

#[test]
fn skewed_clocks_keep_authors_and_reactions_in_order() {
    let scenario = skew_scenario();
    for seed in 0..5 {
        let outcome = run(&scenario, seed, WorldOptions::default());
        assert_eq!(outcome.failures, vec![], "seed {seed}");
    }
}

#[test]
fn raw_clocks_under_skew_are_caught_though_the_world_converges() {
    let scenario = skew_scenario();
    let outcome = run(
        &scenario,
        0,
        WorldOptions {
            raw_clocks: true,
            ..WorldOptions::default()
        },
    );
    assert_eq!(not_converged(&outcome.failures), Vec::<&str>::new());
    let found = clock_failures(&outcome);
    assert_eq!(found.len(), 1, "{:?}", outcome.failures);
    let text = found[0].to_string();
    assert!(
        text.contains("reaction before its message"),
        "a slow clock's reaction to a fast clock's message: {text}"
    );
}

#[test]
fn raw_clocks_without_skew_pass_so_the_skew_is_what_is_caught() {
    let mut scenario = skew_scenario();
    scenario.clocks.clear();
    let outcome = run(
        &scenario,
        0,
        WorldOptions {
            raw_clocks: true,
            ..WorldOptions::default()
        },
    );
    assert_eq!(clock_failures(&outcome), Vec::<&Failure>::new());
}
