//! Each checker can fail: worlds broken on purpose (sync off, relay off on a line, a link cut
//! for ever, a late bound, a tampered store) and the checker that must notice, noticing.

use meshlog_core::testing::{community_of, keys};
use meshlog_core::{seal, DeviceId, Event, EventBody, Instant, OpenedEvent, Store};
use meshlog_sim::{Failure, Scenario, World};

mod sim_support;
use sim_support::{failures, not_converged, scenario};

#[test]
fn the_unbroken_world_passes() {
    assert_eq!(failures(&scenario("")), vec![]);
}

#[test]
fn convergence_fails_without_any_sync() {
    let failures = failures(&scenario(
        "[sync]\nanti_entropy = false\neager_push = false",
    ));
    assert_eq!(not_converged(&failures), ["alice", "bob", "carol"]);
    assert!(failures.iter().any(|f| matches!(
        f,
        Failure::Liveness {
            converged_after_us: None,
            ..
        }
    )));
    assert!(!failures
        .iter()
        .any(|f| matches!(f, Failure::Invented { .. } | Failure::Altered { .. })));
}

#[test]
fn convergence_fails_on_a_line_without_relay() {
    let mut s = scenario("[sync]\nrelay = false");
    s.topology = meshlog_sim::scenario::Topology::Line;
    let failures = failures(&s);
    // alice and carol only hear bob's own events; bob hears both ends.
    assert_eq!(not_converged(&failures), ["alice", "carol"]);
}

#[test]
fn convergence_fails_with_a_link_cut_for_ever() {
    let cut = |from: &str, to: &str| {
        format!("[[fault]]\nat = \"0s\"\ncut = [\"{from}\", \"{to}\"]\npermanent = true\n")
    };
    let text = format!(
        "{}{}{}{}",
        cut("alice", "bob"),
        cut("bob", "alice"),
        cut("alice", "carol"),
        cut("carol", "alice")
    );
    let failures = failures(&scenario(&text));
    assert_eq!(not_converged(&failures), ["alice", "bob", "carol"]);
    // A heal in the middle keeps them: still nobody converges.
    let mid_heal = format!("{text}[[fault]]\nat = \"1m\"\nheal = true\n");
    assert_eq!(
        not_converged(&self::failures(&scenario(&mid_heal))),
        ["alice", "bob", "carol"]
    );
    // The same cuts lifted at the heal: everyone converges.
    let healed = text.replace("permanent = true\n", "");
    assert_eq!(self::failures(&scenario(&healed)), vec![]);
}

#[test]
fn liveness_fails_when_the_bound_is_too_tight() {
    // A partition until the end of the workload: converging takes at least a round trip.
    let mut s =
        scenario("[[fault]]\nat = \"30s\"\npartition = [[\"alice\"], [\"bob\", \"carol\"]]");
    s.expect.converged_within =
        meshlog_sim::scenario::SimDuration(meshlog_core::Duration::from_micros(1));
    let failures = failures(&s);
    assert!(not_converged(&failures).is_empty(), "{failures:?}");
    assert!(
        failures.iter().any(
            |f| matches!(f, Failure::Liveness { converged_after_us: Some(after), .. } if *after > 1)
        ),
        "{failures:?}"
    );
}

/// Bob is down for good (so he is excused from converging) and his store is tampered with.
fn tampered_world(tamper: impl FnOnce(&World, &mut dyn FnMut(OpenedEvent))) -> Vec<Failure> {
    let s = scenario("[[fault]]\nat = \"0s\"\ncrash = \"bob\"\npermanent = true");
    let mut world = World::new(&s, 1, None).expect("world builds");
    world.run_until(Instant::from_millis(60_000));
    let store = world.store(1).clone();
    tamper(&world, &mut |event| {
        assert!(store.borrow_mut().insert(&event, 0).unwrap());
    });
    world.run();
    let failures = world.failures();
    assert!(
        not_converged(&failures).is_empty(),
        "bob is excused: {failures:?}"
    );
    failures
}

