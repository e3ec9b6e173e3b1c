//! The device server: one node on a UDP socket, its SQLite store, and the HTTP API of
//! `docs/API.md` over them.
//!
//! ```text
//!  HTTP (axum) ──commands──> Driver (meshlog-net) ──batches──> node thread: Node ──> SqliteStore
//!     │  ^                        │ DriverEvent (broadcast)
//!     │  └── frames (SSE) <── pump: network log ring, changed messages
//!     └── ReaderPools (read-only SQLite connections on blocking threads; WAL lets them read
//!         while the node's thread writes)
//! ```

pub mod api;
pub mod discovery;
pub mod epoch_keys;
pub mod join;
pub mod known_peers;
pub mod netlog;
pub mod state;
pub mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use meshlog_core::{record, Config, Duration, Node, NodeError, Store};
use meshlog_net::{os_seed, Clock, Driver, Recorder, SystemClock};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::api::access::{AccessError, Token};
use crate::api::serve::{ServeError, Server, ServerOptions};
use crate::keys::{self, KeysError};
use crate::names::{device_id, BadDeviceName};
use crate::store::{
    AtRestError, Database, DbError, Durability, KeySource, ReaderPool, SqliteStore,
};
use state::{DeviceState, Place};

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("database key: {0}")]
    DbKey(#[from] AtRestError),
    #[error("node: {0}")]
    Node(#[from] NodeError),
    #[error("invalid peer {0:?}: expected NAME@HOST:PORT")]
    BadPeer(String),
    #[error("peer: {0}")]
    PeerName(#[from] BadDeviceName),
    #[error("binding {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("reading the store for the recording: {0}")]
    Store(#[from] meshlog_core::StoreError),
    #[error("joining: {0}")]
    Join(String),
    #[error("file store: {0}")]
    Files(#[from] crate::files::BlobError),
}

#[derive(Clone, Debug)]
pub struct DeviceOptions {
    pub name: String,
    pub http_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub peers: Vec<(String, SocketAddr)>,
    pub data_dir: PathBuf,
    /// Where `community.json` and `NAME.device.json` are.
    pub keys_dir: PathBuf,
    pub sync_interval_ms: u64,
    /// Caps the database at this many 4 KiB pages (writes beyond fail as on a full disk).
    pub db_pages_max: Option<u32>,
    /// Who may call the HTTP API, and how much it takes on.
    pub server: ServerOptions,
    /// Record the node's inputs to this file (`meshlog replay` replays it), at most this many
    /// bytes.
    pub record: Option<(PathBuf, u64)>,
    /// Forget epoch keys (and receive-key secrets) this long after a newer epoch replaced
    /// them (forward secrecy, `Config::key_retention`); `None`: keep them.
    pub key_retention: Option<Duration>,
    /// Where the database's key comes from (`store/at_rest.rs`).
    pub db_key: KeySource,
    /// LAN discovery on this UDP port (`discovery.rs`); `None`: off.
    pub discovery_port: Option<u16>,
    /// Publish this device's address record, which members pass on (peer exchange,
    /// `core/src/node/records.rs`); off, it is reached only by those told its address.
    pub peer_exchange: bool,
    /// Introduce peers to each other and punch toward introduced ones (`core/src/node/punch.rs`);
    /// off, a device talks only over the links it was given.
    pub introductions: bool,
    /// The largest file `POST /api/files` takes (and the blob store keeps); larger is 413.
    pub file_size_max_bytes: u64,
    /// File bytes per second served to each peer at most (`Config::blob_serve_rate`); `None`:
    /// the core's default, 64 MiB/s.
    pub blob_serve_rate_bytes_per_s: Option<u64>,
}

/// Read connections for scans (pages, searches, files): two cores run at most two queries at a
/// time, so more would only queue inside SQLite; clients beyond wait their turn on the async
/// side, holding no thread.
const SCAN_READERS: usize = 3;
/// Read connections for single-message look-ups, kept apart so a POST's answer never waits
/// behind scans.
const LOOKUP_READERS: usize = 2;

/// Every event's sealed bytes, in id order: the store as a replay must rebuild it.
fn stored_events(store: &SqliteStore) -> Result<Vec<Vec<u8>>, DeviceError> {
    let mut ids = store.ids()?;
    ids.sort();
    let mut events = Vec::with_capacity(ids.len());
    for id in ids {
        events.extend(store.get(&id)?);
    }
    Ok(events)
}

/// Parses `bob@127.0.0.1:8002`.
pub fn parse_peer(text: &str) -> Result<(String, SocketAddr), DeviceError> {
    let (name, addr) = text
        .split_once('@')
        .ok_or_else(|| DeviceError::BadPeer(text.to_owned()))?;
    let addr = addr
        .parse()
        .map_err(|_| DeviceError::BadPeer(text.to_owned()))?;
    Ok((name.to_owned(), addr))
}

/// A device that is up: both sockets bound, the driver and HTTP server running.
#[derive(Debug)]
pub struct RunningDevice {
    pub http_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub state: DeviceState,
    /// What a client shows to use the API (kept in the data directory's `api-token`).
    pub token: Token,
    pub server: JoinHandle<std::io::Result<()>>,
}

/// Opens the store, binds both sockets (port 0 picks a free one) and starts serving.
pub async fn start(options: DeviceOptions) -> Result<RunningDevice, DeviceError> {
    let device_keys = keys::load_device(&options.keys_dir, &options.name)?;
    // The directory holds the API token and the database key (`db.key`): the owner's only.
    let token = Token::load_or_create(&options.data_dir)?;
    let db = Database::in_data_dir(&options.data_dir, &options.db_key)?;
    if options.db_key == KeySource::DataDir {
        // The demo's way, said where the owner will see it: the key beside the data protects a
        // copy of the database, not a copy of the whole directory.
        tracing::info!(
            key_file = %options.data_dir.join(crate::store::KEY_FILE).display(),
            "the database is encrypted at rest under a key kept beside it; keep the key \
             elsewhere with --db-key-file, or use --passphrase-env"
        );
    }
    // First, so a wrong key or passphrase is reported as such (`DbError::WrongKey`).
    let store = SqliteStore::open_with(&db, Durability::FullForOwn(device_keys.device.clone()))?;
    // The blob store, shared: the API uploads and serves through it, the node (through the
    // SQLite store's `Store::blobs`) fetches and serves files between devices.
    let blobs_dir = options.data_dir.join(crate::files::FILES_DIR);
    let files = crate::files::FileService::new(crate::files::BlobStore::open(
        &blobs_dir,
        options.file_size_max_bytes,
    )?);
    let (blobs_changed, mut changed_blobs) =
        tokio::sync::mpsc::channel(crate::files::CHANGES_QUEUED);
    let store =
        store.with_blobs(crate::files::NodeBlobs::new(files.store.clone()).notify(blobs_changed));
    if let Some(pages) = options.db_pages_max {
        store.limit_pages(pages)?;
    }
    // Every epoch key this device held when it stopped, so it opens all it could before.
    let (held_keys, held_in_clear) = epoch_keys::load_noting_clear(&options.data_dir, db.key())?;
    if held_in_clear {
        // Written before the file was sealed: sealed now, before anything else runs.
        epoch_keys::save(&options.data_dir, db.key(), &held_keys)?;
    }
    // Received events' signatures are checked in batches on every core before the node opens
    // them (meshlog-net's `driver/precheck.rs`); the node finds the answers in this memo.
    let community = keys::load_community(&options.keys_dir)?
        .with_epoch_keys(held_keys)
        .with_signature_prechecks();
    let scans = ReaderPool::open(&db, SCAN_READERS)?;
    let lookups = ReaderPool::open(&db, LOOKUP_READERS)?;

    // Peers met through invites (`known_peers.rs`), then the flags, which win for a name.
    let mut peer_addrs: BTreeMap<_, SocketAddr> = known_peers::load(&options.data_dir)?;
    for (name, addr) in &options.peers {
        let device = device_id(name)?;
        peer_addrs.insert(device, *addr);
    }
    let mut config = Config::new(
        device_keys,
        community,
        peer_addrs.keys().cloned().collect(),
        os_seed(),
    );
    config.sync_interval = Duration::from_millis(options.sync_interval_ms);
    config.sync_jitter = Duration::from_millis(options.sync_interval_ms / 10);
    config.key_retention = options.key_retention;
    if let Some(rate) = options.blob_serve_rate_bytes_per_s {
        config.blob_serve_rate = rate;
    }
    // Real devices sit behind NATs: introduce peers to each other and punch (`node/punch.rs`).
    config.introductions = options.introductions;
    // The wall clock as the epoch floor: a device whose store was lost still starts above the
    // epochs its peers saw (see `Store::next_epoch`).
    config.epoch_floor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let clock = SystemClock;
    // What a replay needs of the store, read before the node owns it.
    let held = match &options.record {
        Some(_) => stored_events(&store)?,
        None => Vec::new(),
    };
    let started_at = clock.now();
    let recording = options.record.as_ref().map(|(path, size_max_bytes)| {
        let start = record::Start {
            device: config.keys.device.clone(),
            keys_dir: options.keys_dir.display().to_string(),
            peers: peer_addrs
                .iter()
                .map(|(peer, addr)| (peer.clone(), addr.to_string()))
                .collect(),
            seed: config.seed,
            tunables: record::Tunables::of(&config),
            epoch: 0,
            started_at,
            events: held,
        };
        (path.clone(), *size_max_bytes, start)
    });
    let mut node = Node::new(config, store, started_at)?;
    // The node left out the peers its roster removed: the file forgets them too.
    let peers: Vec<_> = node.peers().into_iter().map(|p| p.device).collect();
    known_peers::retain(&options.data_dir, |device| peers.contains(device))?;

    let socket = bind_udp(options.udp_addr).map_err(|source| DeviceError::Bind {
        what: "udp",
        addr: options.udp_addr,
        source,
    })?;
    let udp_addr = socket
        .local_addr()
        .map_err(|err| DeviceError::Io(PathBuf::from("udp socket"), err))?;
    // Where this device listens, for the address record its peers pass along (peer exchange:
    // `core/src/node/records.rs`), unless `--no-peer-exchange`. A wildcard bind names no
    // address others could use. Not under `--record`: a recording holds the node's inputs, and this is not one of them.
    if options.peer_exchange && !udp_addr.ip().is_unspecified() && recording.is_none() {
        node.set_own_addresses(started_at, &[udp_addr]);
    }
    let epoch = node.epoch();
    let (mut driver, handle) = Driver::new(node, socket, peer_addrs, clock);
    if let Some((path, size_max_bytes, mut start)) = recording {
        start.epoch = epoch;
        let recorder = Recorder::new(&path, &start, size_max_bytes)
            .map_err(|err| DeviceError::Io(path.clone(), err))?;
        driver = driver.record(recorder);
    }
    // SQLite blocks (fsync on every own event): the node and its store get a thread.
    let driver = driver
        .with_node_thread()
        .map_err(|err| DeviceError::Io(PathBuf::from("node thread"), err))?;
    let place = Place {
        udp_addr,
        data_dir: options.data_dir.clone(),
        at_rest: db.key().clone(),
    };
    let mut state = DeviceState::new(options.name.clone(), handle, scans, lookups, place);
    state.files = Some(files);
    // Subscribe before the driver runs, so the log misses nothing from the start.
    tokio::spawn(state.clone().pump(state.driver.subscribe()));
    // A file arriving by the blob transfer: its messages' views (progress, complete) again.
    let announcer = state.clone();
    tokio::spawn(async move {
        while let Some(blob) = changed_blobs.recv().await {
            announcer
                .publish_messages_with_file(meshlog_core::FileId(blob.0))
                .await;
        }
    });
    tokio::spawn(driver.run());
    tokio::spawn(crate::api::stream::stats_ticker(state.clone()));
    if let Some(port) = options.discovery_port {
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        let started = discovery::start(state.driver.clone(), udp_addr, port).map_err(|source| {
            DeviceError::Bind {
                what: "discovery udp",
                addr,
                source,
            }
        })?;
        tracing::info!(port, destinations = ?started.destinations, "LAN discovery on");
    }

    let http = Server::bind(options.http_addr, &options.server, token.clone()).await?;
    let http_addr = http.local_addr();
    let app = crate::api::router(state.clone(), http.stream_slots());
    let server = http.spawn(app);
    Ok(RunningDevice {
        http_addr,
        udp_addr,
        state,
        token,
        server,
    })
}

/// Receive and send buffer asked of the kernel for the device's UDP socket. A peer catching up
/// streams events in bursts faster than the node drains them, and with the kernel's default
/// (208 KiB here) 18% of a 20,000-event catch-up was dropped at the socket (`cargo bench
/// --bench store -- catchup`). The kernel caps it at `net.core.rmem_max`/`wmem_max`.
const UDP_BUFFER_BYTES: usize = 4 << 20;

fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer only costs a catch-up some resends.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket.into())
}
