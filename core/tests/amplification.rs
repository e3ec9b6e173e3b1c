//! The amplification budget against a hostile member: worst-case filters and a digest sent
//! over and over (each copy with a fresh counter, so the replay window lets it in), fast or
//! one per round, make a node answer at most 3× what it received (plus a credit granted once
//! when it starts), with at most one filter answer per bucket per round; events only go out at
//! the owed stream's pace.

use meshlog_core::packet::{BucketFilter, Digest};
use meshlog_core::testing::wire::{Wire, WireFilter, FANOUT};
use meshlog_core::testing::{community_of, keyring_of, Harness, Topology};
use meshlog_core::{BucketSummary, Prefix};
use meshlog_core::{
    Config, DeviceId, Duration, Input, Output, Packet, PacketKind, Payload, Transmit,
    CREDIT_INITIAL_BYTES,
};

const SEED: u64 = 21;

fn world(tweak: impl Fn(&mut Config)) -> Harness {
    let mut h = Harness::with_config(&["alice", "mallory"], Topology::FullMesh, SEED, |c| {
        c.eager_push = false;
        tweak(c);
    });
    h.append_messages("alice", 500);
    h
}

/// Mallory's side of the wire: a roster member sealing with its real pairwise key and a
/// fresh counter per packet, so nothing it sends is a replay. Her first packet teaches alice
/// her epoch and alice's greeting teaches her alice's, as between honest devices.
fn mallory_wire(h: &mut Harness) -> Wire {
    let community = community_of(&["alice", "mallory"], SEED);
    let mut wire = Wire::new(keyring_of("mallory", &community, SEED), 1, true);
    let hello = Payload::Summary {
        prefix: Prefix::ROOT,
        summary: BucketSummary::default(),
    };
    let greeting = feed(h, &from_mallory(&mut wire, &hello));
    assert_eq!(greeting.len(), 1, "alice greets once: {greeting:?}");
    wire.open(&greeting[0].bytes).expect("alice's greeting");
    wire
}

fn from_mallory(wire: &mut Wire, payload: &Payload) -> Vec<u8> {
    wire.seal(&DeviceId::new("alice").unwrap(), payload)
}

/// Hands alice the datagram and returns what she sends.
fn feed(h: &mut Harness, bytes: &[u8]) -> Vec<Transmit> {
    let now = h.now();
    let alice = h.node_mut("alice");
    alice.handle_input(Input::Datagram {
        now,
        from: meshlog_core::testing::OUTSIDE,
        bytes,
    });
    let mut out = Vec::new();
    loop {
        match alice.poll_output() {
            Output::Transmit(t) => out.push(t),
            Output::Event(_) => {}
            Output::Timeout(_) => return out,
        }
    }
}

fn answer_bytes(sent: &[Transmit]) -> u64 {
    sent.iter()
        .filter(|t| t.kind != PacketKind::Event)
        .map(|t| t.bytes.len() as u64)
        .sum()
}

fn filter(bitmap_byte: u8, k: u8) -> Payload {
    Payload::Filters(vec![BucketFilter {
        prefix: Prefix::ROOT,
        reply: true,
        filter: WireFilter {
            nonce: 7,
            items: 500,
            hash_functions: k,
            bitmap: vec![bitmap_byte; 1_000],
        },
    }])
}

