//! Scenario files: bad ones are refused with the file, the field and what is wrong; good ones
//! survive a round trip through TOML unchanged.

use meshlog_sim::{Scenario, ScenarioError};

const GOOD: &str = r#"
name = "ok"
duration = "10m"
devices = ["alice", "bob"]
[network]
latency = { min = "5ms", max = "80ms" }
loss = 0.1
[[link]]
from = "alice"
to = "bob"
loss = 0.5
[workload]
messages_per_hour = 60
[[fault]]
at = "2m"
offline = "bob"
[expect]
converged_within = "30s"
"#;

fn error(text: &str) -> String {
    let err = Scenario::parse(text, "scenarios/bad.toml").expect_err("must be refused");
    assert!(matches!(
        err,
        ScenarioError::Parse { .. } | ScenarioError::Invalid { .. }
    ));
    err.to_string()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} should mention {part:?}"
        );
    }
}

#[test]
fn a_good_file_parses_and_round_trips() {
    let scenario = Scenario::parse(GOOD, "good.toml").unwrap();
    assert_eq!(scenario.duration.as_micros(), 600_000_000);
    assert_eq!(scenario.links.len(), 1);
    let again = Scenario::parse(&scenario.to_toml(), "again.toml").unwrap();
    assert_eq!(again, scenario);
}

#[test]
fn unknown_fields_are_named() {
    let message = error(&GOOD.replace("loss = 0.1", "lossy = 0.1"));
    assert_mentions(
        &message,
        &["scenarios/bad.toml", "network", "unknown field `lossy`"],
    );
    let message = error(&GOOD.replace("[expect]", "[expect]\nwithin = \"1s\""));
    assert_mentions(&message, &["scenarios/bad.toml", "expect", "`within`"]);
}

#[test]
fn bad_durations_say_which_field_and_why() {
    let message = error(&GOOD.replace("max = \"80ms\"", "max = \"80 parsecs\""));
    assert_mentions(
        &message,
        &["scenarios/bad.toml", "network.latency.max", "bad duration"],
    );
    let message = error(&GOOD.replace("duration = \"10m\"", "duration = \"10\""));
    assert_mentions(&message, &["`duration`", "unit"]);
}

#[test]
fn unknown_devices_are_named_with_the_roster() {
    let message = error(&GOOD.replace("offline = \"bob\"", "offline = \"dave\""));
    assert_mentions(
        &message,
        &[
            "scenarios/bad.toml",
            "fault[0].offline",
            "unknown device \"dave\"",
            "alice, bob",
        ],
    );
    let message = error(&GOOD.replace("to = \"bob\"", "to = \"carol\""));
    assert_mentions(&message, &["link[0].to", "\"carol\""]);
}

#[test]
fn inconsistent_values_are_refused() {
    assert_mentions(
        &error(&GOOD.replace("loss = 0.1", "loss = 30")),
        &["network.loss", "not a rate"],
    );
    assert_mentions(
        &error(&GOOD.replace("at = \"2m\"", "at = \"11m\"")),
        &["fault[0].at", "after the duration"],
    );
    assert_mentions(
        &error(&GOOD.replace("offline = \"bob\"", "offline = \"bob\"\ncrash = \"bob\"")),
        &["fault[0]", "exactly one"],
    );
    assert_mentions(
        &error(&GOOD.replace("min = \"5ms\"", "min = \"1s\"")),
        &["network.latency", "more than max"],
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Scenario::load(std::path::Path::new("scenarios/does-not-exist.toml")).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["scenarios/does-not-exist.toml", "cannot read"],
    );
}
