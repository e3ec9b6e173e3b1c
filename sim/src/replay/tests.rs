use super::*;
use meshlog_core::record::{Batch, Start, Tunables};
use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{DeviceId, EventBody};

/// Alice's node run by hand as the driver runs it, recorded: its start, two appends and
/// a few timeouts. Bob is a peer that never answers.
fn recording() -> Recording {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let peers = vec![
        DeviceId::new("bob").unwrap(),
        DeviceId::new("carol").unwrap(),
    ];
    let config = Config::new(
        keys("alice", 1),
        community,
        peers.clone(),
        derive_seed(1, "a"),
    );
    let start = Start {
        device: config.keys.device.clone(),
        keys_dir: "keys".into(),
        peers: peers
            .iter()
            .map(|p| (p.clone(), "127.0.0.1:1".into()))
            .collect(),
        seed: config.seed,
        tunables: Tunables::of(&config),
        epoch: 1,
        started_at: Instant::from_millis(1_000_000),
        events: vec![],
    };
    let mut node = Node::new(config, InMemoryStore::new(), start.started_at).unwrap();
    let mut batches = Vec::new();
    let mut run = |node: &mut Node<InMemoryStore>, inputs: Vec<RecordedInput>| {
        for input in &inputs {
            // Through the node's own API, as the device's driver does, not the replayer's
            // `apply`: a bug there must show as a difference, not sit on both sides.
            match input {
                RecordedInput::Timeout(now) => node.handle_input(Input::Timeout(*now)),
                RecordedInput::Append { now, bodies } => {
                    node.append_all(*now, bodies.clone()).expect("appended");
                }
                _ => unreachable!("this recording holds appends and timeouts only"),
            }
        }
        let (outputs, wake_at) = finish_batch(node, Ok(()));
        batches.push(Batch {
            inputs,
            commit_error: None,
            outputs: OutputsDigest::of(&outputs, wake_at),
        });
        wake_at
    };
    let mut wake = run(&mut node, vec![]);
    for i in 0..4u64 {
        let now = Instant::from_millis(1_000_000 + 1_000 * (1 + i));
        let body = EventBody::Message {
            text: format!("hello {i}"),
            attachment: None,
            auto: false,
        };
        wake = run(
            &mut node,
            vec![RecordedInput::Append {
                now,
                bodies: vec![body],
            }],
        );
        wake = run(&mut node, vec![RecordedInput::Timeout(wake.max(now))]);
    }
    let _ = wake;
    Recording {
        start,
        batches,
        full: false,
        torn: false,
    }
}

fn replay_with(options: ReplayOptions) -> ReplayOutcome {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let mut trace = Trace::new(None);
    replay(
        &recording(),
        keys("alice", 1),
        community,
        options,
        &mut trace,
    )
    .unwrap()
}

#[test]
fn a_faithful_replay_matches_every_step() {
    let outcome = replay_with(ReplayOptions::default());
    assert!(outcome.matched(), "{:?}", outcome.first_difference);
    assert_eq!(outcome.batches, 9);
    assert_eq!(outcome.recorded_digest, outcome.replayed_digest);
    assert!(outcome.outputs > 0);
    // The trace is deterministic too.
    assert_eq!(
        replay_with(ReplayOptions::default()).trace_digest,
        outcome.trace_digest
    );
}

#[test]
fn a_changed_node_is_caught_at_the_first_step_it_changes() {
    let outcome = replay_with(ReplayOptions {
        test_divergence: true,
        report: None,
    });
    let difference = outcome.first_difference.expect("the pushes differ");
    assert_eq!(difference.batch, 1, "the first append: {difference}");
    assert!(
        difference.to_string().contains("append message"),
        "{difference}"
    );
    assert_ne!(outcome.recorded_digest, outcome.replayed_digest);
}

#[test]
fn a_report_draws_the_devices_view() {
    let outcome = replay_with(ReplayOptions {
        test_divergence: false,
        report: Some(ReportOptions::default()),
    });
    let report = outcome.report.expect("a report was asked for");
    let lanes: Vec<&str> = report.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(lanes, ["alice", "bob", "carol"]);
    assert!(report.passed && report.failures.is_empty());
    assert_eq!(report.digest, outcome.replayed_digest);
    assert_eq!(report.events, 4, "her appends");
    assert_eq!(report.devices[0].events.last(), Some(&(4_000_000, 4)));
    let sent = |to: &str| {
        report
            .links
            .iter()
            .filter(|r| r.from == "alice" && r.to == to)
            .map(|r| r.sent_packets)
            .sum::<u64>()
    };
    assert!(sent("bob") > 0 && sent("carol") > 0, "{:?}", report.links);
    assert!(report.links.iter().all(|r| r.from == "alice"));
    assert!(!report.sequence.arrows.is_empty());
}

#[test]
fn a_report_books_a_stranger_on_its_own_lane_and_shows_a_difference() {
    let mut recording = recording();
    let last = recording.batches.last().expect("batches").clone();
    let at = Instant(last.outputs.wake_at.0 + 1);
    recording.batches.push(Batch {
        inputs: vec![RecordedInput::Datagram {
            now: at,
            from: "127.0.0.1:9".into(),
            bytes: vec![0xff; 40],
        }],
        commit_error: None,
        // Not what the node makes of it: the replay differs here.
        outputs: last.outputs,
    });
    let community = community_of(&["alice", "bob", "carol"], 1);
    let options = ReplayOptions {
        test_divergence: false,
        report: Some(ReportOptions::default()),
    };
    let outcome = replay(
        &recording,
        keys("alice", 1),
        community,
        options,
        &mut Trace::new(None),
    )
    .unwrap();
    let report = outcome.report.expect("a report was asked for");
    assert_eq!(
        report.devices.last().map(|d| d.name.as_str()),
        Some("(other)")
    );
    let refused: u64 = report
        .links
        .iter()
        .filter(|r| r.from == "(other)" && r.to == "alice")
        .flat_map(|r| r.dropped.values())
        .sum();
    assert_eq!(refused, 1, "{:?}", report.links);
    assert!(!report.passed);
    assert!(
        report.failures[0].starts_with("step 9 "),
        "{:?}",
        report.failures
    );
}

#[test]
fn keys_of_another_device_are_refused() {
    let community = community_of(&["alice", "bob", "carol"], 1);
    let mut trace = Trace::new(None);
    let err = replay(
        &recording(),
        keys("bob", 1),
        community,
        ReplayOptions::default(),
        &mut trace,
    )
    .unwrap_err();
    assert!(matches!(err, ReplayError::WrongDevice { .. }), "{err}");
}
