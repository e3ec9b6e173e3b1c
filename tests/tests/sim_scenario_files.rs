//! Scenario files: bad ones are refused with the file, the field and what is wrong; good ones
//! survive a round trip through TOML unchanged.

use meshlog_sim::scenario::FaultKind;
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

/// GOOD with a ring, a replaying network and a hostile member.
fn attacked() -> String {
    GOOD.replace(
        "devices = [\"alice\", \"bob\"]",
        "devices = [\"alice\", \"bob\", \"carol\", \"mallory\"]\ntopology = \"ring\"",
    )
    .replace(
        "loss = 0.1\n",
        "loss = 0.1\nreplay = 0.05\nreplay_delay = \"2s\"\n",
    )
    .replace(
        "[expect]",
        "[[hostile]]\ndevice = \"mallory\"\nevery = \"1s\"\nkinds = [\"digest\", \"filter_full\"]\n[expect]",
    )
}

#[test]
fn replay_hostile_and_ring_parse_and_round_trip() {
    use meshlog_sim::scenario::{HostileKind, Topology};
    let scenario = Scenario::parse(&attacked(), "attacked.toml").unwrap();
    assert_eq!(scenario.topology, Topology::Ring);
    assert_eq!(scenario.network.replay, Some(0.05));
    assert_eq!(
        scenario.network.replay_delay.map(|d| d.as_micros()),
        Some(2_000_000)
    );
    let hostile = &scenario.hostiles[0];
    assert_eq!(hostile.device, "mallory");
    assert_eq!(
        hostile.kinds,
        [HostileKind::Digest, HostileKind::FilterFull]
    );
    let again = Scenario::parse(&scenario.to_toml(), "again.toml").unwrap();
    assert_eq!(again, scenario);
    // Unset kinds mean all of them.
    let all = Scenario::parse(
        &attacked().replace("kinds = [\"digest\", \"filter_full\"]\n", ""),
        "all.toml",
    )
    .unwrap();
    assert_eq!(all.hostiles[0].kinds, HostileKind::all());
}

#[test]
fn ring_peers_are_the_two_neighbours() {
    use meshlog_sim::scenario::Topology;
    let names: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    let ring = Topology::Ring.peer_lists(&names, 0);
    assert_eq!(ring[0], [1, 4]);
    assert_eq!(ring[2], [1, 3]);
    assert_eq!(ring[4], [0, 3]);
    assert_eq!(Topology::Line.peer_lists(&names, 0)[0], [1]);
}

#[test]
fn star_random_and_edge_topologies_parse_and_round_trip() {
    use meshlog_sim::scenario::Topology;
    let three = GOOD.replace(
        "devices = [\"alice\", \"bob\"]",
        "devices = [\"alice\", \"bob\", \"carol\"]\nTOPOLOGY",
    );
    let cases = [
        ("topology = \"star\"", Topology::Star),
        ("topology = { random = 2 }", Topology::Random(2)),
        (
            "topology = { edges = [[\"alice\", \"carol\"], [\"carol\", \"bob\"]] }",
            Topology::Edges(vec![
                ["alice".into(), "carol".into()],
                ["carol".into(), "bob".into()],
            ]),
        ),
    ];
    for (line, topology) in cases {
        let scenario = Scenario::parse(&three.replace("TOPOLOGY", line), "t.toml").unwrap();
        assert_eq!(scenario.topology, topology, "{line}");
        let again = Scenario::parse(&scenario.to_toml(), "again.toml").unwrap();
        assert_eq!(again, scenario, "{line}");
    }
    let bad: [(&str, &[&str]); 4] = [
        ("topology = { random = 0 }", &["topology.random", "1 to 2"]),
        ("topology = { random = 3 }", &["topology.random", "1 to 2"]),
        (
            "topology = { edges = [[\"alice\", \"dave\"]] }",
            &["topology.edges[0]", "unknown device \"dave\""],
        ),
        (
            "topology = { edges = [[\"bob\", \"bob\"]] }",
            &["topology.edges[0]", "to itself"],
        ),
    ];
    for (line, parts) in bad {
        let message = error(&three.replace("TOPOLOGY", line));
        assert_mentions(&message, &["scenarios/bad.toml"]);
        assert_mentions(&message, parts);
    }
}

