//! Eager forwarding (`node/forward.rs`): an event received from a peer goes on at once, so a
//! post crosses a line at link speed, and a dense mesh stays within N × `forward_fanout`
//! forwards an event. Each test passes with forwarding on and fails with it off
//! (`FORWARDING` below), which `forwarding_off_fails_each_promise` shows.

use meshlog_core::testing::{message, Harness, Topology};
use meshlog_core::{Config, Duration, InMemoryStore, Node};

const LINE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// A harness over `names` whose nodes forward (`on`) or not, with 20 ms links.
fn harness(names: &[&str], topology: Topology, seed: u64, on: bool) -> Harness {
    let mut h = Harness::with_config(names, topology, seed, |c: &mut Config| c.eager_forward = on);
    h.latency = Duration::from_millis(20);
    // The first rounds (and the greetings that teach epochs) are done; the next rounds are
    // about 4.5 s away.
    h.run_for(Duration::from_secs(1));
    h
}

/// How long a post from alice takes to reach erin, four hops down a line of five.
fn line_delivery(on: bool) -> Duration {
    let mut h = harness(&LINE, Topology::Line, 11, on);
    let start = h.now();
    let id = h.append("alice", message("down the line"));
    while !h.node("erin").contains(&id) {
        assert!(h.step(start + Duration::from_secs(60)), "never arrived");
    }
    h.now().saturating_since(start)
}

/// Forwards sent over all nodes of a full mesh of `n` in each of `posts` rounds in which
/// every node appends one post, and the prunes at the end.
fn mesh_forwards(n: usize, posts: usize, on: bool) -> (Vec<u64>, u64) {
    let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut h = harness(&names, Topology::FullMesh, 12, on);
    let forwarded = |h: &Harness| h.nodes().map(|n| n.stats().events_forwarded).sum::<u64>();
    let mut per_round = Vec::new();
    for _ in 0..posts {
        let before = forwarded(&h);
        for name in &names {
            h.append(name, message("hello"));
            h.run_for(Duration::from_millis(200));
        }
        per_round.push(forwarded(&h) - before);
    }
    let prunes = h.nodes().map(|n| n.stats().forward_prunes).sum();
    (per_round, prunes)
}

#[test]
fn a_post_crosses_a_line_of_five_at_link_speed() {
    let took = line_delivery(true);
    // Four hops of 20 ms; a round would take seconds.
    assert!(
        took <= Duration::from_millis(4 * 20 + 5),
        "took {took} over four 20 ms hops"
    );
}

#[test]
fn without_forwarding_a_line_waits_for_rounds() {
    let took = line_delivery(false);
    assert!(
        took >= Duration::from_secs(1),
        "took {took}: something forwards with forwarding off"
    );
}

#[test]
fn a_dense_mesh_forwards_at_most_n_times_fanout_per_event_and_prunes() {
    let (n, posts) = (8u64, 6usize);
    let (per_round, prunes) = mesh_forwards(n as usize, posts, true);
    let fanout = Config::new(
        meshlog_core::testing::keys("d0", 1),
        meshlog_core::testing::community_of(&["d0"], 1),
        vec![],
        [0; 32],
    )
    .forward_fanout as u64;
    // Every receiver may forward each event once, to `fanout` peers: the bound, per round of
    // n events.
    for (round, forwarded) in per_round.iter().enumerate() {
        assert!(
            *forwarded <= n * (n - 1) * fanout,
            "round {round}: {forwarded} forwards for {n} events"
        );
    }
    // In a full mesh the author reaches everyone itself: duplicates prune the forwards
    // between receivers (both ways, by the echo), so they die out.
    assert!(prunes > 0, "no duplicate pruned");
    let (first, last) = (per_round[0], per_round[posts - 1]);
    assert!(
        first > 0 && last * 4 <= first,
        "forwards per round {per_round:?}: pruning did not hold them back"
    );
}

