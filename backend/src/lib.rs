//! # meshlog-backend
//!
//! The production side of meshlog and the `meshlog` binary.
//!
//! - [`store`]: SQLite storage (rusqlite, bundled, WAL, `synchronous = FULL`) implementing
//!   core's `Store`, with decrypted `messages` / `reactions` / `file_chunks` views and a
//!   separate read connection for queries.
//! - [`keys`]: community and device key files (`meshlog community new`).
//! - [`device`]: the device server (`meshlog device`): a node driven over real UDP by
//!   `meshlog-net`, behind the HTTP/SSE API of `docs/API.md`.
//! - [`sim_service`]: the simulation service (`meshlog sim-service`): AutoMessageGenerator
//!   and TimeController; generation is paced on virtual time only.
//! - [`demo`]: `meshlog demo`, everything from one command.
//! - [`http`]: JSON errors, body extraction and CORS shared by both servers.
//!
//! Errors: one `thiserror` enum per boundary ([`store::DbError`], [`keys::KeysError`],
//! [`device::DeviceError`], [`sim_service::SimServiceError`]); HTTP handlers answer `{"error": ...}` with a 4xx/5xx.

pub mod demo;
pub mod device;
pub mod http;
pub mod keys;
pub mod sim_service;
pub mod store;
