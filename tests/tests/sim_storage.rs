//! Storage faults (issue 12): a full disk refuses appends and received events for a while;
//! the device keeps working and catches up once there is room. The shipped SQLite store runs
//! inside the world through crashes (`[world] store = "sqlite"`). Power cuts are in
//! `sim_checkers_hidden.rs`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

use meshlog_backend::sim_stores::{world_options, SqliteStores};
use meshlog_core::{Store, StoreError};
use meshlog_sim::{Failure, Outcome, Scenario, SimError, StoreProvider, WorldOptions};

mod sim_support;
use sim_support::{not_converged, run_world, scenario};

fn run(scenario: &Scenario, seed: u64) -> Outcome {
    run_world(scenario, seed, WorldOptions::default())
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

fn sqlite_crashes() -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sqlite/sqlite-crashes.toml");
    Scenario::load(&path).expect("sqlite-crashes.toml parses")
}

#[test]
fn a_sqlite_world_converges_across_crashes_and_repeats_its_digest() {
    let scenario = sqlite_crashes();
    for seed in 0..3 {
        // Each run gets its own directory: the digest cannot depend on the path.
        let outcome = run_world(&scenario, seed, world_options(&scenario).unwrap());
        assert_eq!(outcome.failures, vec![], "seed {seed}");
        let restarts: u32 = outcome.devices.iter().map(|d| d.restarts).sum();
        assert!(restarts >= 5, "seed {seed}: only {restarts} restarts");
        let again = run_world(&scenario, seed, world_options(&scenario).unwrap());
        assert_eq!(
            outcome.digest, again.digest,
            "seed {seed}: same seed, other digest"
        );
        let next = run_world(&scenario, seed + 1, world_options(&scenario).unwrap());
        assert_ne!(
            outcome.digest,
            next.digest,
            "seeds {seed} and {} agree",
            seed + 1
        );
    }
}

/// A provider whose reopen forgets the file: a restart that loses the whole store.
#[derive(Debug)]
struct Forgetful {
    inner: SqliteStores,
    opened: RefCell<BTreeSet<String>>,
}

impl StoreProvider for Forgetful {
    fn open(&self, device: &str) -> Result<Box<dyn Store>, StoreError> {
        if !self.opened.borrow_mut().insert(device.to_owned()) {
            let path = self.inner.path(device);
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                let _ = std::fs::remove_file(file); // -wal and -shm may be gone already
            }
        }
        self.inner.open(device)
    }
}

#[test]
fn a_store_that_forgets_its_file_on_restart_loses_own_events_and_is_caught() {
    let scenario = sqlite_crashes();
    let forgetful = Forgetful {
        inner: SqliteStores::new().unwrap(),
        opened: RefCell::new(BTreeSet::new()),
    };
    let options = WorldOptions {
        stores: Some(Rc::new(forgetful)),
        ..WorldOptions::default()
    };
    let outcome = run_world(&scenario, 1, options);
    let lost: Vec<&str> = outcome
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::OwnEventLost {
                device,
                cause,
                count,
                ..
            } if *count > 0 => {
                assert_eq!(cause, "reopened store");
                Some(device.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(lost.contains(&"alice"), "{:?}", outcome.failures);
    assert!(outcome.failures[0].to_string().contains("durability"));
}

#[test]
fn a_sqlite_scenario_without_a_provider_does_not_build() {
    let err = meshlog_sim::run(&sqlite_crashes(), 1, None).unwrap_err();
    assert!(matches!(err, SimError::NoStoreProvider { .. }), "{err}");
    assert!(err.to_string().contains("store = \"sqlite\""), "{err}");
}

#[test]
fn a_bad_store_or_a_power_cut_in_a_sqlite_world_is_refused_with_its_field() {
    let base = "name = \"d\"\nduration = \"1m\"\ndevices = [\"a\", \"b\"]\n";
    let err = Scenario::parse(&format!("{base}[world]\nstore = \"postgres\"\n"), "d.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("d.toml") && err.contains("world.store"),
        "{err}"
    );
    assert!(err.contains("sqlite") && err.contains("memory"), "{err}");
    let cut = "[world]\nstore = \"sqlite\"\n[[fault]]\nat = \"10s\"\npower_cut = \"a\"\n";
    let err = Scenario::parse(&format!("{base}{cut}"), "d.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("fault[0].power_cut"), "{err}");
    // The memory world (the default) takes it.
    let memory = cut.replace("sqlite", "memory");
    Scenario::parse(&format!("{base}{memory}"), "d.toml").unwrap();
}
