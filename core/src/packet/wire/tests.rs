use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::config::Config;
use crate::event::EventBody;
use crate::node::{Input, Node, NodeEvent, Output, Transmit};
use crate::packet::PacketKind;
use crate::store::{InMemoryStore, Store};
use crate::sync::index::BucketSummary;
use crate::sync::prefix::Prefix;
use crate::testing::{community_of, derive_seed, keyring_of, keys};
use crate::time::Instant;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

fn wire(name: &str, epoch: u64) -> Wire {
    Wire::new(keyring_of(name, &community_of(&NAMES, 1), 1), epoch, true)
}

/// `receiver` opens one packet from `sender`, whatever becomes of it: it then knows the
/// sender's epoch and echoes it.
fn hear(receiver: &mut Wire, sender: &mut Wire) {
    let _ = receiver.open(&sender.seal(receiver.keyring.me(), &summary(0)));
}

/// Each learns the other's epoch, as two nodes do in their first exchange.
fn meet(a: &mut Wire, b: &mut Wire) {
    hear(b, a);
    hear(a, b);
}

fn summary(count: u32) -> Payload {
    Payload::Summary {
        prefix: Prefix::ROOT,
        summary: BucketSummary {
            count,
            fingerprint: 1,
        },
    }
}

#[test]
fn each_packet_opens_once_in_any_order() {
    let mut alice = wire("alice", 1);
    let mut bob = wire("bob", 1);
    meet(&mut alice, &mut bob);
    let sent: Vec<Vec<u8>> = (0..6)
        .map(|i| alice.seal(&id("bob"), &summary(i)))
        .collect();
    assert_eq!(alice.packets_sealed(), 7);
    for i in [3, 0, 5, 1, 4, 2] {
        let packet = bob.open(&sent[i]).expect("first time");
        assert_eq!((packet.epoch, packet.counter), (1, 1 + i as u64));
    }
    for bytes in &sent {
        assert_eq!(
            bob.open(bytes),
            Err(DropReason::Replayed {
                epoch: 1,
                counter: Packet::open(bytes, &bob.keyring).unwrap().counter
            })
        );
    }
    assert_eq!(bob.newest_from(&id("alice")), Some((1, 6)));
}

#[test]
fn counters_are_per_peer_so_a_burst_to_many_stays_in_each_window() {
    let mut alice = wire("alice", 1);
    let (mut bob, mut carol) = (wire("bob", 1), wire("carol", 1));
    meet(&mut alice, &mut bob);
    meet(&mut alice, &mut carol);
    let to_bob = alice.seal(&id("bob"), &summary(1));
    let to_carol = alice.seal(&id("carol"), &summary(1));
    assert_eq!(bob.open(&to_bob).unwrap().counter, 1);
    assert_eq!(carol.open(&to_carol).unwrap().counter, 1);
    // A burst to three peers, each seeing its packets late and reversed: every one of
    // bob's opens once, as a shared counter (which jumps by 3 per packet) would not allow.
    let mut to_bobs = Vec::new();
    for i in 0..(crate::packet::replay::WINDOW_LEN as u32 / 2) {
        to_bobs.push(alice.seal(&id("bob"), &summary(i)));
        alice.seal(&id("carol"), &summary(i));
        alice.seal(&id("carol"), &summary(i));
    }
    for bytes in to_bobs.iter().rev() {
        bob.open(bytes).expect("within bob's window");
    }
    assert_eq!(
        alice.packets_sealed(),
        4 + 3 * (crate::packet::replay::WINDOW_LEN / 2)
    );
    // Each copy opens only where it was sent.
    assert!(matches!(
        carol.open(&to_bob),
        Err(DropReason::WrongTarget(_))
    ));
}

#[test]
fn a_restarted_sender_is_heard_and_its_old_epoch_is_not() {
    let mut bob = wire("bob", 1);
    let mut before = wire("alice", 4);
    meet(&mut before, &mut bob);
    let old = before.seal(&id("bob"), &summary(1));
    let late = before.seal(&id("bob"), &summary(2));
    bob.open(&old).unwrap();
    let mut after = wire("alice", 5);
    meet(&mut after, &mut bob);
    bob.open(&after.seal(&id("bob"), &summary(3)))
        .expect("a newer epoch, counter 0 again");
    assert_eq!(
        bob.open(&late),
        Err(DropReason::Replayed {
            epoch: 4,
            counter: 2
        }),
        "never seen, but from the old epoch"
    );
}

#[test]
fn a_forgery_does_not_move_the_window() {
    let mut bob = wire("bob", 1);
    let mut alice = wire("alice", 1);
    meet(&mut alice, &mut bob);
    let genuine = alice.seal(&id("bob"), &summary(1));
    // Carol claims to be alice at a far newer epoch; her tag is wrong.
    let mut claim = crate::testing::packet("alice", "bob", (99, 0), summary(1));
    claim.echo = 1;
    let carol = keyring_of("carol", &community_of(&NAMES, 1), 1);
    let forged = claim.seal(carol.key(&id("bob")).unwrap());
    assert_eq!(bob.open(&forged), Err(DropReason::BadMac));
    assert_eq!(bob.newest_from(&id("alice")), Some((1, 0)));
    bob.open(&genuine).expect("alice's real packet still opens");
}

