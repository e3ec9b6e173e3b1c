//! Scenario files, as `meshlog run` reads them.

use meshlog_sim::{Scenario, World};

/// Devices up to which a valid scenario's world is built too (building costs a key pair and a
/// node per device; larger lists only slow the fuzzer down).
const WORLD_DEVICES_MAX: usize = 16;

/// UTF-8 text as a scenario file. What validates must print back to TOML that parses to the
/// same scenario, and build a world without panicking.
pub fn scenario_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = Scenario::parse(text, "fuzz.toml") else {
        return;
    };
    let printed = scenario.to_toml();
    let again = Scenario::parse(&printed, "printed.toml")
        .unwrap_or_else(|err| panic!("a valid scenario prints as invalid TOML: {err}\n{printed}"));
    assert_eq!(again, scenario, "printing changed the scenario");
    if scenario.devices.len() <= WORLD_DEVICES_MAX {
        let _ = World::new(&scenario, scenario.seed, None);
    }
}
