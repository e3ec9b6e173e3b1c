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
pub mod netlog;
pub mod state;
pub mod stream;
pub mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use meshlog_core::{Config, DeviceId, Duration, Node, NodeError};
use meshlog_net::{os_seed, Clock, Driver, SystemClock};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::keys::{self, KeysError};
use crate::store::{db_path, DbError, Durability, ReaderPool, SqliteStore};
use state::DeviceState;

/// Request bodies above this get 413: a 384 KB attachment, base64'd, plus the message.
pub const BODY_LEN_MAX: usize = 512 * 1024;

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("node: {0}")]
    Node(#[from] NodeError),
    #[error("invalid peer {0:?}: expected NAME@HOST:PORT")]
    BadPeer(String),
    #[error("binding {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
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
}

/// Read connections for scans (pages, searches, files): two cores run at most two queries at a
/// time, so more would only queue inside SQLite; clients beyond wait their turn on the async
/// side, holding no thread.
const SCAN_READERS: usize = 3;
/// Read connections for single-message look-ups, kept apart so a POST's answer never waits
/// behind scans.
const LOOKUP_READERS: usize = 2;

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
    pub server: JoinHandle<std::io::Result<()>>,
}

/// Opens the store, binds both sockets (port 0 picks a free one) and starts serving.
pub async fn start(options: DeviceOptions) -> Result<RunningDevice, DeviceError> {
    let community = keys::load_community(&options.keys_dir)?;
    let device_keys = keys::load_device(&options.keys_dir, &options.name)?;
    std::fs::create_dir_all(&options.data_dir)
        .map_err(|err| DeviceError::Io(options.data_dir.clone(), err))?;
    let db = db_path(&options.data_dir);
    let store = SqliteStore::open_with(&db, Durability::FullForOwn(device_keys.device.clone()))?;
    if let Some(pages) = options.db_pages_max {
        store.limit_pages(pages)?;
    }
    let scans = ReaderPool::open(&db, SCAN_READERS)?;
    let lookups = ReaderPool::open(&db, LOOKUP_READERS)?;

    let mut peer_addrs = BTreeMap::new();
    for (name, addr) in &options.peers {
        let device = DeviceId::new(name).ok_or_else(|| DeviceError::BadPeer(name.clone()))?;
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
    let clock = SystemClock;
    let node = Node::new(config, store, clock.now())?;

    let socket = tokio::net::UdpSocket::bind(options.udp_addr)
        .await
        .map_err(|source| DeviceError::Bind {
            what: "udp",
            addr: options.udp_addr,
            source,
        })?;
    let udp_addr = socket
        .local_addr()
        .map_err(|err| DeviceError::Io(PathBuf::from("udp socket"), err))?;
    let (driver, handle) = Driver::new(node, socket, peer_addrs, clock);
    // SQLite blocks (fsync on every own event): the node and its store get a thread.
    let driver = driver
        .with_node_thread()
        .map_err(|err| DeviceError::Io(PathBuf::from("node thread"), err))?;
    let state = DeviceState::new(options.name.clone(), handle, scans, lookups);
    // Subscribe before the driver runs, so the log misses nothing from the start.
    tokio::spawn(state.clone().pump(state.driver.subscribe()));
    tokio::spawn(driver.run());
    tokio::spawn(state.clone().stats_ticker());

    let listener = tokio::net::TcpListener::bind(options.http_addr)
        .await
        .map_err(|source| DeviceError::Bind {
            what: "http",
            addr: options.http_addr,
            source,
        })?;
    let http_addr = listener
        .local_addr()
        .map_err(|err| DeviceError::Io(PathBuf::from("http socket"), err))?;
    let app = router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(RunningDevice {
        http_addr,
        udp_addr,
        state,
        server,
    })
}

pub fn router(state: DeviceState) -> Router {
    Router::new()
        .route("/api/health", get(api::health))
        .route(
            "/api/messages",
            post(api::post_message).get(api::get_messages),
        )
        .route("/api/messages/{id}/reactions", post(api::post_reaction))
        .route("/api/files/{id}", get(api::get_file))
        .route("/api/stats", get(api::get_stats))
        .route("/api/device-status", post(api::post_device_status))
        .route("/api/network-events", get(api::get_network_events))
        .route("/api/stream", get(stream::stream))
        .fallback(crate::http::not_found)
        .layer(DefaultBodyLimit::max(BODY_LEN_MAX))
        .layer(crate::http::cors())
        .with_state(state)
}
