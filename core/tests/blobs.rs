//! The blob transfer (`node/blobs`): a file named by a message crosses to the peers that
//! lack it, byte-exact, through loss, past a member that forges a group, and after a crash
//! of the fetcher resumes where it stopped.

use std::sync::Arc;

use meshlog_core::testing::{Harness, Topology};
use meshlog_core::{Carrier, Duration, EventBody, FileId, FileRef, Node};

/// Bytes that differ group to group, from a seed.
fn content(len: usize, seed: u8) -> Arc<[u8]> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 10) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn blob_message(file: FileId, size: u64) -> EventBody {
    EventBody::Message {
        text: "a file".into(),
        attachment: Some(FileRef {
            file,
            size,
            name: "file.bin".into(),
            mime: "application/octet-stream".into(),
            carrier: Carrier::Blob,
        }),
        auto: false,
    }
}

/// Alice holds `bytes` and posts a message naming it; answers its id.
fn post(h: &mut Harness, bytes: &Arc<[u8]>) -> FileId {
    let file = h
        .node_mut("alice")
        .store_mut()
        .files_mut()
        .add(bytes.clone());
    h.append("alice", blob_message(file, bytes.len() as u64));
    file
}

fn complete(h: &Harness, name: &str, file: &FileId) -> bool {
    h.node(name).store().files().content(file).is_some()
}

fn run_until_complete(h: &mut Harness, names: &[&str], file: &FileId, limit: Duration) -> Duration {
    let start = h.now();
    while !names.iter().all(|n| complete(h, n, file)) {
        assert!(
            h.step(start + limit),
            "not complete within {limit}: {:?}",
            names
                .iter()
                .map(|n| h.node(n).stats().blobs)
                .collect::<Vec<_>>()
        );
    }
    h.now().saturating_since(start)
}

#[test]
fn a_file_named_by_a_message_crosses_byte_exact() {
    let mut h = Harness::new(&["alice", "bob", "carol"], Topology::FullMesh, 1);
    h.run_for(Duration::from_secs(1));
    let bytes = content(3_000_000, 1);
    let file = post(&mut h, &bytes);
    run_until_complete(&mut h, &["bob", "carol"], &file, Duration::from_secs(30));
    for name in ["bob", "carol"] {
        let got = h.node(name).store().files().content(&file).unwrap();
        assert!(got == bytes[..], "{name}'s copy differs");
        assert_eq!(h.node(name).stats().blobs.files_fetched, 1);
    }
}

#[test]
fn at_thirty_percent_loss_recovery_shards_keep_the_cost_near_one_over_one_minus_p() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 2);
    h.run_for(Duration::from_secs(1));
    h.loss_ppm = 300_000;
    let bytes = content(2_000_000, 2);
    let file = post(&mut h, &bytes);
    let took = run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(120));
    let received = h.node("bob").stats().blobs.shard_bytes_received;
    let sent = h.node("alice").stats().blobs.shard_bytes_sent;
    let size = bytes.len() as f64;
    println!(
        "2 MB at 30% loss: {took}, alice sent {:.2}× the file, bob received {:.2}×",
        sent as f64 / size,
        received as f64 / size
    );
    // 1/(1 − p) = 1.43 of the file must be sent at least. The recovery shards' margin (a
    // group's shards past its k-th are sent all the same) and the retries cost more: 1.89
    // on 2026-12-07, 1.97 since asks are judged when a later ask's shards arrive (a few
    // judged early on this jittery harness). Before the retries asked for the shards they
    // needed and not merely a margin beyond them, it was 2.99 and took 87 s.
    assert!(sent as f64 <= 2.0 * size, "sent {sent} for {size}");
    // 0.33 s since then (10 ms links); 3.1 s with deadlines alone; 7.9 s when every short
    // group cut the window.
    assert!(took <= Duration::from_secs(10), "took {took}");
}

#[test]
fn a_forged_group_is_dropped_counted_and_fetched_from_an_honest_peer() {
    let mut h = Harness::new(&["alice", "bob", "mallory"], Topology::FullMesh, 3);
    h.run_for(Duration::from_secs(1));
    let bytes = content(1_000_000, 3);
    // Mallory holds the file with its true outboard but one group altered; bob asks both.
    let forged = h
        .node_mut("mallory")
        .store_mut()
        .files_mut()
        .add_forged(&bytes);
    let file = post(&mut h, &bytes);
    assert_eq!(forged, file);
    run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(30));
    let got = h.node("bob").store().files().content(&file).unwrap();
    assert!(got == bytes[..], "bob's copy differs");
    let stats = h.node("bob").stats();
    assert_eq!(stats.blobs.forgeries, 1, "{:?}", stats.blobs);
    assert_eq!(stats.drops.get("blob_forged"), Some(&1));
}