#[test]
fn invented_events_are_caught() {
    let failures = tampered_world(|_, insert| {
        // A valid event of this community that nobody appended in the run.
        let community = community_of(&["alice", "bob", "carol"], 1);
        let event = Event {
            author: DeviceId::new("alice").unwrap(),
            created_at: Instant::ZERO,
            body: EventBody::Message {
                text: "forged".into(),
                attachment: None,
                auto: false,
            },
        };
        insert(seal(&event, &keys("alice", 1), &community, [9; 24]).unwrap());
    });
    assert!(
        matches!(failures.as_slice(), [Failure::Invented { device, count: 1, .. }] if device == "bob"),
        "{failures:?}"
    );
}

#[test]
fn altered_events_are_caught() {
    let failures = tampered_world(|world, insert| {
        let id = world
            .appended()
            .keys()
            .next()
            .expect("something was appended");
        let original = world.appended_event(&id).expect("its bytes open");
        let mut event = original.event.clone();
        event.body = EventBody::Message {
            text: "altered".into(),
            attachment: None,
            auto: true,
        };
        let mut sealed = original.sealed.clone();
        sealed[30] ^= 1;
        insert(OpenedEvent { id, sealed, event });
    });
    assert!(
        matches!(failures.as_slice(), [Failure::Altered { device, count: 1, .. }] if device == "bob"),
        "{failures:?}"
    );
}

#[test]
fn a_run_can_be_stopped_part_way_and_resumed_without_changing_it() {
    let s = scenario("");
    let whole = meshlog_sim::run(&s, 3, None).unwrap();
    let mut world = World::new(&s, 3, None).unwrap();
    world.run_until(Instant::from_millis(45_000));
    world.run();
    assert_eq!(world.finish().digest, whole.digest);
}

/// The three of `scenario`, with an attacker on every link re-sending a third of what each
/// receiver accepts, two seconds later.
fn replayed(sync: &str) -> Scenario {
    scenario(&format!(
        "[network]\nreplay = 0.3\nreplay_delay = \"2s\"\n[sync]\n{sync}"
    ))
}

fn replay_breaches(failures: &[Failure]) -> Vec<(&str, u64)> {
    failures
        .iter()
        .filter_map(|f| match f {
            Failure::ReplayAccepted { device, count, .. } => Some((device.as_str(), *count)),
            _ => None,
        })
        .collect()
}

#[test]
fn replays_are_refused_by_the_window() {
    let outcome = meshlog_sim::run(&replayed(""), 1, None).unwrap();
    assert_eq!(outcome.failures, vec![]);
    let a = &outcome.figures.attacks;
    assert!(a.replays_judged > 20, "{a:?}");
    assert_eq!(a.replays_refused, a.replays_judged);
    assert_eq!(a.replay_answer_bytes, 0);
    // Each refusal is the receiver's own `replayed` drop.
    assert!(outcome.counters.drops["rx_replayed"] >= a.replays_refused);
}

#[test]
fn accepting_replays_is_caught() {
    // Without the replay window every replay is opened and used again.
    let outcome = meshlog_sim::run(&replayed("replay_protection = false"), 1, None).unwrap();
    let breaches = replay_breaches(&outcome.failures);
    assert_eq!(
        breaches.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        ["alice", "alice", "bob", "bob", "carol", "carol"],
        "{:?}",
        outcome.failures
    );
    let caught: u64 = breaches.iter().map(|(_, n)| n).sum();
    let a = &outcome.figures.attacks;
    assert!(a.replays_judged > 20, "{a:?}");
    assert_eq!(caught, a.replays_judged - a.replays_refused);
    assert!(a.replay_answer_bytes > 0, "{a:?}");
}

#[test]
fn a_replay_rate_of_zero_changes_nothing() {
    let plain = meshlog_sim::run(&scenario(""), 4, None).unwrap();
    let zero = meshlog_sim::run(
        &scenario("[network]\nreplay = 0.0\nreplay_delay = \"1s\""),
        4,
        None,
    )
    .unwrap();
    assert_eq!(zero.digest, plain.digest);
    assert_eq!(zero.figures.attacks.replays_injected, 0);
}

