//! What the simulator's checker tests share: a small three-device world to break on purpose,
//! and running it.

#![allow(dead_code)] // each test file uses its own part

use meshlog_sim::{Failure, Scenario};

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
    Scenario::parse(&text, "inline").unwrap_or_else(|err| panic!("{err}"))
}

pub fn failures(scenario: &Scenario) -> Vec<Failure> {
    meshlog_sim::run(scenario, 1, None)
        .expect("world builds")
        .failures
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