#[test]
fn without_relay_nothing_is_forwarded() {
    let mut h = Harness::with_config(&LINE, Topology::Line, 13, |c| c.relay = false);
    h.run_for(Duration::from_secs(1));
    h.append("alice", message("stays with bob"));
    h.run_for(Duration::from_millis(500));
    assert_eq!(
        h.nodes().map(|n| n.stats().events_forwarded).sum::<u64>(),
        0
    );
    assert_eq!(h.node("bob").event_count(), 1);
    assert_eq!(h.node("carol").event_count(), 0);
}

#[test]
fn a_peer_silent_for_rounds_gets_no_forwards() {
    // A line alice–bob–carol; carol's link to bob goes dark, so bob stops hearing her
    // summaries. After a few rounds of silence a post from alice goes no further than bob:
    // forwards into a dead link would be lost (anti-entropy carries the post once it heals).
    let mut h = harness(&LINE[..3], Topology::Line, 14, true);
    let id = h.append("alice", message("while carol is quiet"));
    h.run_for(Duration::from_millis(200));
    assert!(
        h.node("carol").contains(&id),
        "forwarded while carol is heard"
    );
    h.set_link("bob", "carol", false);
    h.run_for(Duration::from_secs(20));
    let before = h.node("bob").stats().events_forwarded;
    let id = h.append("alice", message("after carol went quiet"));
    h.run_for(Duration::from_millis(200));
    assert!(h.node("bob").contains(&id));
    assert_eq!(
        h.node("bob").stats().events_forwarded,
        before,
        "bob forwarded to a peer silent for 20 s"
    );
}

#[test]
fn a_peer_that_lost_what_it_sent_gets_it_back() {
    // Bob forwards alice's post to carol; carol is then given a fresh store (a power cut that
    // lost the post) under the same keys. Carol's stream must send it back to her: "it came
    // from carol" holds only while carol's filters could have crossed it in flight.
    let mut h = harness(&LINE[..3], Topology::Line, 15, true);
    let id = h.append("carol", message("carol's own post"));
    h.run_for(Duration::from_millis(200));
    assert!(h.node("bob").contains(&id));
    // Carol again, with her keys and an empty store, in a new run (a later epoch).
    let mut config = h.node("carol").config().clone();
    config.epoch_floor = 1_000;
    config.seed = [7; 32];
    let carol = Node::new(config, InMemoryStore::new(), h.now()).expect("valid config");
    h.add_node(carol, &["bob"]);
    assert!(!h.node("carol").contains(&id));
    assert!(
        h.run_until_converged(Duration::from_secs(60)).is_some(),
        "carol never got her lost post back"
    );
}

#[test]
fn a_lost_forward_is_repaired_in_round_trips_not_at_the_next_round() {
    // A line alice–bob–carol: bob's forward of alice's post to carol is lost (the link is cut
    // for exactly that datagram). Bob's check, a summary a round trip and a half later, makes
    // carol ask for it at once; without it she would wait for the next round, 3.5 s away.
    let mut h = harness(&LINE[..3], Topology::Line, 16, true);
    let start = h.now();
    let id = h.append("alice", message("lost on the second hop"));
    while !h.node("bob").contains(&id) {
        assert!(h.step(start + Duration::from_secs(1)), "bob never got it");
    }
    assert_eq!(
        h.node("bob").stats().events_forwarded,
        1,
        "bob forwards it to carol"
    );
    h.set_link("bob", "carol", false);
    // Drains bob's outputs (the forward, dropped) and handles the next thing due.
    h.step(start + Duration::from_secs(1));
    h.set_link("bob", "carol", true);
    assert!(!h.node("carol").contains(&id), "the forward got through");
    while !h.node("carol").contains(&id) {
        assert!(
            h.step(start + Duration::from_secs(1)),
            "carol waited more than a second: the lost forward was left to the next round"
        );
    }
    assert!(h.node("bob").stats().forward_checks >= 1);
}
