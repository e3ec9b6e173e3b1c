//! The checkers for what anti-entropy hides (issue 12), each shown failing in a world broken
//! on purpose while convergence still passes: late pushes, corrupted or forged datagrams past
//! the packet layer, an index that differs from its store, a run that costs too much; and
//! convergence failures that name the missing ids.

use meshlog_core::testing::{community_of, keys};
use meshlog_core::{seal, DeviceId, Event, EventBody, Instant, Store};
use meshlog_sim::Failure;
use meshlog_sim::{Outcome, World, WorldOptions};

mod sim_support;
use sim_support::{failures, not_converged, run_world, scenario};

fn run_with(extra: &str, options: WorldOptions) -> Outcome {
    run_world(&scenario(extra), 1, options)
}

fn run(extra: &str) -> Outcome {
    run_with(extra, WorldOptions::default())
}

#[test]
fn pushes_over_clean_links_arrive_within_the_latency() {
    let outcome = run("");
    assert_eq!(outcome.failures, vec![]);
    // Three devices, every append pushed to both others.
    assert!(
        outcome.figures.pushes_judged > 2 * 15,
        "{}",
        outcome.figures.pushes_judged
    );
    assert_eq!(
        outcome.figures.pushes_on_time,
        outcome.figures.pushes_judged
    );
}

#[test]
fn pushes_over_lossy_links_are_not_judged() {
    let outcome = run("[network]\nloss = 0.2");
    assert_eq!(outcome.figures.pushes_judged, 0);
    let outcome = run("[network]\ncorrupt = 0.01");
    assert_eq!(outcome.figures.pushes_judged, 0);
}