#[test]
fn a_fetch_cut_by_a_crash_resumes_where_it_stopped() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 4);
    h.run_for(Duration::from_secs(1));
    let bytes = content(4_000_000, 4);
    let file = post(&mut h, &bytes);
    let groups_total = bytes.len().div_ceil(16 * 1024) as u64;
    // Until about half is verified.
    while h
        .node("bob")
        .store()
        .files()
        .files()
        .find(|(id, _)| **id == file)
        .is_none_or(|(_, s)| s.groups_have < groups_total / 2)
    {
        assert!(h.step(h.now() + Duration::from_secs(30)));
    }
    // Bob crashes: what his store holds survives, nothing else.
    let held = h
        .node("bob")
        .store()
        .files()
        .files()
        .find(|(id, _)| **id == file)
        .unwrap()
        .1
        .groups_have;
    let store = h.node("bob").store().clone();
    let config = h.node("bob").config().clone();
    let now = h.now();
    h.add_node(Node::new(config, store, now).unwrap(), &["alice"]);
    run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(30));
    let missing_bytes = (groups_total - held) as f64 * 16.0 * 1024.0;
    let after = h.node("bob").stats().blobs.shard_bytes_received as f64;
    println!(
        "resumed with {held} of {groups_total} groups: received {:.3}× what was missing",
        after / missing_bytes
    );
    assert!(
        after <= 1.1 * missing_bytes,
        "{after} for {missing_bytes} missing"
    );
    let got = h.node("bob").store().files().content(&file).unwrap();
    assert!(got == bytes[..]);
}

#[test]
fn on_a_clean_link_that_reorders_the_cost_stays_near_the_file() {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 5);
    h.latency = Duration::from_millis(10);
    // Shards of one group leave together and arrive in any order.
    h.jitter = Duration::from_millis(30);
    h.run_for(Duration::from_secs(1));
    let bytes = content(8_000_000, 5);
    let file = post(&mut h, &bytes);
    run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(30));
    let sent = h.node("alice").stats().blobs.shard_bytes_sent as f64 / bytes.len() as f64;
    println!("8 MB over a clean, reordering link: alice sent {sent:.2}× the file");
    // One recovery shard per 16 and the headers: 1.16; asks judged short while their
    // shards were still on the way, a little more: 1.31 on 2026-12-07 (a window of up to
    // 256 groups), 1.30 with the window from rate × round trip. Judging loss by which
    // shards came first (they reorder) once made it 2.7; judging an ask a fixed 2 ms after a
    // later ask's shards, before the reordering was measured on every shard, 6.7.
    assert!(sent <= 1.4, "sent {sent:.2}× the file");
}

/// Bob and alice over 10 ms links at `loss_ppm`; alice posts 48 MB, whose outboard is 192
/// KiB, 192 pieces asked 64 at a time. Answers the file and how long from the post until bob
/// held the outboard (the message's sync included).
fn outboard_of_48_mb(seed: u8, loss_ppm: u32) -> (Harness, FileId, Duration) {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, u64::from(seed));
    h.latency = Duration::from_millis(10);
    h.run_for(Duration::from_secs(1));
    h.loss_ppm = loss_ppm;
    let bytes = content(48_000_000, seed);
    let outboard_bytes = 48_000_000_u64.div_ceil(16 * 1024) * 64 - 64;
    let file = post(&mut h, &bytes);
    let start = h.now();
    let limit = start + Duration::from_secs(30);
    while h.node("bob").stats().blobs.outboard_bytes_received < outboard_bytes {
        assert!(h.step(limit), "no outboard within 30 s");
    }
    let took = h.now().saturating_since(start);
    (h, file, took)
}

#[test]
fn an_outboard_of_many_asks_takes_round_trips_not_deadlines() {
    let (mut h, file, took) = outboard_of_48_mb(6, 0);
    println!("a 192 KiB outboard in {took} (the message's sync included)");
    // Each next ask once the last one's pieces are all here: three round trips of 20 ms and
    // the message's push: 70 ms. Asked at each deadline (two round trips and 100 ms): 630 ms.
    assert!(took <= Duration::from_millis(250), "took {took}");
    run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(60));
}

#[test]
fn at_thirty_percent_loss_an_outboard_takes_round_trips_not_deadlines() {
    // No ask of 64 pieces arrives whole.
    let (_, _, took) = outboard_of_48_mb(9, 300_000);
    println!("a 192 KiB outboard at 30% loss in {took} (the message's sync included)");
    // Asked again once the source falls quiet: 1.63 s (a lost ask still waits for its
    // deadline). At each ask's deadline (two round trips and 100 ms) it took 3.93 s.
    assert!(took <= Duration::from_millis(2_500), "took {took}");
}

