//! Figures, printed (not timed tests):
//! 1. Loopback latency: `POST /api/messages` on alice until the message appears on bob's
//!    `GET /api/stream`, over 1,000 messages: p50 and p99 (targets 5 ms and 50 ms).
//! 2. SQLite ingest: received events stored per second, each insert its own commit, under
//!    `Full`, `Normal` and `FullForOwn` (what a device uses: received events commit NORMAL).
//!
//! `cargo bench -p meshlog-backend --bench loopback [-- MESSAGES]`

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meshlog_backend::device::{self, DeviceOptions};
use meshlog_backend::keys;
use meshlog_backend::store::{Database, DbKey, Durability, SqliteStore};
use meshlog_core::testing::{community_of, keys as test_keys};
use meshlog_core::{seal, DeviceId, Event, EventBody, Store};

fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(latency(messages))?;
    ingest(2_000, Durability::Full)?;
    ingest(2_000, Durability::Normal)?;
    // What a device does with events received from peers (bob's own events stay FULL).
    ingest(
        2_000,
        Durability::FullForOwn(DeviceId::new("bob").expect("name")),
    )?;
    Ok(())
}

async fn latency(messages: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let keys_dir = root.path().join("keys");
    keys::create_community(&keys_dir, &["alice".into(), "bob".into()])?;
    // Bind bob first on a free port so alice can be told where he is, and the other way round.
    let free = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr());
    let (alice_udp, bob_udp) = (free()?, free()?);
    let options = |name: &str, udp, peer: &str, peer_udp| DeviceOptions {
        name: name.into(),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        udp_addr: udp,
        peers: vec![(peer.into(), peer_udp)],
        data_dir: root.path().join(name),
        keys_dir: keys_dir.clone(),
        sync_interval_ms: 5_000,
        db_pages_max: None,
        server: Default::default(),
        record: None,
        key_retention: None,
        db_key: Default::default(),
        discovery_port: None,
        peer_exchange: true,
        introductions: true,
        file_size_max_bytes: meshlog_backend::files::FILE_SIZE_MAX_BYTES_DEFAULT,
        blob_serve_rate_bytes_per_s: None,
    };
    let alice = device::start(options("alice", alice_udp, "bob", bob_udp)).await?;
    let bob = device::start(options("bob", bob_udp, "alice", alice_udp)).await?;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("http://{}/api/stream", bob.http_addr))
        .bearer_auth(bob.token.as_str())
        .send()
        .await?
        .bytes_stream();
    let post_url = format!("http://{}/api/messages", alice.http_addr);
    let mut pending = String::new();
    let mut samples = Vec::with_capacity(messages);
    let started = Instant::now();
    for i in 0..messages {
        let sent_at = Instant::now();
        let response = client
            .post(&post_url)
            .bearer_auth(alice.token.as_str())
            .json(&serde_json::json!({ "text": format!("latency probe {i}") }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "POST answered {}",
            response.status()
        );
        let id = response.json::<serde_json::Value>().await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // Read bob's stream until a `message` frame carries this id.
        loop {
            if let Some(at) = pending.find(&id) {
                pending.drain(..at + id.len());
                break;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("bob's stream ended"))??;
            pending.push_str(&String::from_utf8_lossy(&chunk));
        }
        samples.push(sent_at.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    let pct =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "loopback latency, POST on alice -> message on bob's SSE, {messages} messages: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.0} messages/s end to end)",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*samples.last().expect("samples")),
        messages as f64 / total.as_secs_f64()
    );
    Ok(())
}

fn ingest(events: usize, durability: Durability) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let community = community_of(&["alice", "bob"], 1);
    let alice = test_keys("alice", 1);
    let sealed: Vec<_> = (0..events)
        .map(|i| {
            let event = Event {
                author: DeviceId::new("alice").expect("name"),
                created_at: meshlog_core::Instant::from_millis(i as u64),
                body: EventBody::Message {
                    text: format!("ingest {i} {}", "x".repeat(100)),
                    attachment: None,
                    auto: true,
                },
            };
            let mut nonce = [0u8; 24];
            nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seal(&event, &alice, &community, nonce).expect("seal")
        })
        .collect();
    let label = format!("{durability:?}");
    let mut store = SqliteStore::open_with(
        &Database::new(root.path().join("ingest.sqlite3"), DbKey::random()),
        durability,
    )?;
    let started = Instant::now();
    for (i, event) in sealed.iter().enumerate() {
        store.insert(event, i as u64)?;
        // The old way, for comparison: received events now commit once per batch (`store` bench).
        store.commit()?;
    }
    let elapsed = started.elapsed();
    println!(
        "sqlite ingest of alice's events (WAL, {label}, one commit per event): {events} events in {:.0} ms = {:.0} events/s",
        ms(elapsed),
        events as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
