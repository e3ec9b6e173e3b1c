//! Store and server figures under load, printed (not timed tests):
//! 1. Ingest: received events stored per second as a device stores what peers push: one
//!    commit per event (the old way), per driver batch, and per group commit under a flood.
//! 2. A device holding 100,000 messages while 50 clients page through `GET /api/messages`:
//!    `POST /api/messages` -> 201 p50/p99 and `/api/health` p50/p99 meanwhile.
//! 3. Search over those 100,000 messages: `GET /api/messages?q=` p50/p99.
//! 4. Catch-up: a device switched back online after its peer took 20,000 new events, on
//!    loopback at the default 5 s rounds: events/s, bytes sent by kind, and reconcile bytes as a
//!    share of event bytes, and the CPU it took; beside it the physical limits: the machine's
//!    Ed25519 check rate on all cores, one by one and in batches, and SQLite's ingest rate.
//!
//! `cargo bench -p meshlog-backend --bench store [-- MESSAGES]`; `-- ingest` runs only 1,
//! `-- catchup` only 4 (`MESHLOG_CATCHUP_EVENTS=100000` for a larger backlog), which also
//! prints bob's count about every 100 ms while he catches up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use meshlog_backend::store::{Database, DbKey, Durability, SqliteStore};
use meshlog_core::event::signature_claim;
use meshlog_core::testing::{community_of, keys as test_keys};
use meshlog_core::{DeviceId, SignatureClaim, Store};
use support::*;

/// Events per commit under a flood: the driver's node thread keeps one transaction open while
/// full batches keep coming, for up to 16 batches or 50 ms (`GROUP_COMMIT_*` in
/// net/src/driver.rs). 50 ms at 100,000 events/s is 5,000 events; this is less.
const EVENTS_PER_GROUP_COMMIT: usize = 4_096;
/// Clients paging through history while the POST and health figures are taken.
const READERS: usize = 50;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "catchup") {
        // The physical limits first, on a machine not yet busy with the devices.
        signature_limits(20_000);
        ingest(100_000, EVENTS_PER_GROUP_COMMIT)?;
        let server = tokio::runtime::Runtime::new()?;
        let clients = tokio::runtime::Runtime::new()?;
        return clients.block_on(catch_up(server.handle(), catch_up_events()));
    }
    let only_ingest = std::env::args().any(|a| a == "ingest");
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    // The old way first, for comparison: one commit per received event.
    ingest(20_000, 1)?;
    ingest(100_000, EVENTS_PER_BATCH)?;
    ingest(100_000, EVENTS_PER_GROUP_COMMIT)?;
    signature_limits(20_000);
    if only_ingest {
        return Ok(());
    }
    // The devices get an executor of their own, as in `meshlog device`; the clients another,
    // so the figures are the server's, not the load generator's queueing.
    let server = tokio::runtime::Runtime::new()?;
    let clients = tokio::runtime::Runtime::new()?;
    clients.block_on(loaded_device(server.handle(), messages))?;
    clients.block_on(catch_up(server.handle(), 20_000))?;
    Ok(())
}