#[test]
fn an_outboard_from_a_slow_uplink_is_not_asked_twice() {
    // Alice serves 64 KiB/s: after her bucket's first eighth of a second, an ask's pieces
    // come 16 ms apart. The quiet that says the rest were lost must wait for that pace, or
    // each piece would have the rest asked again and her spared uplink would send them twice.
    let mut h = Harness::with_config(&["alice", "bob"], Topology::FullMesh, 10, |config| {
        config.blob_serve_rate = 64 * 1024;
    });
    h.latency = Duration::from_millis(1);
    h.run_for(Duration::from_secs(1));
    // 16 MB: a 64 KiB outboard, one ask of 64 pieces.
    let bytes = content(16_000_000, 10);
    let outboard_bytes = 16_000_000_u64.div_ceil(16 * 1024) * 64 - 64;
    post(&mut h, &bytes);
    // The outboard's 61 pieces take about a second at that rate; groups follow.
    h.run_for(Duration::from_secs(3));
    let blobs = h.node("bob").stats().blobs;
    let unasked = h.node("bob").stats().drops.get("blob_unasked").copied();
    println!(
        "outboard {outboard_bytes} B: bob received {} B of pieces, {} groups, {unasked:?} unasked",
        blobs.outboard_bytes_received, blobs.groups_verified
    );
    assert_eq!(
        blobs.outboard_bytes_received, outboard_bytes,
        "a piece came twice"
    );
    assert_eq!(unasked, None, "pieces came after the outboard was whole");
    assert!(blobs.groups_verified > 0, "the groups were under way");
}

#[test]
fn a_low_serve_rate_holds_from_the_first_byte() {
    // Alice serves each peer 64 KiB/s (`--blob-serve-rate`, a slow uplink spared). A fixed
    // half-megabyte burst sent this 600 KB file's first 512 KiB at once; a bucket dropped
    // whenever its queue ran empty gave a fresh burst to each ask.
    let rate_bytes_per_s: u64 = 64 * 1024;
    let mut h = Harness::with_config(&["alice", "bob"], Topology::FullMesh, 7, |config| {
        config.blob_serve_rate = rate_bytes_per_s;
    });
    h.run_for(Duration::from_secs(1));
    let bytes = content(600_000, 7);
    let file = post(&mut h, &bytes);
    let took = run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(60));
    // At least the file's bytes crossed as shard payload (the bucket counts payload, not
    // headers), less the eighth of a second's worth the bucket starts with.
    let floor_us = (bytes.len() as u64 - rate_bytes_per_s / 8) * 1_000_000 / rate_bytes_per_s;
    println!(
        "{} bytes at {rate_bytes_per_s} B/s took {took}; at least {floor_us} µs",
        bytes.len()
    );
    assert!(
        took.as_micros() >= floor_us,
        "{} bytes in {took}: faster than {rate_bytes_per_s} B/s",
        bytes.len()
    );
    assert!(
        took < Duration::from_secs(30),
        "{took}: the rate is a cap, not a stall"
    );
    let got = h.node("bob").store().files().content(&file).unwrap();
    assert!(got == bytes[..]);
}

#[test]
fn a_lost_ask_with_nothing_behind_it_is_sent_again_a_round_trip_later() {
    // A 48 KB file is three groups, asked in one WANT_GROUPS. Lost, no later ask carries its
    // repeat; before probes its groups waited for the deadline: two round trips, the time to
    // send them, and 100 ms.
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 8);
    h.latency = Duration::from_millis(10);
    h.run_for(Duration::from_secs(1));
    let bytes = content(48_000, 8);
    let file = post(&mut h, &bytes);
    let limit = h.now() + Duration::from_secs(5);
    // The outboard of three groups is two hashes' pairs; once held, bob's next output is
    // the ask for the groups.
    while h.node("bob").stats().blobs.outboard_bytes_received < 128 {
        assert!(h.step(limit), "no outboard within 5 s");
    }
    let wants_before = h.node("bob").stats().blobs.wants_sent;
    h.set_link("alice", "bob", false);
    let cut_at = h.now();
    assert!(h.step(limit));
    h.set_link("alice", "bob", true);
    assert_eq!(
        h.node("bob").stats().blobs.groups_verified,
        0,
        "nothing arrived past the cut"
    );
    assert!(
        h.node("bob").stats().blobs.wants_sent > wants_before,
        "the ask was sent"
    );
    run_until_complete(&mut h, &["bob"], &file, Duration::from_secs(5));
    let took = h.now().saturating_since(cut_at);
    println!("a lost ask's file whole {took} after the cut");
    // No shard has timed a round trip yet, so the probe waits the sync's estimate (100 ms
    // until it measures one) and its answer takes a round trip: 120 ms. At the deadline
    // (no probes) it took 321 ms.
    assert!(took <= Duration::from_millis(200), "took {took}");
    assert_eq!(
        h.node("bob").store().files().content(&file).unwrap(),
        bytes[..]
    );
}
