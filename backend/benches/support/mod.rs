//! What the device benches share: two devices on loopback, their APIs, the units printed.

// Each bench uses a part of this; what one leaves unread another reads.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use meshlog_backend::device::{self, DeviceOptions, RunningDevice};
use meshlog_backend::keys;
use meshlog_backend::store::{Database, Durability, KeySource, SqliteStore};
use meshlog_core::{seal, Community, DeviceId, DeviceKeys, Event, EventBody, OpenedEvent, Store};

/// A community of alice and bob in `root/keys`; `(alice_udp, bob_udp)` free ports.
pub fn setup(root: &Path) -> anyhow::Result<(std::net::SocketAddr, std::net::SocketAddr)> {
    keys::create_community(&root.join("keys"), &["alice".into(), "bob".into()])?;
    let free = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr());
    Ok((free()?, free()?))
}

/// `sync_interval_ms` of the devices: the `meshlog device` default, so catch-up is measured
/// as a user gets it (the stream must not wait for rounds).
pub const SYNC_INTERVAL_MS: u64 = 5_000;

pub fn options(
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
        key_retention: None,
        db_key: Default::default(),
        discovery_port: None,
        peer_exchange: true,
        introductions: true,
        file_size_max_bytes: meshlog_backend::files::FILE_SIZE_MAX_BYTES_DEFAULT,
        blob_serve_rate_bytes_per_s: None,
    }
}

/// Starts a device on the devices' runtime.
pub async fn start_on(
    server: &tokio::runtime::Handle,
    options: DeviceOptions,
) -> anyhow::Result<RunningDevice> {
    Ok(server.spawn(device::start(options)).await??)
}

/// One run of [`back_online`]: its directory (keys, data, recordings) and what it measured.
pub struct BackOnline {
    pub root: tempfile::TempDir,
    /// Alice taking the `events` POSTs: wall clock, and this process's CPU time (both
    /// devices, the clients and the bench).
    pub posting: Duration,
    pub posting_cpu: Option<Duration>,
    /// From bob switched back on until he holds them all.
    pub catching_up: Duration,
    pub catching_up_cpu: Option<Duration>,
    /// Both devices' `/api/stats` when bob was switched back on, and when he held them all.
    pub before: [serde_json::Value; 2],
    pub after: [serde_json::Value; 2],
    /// Datagrams the kernel threw away meanwhile for a full receive buffer (every socket of the
    /// machine: other processes may add to it).
    pub rcvbuf_errors: Option<u64>,
    /// Bob's count of the new events at each poll while catching up, from when he was
    /// switched back on: where the time went (the stream's start, then the bulk). It is what
    /// his store has committed, so it moves in group commits; and `/api/stats` waits for his
    /// node thread's snapshot, so a poll is late while the node works through a batch.
    pub timeline: Vec<(Duration, u64)>,
}