/// Events of the catch-up: 20,000 (issue 9's figure), or `MESHLOG_CATCHUP_EVENTS` (a larger
/// backlog amortises the stream's start).
fn catch_up_events() -> usize {
    std::env::var("MESHLOG_CATCHUP_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

fn ingest(events: usize, per_commit: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let sealed = events_by(
        "alice",
        &test_keys("alice", 1),
        &community_of(&["alice", "bob"], 1),
        events,
    );
    // bob stores what alice pushed: NORMAL commits, one per batch.
    let bob = DeviceId::new("bob").expect("name");
    let mut store = SqliteStore::open_with(
        &Database::new(root.path().join("ingest.sqlite3"), DbKey::random()),
        Durability::FullForOwn(bob),
    )?;
    let (cpu_before, written_before) = (cpu_time(), written_bytes());
    let started = Instant::now();
    for batch in sealed.chunks(per_commit) {
        for event in batch {
            store.insert(event, 1)?;
        }
        store.commit()?;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let written = written_bytes()
        .zip(written_before)
        .map(|(after, before)| after - before);
    println!(
        "ingest of received events (WAL, NORMAL, one commit per {per_commit}): \
         {events} events in {:.0} ms = {:.0} events/s; on CPU {}, {} written per event",
        ms(elapsed),
        events as f64 / elapsed.as_secs_f64(),
        cpu.map_or("?".into(), |cpu| format!(
            "{:.0} ms = {:.0} events per CPU-second",
            ms(cpu),
            events as f64 / cpu.as_secs_f64()
        )),
        written.map_or("?".into(), |bytes| format!(
            "{:.0} bytes",
            bytes as f64 / events as f64
        )),
    );
    Ok(())
}

/// Ed25519 checks of event signatures in one batch: as many as a device's checks ahead of its
/// node put in one (`CLAIMS_PER_BATCH` in meshlog-net's `driver/precheck.rs`).
const SIGNATURES_PER_BATCH: usize = 64;

/// The machine's rate of Ed25519 checks of event signatures on all its cores, one thread per
/// core: one check each (what a node does with a signature not checked ahead) and in batches
/// (what a device does ahead of its node, on every core; the same answer under the protocol's
/// rule, ZIP-215). A catch-up checks every event's signature once, so on a machine doing
/// nothing else it cannot beat the batch rate.
fn signature_limits(events: usize) {
    let community = community_of(&["alice", "bob"], 1);
    let sealed = events_by("alice", &test_keys("alice", 1), &community, events);
    let claims: Vec<SignatureClaim> = sealed
        .iter()
        .map(|event| signature_claim(&event.sealed, &community).expect("a sound event"))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let share = claims.len().div_ceil(cores);
    let rate = |batch: usize| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for share in claims.chunks(share) {
                scope.spawn(move || {
                    use rand_core::SeedableRng;
                    // Seeded once, as a device's checker threads do.
                    let mut rng = rand_chacha::ChaCha20Rng::from_rng(rand_core::OsRng)
                        .expect("the OS has randomness");
                    for claims in share.chunks(batch) {
                        let verified = match claims {
                            [one] => one.verify(),
                            many => SignatureClaim::verify_all(many, &mut rng),
                        };
                        assert!(verified, "every signature is sound");
                    }
                });
            }
        });
        claims.len() as f64 / started.elapsed().as_secs_f64()
    };
    let (single, batched) = (rate(1), rate(SIGNATURES_PER_BATCH));
    println!(
        "Ed25519 checks of {events} event signatures on {cores} cores: one by one (ZIP-215) \
         {single:.0}/s, in batches of {SIGNATURES_PER_BATCH} {batched:.0}/s"
    );
}