/// Mallory, a member, sends her peers root digests claiming a million different ids in
/// every child, every 50 ms (far more than the initial credit); small leaves make every
/// bucket of the others worth descending.
fn hostile(sync: &str) -> Scenario {
    let text = format!(
        r#"
name = "hostile"
duration = "1m"
devices = ["alice", "bob", "carol", "mallory"]
[sync]
leaf_items_max = 4
{sync}
[workload]
messages_per_hour = 60
[[workload.batch]]
at = "1s"
device = "alice"
messages = 1000
[[hostile]]
device = "mallory"
every = "50ms"
kinds = ["digest"]
[expect]
converged_within = "30s"
"#
    );
    Scenario::parse(&text, "inline").unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn the_budget_holds_against_a_hostile_member() {
    let outcome = meshlog_sim::run(&hostile(""), 1, None).unwrap();
    assert_eq!(outcome.failures, vec![]);
    assert!(outcome.figures.attacks.hostile_sent_packets > 100);
    assert!(outcome.figures.budget_worst_share <= 1.0);
}

#[test]
fn answering_a_hostile_member_beyond_the_budget_is_caught() {
    let outcome = meshlog_sim::run(&hostile("amplification_budget = false"), 1, None).unwrap();
    let over: Vec<(&str, &str)> = outcome
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::OverBudget { device, peer, .. } => Some((device.as_str(), peer.as_str())),
            _ => None,
        })
        .collect();
    assert!(
        over.contains(&("alice", "mallory")),
        "{:?}",
        outcome.failures
    );
    assert!(over.iter().all(|(_, peer)| *peer == "mallory"), "{over:?}");
    assert!(outcome.figures.attacks.hostile_amplification() > 3.0);
    // Mallory runs no node: excused, and the honest three still converge.
    assert!(not_converged(&outcome.failures).is_empty());
    assert!(outcome.devices[3].excused);
}

#[test]
fn attacked_worlds_repeat_their_digest() {
    for s in [replayed(""), hostile("")] {
        let a = meshlog_sim::run(&s, 7, None).unwrap();
        let b = meshlog_sim::run(&s, 7, None).unwrap();
        let c = meshlog_sim::run(&s, 8, None).unwrap();
        assert_eq!(a.digest, b.digest, "{}", s.name);
        assert_ne!(a.digest, c.digest, "{}", s.name);
    }
}

/// Seeds of `member-forward-secrecy` where removed dave relays his own removal, with his
/// own events after it, in one packet. Before the fix: at 238, 663 and 961 a key share
/// appended while handling that packet dropped dave as a peer mid-packet and the node
/// panicked (`followup.rs`: "known peer"); at 1083 bob stored dave's event from the very
/// packet that told him dave was removed (`removed_refused`).
#[test]
fn a_removed_device_relaying_its_own_removal_is_cut_off_mid_packet() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/member-forward-secrecy.toml"
    );
    let scenario = Scenario::load(std::path::Path::new(path)).expect("the scenario file");
    for seed in [238, 663, 961, 1083] {
        let outcome = sim_support::run_world(&scenario, seed, Default::default());
        assert!(outcome.passed(), "seed {seed}: {:?}", outcome.failures);
    }
}

/// `scenarios/line-5-latency.toml`, with the core's eager forwarding on or off.
fn line_5_latency(forward: bool) -> Scenario {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/line-5-latency.toml");
    let mut s = Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
    s.sync.eager_forward = Some(forward);
    s
}

#[test]
fn hop_latency_fails_on_a_line_without_forwarding() {
    let on = failures(&line_5_latency(true));
    assert_eq!(on, vec![], "the shipped scenario passes");
    let off = failures(&line_5_latency(false));
    assert!(
        off.iter()
            .any(|f| matches!(f, Failure::HopLate { hops, .. } if *hops >= 2)),
        "{off:?}"
    );
}
