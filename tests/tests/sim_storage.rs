//! Storage faults (issue 12): a full disk refuses appends and received events for a while;
//! the device keeps working and catches up once there is room. Power cuts are in
//! `sim_checkers_hidden.rs`.

use std::path::Path;

use meshlog_sim::{Outcome, Scenario};

mod sim_support;
use sim_support::{not_converged, scenario};

fn run(scenario: &Scenario, seed: u64) -> Outcome {
    meshlog_sim::run(scenario, seed, None).expect("world builds")
}

#[test]
fn a_full_disk_refuses_for_a_while_then_the_device_catches_up() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/disk-full.toml");
    let scenario = Scenario::load(&path).expect("disk-full.toml parses");
    for seed in 0..3 {
        let outcome = run(&scenario, seed);
        assert_eq!(outcome.failures, vec![], "seed {seed}");
        assert!(
            outcome.counters.refused_appends > 0,
            "seed {seed}: the full disk refused no append, so it tested nothing"
        );
    }
}

#[test]
fn a_disk_that_stays_full_keeps_its_device_from_converging() {
    let s = scenario(
        "[[fault]]\nat = \"10s\"\ndisk_full = \"bob\"\npermanent = true\n\
         [[fault]]\nat = \"1m\"\nheal = true",
    );
    let outcome = run(&s, 1);
    assert_eq!(not_converged(&outcome.failures), vec!["bob"]);
    // Not permanent: the mid-run heal frees it and everyone converges.
    let s = scenario(
        "[[fault]]\nat = \"10s\"\ndisk_full = \"bob\"\n[[fault]]\nat = \"1m\"\nheal = true",
    );
    assert_eq!(run(&s, 1).failures, vec![]);
}

#[test]
fn a_disk_fault_naming_no_device_is_refused_with_its_field() {
    for (text, field) in [
        ("disk_full = \"zed\"", "fault[0].disk_full"),
        ("disk_freed = \"zed\"", "fault[0].disk_freed"),
    ] {
        let toml = format!(
            "name = \"d\"\nduration = \"1m\"\ndevices = [\"a\", \"b\"]\n\
             [[fault]]\nat = \"10s\"\n{text}\n"
        );
        let err = Scenario::parse(&toml, "d.toml").unwrap_err().to_string();
        assert!(err.contains(field) && err.contains("zed"), "{err}");
    }
}
