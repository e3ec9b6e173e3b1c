//! A link's model as the file writes it (`[network]`, `[[link]]`, a `network` fault):
//! latency, capacity, loss, bursts, duplication, reordering, corruption, replay and forgery.

use serde::{Deserialize, Serialize};

use super::duration::SimDuration;

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub min: SimDuration,
    pub max: SimDuration,
}

/// Gilbert-Elliott burst loss: a link flips between a good and a bad state per datagram.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    /// Chance per datagram that a good link turns bad.
    pub enter: f64,
    /// Chance per datagram that a bad link turns good again.
    pub exit: f64,
    /// Loss rate while bad (the good state uses `loss`).
    #[serde(default = "one")]
    pub loss: f64,
}

fn one() -> f64 {
    1.0
}

/// Link behaviour. In `[network]` it sets every link; in `[[link]]` (with `from` and `to`) one direction, or both with `both = true`; in a fault's `network = {…}` it changes
/// either from then on. Unset fields keep what was there.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub both: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    /// The link's rate: a datagram takes its size ÷ this to leave, behind those queued before
    /// it, and lost ones take their turn too (they are lost on the wire, not before it).
    /// Unset: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_bytes_per_s: Option<u64>,
    /// With a capacity: a datagram that would wait longer than this behind those before it is
    /// dropped, as a router's drop-tail queue does (default 100 ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_delay_max: Option<SimDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Chance a datagram is held back an extra `reorder_delay`, landing behind later ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<SimDuration>,
    /// Chance one random bit of a datagram flips in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Chance, per datagram the receiver accepts, that an attacker on the link re-sends one
    /// it recorded earlier (the link's last `REPLAY_STORE_MAX`), `replay_delay` later.
    /// Unlike `duplicate` (a copy close behind the original), a replay is an old datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_delay: Option<SimDuration>,
    /// Chance, per datagram a node sends on the link, that an attacker outside the community
    /// also sends one claiming the same source (an `EVENT` of garbage, sealed with keys it
    /// made up). Every forgery must be refused at the packet layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge: Option<f64>,
    /// `outsider` (the default) or `stolen`: the forger holds the claimed sender's keys, so
    /// its forgeries pass the packet layer (only to break a world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge_keys: Option<ForgeKeys>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKeys {
    #[default]
    Outsider,
    Stolen,
}

fn is_false(b: &bool) -> bool {
    !b
}