#[test]
fn without_replay_protection_a_replay_opens_again() {
    let mut alice = wire("alice", 1);
    let mut bob = Wire::new(keyring_of("bob", &community_of(&NAMES, 1), 1), 1, false);
    let bytes = alice.seal(&id("bob"), &summary(1));
    assert!(bob.open(&bytes).is_ok());
    assert!(bob.open(&bytes).is_ok());
}

type Shared = Rc<RefCell<InMemoryStore>>;

/// A node of the alice–bob pair over `store`, its start-up output drained.
fn node(name: &str, store: &Shared, tweak: impl Fn(&mut Config)) -> Node<Shared> {
    let peer = if name == "alice" { "bob" } else { "alice" };
    let mut config = Config::new(
        keys(name, 1),
        community_of(&["alice", "bob"], 1),
        vec![id(peer)],
        derive_seed(1, name),
    );
    tweak(&mut config);
    let mut node = Node::new(config, store.clone(), Instant::ZERO).expect("valid config");
    drain(&mut node);
    node
}

fn drain(node: &mut Node<Shared>) -> (Vec<Transmit>, Vec<NodeEvent>) {
    let (mut transmits, mut events) = (Vec::new(), Vec::new());
    loop {
        match node.poll_output() {
            Output::Transmit(t) => transmits.push(t),
            Output::Event(e) => events.push(e),
            Output::Timeout(_) => return (transmits, events),
        }
    }
}

fn deliver(node: &mut Node<Shared>, bytes: &[u8]) -> (Vec<Transmit>, Vec<NodeEvent>) {
    node.handle_input(Input::Datagram {
        now: Instant::from_millis(5),
        from: crate::testing::address("alice"),
        bytes,
    });
    drain(node)
}

/// Alice's next round summary to bob (each call a minute after the last round).
fn alice_summary(alice: &mut Node<Shared>) -> Vec<u8> {
    let minutes = 1 + alice.stats().rounds;
    alice.handle_input(Input::Timeout(Instant::from_millis(60_000 * minutes)));
    let (sent, _) = drain(alice);
    let summary = sent.into_iter().find(|t| t.kind == PacketKind::Summary);
    summary.expect("a round sends a summary").bytes
}

/// Their first exchange: alice's round summary, bob's greeting back and what follows,
/// until neither has more to say. After it each echoes the other's epoch.
fn introduce(alice: &mut Node<Shared>, bob: &mut Node<Shared>) {
    let mut to_bob = vec![alice_summary(alice)];
    for _ in 0..20 {
        let to_alice: Vec<Transmit> = to_bob.iter().flat_map(|b| deliver(bob, b).0).collect();
        to_bob = to_alice
            .iter()
            .flat_map(|t| deliver(alice, &t.bytes).0)
            .map(|t| t.bytes)
            .collect();
        if to_bob.is_empty() {
            return;
        }
    }
    panic!("alice and bob still talking after 20 exchanges");
}

#[test]
fn a_first_packet_teaches_the_epoch_and_is_answered_with_one_summary() {
    let mut alice = node("alice", &Shared::default(), |_| {});
    let mut bob = node("bob", &Shared::default(), |_| {});
    let first = alice_summary(&mut alice);
    let (replies, events) = deliver(&mut bob, &first);
    // The first packet also says where alice is (`node/addresses.rs`), then is dropped.
    assert!(
        matches!(
            events.as_slice(),
            [
                NodeEvent::PeerAddress { .. },
                NodeEvent::PacketDropped {
                    reason: DropReason::StaleEcho {
                        echo: 0,
                        first_of_epoch: true,
                        ..
                    },
                    ..
                }
            ]
        ),
        "{events:?}"
    );
    let kinds: Vec<PacketKind> = replies.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [PacketKind::Summary], "one greeting");
    let (_, events) = deliver(&mut alice, &replies[0].bytes);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::PacketReceived { .. })),
        "the greeting echoes alice's epoch: {events:?}"
    );
    // A second packet from the same epoch of alice is not greeted again.
    let (replies, _) = deliver(&mut bob, &alice_summary(&mut alice));
    assert!(replies.iter().all(|t| t.kind != PacketKind::Summary) || replies.is_empty());
    assert_eq!(bob.stats().drops.get("stale_echo"), Some(&1));
}

/// Windows are in memory, so a restarted receiver has none; what was captured before its
/// restart echoes its old epoch and is refused all the same.
#[test]
fn a_replay_to_a_restarted_receiver_is_refused() {
    let store = Shared::default();
    let mut alice = node("alice", &Shared::default(), |_| {});
    let mut bob = node("bob", &store, |_| {});
    introduce(&mut alice, &mut bob);
    let captured = alice_summary(&mut alice);
    let (_, events) = deliver(&mut bob, &captured);
    assert!(events
        .iter()
        .any(|e| matches!(e, NodeEvent::PacketReceived { .. })));
    drop(bob);
    let mut bob = node("bob", &store, |_| {});
    for _ in 0..3 {
        let (replies, events) = deliver(&mut bob, &captured);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, NodeEvent::PacketReceived { .. })),
            "{events:?}"
        );
        // At most the one greeting (alice's epoch is news to the new run), never an answer.
        assert!(replies.iter().all(|t| t.kind == PacketKind::Summary) && replies.len() <= 1);
    }
    assert_eq!(bob.stats().drops.get("stale_echo"), Some(&1));
    assert_eq!(bob.stats().drops.get("replayed"), Some(&2));
}