/// Issue 9's "a device back after 20,000 new events": alice and bob sync a few messages, bob
/// is switched offline through his API (`POST /api/device-status`, the page's switch: his
/// process, store and sockets stay up, his node neither sends nor takes datagrams), alice
/// takes `events` POSTs, then bob is switched back on and the clock runs until his store
/// holds all of them. With `record`, both record every input (`--record`) to
/// `root/NAME.rec`.
pub async fn back_online(
    server: &tokio::runtime::Handle,
    events: usize,
    record: bool,
) -> anyhow::Result<BackOnline> {
    let root = tempfile::tempdir()?;
    let (alice_udp, bob_udp) = setup(root.path())?;
    let with_record = |mut options: DeviceOptions| {
        if record {
            let path = root.path().join(format!("{}.rec", options.name));
            options.record = Some((path, RECORDING_SIZE_MAX_BYTES));
        }
        options
    };
    let alice = start_on(
        server,
        with_record(options(root.path(), "alice", alice_udp, "bob", bob_udp)),
    )
    .await?;
    let bob = start_on(
        server,
        with_record(options(root.path(), "bob", bob_udp, "alice", alice_udp)),
    )
    .await?;
    let (alice_api, bob_api) = (Api::of(&alice)?, Api::of(&bob)?);
    post_messages(&alice_api, 10, "before").await?;
    let synced = alice_api.stats().await?["events"].as_u64().unwrap_or(0);
    bob_api
        .wait_for_events(synced, Duration::from_secs(30))
        .await?;
    bob_api.set_online(false).await?;
    let (posting, cpu) = (Instant::now(), process_cpu_time());
    post_messages(&alice_api, events, "while bob was away").await?;
    let (posting, posting_cpu) = (posting.elapsed(), since(cpu));
    anyhow::ensure!(bob_api.stats().await?["events"].as_u64() == Some(synced));
    let before = [alice_api.stats().await?, bob_api.stats().await?];
    let rcvbuf_errors_before = udp_rcvbuf_errors();
    let (started, cpu) = (Instant::now(), process_cpu_time());
    bob_api.set_online(true).await?;
    // Polled as `wait_for_events` does (every 20 ms), keeping what each poll saw.
    let mut timeline = Vec::new();
    loop {
        let held = bob_api.stats().await?["events"].as_u64().unwrap_or(0) - synced;
        timeline.push((started.elapsed(), held));
        if held >= events as u64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "bob holds {held} of {events} new events after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (catching_up, catching_up_cpu) = (started.elapsed(), since(cpu));
    let after = [alice_api.stats().await?, bob_api.stats().await?];
    let rcvbuf_errors = udp_rcvbuf_errors()
        .zip(rcvbuf_errors_before)
        .map(|(after, before)| after - before);
    stop_device(alice);
    stop_device(bob);
    Ok(BackOnline {
        root,
        posting,
        posting_cpu,
        catching_up,
        catching_up_cpu,
        before,
        after,
        rcvbuf_errors,
        timeline,
    })
}

/// User and system time of this whole process (Linux `/proc/self/stat`, in clock ticks of
/// 10 ms): on a shared machine the wall clock also counts other processes' turns.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

pub fn since(cpu: Option<Duration>) -> Option<Duration> {
    Some(process_cpu_time()? - cpu?)
}

/// The `meshlog device` default (`--record-max-mib 1024`).
pub const RECORDING_SIZE_MAX_BYTES: u64 = 1 << 30;

/// `RcvbufErrors` of the machine's UDP counters (Linux `/proc/net/snmp`).
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// POSTs `n` messages, `POSTS_IN_FLIGHT` at a time, each answered 201.
pub async fn post_messages(api: &Api, n: usize, text: &str) -> anyhow::Result<()> {
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
pub const POSTS_IN_FLIGHT: usize = 32;

/// One device's API, with its token.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn of(device: &RunningDevice) -> anyhow::Result<Self> {
        Ok(Api {
            client: client_for(device)?,
            base: format!("http://{}", device.http_addr),
        })
    }

    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .get(format!("{}/api/stats", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn set_online(&self, online: bool) -> anyhow::Result<()> {
        self.client
            .post(format!("{}/api/device-status", self.base))
            .json(&serde_json::json!({ "online": online }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Polls the stats until the store holds `events`, or fails after `limit`.
    pub async fn wait_for_events(&self, events: u64, limit: Duration) -> anyhow::Result<()> {
        self.wait_for_stat("events", events, limit).await
    }

    /// Polls the stats until `field` (`events`, `messages`, ...) is at least `n`, or fails
    /// after `limit`.
    pub async fn wait_for_stat(&self, field: &str, n: u64, limit: Duration) -> anyhow::Result<()> {
        self.poll_stat(field, n, limit, Duration::from_millis(20))
            .await
    }

    /// As [`Api::wait_for_stat`], asking every `poll` (a finer poll measures a short wait
    /// more closely, at the cost of more requests to the device).
    pub async fn poll_stat(
        &self,
        field: &str,
        n: u64,
        limit: Duration,
        poll: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let held = self.stats().await?[field].as_u64().unwrap_or(0);
            if held >= n {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} holds {held} of {n} {field} after {limit:?}",
                self.base
            );
            tokio::time::sleep(poll).await;
        }
    }
}

/// A client that shows `device`'s API token on every request.
pub fn client_for(device: &RunningDevice) -> anyhow::Result<reqwest::Client> {
    client_with_token(device.token.as_str())
}

/// A client that shows `token` on every request.
pub fn client_with_token(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

pub fn stop_device(device: RunningDevice) {
    device.server.abort();
}

/// The `runs=N` argument of a bench (`cargo bench ... -- runs=N`), or `default`.
pub fn runs_arg(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix("runs=")?.parse().ok())
        .unwrap_or(default)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Events per commit in the ingest figure: what one driver batch (up to 256 datagrams of a
/// few packed events each) hands the store.
pub const EVENTS_PER_BATCH: usize = 512;
/// Words the prefilled messages are about (the search figure looks for them).
pub const WORDS: [&str; 8] = [
    "deploy", "lunch", "invoice", "garden", "kernel", "piano", "harbor", "quartz",
];

/// `n` messages by `author`, sealed as a device seals them.
pub fn events_by(
    author: &str,
    keys: &DeviceKeys,
    community: &Community,
    n: usize,
) -> Vec<OpenedEvent> {
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

/// Writes `n` of `author`'s messages into `root/<holder>`'s database before it starts.
pub fn prefill(root: &Path, holder: &str, author: &str, n: usize) -> anyhow::Result<()> {
    let community = keys::load_community(&root.join("keys"))?;
    let author_keys = keys::load_device(&root.join("keys"), author)?;
    let dir = root.join(holder);
    std::fs::create_dir_all(&dir)?;
    let mut store = SqliteStore::open_with(
        &Database::in_data_dir(&dir, &KeySource::DataDir)?,
        Durability::Normal,
    )?;
    for batch in events_by(author, &author_keys, &community, n).chunks(EVENTS_PER_BATCH) {
        store.insert_all(batch, 1)?;
    }
    Ok(())
}
