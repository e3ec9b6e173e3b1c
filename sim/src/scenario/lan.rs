//! The scenario's network vocabulary that the world builds on: `[[lan]]` and the address
//! ranges the world hands out itself (so a scenario may not give them). Kept apart from
//! `net.rs`'s validation, which reads the whole [`Scenario`](super::Scenario), so the kernel
//! can use these without a cycle.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// One local link (`[[lan]]`): a broadcast domain. Every device on it announces itself at the
/// real backend's pace (`meshlog_core::discovery::ANNOUNCE_FIRST_DELAYS`, then every
/// `ANNOUNCE_INTERVAL`), each announcement sent to every other device on it through the link
/// model (loss, latency, partitions apply).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LanSpec {
    pub devices: Vec<String>,
}

/// Where devices start: `10.0.0.0/16` (`kernel/address.rs` `home`).
pub const HOME_PREFIX: [u8; 2] = [10, 0];
/// Where a move that names no address goes: `10.1.0.0/16` (`kernel/address.rs` `fresh`).
pub const FRESH_PREFIX: [u8; 2] = [10, 1];

/// Whether `addr` is one the world hands out itself (a home or a fresh address): a scenario
/// may not give it.
pub fn is_reserved(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(ip) if ip.octets()[..2] == HOME_PREFIX || ip.octets()[..2] == FRESH_PREFIX)
}