#[test]
fn a_replayed_datagram_is_dropped_counted_and_answered_with_nothing() {
    let mut alice = node("alice", &Shared::default(), |_| {});
    let mut bob = node("bob", &Shared::default(), |_| {});
    introduce(&mut alice, &mut bob);
    let received_before = bob.stats().received_total().count;
    let body = EventBody::DeviceStatus { online: true };
    alice.append(Instant::from_millis(1), body).unwrap();
    let (pushed, _) = drain(&mut alice);
    let push = &pushed[0].bytes;
    let (_, events) = deliver(&mut bob, push);
    assert!(events
        .iter()
        .any(|e| matches!(e, NodeEvent::EventStored { .. })));
    let (replies, events) = deliver(&mut bob, push);
    assert!(replies.is_empty(), "no reply to a replay");
    assert!(
        matches!(
            events.as_slice(),
            [NodeEvent::PacketDropped {
                reason: DropReason::Replayed { .. },
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(bob.stats().drops.get("replayed"), Some(&1));
    assert_eq!(bob.stats().events_duplicate, 0, "not counted as received");
    assert_eq!(bob.stats().received_total().count, received_before + 1);
}

/// The measurement: a captured SUMMARY re-sent 4 times made bob send 217 KB to
/// alice. Now the first copy is answered as before and the replays with 0 bytes.
#[test]
fn a_captured_summary_replayed_four_times_yields_no_reply_bytes() {
    let mut alice = node("alice", &Shared::default(), |_| {});
    let mut bob = node("bob", &Shared::default(), |_| {});
    introduce(&mut alice, &mut bob);
    for i in 0..400 {
        let body = EventBody::Message {
            text: format!("bob's {i}"),
            attachment: None,
            auto: false,
        };
        bob.append(Instant::from_millis(i), body).unwrap();
    }
    drain(&mut bob);
    let captured = alice_summary(&mut alice);
    let (first, _) = deliver(&mut bob, &captured);
    assert!(!first.is_empty(), "the genuine summary is answered");
    let replies: usize = (0..4)
        .map(|_| deliver(&mut bob, &captured).0)
        .map(|sent| sent.iter().map(|t| t.bytes.len()).sum::<usize>())
        .sum();
    assert_eq!(replies, 0, "reply bytes to 4 replays");
    assert_eq!(bob.stats().drops.get("replayed"), Some(&4));
}

#[test]
fn a_restarted_node_uses_a_higher_epoch_and_is_heard() {
    let store = Shared::default();
    let mut bob = node("bob", &Shared::default(), |_| {});
    let mut alice = node("alice", &store, |_| {});
    let first_epoch = alice.epoch();
    introduce(&mut alice, &mut bob);
    let old = alice_summary(&mut alice);
    deliver(&mut bob, &old);
    // Crash and restart over the same store: counters start again at 0.
    drop(alice);
    let mut alice = node("alice", &store, |_| {});
    assert!(
        alice.epoch() > first_epoch,
        "{} after {first_epoch}",
        alice.epoch()
    );
    introduce(&mut alice, &mut bob);
    let fresh = alice_summary(&mut alice);
    let (_, events) = deliver(&mut bob, &fresh);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::PacketReceived { .. })),
        "{events:?}"
    );
    // What was captured from the old run is refused for good.
    deliver(&mut bob, &old);
    assert_eq!(bob.stats().drops.get("replayed"), Some(&1));
}

#[test]
fn a_node_that_lost_its_store_is_heard_if_its_floor_is_higher() {
    let mut bob = node("bob", &Shared::default(), |_| {});
    let store = Shared::default();
    store.borrow_mut().next_epoch(1_000).unwrap();
    let mut alice = node("alice", &store, |_| {});
    assert_eq!(alice.epoch(), 1_001);
    introduce(&mut alice, &mut bob);
    // The store is gone; the clock has moved on.
    let mut reborn = node("alice", &Shared::default(), |c| c.epoch_floor = 2_000);
    assert_eq!(reborn.epoch(), 2_000);
    introduce(&mut reborn, &mut bob);
    let (_, events) = deliver(&mut bob, &alice_summary(&mut reborn));
    assert!(events
        .iter()
        .any(|e| matches!(e, NodeEvent::PacketReceived { .. })));
    // Without the floor it would restart at epoch 1, below what bob saw: refused.
    let mut amnesiac = node("alice", &Shared::default(), |_| {});
    assert_eq!(amnesiac.epoch(), 1);
    deliver(&mut bob, &alice_summary(&mut amnesiac));
    assert_eq!(bob.stats().drops.get("replayed"), Some(&1));
}
