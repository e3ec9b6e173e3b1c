//! Store and server figures under load, printed (not timed tests):
//! 1. Ingest: received events stored per second as a device stores what peers push: one
//!    commit per event (the old way), per driver batch, and per group commit under a flood.
//! 2. A device holding 100,000 messages while 50 clients page through `GET /api/messages`:
//!    `POST /api/messages` -> 201 p50/p99 and `/api/health` p50/p99 meanwhile.
//! 3. Search over those 100,000 messages: `GET /api/messages?q=` p50/p99.
//! 4. Catch-up: a device switched back online after its peer took 20,000 new events, on
//!    loopback at the default 5 s rounds: events/s, bytes sent by kind, and reconcile bytes as a
//!    share of event bytes.
//!
//! `cargo bench -p meshlog-backend --bench store [-- MESSAGES]`; `-- ingest` runs only 1,
//! `-- catchup` only 4.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshlog_backend::device::{self, DeviceOptions, RunningDevice};
use meshlog_backend::keys;
use meshlog_backend::store::{db_path, Durability, SqliteStore};
use meshlog_core::testing::{community_of, keys as test_keys};
use meshlog_core::{seal, Community, DeviceId, DeviceKeys, Event, EventBody, OpenedEvent, Store};

/// Events per commit in the ingest figure: what one driver batch (up to 256 datagrams of a
/// few packed events each) hands the store.
const EVENTS_PER_BATCH: usize = 512;
/// Events per commit under a flood: the driver's node thread keeps one transaction open while
/// full batches keep coming, for up to 16 batches or 50 ms (`GROUP_COMMIT_*` in
/// net/src/driver.rs). 50 ms at 100,000 events/s is 5,000 events; this is less.
const EVENTS_PER_GROUP_COMMIT: usize = 4_096;
/// Clients paging through history while the POST and health figures are taken.
const READERS: usize = 50;
const WORDS: [&str; 8] = [
    "deploy", "lunch", "invoice", "garden", "kernel", "piano", "harbor", "quartz",
];

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "catchup") {
        let server = tokio::runtime::Runtime::new()?;
        let clients = tokio::runtime::Runtime::new()?;
        return clients.block_on(catch_up(server.handle(), 20_000));
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

fn events_by(author: &str, keys: &DeviceKeys, community: &Community, n: usize) -> Vec<OpenedEvent> {
    (0..n)
        .map(|i| {
            let event = Event {
                author: DeviceId::new(author).expect("name"),
                created_at: meshlog_core::Instant::from_millis(1_000_000 + i as u64),
                body: EventBody::Message {
                    text: format!(
                        "note {i} about the {} {}",
                        WORDS[i % WORDS.len()],
                        "x".repeat(60)
                    ),
                    attachment: None,
                    auto: true,
                },
            };
            let mut nonce = [0u8; 24];
            nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seal(&event, keys, community, nonce).expect("seal")
        })
        .collect()
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
        &root.path().join("ingest.sqlite3"),
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

/// A community of alice and bob in `root/keys`; `(alice_udp, bob_udp)` free ports.
fn setup(root: &Path) -> anyhow::Result<(std::net::SocketAddr, std::net::SocketAddr)> {
    keys::create_community(&root.join("keys"), &["alice".into(), "bob".into()])?;
    let free = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr());
    Ok((free()?, free()?))
}

/// `sync_interval_ms` of the devices: the `meshlog device` default, so catch-up is measured
/// as a user gets it (the stream must not wait for rounds).
const SYNC_INTERVAL_MS: u64 = 5_000;

fn options(
    root: &Path,
    name: &str,
    udp: std::net::SocketAddr,
    peer: &str,
    peer_udp: std::net::SocketAddr,
) -> DeviceOptions {
    DeviceOptions {
        name: name.into(),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        udp_addr: udp,
        peers: vec![(peer.into(), peer_udp)],
        data_dir: root.join(name),
        keys_dir: root.join("keys"),
        sync_interval_ms: SYNC_INTERVAL_MS,
        db_pages_max: None,
        server: Default::default(),
        record: None,
    }
}

/// Starts a device on the devices' runtime.
async fn start_on(
    server: &tokio::runtime::Handle,
    root: &Path,
    name: &str,
    udp: std::net::SocketAddr,
    peer: &str,
    peer_udp: std::net::SocketAddr,
) -> anyhow::Result<RunningDevice> {
    let options = options(root, name, udp, peer, peer_udp);
    Ok(server.spawn(device::start(options)).await??)
}

/// Writes `n` of `author`'s messages into `root/<holder>`'s database before it starts.
fn prefill(root: &Path, holder: &str, author: &str, n: usize) -> anyhow::Result<()> {
    let community = keys::load_community(&root.join("keys"))?;
    let author_keys = keys::load_device(&root.join("keys"), author)?;
    let dir = root.join(holder);
    std::fs::create_dir_all(&dir)?;
    let mut store = SqliteStore::open_with(&db_path(&dir), Durability::Normal)?;
    for batch in events_by(author, &author_keys, &community, n).chunks(EVENTS_PER_BATCH) {
        store.insert_all(batch, 1)?;
    }
    Ok(())
}

async fn loaded_device(server: &tokio::runtime::Handle, messages: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_udp, bob_udp) = setup(root.path())?;
    prefill(root.path(), "alice", "bob", messages)?;
    // bob is never started: alice holds the history, and her POSTs find no peer.
    let alice = start_on(server, root.path(), "alice", alice_udp, "bob", bob_udp).await?;
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

/// Catch-up of a device back after being offline (issue 9's "a device back after 20,000 new
/// events"): alice and bob sync a few messages, bob is switched offline through his API
/// (`POST /api/device-status`, the page's switch: his process, store and sockets stay up,
/// his node neither sends nor takes datagrams), alice takes `events` POSTs, then bob is
/// switched back on and the clock runs until his store holds all of them. Bytes are what both
/// sent from that moment on.
async fn catch_up(server: &tokio::runtime::Handle, events: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_udp, bob_udp) = setup(root.path())?;
    let alice = start_on(server, root.path(), "alice", alice_udp, "bob", bob_udp).await?;
    let bob = start_on(server, root.path(), "bob", bob_udp, "alice", alice_udp).await?;
    let (alice_api, bob_api) = (Api::of(&alice)?, Api::of(&bob)?);
    post_messages(&alice_api, 10, "before").await?;
    let synced = alice_api.stats().await?["events"].as_u64().unwrap_or(0);
    bob_api
        .wait_for_events(synced, Duration::from_secs(30))
        .await?;
    bob_api.set_online(false).await?;
    let posting = Instant::now();
    post_messages(&alice_api, events, "while bob was away").await?;
    let posted = posting.elapsed();
    let target = synced + events as u64;
    anyhow::ensure!(bob_api.stats().await?["events"].as_u64() == Some(synced));
    let before = [alice_api.stats().await?, bob_api.stats().await?];
    let rcvbuf_errors_before = udp_rcvbuf_errors();
    let started = Instant::now();
    bob_api.set_online(true).await?;
    bob_api
        .wait_for_events(target, Duration::from_secs(300))
        .await?;
    let elapsed = started.elapsed();
    let after = [alice_api.stats().await?, bob_api.stats().await?];
    // Datagrams the kernel threw away because a socket's receive buffer was full (all
    // sockets of the machine: other processes may add to it).
    let rcvbuf_errors = udp_rcvbuf_errors()
        .zip(rcvbuf_errors_before)
        .map_or("?".into(), |(after, before)| (after - before).to_string());
    let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
    for (before, after) in before.iter().zip(&after) {
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
         {events} new events (posted at {:.0}/s): {events} events in {:.0} ms = {:.0} events/s; \
         sent by both {by_kind:?}; {event_bytes} event bytes ({received} received by bob; \
         {rcvbuf_errors} datagrams dropped by the kernel for a full receive buffer, bob's node \
         dropped {}), {reconcile_bytes} reconcile bytes ({:.2}% of event bytes)",
        events as f64 / posted.as_secs_f64(),
        ms(elapsed),
        events as f64 / elapsed.as_secs_f64(),
        after[1]["drops"],
        100.0 * reconcile_bytes as f64 / event_bytes.max(1) as f64
    );
    stop_device(alice);
    stop_device(bob);
    Ok(())
}

/// POSTs `n` messages, `POSTS_IN_FLIGHT` at a time, each answered 201.
async fn post_messages(api: &Api, n: usize, text: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let mut posts = futures_util::stream::iter(0..n)
        .map(|i| {
            api.client
                .post(format!("{}/api/messages", api.base))
                .json(&serde_json::json!({ "text": format!("{text} {i}") }))
                .send()
        })
        .buffer_unordered(POSTS_IN_FLIGHT);
    while let Some(response) = posts.next().await {
        let status = response?.status();
        anyhow::ensure!(status == 201, "POST answered {status}");
    }
    Ok(())
}

/// POSTs in flight at once while a backlog is made: enough to keep the device's writer busy.
const POSTS_IN_FLIGHT: usize = 32;

/// One device's API, with its token.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn of(device: &RunningDevice) -> anyhow::Result<Self> {
        Ok(Api {
            client: client_for(device)?,
            base: format!("http://{}", device.http_addr),
        })
    }

    async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .get(format!("{}/api/stats", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn set_online(&self, online: bool) -> anyhow::Result<()> {
        self.client
            .post(format!("{}/api/device-status", self.base))
            .json(&serde_json::json!({ "online": online }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Polls the stats until the store holds `events`, or fails after `limit`.
    async fn wait_for_events(&self, events: u64, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let held = self.stats().await?["events"].as_u64().unwrap_or(0);
            if held >= events {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} holds {held} of {events} events after {limit:?}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client that shows `device`'s API token on every request.
fn client_for(device: &RunningDevice) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", device.token.as_str()).parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// The `next` cursor of a page's JSON (`"next":"<digits>-<hex>"`), if any.
fn cursor_in(page: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(page).ok()?;
    let at = text.rfind("\"next\":\"")? + "\"next\":\"".len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_owned())
}

fn stop_device(device: RunningDevice) {
    device.server.abort();
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

/// `RcvbufErrors` of the machine's UDP counters (Linux `/proc/net/snmp`).
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