async fn loaded_device(server: &tokio::runtime::Handle, messages: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_udp, bob_udp) = setup(root.path())?;
    prefill(root.path(), "alice", "bob", messages)?;
    // bob is never started: alice holds the history, and her POSTs find no peer.
    let alice = start_on(
        server,
        options(root.path(), "alice", alice_udp, "bob", bob_udp),
    )
    .await?;
    let base = format!("http://{}", alice.http_addr);
    let client = client_for(&alice)?;
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (client, base, stop, pages) =
            (client.clone(), base.clone(), stop.clone(), pages.clone());
        readers.push(tokio::spawn(async move {
            let mut next: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                let url = match &next {
                    None => format!("{base}/api/messages?limit=100"),
                    Some(cursor) => format!("{base}/api/messages?limit=100&before={cursor}"),
                };
                let page = client.get(url).send().await?.bytes().await?;
                // The cursor is all a reader needs; finding it beats parsing 30 KB of JSON.
                next = cursor_in(&page);
                pages.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    // Let the readers get going before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                client
                    .get(format!("{base}/api/health"))
                    .send()
                    .await?
                    .bytes()
                    .await?;
                samples.push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            anyhow::Ok(samples)
        })
    };
    let pages_before = pages.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut posts = Vec::new();
    for i in 0..300 {
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/api/messages"))
            .json(&serde_json::json!({ "text": format!("posted under load {i}") }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "POST answered {}",
            response.status()
        );
        response.bytes().await?;
        posts.push(sent.elapsed());
    }
    let paged = pages.load(Ordering::Relaxed) - pages_before;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let health = health.await??;
    for reader in readers {
        reader.await??;
    }
    println!(
        "device with {messages} messages, {READERS} clients paging (100 per page, {:.0} pages/s):",
        paged as f64 / elapsed.as_secs_f64()
    );
    print_latency("  POST /api/messages -> 201", posts);
    print_latency("  GET /api/health", health);

    let mut searches = Vec::new();
    for round in 0..20 {
        for word in WORDS {
            let q = if round % 2 == 0 {
                word.to_owned()
            } else {
                format!("{}*", &word[..3])
            };
            let sent = Instant::now();
            let page: serde_json::Value = client
                .get(format!("{base}/api/messages?q={q}&limit=50"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(
                page["messages"].as_array().is_some_and(|m| !m.is_empty()),
                "{page}"
            );
            searches.push(sent.elapsed());
        }
    }
    print_latency(
        &format!("  search over {messages} messages (50 per page)"),
        searches,
    );
    stop_device(alice);
    Ok(())
}

/// Catch-up of a device back after being offline: see [`back_online`]. Bytes are what both
/// sent from the moment bob was switched back on.
async fn catch_up(server: &tokio::runtime::Handle, events: usize) -> anyhow::Result<()> {
    let run = back_online(server, events, false).await?;
    let [before, after] = [&run.before, &run.after];
    let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
    for (before, after) in before.iter().zip(after) {
        for (kind, traffic) in after["packets_sent"].as_object().into_iter().flatten() {
            let bytes = traffic["bytes"].as_u64().unwrap_or(0)
                - before["packets_sent"][kind]["bytes"].as_u64().unwrap_or(0);
            *by_kind.entry(kind.clone()).or_default() += bytes;
        }
    }
    let event_bytes = by_kind.get("EVENT").copied().unwrap_or(0);
    let reconcile_bytes: u64 = by_kind.values().sum::<u64>() - event_bytes;
    let received = after[1]["packets_received"]["EVENT"]["bytes"]
        .as_u64()
        .unwrap_or(0)
        - before[1]["packets_received"]["EVENT"]["bytes"]
            .as_u64()
            .unwrap_or(0);
    println!(
        "catch-up on loopback ({SYNC_INTERVAL_MS} ms rounds) of a device back online after \
         {events} new events (posted at {:.0}/s): {events} events in {:.0} ms = {:.0} events/s \
         (CPU of both devices and the bench meanwhile {}); sent by both {by_kind:?}; {event_bytes} event bytes ({received} received by bob; \
         {} datagrams dropped by the kernel for a full receive buffer, bob's node dropped {}), \
         {reconcile_bytes} reconcile bytes ({:.2}% of event bytes)",
        events as f64 / run.posting.as_secs_f64(),
        ms(run.catching_up),
        events as f64 / run.catching_up.as_secs_f64(),
        run.catching_up_cpu
            .map_or("?".into(), |cpu| format!("{:.0} ms", ms(cpu))),
        run.rcvbuf_errors
            .map_or("?".into(), |errors| errors.to_string()),
        after[1]["drops"],
        100.0 * reconcile_bytes as f64 / event_bytes.max(1) as f64
    );
    // Bob's count every 100 ms or so (the first poll at or past each mark).
    let mut marks = Vec::new();
    let mut next_ms = 0;
    for (at, held) in &run.timeline {
        if at.as_millis() >= next_ms {
            marks.push(format!("{}ms:{held}", at.as_millis()));
            next_ms = at.as_millis() / 100 * 100 + 100;
        }
    }
    println!("bob's new events while catching up: {}", marks.join(" "));
    Ok(())
}

/// The `next` cursor of a page's JSON (`"next":"<digits>-<hex>"`), if any.
fn cursor_in(page: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(page).ok()?;
    let at = text.rfind("\"next\":\"")? + "\"next\":\"".len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_owned())
}

fn print_latency(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{label}: {} samples, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*samples.last().expect("samples"))
    );
}

/// Time this thread has spent on a CPU (Linux): on a shared machine the wall clock also
/// counts other processes' turns, this does not.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Bytes this process has handed to `write` (Linux): the log pages and checkpoints.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))?
        .trim()
        .parse()
        .ok()
}