#[test]
fn an_empty_filter_asking_for_a_reply_gets_at_most_three_times_its_size() {
    let mut h = world(|_| {});
    let mut wire = mallory_wire(&mut h);
    let bytes = from_mallory(&mut wire, &filter(0, 7));
    let sent = feed(&mut h, &bytes);
    let answers = answer_bytes(&sent);
    assert!(answers > 0, "the honest part is answered: one filter back");
    assert!(
        answers <= 3 * bytes.len() as u64,
        "{answers} bytes answered to {}",
        bytes.len()
    );
    // Events go out only at the stream's pace: the round's burst, not all 500.
    let events: usize = sent
        .iter()
        .filter(|t| t.kind == PacketKind::Event)
        .map(|t| match wire.open(&t.bytes) {
            Ok(Packet {
                payload: Payload::Events(e),
                ..
            }) => e.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    let burst = h.node("alice").config().events_per_round_max as usize;
    assert!(events <= burst, "{events} events pushed at once");
    assert!(h.node("alice").peers()[0].state.budget.within());
}

fn all_ones_filter_500_times(budget: bool) -> (u64, u64, usize, u64) {
    let mut h = world(|c| c.amplification_budget = budget);
    let mut wire = mallory_wire(&mut h);
    let mut answers = 0;
    let mut filters = 0;
    let mut received = 0;
    for _ in 0..500 {
        let bytes = from_mallory(&mut wire, &filter(0xff, 32));
        received += bytes.len() as u64;
        let sent = feed(&mut h, &bytes);
        answers += answer_bytes(&sent);
        filters += sent.iter().filter(|t| t.kind == PacketKind::Filter).count();
    }
    let drops = h
        .node("alice")
        .stats()
        .drops
        .get("budget")
        .copied()
        .unwrap_or(0);
    (answers, received, filters, drops)
}

#[test]
fn an_all_ones_filter_sent_500_times_is_answered_once() {
    let (answers, received, filters, drops) = all_ones_filter_500_times(true);
    assert_eq!(filters, 1, "one filter answer per bucket per round");
    assert_eq!(drops, 499, "the rest counted as `budget`");
    assert!(answers <= 3 * received, "{answers} for {received}");
    // Without the budget the same input is answered every time: the bound is the budget's.
    let (_, _, filters, drops) = all_ones_filter_500_times(false);
    assert_eq!((filters, drops), (500, 0));
}

/// A root digest whose every child differs and claims many ids: each copy asks for 16 child
/// digests or filters, about 16× its size.
fn greedy_digest() -> Payload {
    let mut children = [BucketSummary::default(); FANOUT];
    for (i, child) in children.iter_mut().enumerate() {
        *child = BucketSummary {
            count: 5_000,
            fingerprint: i as u64 + 1,
        };
    }
    Payload::Digests(vec![Digest {
        prefix: Prefix::ROOT,
        children,
    }])
}

#[test]
fn a_digest_resent_with_fresh_counters_is_answered_within_three_times_what_arrived() {
    let mut h = world(|_| {});
    let digest = greedy_digest();
    let mut wire = mallory_wire(&mut h);
    let (mut answers, mut received) = (0, 0);
    for _ in 0..2_000 {
        let bytes = from_mallory(&mut wire, &digest);
        received += bytes.len() as u64;
        answers += answer_bytes(&feed(&mut h, &bytes));
    }
    assert!(
        answers <= 3 * received + CREDIT_INITIAL_BYTES,
        "{answers} answered for {received} received"
    );
    assert!(
        h.node("alice").stats().drops["budget"] > 0,
        "the budget bit"
    );
    let totals = h.node("alice").peers()[0].state.budget;
    assert!(totals.within(), "{totals:?}");
    assert_eq!(totals.replied_bytes, answers);
}

/// The slow attacker: one greedy digest per round. A per-round allowance would hand it a
/// fresh allowance each round (v4 gave 16 datagrams, 60× a digest); credit earned at 3× per
/// byte received gives it 3× and the initial credit, however long it goes on.
#[test]
fn a_digest_sent_once_a_round_gets_no_more_than_one_sent_fast() {
    let run = |budget: bool| {
        let mut h = world(|c| c.amplification_budget = budget);
        let mut wire = mallory_wire(&mut h);
        // Alice's own rounds run, but nothing reaches mallory's node or comes from it.
        h.set_link("alice", "mallory", false);
        let interval = h.node("alice").config().sync_interval;
        let (mut answers, mut received) = (0, 0);
        for _ in 0..40 {
            let bytes = from_mallory(&mut wire, &greedy_digest());
            received += bytes.len() as u64;
            answers += answer_bytes(&feed(&mut h, &bytes));
            h.run_for(Duration(interval.as_micros()));
        }
        (answers, received)
    };
    let (answers, received) = run(true);
    assert!(
        answers <= 3 * received + CREDIT_INITIAL_BYTES,
        "{answers} answered for {received} received"
    );
    // The same without the budget: over the bound, so the bound is the budget's doing.
    let (answers, received) = run(false);
    assert!(
        answers > 3 * received + CREDIT_INITIAL_BYTES,
        "{answers} answered for {received} received"
    );
}
