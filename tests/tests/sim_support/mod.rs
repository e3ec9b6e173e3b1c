//! What the simulator's tests share: a small three-device world to break on purpose, and
//! running a world to its outcome (the library's `run_with`, not a copy of it).

#![allow(dead_code)] // each test file uses its own part

use meshlog_sim::{Failure, Outcome, Scenario, WorldOptions};

/// Three devices in a mesh, ten messages a minute for two minutes, with `extra` TOML after.
pub fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
name = "broken"
duration = "2m"
devices = ["alice", "bob", "carol"]
[workload]
messages_per_hour = 600
[expect]
converged_within = "30s"
{extra}
"#
    );
    inline(&text)
}

/// A scenario written inline in a test (panics with the error if it does not read).
pub fn inline(text: &str) -> Scenario {
    Scenario::parse(text, "inline").unwrap_or_else(|err| panic!("{err}"))
}

/// `scenario` run at `seed` with `options`, checked: what `meshlog run` reports.
pub fn run_world(scenario: &Scenario, seed: u64, options: WorldOptions) -> Outcome {
    meshlog_sim::run_with(scenario, seed, None, options).expect("world builds")
}

pub fn failures(scenario: &Scenario) -> Vec<Failure> {
    run_world(scenario, 1, WorldOptions::default()).failures
}

pub fn not_converged(failures: &[Failure]) -> Vec<&str> {
    failures
        .iter()
        .filter_map(|f| match f {
            Failure::NotConverged { device, .. } => Some(device.as_str()),
            _ => None,
        })
        .collect()
}
