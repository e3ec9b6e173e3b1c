//! The amplification budget against a hostile member: worst-case filters and a digest sent
//! over and over (each copy with a fresh counter, so the replay window lets it in) make a node answer at most 3× what it received (plus its round allowance), with at
//! most one filter answer per bucket per round; events only go out at the owed stream's pace.

use meshlog_core::packet::Wire;
use meshlog_core::packet::{BucketFilter, Digest};
use meshlog_core::sync::filter::WireFilter;
use meshlog_core::sync::index::BucketSummary;
use meshlog_core::sync::prefix::{Prefix, FANOUT};
use meshlog_core::testing::{community_of, keyring_of, Harness, Topology};
use meshlog_core::{Config, DeviceId, Input, Output, Packet, PacketKind, Payload, Transmit};

const SEED: u64 = 21;
/// The allowance a round grants besides 3× (16 datagrams of 1200 bytes; `budget.rs`).
const ALLOWANCE_BYTES: u64 = 16 * 1200;

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
    alice.handle_input(Input::Datagram { now, bytes });
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

#[test]
fn a_digest_resent_with_fresh_counters_is_answered_within_three_times_what_arrived() {
    let mut h = world(|_| {});
    // Every child differs and claims many ids: each copy asks for 16 filters.
    let mut children = [BucketSummary::default(); FANOUT];
    for (i, child) in children.iter_mut().enumerate() {
        *child = BucketSummary {
            count: 5_000,
            fingerprint: i as u64 + 1,
        };
    }
    let digest = Payload::Digests(vec![Digest {
        prefix: Prefix::ROOT,
        children,
    }]);
    let mut wire = mallory_wire(&mut h);
    let (mut answers, mut received) = (0, 0);
    for _ in 0..2_000 {
        let bytes = from_mallory(&mut wire, &digest);
        received += bytes.len() as u64;
        answers += answer_bytes(&feed(&mut h, &bytes));
    }
    assert!(
        answers <= 3 * received + ALLOWANCE_BYTES,
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
