//! The amplification budget against a hostile member: worst-case filters and replayed
//! digests make a node answer at most 3× what it received (plus its round allowance), with at
//! most one filter answer per bucket per round; events only go out at the owed stream's pace.

use meshlog_core::packet::{BucketFilter, Digest};
use meshlog_core::sync::filter::WireFilter;
use meshlog_core::sync::index::BucketSummary;
use meshlog_core::sync::prefix::{Prefix, FANOUT};
use std::sync::atomic::{AtomicU64, Ordering};

use meshlog_core::testing::{keyring_of, packet, Harness, Topology};
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

/// Mallory's packets so far: each copy gets a fresh counter, so the replay window lets it
/// through and only the budget stands in its way.
static MALLORY_SENT: AtomicU64 = AtomicU64::new(0);

/// A packet from mallory (a roster member) to alice, sealed with their real pairwise key.
fn from_mallory(payload: Payload) -> Vec<u8> {
    let counter = MALLORY_SENT.fetch_add(1, Ordering::Relaxed) + 1;
    let keyring = keyring_of("mallory", &community(), SEED);
    let alice = DeviceId::new("alice").unwrap();
    packet("mallory", "alice", (1, counter), payload).seal(keyring.key(&alice).unwrap())
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
    let bytes = from_mallory(filter(0, 7));
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
        .map(
            |t| match Packet::open(&t.bytes, &keyring_of("mallory", &community(), SEED)) {
                Ok(Packet {
                    payload: Payload::Events(e),
                    ..
                }) => e.len(),
                other => panic!("{other:?}"),
            },
        )
        .sum();
    let burst = h.node("alice").config().events_per_round_max as usize;
    assert!(events <= burst, "{events} events pushed at once");
    assert!(h.node("alice").peers()[0].state.budget.within());
}

fn community() -> meshlog_core::Community {
    meshlog_core::testing::community_of(&["alice", "mallory"], SEED)
}

fn all_ones_filter_500_times(budget: bool) -> (u64, u64, usize, u64) {
    let mut h = world(|c| c.amplification_budget = budget);
    let bytes = from_mallory(filter(0xff, 32));
    let mut answers = 0;
    let mut filters = 0;
    for _ in 0..500 {
        let sent = feed(&mut h, &from_mallory(filter(0xff, 32)));
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
    (answers, 500 * bytes.len() as u64, filters, drops)
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
fn a_replayed_digest_is_answered_within_three_times_what_arrived() {
    let mut h = world(|_| {});
    // Every child differs and claims many ids: each copy asks for 16 filters.
    let mut children = [BucketSummary::default(); FANOUT];
    for (i, child) in children.iter_mut().enumerate() {
        *child = BucketSummary {
            count: 5_000,
            fingerprint: i as u64 + 1,
        };
    }
    let digest = || {
        from_mallory(Payload::Digests(vec![Digest {
            prefix: Prefix::ROOT,
            children,
        }]))
    };
    let bytes = digest();
    let mut answers = 0;
    let copies = 2_000u64;
    for _ in 0..copies {
        answers += answer_bytes(&feed(&mut h, &digest()));
    }
    let received = copies * bytes.len() as u64;
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
