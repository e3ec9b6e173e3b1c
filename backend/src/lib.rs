//! # meshlog-backend
//!
//! The production side of meshlog and the `meshlog` binary.
//!
//! ```text
//! meshlog community new --devices alice,bob --out keys/
//! meshlog device --name alice --http 127.0.0.1:3001 --udp 127.0.0.1:8001 \
//!                --peer bob@127.0.0.1:8002 --data alice/ --keys keys/
//! meshlog sim-service --http 127.0.0.1:3005 --data sim/ --device alice=http://127.0.0.1:3001 ...
//! meshlog demo            # all of the above plus the page on :5173, keys made on first run
//! ```
//!
//! - [`store`]: SQLite storage (rusqlite, bundled, WAL) implementing core's `Store`, with
//!   decrypted `messages` / `reactions` / `file_chunks` views updated in the insert's
//!   transaction, and a separate read connection for queries. Commits of the device's own
//!   events fsync; received ones need not (see [`store::Durability`]).
//! - [`keys`]: community and device key files from OS randomness (`meshlog community new`),
//!   with the genesis admins.
//! - [`device`]: the device server (`meshlog device`): a node driven over real UDP by
//!   `meshlog-net`, behind the HTTP/SSE API of `docs/API.md`. A `201` is sent only after the
//!   event's transaction committed. The epoch keys it holds are kept in its data directory
//!   ([`device::epoch_keys`]).
//! - [`sim_service`]: the simulation service (`meshlog sim-service`): AutoMessageGenerator
//!   and TimeController; generation is paced on virtual time only, so pause, speed and step
//!   really act, and tests check it without sleeping.
//! - [`sim_mode`]: `meshlog sim-service --sim SCENARIO`: the same service hosting a
//!   meshlog-sim world on its virtual clock, serving the device API for every simulated
//!   device, with loss, latency and partition controls.
//! - [`demo`]: `meshlog demo`, everything from one command (`--sim SCENARIO` for simulated mode).
//! - [`files`]: the blob store: content-addressed files of any size in `DATA/files/`, each
//!   16 KiB group verified against the file's BLAKE3 root before it is stored
//!   (`POST /api/files`, `GET /api/files/:id`).
//! - [`names`]: the one device-name rule (core's), which every name the backend takes meets.
//! - [`paging`]: paging and search of messages, one rule for real and simulated devices.
//! - [`layout`]: the demo's ports and links, shared by real and simulated mode.
//! - [`api`]: the device API, once, over [`api::DeviceBackend`] (real and simulated devices).
//! - [`http`]: JSON errors, body extraction and CORS shared by both servers.
//!
//! Benchmarks (`cargo bench -p meshlog-backend --bench loopback` and `--bench turmoil_vs_sim`)
//! print loopback POST-to-SSE latency, SQLite ingest rates, and turmoil vs meshlog-sim wall time.
//!
//! Errors: one `thiserror` enum per boundary ([`store::DbError`], [`keys::KeysError`],
//! [`device::DeviceError`], [`sim_service::SimServiceError`], [`demo::DemoError`]); HTTP
//! handlers answer `{"error": ...}` with a 4xx/5xx ([`http::ApiError`]).

pub mod api;
pub mod demo;
pub mod device;
pub mod files;
pub mod http;
pub mod keys;
pub mod layout;
pub mod names;
pub mod paging;
pub mod sim_mode;
pub mod sim_service;
pub mod sim_stores;
pub mod store;
