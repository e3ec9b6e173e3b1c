//! NAT boxes in the simulator (issue 25): endpoint-independent and symmetric boxes with
//! mapping timeouts between members, introductions and punching through them, the relay where
//! no punch gets in; and the NAT checker failing when nothing introduces the pairs.

use meshlog_sim::checks::{NatPair, NatPath};
use meshlog_sim::{Failure, Scenario, WorldOptions};

mod sim_support;
use sim_support::run_world;

fn nat_traversal() -> Scenario {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nat-traversal.toml");
    Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn pair<'p>(pairs: &'p [NatPair], a: &str, b: &str) -> &'p NatPair {
    pairs
        .iter()
        .find(|p| p.a == a && p.b == b)
        .unwrap_or_else(|| panic!("no pair {a}-{b} in {pairs:?}"))
}

#[test]
fn endpoint_independent_pairs_go_direct_and_symmetric_ones_are_relayed() {
    let outcome = run_world(&nat_traversal(), 7, WorldOptions::default());
    assert_eq!(outcome.failures, vec![]);
    let pairs = &outcome.figures.nat_pairs;
    // Five members behind boxes, carol open; alice and frank share a box (not judged).
    assert_eq!(pairs.len(), 14, "{pairs:?}");
    for (a, b) in [("alice", "bob"), ("bob", "frank"), ("alice", "carol")] {
        let p = pair(pairs, a, b);
        assert!(p.can_go_direct && p.path == NatPath::Direct, "{p:?}");
    }
    for (a, b) in [("alice", "dave"), ("bob", "erin"), ("dave", "erin")] {
        let p = pair(pairs, a, b);
        assert!(!p.can_go_direct, "{p:?}");
        assert_eq!(p.path, NatPath::Relayed, "{p:?}");
        assert_eq!(
            p.direct_after_us, None,
            "a symmetric box let a punch in: {p:?}"
        );
    }
    // The symmetric boxes dropped the punches, counted as a home router's firewall counts.
    assert!(outcome
        .counters
        .drops
        .get("unsolicited")
        .is_some_and(|&n| n > 0));
}

#[test]
fn without_introductions_no_pair_behind_two_boxes_ever_goes_direct_and_the_checker_says_so() {
    let mut scenario = nat_traversal();
    scenario.sync.introductions = Some(false);
    let outcome = run_world(&scenario, 7, WorldOptions::default());
    let not_direct: Vec<&str> = outcome
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::NotDirect { pair, path, .. } => {
                assert_eq!(*path, NatPath::Unlinked, "{f}");
                Some(pair.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(not_direct, vec!["alice-bob", "bob-frank"]);
    // Everything still converged, through carol's copy of the events.
    assert!(
        outcome
            .failures
            .iter()
            .all(|f| matches!(f, Failure::NotDirect { .. })),
        "{:?}",
        outcome.failures
    );
}

#[test]
fn a_mapping_that_times_out_moves_the_device_and_the_community_still_converges() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/nat-mapping-timeout.toml");
    let scenario = Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("trace.txt");
    let file = std::fs::File::create(&path).expect("a trace file");
    let outcome = meshlog_sim::run(&scenario, 3, Some(Box::new(file))).expect("builds");
    assert_eq!(outcome.failures, vec![]);
    let trace = std::fs::read_to_string(&path).expect("the trace");
    // dave's symmetric box forgot his mappings again and again: each datagram out to a peer
    // after a quiet 4 s left from a new port. (alice's endpoint-independent mapping lives while
    // any of its flows does, but each flow dies on its own: what comes in on it then is
    // unsolicited.)
    let remapped = trace
        .lines()
        .filter(|l| l.contains(" nat2 maps dave as "))
        .count();
    assert!(remapped >= 10, "dave was mapped {remapped} times");
    assert!(outcome
        .counters
        .drops
        .get("unsolicited")
        .is_some_and(|&n| n > 100));
}

#[test]
fn a_nat_world_is_the_same_world_twice() {
    let scenario = nat_traversal();
    let first = run_world(&scenario, 11, WorldOptions::default());
    let second = run_world(&scenario, 11, WorldOptions::default());
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.figures.nat_pairs, second.figures.nat_pairs);
}
