//! # meshlog-net
//!
//! Runs one sans-IO [`meshlog_core::Node`] over a datagram socket on tokio. The same driver code
//! runs on real UDP ([`tokio::net::UdpSocket`]) and, with the `turmoil` feature, on turmoil's
//! simulated UDP, so tests exercise the production loop under partitions and loss.
//!
//! ```text
//!   socket.recv_from ──> node.handle_input(Datagram) ─┐
//!   sleep until Timeout ─> node.handle_input(Timeout) ├─> poll_output until Timeout:
//!   Command (append, set_online, snapshot) ───────────┘     Transmit -> socket.send_to(peer addr)
//!                                                           Event    -> broadcast DriverEvent
//! ```
//!
//! - [`DatagramSocket`]: the two calls the driver needs from a socket.
//! - [`Clock`]: where `now` comes from. [`SystemClock`] (microseconds since the Unix epoch) in
//!   production; [`TokioClock`] (tokio's possibly simulated time) under turmoil.
//! - [`Driver`] / [`DriverHandle`]: the loop and the cheap, cloneable handle the HTTP layer uses.
//! - [`Recorder`]: writes what the node is given, batch by batch, for an exact replay in the
//!   simulator (`meshlog device --record`; the format is `meshlog_core::record`'s).
//!
//! Appends are acknowledged only after `Node::append` returned, which is after the store's
//! `insert` committed: a caller that got an `EventId` back can rely on it being durable.

mod blocked;
mod clock;
mod driver;
mod recorder;
mod socket;

pub use blocked::{Blocked, Blocklist};
pub use clock::{os_seed, Clock, SystemClock, TokioClock};
pub use driver::{
    Driver, DriverError, DriverEvent, DriverHandle, MemberOutcome, MemberVerb, Members,
    NetEventKind, Snapshot,
};
pub use recorder::Recorder;
pub use socket::DatagramSocket;
