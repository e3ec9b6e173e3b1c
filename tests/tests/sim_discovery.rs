//! Addresses, local links and discovery in the simulator (issue 25): datagrams routed by the
//! address the sender's driver holds, devices that start knowing nobody, strangers on the
//! link, devices that move; and the discovery, strangers and roaming checkers failing against
//! worlds broken on purpose.

use meshlog_sim::{Failure, Scenario, WorldOptions};

mod sim_support;
use sim_support::{inline, run_world};

/// Three members and a stranger on one local link, knowing no address.
fn lan(extra: &str) -> Scenario {
    inline(&format!(
        r#"
name = "lan"
duration = "1m"
devices = ["alice", "bob", "carol", "eve"]
topology = "none"
[world]
strangers = ["eve"]
[[lan]]
devices = ["alice", "bob", "carol", "eve"]
[workload]
messages_per_hour = 600
devices = ["alice", "bob", "carol"]
[expect]
converged_within = "10s"
discovered_within = "2s"
{extra}
"#
    ))
}

fn failures_of(scenario: &Scenario, options: WorldOptions) -> Vec<Failure> {
    run_world(scenario, 1, options).failures
}

#[test]
fn members_on_one_link_find_each_other_and_the_stranger_learns_nothing() {
    let outcome = run_world(&lan(""), 1, WorldOptions::default());
    assert_eq!(outcome.failures, vec![]);
    let figures = &outcome.figures;
    assert!(figures
        .discovered_worst_us
        .is_some_and(|us| us <= 2_000_000));
    assert!(figures.announcements_sent >= 16, "{figures:?}");
    assert!(figures.announcements_to_strangers > 0, "{figures:?}");
}

#[test]
fn discovery_fails_when_the_link_is_cut_for_ever() {
    let cut = |from: &str, to: &str| {
        format!("[[fault]]\nat = \"0s\"\ncut = [\"{from}\", \"{to}\"]\npermanent = true\n")
    };
    let scenario = lan(&format!("{}{}", cut("alice", "bob"), cut("bob", "alice")));
    let failures = failures_of(&scenario, WorldOptions::default());
    let lacking: Vec<(&str, &[String])> = failures
        .iter()
        .filter_map(|f| match f {
            Failure::NotDiscovered {
                device,
                missing,
                found_after_us: None,
                ..
            } => Some((device.as_str(), missing.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(
        lacking,
        [
            ("alice", &["bob".to_owned()][..]),
            ("bob", &["alice".to_owned()][..])
        ]
    );
}

#[test]
fn the_strangers_checker_fails_when_strangers_hold_the_key() {
    let options = WorldOptions {
        strangers_hold_the_key: true,
        ..WorldOptions::default()
    };
    let failures = failures_of(&lan(""), options);
    let said: Vec<&str> = failures
        .iter()
        .filter_map(|f| match f {
            Failure::Stranger { device, what, .. } if device == "eve" => Some(what.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        said.contains(&"opened a member's announcement") && said.contains(&"made a member a peer"),
        "{failures:?}"
    );
}

/// Four members in a mesh with peer exchange; bob moves at 30 s.
fn roaming(extra: &str) -> Scenario {
    inline(&format!(
        r#"
name = "roaming"
duration = "1m"
devices = ["alice", "bob", "carol", "dave"]
[world]
peer_exchange = true
[workload]
messages_per_hour = 600
[[fault]]
at = "30s"
address_change = "bob"
[expect]
converged_within = "20s"
{extra}
"#
    ))
}

#[test]
fn peers_follow_a_device_that_moved_and_until_then_lose_what_they_send_it() {
    let outcome = run_world(
        &roaming("followed_within = \"20s\""),
        1,
        WorldOptions::default(),
    );
    assert_eq!(outcome.failures, vec![]);
    assert!(outcome.figures.followed_worst_us.is_some());
    // Sent to bob's old address between his move and his first packet after it.
    assert!(outcome
        .counters
        .drops
        .get("no_route")
        .is_some_and(|&n| n > 0));
}

#[test]
fn the_roaming_checker_fails_on_a_bound_no_peer_can_meet() {
    let failures = failures_of(
        &roaming("followed_within = \"1us\""),
        WorldOptions::default(),
    );
    assert!(
        failures.iter().any(|f| matches!(
            f,
            Failure::Roaming { peer, .. } if peer == "bob"
        )),
        "{failures:?}"
    );
}

#[test]
fn a_device_knowing_one_member_finds_the_rest_by_peer_exchange() {
    let text = r#"
name = "knows"
duration = "1m"
devices = ["alice", "bob", "carol", "dave"]
topology = "none"
[world]
peer_exchange = true
[knows]
bob = ["alice"]
carol = ["alice"]
dave = ["carol"]
[workload]
messages_per_hour = 600
[expect]
converged_within = "20s"
discovered_within = "40s"
"#;
    let scenario = inline(text);
    assert_eq!(failures_of(&scenario, WorldOptions::default()), vec![]);
    // Without records, bob and carol never hear of each other: only neighbours are required
    // then, and they converge through alice.
    let mut without = scenario.clone();
    without.world.peer_exchange = false;
    assert_eq!(failures_of(&without, WorldOptions::default()), vec![]);
}