#[test]
fn efficiency_bounds_and_forgers_parse_and_bad_values_are_named() {
    use meshlog_sim::scenario::ForgeKeys;
    let text = GOOD
        .replace(
            "converged_within = \"30s\"",
            "converged_within = \"30s\"\nbytes_per_event_max = 900.5\nrounds_to_converge_max = 2.0",
        )
        .replace(
            "loss = 0.5\n",
            "loss = 0.5\nforge = 0.01\nforge_keys = \"stolen\"\n",
        );
    let scenario = Scenario::parse(&text, "bounds.toml").unwrap();
    assert_eq!(scenario.expect.bytes_per_event_max, Some(900.5));
    assert_eq!(scenario.expect.rounds_to_converge_max, Some(2.0));
    assert_eq!(scenario.links[0].forge, Some(0.01));
    assert_eq!(scenario.links[0].forge_keys, Some(ForgeKeys::Stolen));
    let cut = Scenario::parse(
        &text.replace("offline = \"bob\"", "power_cut = \"bob\""),
        "cut.toml",
    )
    .unwrap();
    assert_eq!(cut.faults[0].kind, FaultKind::PowerCut("bob".into()));
    assert_eq!(
        Scenario::parse(&scenario.to_toml(), "again.toml").unwrap(),
        scenario
    );
    let cases: [(String, &[&str]); 6] = [
        (
            text.replace("900.5", "0.0"),
            &["expect.bytes_per_event_max", "not a bound"],
        ),
        (
            text.replace("= 2.0", "= -1.0"),
            &["expect.rounds_to_converge_max", "not a bound"],
        ),
        (
            text.replace("forge = 0.01", "forge = 3.0"),
            &["link[0].forge", "not a rate"],
        ),
        (
            text.replace("\"stolen\"", "\"borrowed\""),
            &["link[0].forge_keys", "unknown variant `borrowed`"],
        ),
        (
            text.replace("offline = \"bob\"", "power_cut = \"dave\""),
            &["fault[0].power_cut", "unknown device \"dave\""],
        ),
        (
            text.replace("offline = \"bob\"", "power_cut = \"bob\"\ncrash = \"bob\""),
            &["fault[0]", "exactly one", "power_cut"],
        ),
    ];
    for (text, parts) in cases {
        let message = error(&text);
        assert_mentions(&message, &["scenarios/bad.toml"]);
        assert_mentions(&message, parts);
    }
}

#[test]
fn bad_replay_and_hostile_values_name_the_file_and_field() {
    let good = attacked();
    let cases: [(String, &[&str]); 10] = [
        (
            good.replace("replay = 0.05", "replay = 5"),
            &["network.replay", "not a rate"],
        ),
        (
            good.replace("replay_delay = \"2s\"", "replay_delay = \"0s\""),
            &["network.replay_delay", "more than 0s"],
        ),
        (
            good.replace("replay_delay = \"2s\"", "replay_delay = \"2 fortnights\""),
            &["network.replay_delay", "bad duration"],
        ),
        (
            good.replace("device = \"mallory\"", "device = \"eve\""),
            &["hostile[0].device", "unknown device \"eve\""],
        ),
        (
            good.replace("every = \"1s\"", "every = \"1ms\""),
            &["hostile[0].every", "less than 10ms"],
        ),
        (
            good.replace("[\"digest\", \"filter_full\"]", "[]"),
            &["hostile[0].kinds", "at least one"],
        ),
        (
            good.replace("\"filter_full\"]", "\"flood\"]"),
            &["hostile[0].kinds[1]", "unknown variant `flood`"],
        ),
        (
            good.replace("every = \"1s\"", "every = \"1s\"\nloud = true"),
            &["hostile[0]", "unknown field `loud`"],
        ),
        (
            good.replace("offline = \"bob\"", "offline = \"mallory\""),
            &["fault[0]", "hostile: it runs no node"],
        ),
        (
            good.replace("topology = \"ring\"", "topology = \"hexagon\""),
            &["topology", "unknown variant `hexagon`"],
        ),
    ];
    for (text, parts) in cases {
        let message = error(&text);
        assert_mentions(&message, &["scenarios/bad.toml"]);
        assert_mentions(&message, parts);
    }
    let twice = good.replace(
        "[expect]",
        "[[hostile]]\ndevice = \"mallory\"\nevery = \"1s\"\n[expect]",
    );
    assert_mentions(&error(&twice), &["hostile[1].device", "hostile twice"]);
    let posting = good.replace(
        "messages_per_hour = 60",
        "messages_per_hour = 60\ndevices = [\"mallory\"]",
    );
    assert_mentions(&error(&posting), &["workload", "no node to post"]);
}

#[test]
fn a_large_world_needs_a_topology_within_the_peer_limit() {
    let names: Vec<String> = (0..100).map(|i| format!("\"d{i:02}\"")).collect();
    let large = format!(
        "name = \"large\"\nduration = \"1m\"\ndevices = [{}]\nTOPOLOGY\n",
        names.join(", ")
    );
    // A full mesh or a star of 100 gives some device 99 peers; a node takes 64.
    for (line, parts) in [
        ("", &["topology", "99 peers for d00", "at most 64"][..]),
        ("topology = \"star\"", &["99 peers for d00"][..]),
        (
            "topology = { random = 65 }",
            &["65 peers for each device"][..],
        ),
    ] {
        let message = error(&large.replace("TOPOLOGY", line));
        assert_mentions(&message, parts);
    }
    for line in ["topology = { random = 8 }", "topology = \"ring\""] {
        let text = large.replace("TOPOLOGY", line);
        Scenario::parse(&text, "large.toml").unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}