#[test]
fn a_driver_that_holds_pushes_back_is_caught_though_the_world_converges() {
    let outcome = run_with(
        "",
        WorldOptions {
            hold_appends: true,
            ..WorldOptions::default()
        },
    );
    let late: Vec<(&str, &str)> = outcome
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::PushLate { from, to, .. } => Some((from.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(late.len(), 6, "every direction: {:?}", outcome.failures);
    // Anti-entropy carried everything in the end: only the new checker sees the bug.
    assert!(
        outcome
            .failures
            .iter()
            .all(|f| matches!(f, Failure::PushLate { .. })),
        "{:?}",
        outcome.failures
    );
    let message = outcome.failures[0].to_string();
    assert!(message.contains("prompt delivery"), "{message}");
    assert!(message.contains("due by"), "{message}");
}

#[test]
fn corrupted_and_forged_datagrams_die_at_the_door() {
    let outcome = run("[network]\ncorrupt = 0.05\nforge = 0.05");
    assert_eq!(outcome.failures, vec![]);
    let a = &outcome.figures.attacks;
    assert!(a.forged_sent > 5, "{a:?}");
    assert!(outcome.counters.corrupted > 5, "{:?}", outcome.counters);
    assert!(a.door_judged >= a.forged_sent, "{a:?}");
    assert_eq!(a.door_refused, a.door_judged);
    // An outsider's forgery fails its tag.
    assert!(outcome.counters.drops["rx_bad_mac"] >= a.forged_sent);
    assert!(!outcome
        .counters
        .drops
        .keys()
        .any(|k| k.starts_with("rx_event_")));
}

#[test]
fn forgeries_that_reach_event_decoding_are_caught() {
    // The forger holds alice's real keys: its packets pass the tag check, and the garbage
    // event inside is refused only when opened, which is too late.
    let outcome =
        run("[[link]]\nfrom = \"alice\"\nto = \"bob\"\nforge = 0.2\nforge_keys = \"stolen\"");
    let past: Vec<&Failure> = outcome
        .failures
        .iter()
        .filter(|f| matches!(f, Failure::PastTheDoor { .. }))
        .collect();
    assert!(
        matches!(past.as_slice(), [Failure::PastTheDoor { device, from, cause, first, .. }]
            if device == "bob" && from == "alice" && cause == "forged"
                && first.contains("event decoding")),
        "{:?}",
        outcome.failures
    );
    assert!(outcome.counters.drops.contains_key("rx_event_bad_encoding"));
}

#[test]
fn a_forger_rate_of_zero_changes_nothing() {
    let plain = run("");
    let zero = run("[network]\nforge = 0.0");
    assert_eq!(zero.digest, plain.digest);
    assert_eq!(zero.figures.attacks.forged_sent, 0);
}

#[test]
fn an_index_that_differs_from_its_store_is_caught() {
    let s = scenario("");
    let mut world = World::new(&s, 1, None).expect("world builds");
    world.run_until(Instant::from_millis(60_000));
    // An event slipped into bob's store behind his running node's back.
    let community = community_of(&["alice", "bob", "carol"], 1);
    let event = Event {
        author: DeviceId::new("alice").unwrap(),
        created_at: Instant::ZERO,
        body: EventBody::Message {
            text: "behind the index".into(),
            attachment: None,
            auto: false,
        },
    };
    let sealed = seal(&event, &keys("alice", 1), &community, [7; 24]).unwrap();
    assert!(world.store(1).borrow_mut().insert(&sealed, 0).unwrap());
    world.run();
    let failures = world.failures();
    let differs: Vec<(&str, &str, usize, usize)> = failures
        .iter()
        .filter_map(|f| match f {
            Failure::IndexDiffers {
                device,
                when,
                index_only,
                store_only,
                ..
            } => Some((device.as_str(), when.as_str(), *index_only, *store_only)),
            _ => None,
        })
        .collect();
    assert_eq!(differs, [("bob", "end", 0, 1)], "{failures:?}");
    let message = failures
        .iter()
        .find(|f| matches!(f, Failure::IndexDiffers { .. }))
        .unwrap()
        .to_string();
    assert!(message.contains(&sealed.id.to_string()), "{message}");
}

#[test]
fn efficiency_bounds_catch_a_costlier_run() {
    let clean = run("");
    let bytes = clean
        .figures
        .bytes_per_event
        .expect("events were delivered");
    assert!(bytes > 100.0, "{bytes}");
    let bound = format!("bytes_per_event_max = {:.1}\n", bytes * 1.2);
    // The clean world is within its bound; a lossy one (retries, more rounds) is not.
    let within = run(&bound);
    assert_eq!(within.failures, vec![]);
    let s = scenario("[network]\nloss = 0.3\nduplicate = 0.2");
    let mut lossy = s.clone();
    lossy.expect.bytes_per_event_max = Some(bytes * 1.2);
    let failures = meshlog_sim::run(&lossy, 1, None).unwrap().failures;
    assert!(
        failures
            .iter()
            .any(|f| matches!(f, Failure::Inefficient { measure, value, .. }
            if measure == "bytes_per_event" && *value > bytes * 1.2)),
        "{failures:?}"
    );
}

#[test]
fn a_slow_convergence_breaks_the_rounds_bound() {
    // A partition until the end of the workload: catching up takes at least a round trip.
    let mut s =
        scenario("[[fault]]\nat = \"30s\"\npartition = [[\"alice\"], [\"bob\", \"carol\"]]");
    let outcome = meshlog_sim::run(&s, 1, None).unwrap();
    assert_eq!(outcome.failures, vec![]);
    let rounds = outcome.figures.rounds_to_converge.expect("converged");
    assert!(rounds > 0.0, "{rounds}");
    s.expect.rounds_to_converge_max = Some(rounds / 2.0);
    let failures = failures(&s);
    assert!(
        matches!(failures.as_slice(), [Failure::Inefficient { measure, .. }]
            if measure == "rounds_to_converge"),
        "{failures:?}"
    );
}

#[test]
fn not_converged_names_the_missing_ids_their_buckets_and_holders() {
    let failures = failures(&scenario(
        "[sync]\nanti_entropy = false\neager_push = false",
    ));
    assert_eq!(not_converged(&failures), ["alice", "bob", "carol"]);
    for failure in &failures {
        let Failure::NotConverged {
            device,
            missing,
            ids,
            ..
        } = failure
        else {
            continue;
        };
        assert_eq!(ids.len(), (*missing).min(10), "{failure}");
        for m in ids {
            // Nothing was synced: only its author holds each.
            assert_eq!(m.held_by.len(), 1, "{failure}");
            assert_ne!(&m.held_by[0], device);
            assert_eq!(m.bucket.len(), 3);
            assert!(m.bucket.ends_with('*') && m.id.starts_with(&m.bucket[..2]));
        }
        let message = failure.to_string();
        assert!(message.contains(&format!("{} in {}", ids[0].id, ids[0].bucket)));
        assert!(message.contains("held by"), "{message}");
    }
}

/// Bob posts too; a power cut takes what he received since his last own append.
const POWER_CUT: &str = r#"[[fault]]
at = "50s"
power_cut = "bob"
[[fault]]
at = "70s"
restart = "bob"
"#;

#[test]
fn a_power_cut_takes_only_unsynced_received_events_and_the_world_converges() {
    let outcome = run(POWER_CUT);
    assert_eq!(outcome.failures, vec![]);
    assert!(
        outcome.counters.lost_to_power_cuts > 0,
        "{:?}",
        outcome.counters
    );
    assert!(outcome.devices[1].converged_at_us.is_some());
    // Without the cut, nothing is lost.
    assert_eq!(run("").counters.lost_to_power_cuts, 0);
}

#[test]
fn a_store_that_loses_own_events_to_a_power_cut_is_caught() {
    let outcome = run_with(
        POWER_CUT,
        WorldOptions {
            power_cut_loses_own: true,
            ..WorldOptions::default()
        },
    );
    assert!(
        matches!(outcome.failures.as_slice(), [Failure::OwnEventLost { device, count, .. }]
            if device == "bob" && *count > 0),
        "{:?}",
        outcome.failures
    );
    assert!(outcome.failures[0].to_string().contains("durability"));
}
