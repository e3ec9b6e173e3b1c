//! The scenario's network vocabulary that the world builds on: `[[lan]]`, `[[nat]]` and the
//! address ranges the world hands out itself (so a scenario may not give them). Kept apart from
//! `net.rs`'s validation, which reads the whole [`Scenario`](super::Scenario), so the kernel
//! can use these without a cycle.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::duration::SimDuration;

/// One local link (`[[lan]]`): a broadcast domain. Every device on it announces itself at the
/// real backend's pace (`meshlog_core::discovery::ANNOUNCE_FIRST_DELAYS`, then every
/// `ANNOUNCE_INTERVAL`), each announcement sent to every other device on it through the link
/// model (loss, latency, partitions apply).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LanSpec {
    pub devices: Vec<String>,
}

/// One NAT box (`[[nat]]`): its devices reach the rest of the world only through it, as a home
/// router's network does (`kernel/nat.rs`). Devices behind one box reach each other at their
/// own addresses; from outside, only the box's public address is reachable, where a mapping
/// lets a datagram in.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatSpec {
    pub kind: NatKind,
    pub devices: Vec<String>,
    /// A mapping nobody behind the box sent through for this long is gone (RFC 4787 asks at
    /// least 2 minutes; many home routers keep 30 s). The next datagram out makes a new one,
    /// on a new port.
    #[serde(default = "mapping_timeout_default")]
    pub mapping_timeout: SimDuration,
}

/// How a box maps: both filter what comes in by the remote address and port a mapping sent
/// to (address- and port-dependent filtering, as Linux masquerade behind a home router's
/// `ct state established,related` rule does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatKind {
    /// One public port per inside socket, whatever the destination (RFC 4787's
    /// endpoint-independent mapping): a punch through an introducer gets through.
    EndpointIndependent,
    /// A new public port per destination: what an introducer saw is not what a peer would
    /// be sent from, so punching fails and the pair is relayed.
    Symmetric,
}

impl NatKind {
    pub fn name(self) -> &'static str {
        match self {
            NatKind::EndpointIndependent => "endpoint-independent",
            NatKind::Symmetric => "symmetric",
        }
    }
}

fn mapping_timeout_default() -> SimDuration {
    SimDuration(meshlog_core::Duration::from_secs(30))
}

/// Where devices start: `10.0.0.0/16` (`kernel/address.rs` `home`).
pub const HOME_PREFIX: [u8; 2] = [10, 0];
/// Where a move that names no address goes: `10.1.0.0/16` (`kernel/address.rs` `fresh`).
pub const FRESH_PREFIX: [u8; 2] = [10, 1];

/// NAT boxes' public addresses: `10.2.0.0/16`, the `n`th box at `10.2.0.0 + n + 1`.
pub const NAT_PREFIX: [u8; 2] = [10, 2];

/// Whether `addr` is one the world hands out itself (a home, a fresh or a NAT box's address):
/// a scenario may not give it.
pub fn is_reserved(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(ip) if [HOME_PREFIX, FRESH_PREFIX, NAT_PREFIX].contains(&[ip.octets()[0], ip.octets()[1]]))
}
