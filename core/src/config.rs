//! A node's configuration: who it is, whom it syncs with, and every limit it keeps.

use thiserror::Error;

use crate::crypto::{Community, DeviceKeys, PublicKey};
use crate::id::DeviceId;
use crate::time::Duration;

/// Most peers one node syncs with: bounds per-round work and per-peer state.
pub const PEERS_MAX: usize = 64;

#[derive(Clone, Debug)]
pub struct Config {
    pub keys: DeviceKeys,
    pub community: Community,
    /// Devices this node sends to and accepts packets from. Any of them may relay. Each is in
    /// the genesis roster or an active member of the roster the store's membership events
    /// settle to (a device admitted later); one the settled roster removed is left out.
    pub peers: Vec<DeviceId>,
    /// Seeds the node's ChaCha generator: nonces, filter seeds, round jitter.
    /// Production draws it from the OS once; the simulator derives it from the run's seed.
    pub seed: [u8; 32],
    /// Time between anti-entropy rounds (the seed's 5 s).
    pub sync_interval: Duration,
    /// Rounds start up to this much early, so devices drift apart instead of in lock-step.
    pub sync_jitter: Duration,
    /// Peers sent a summary each round, picked afresh at random: a peer pair reconciles when
    /// either picks the other, so a missing event is still found within a round or two, while
    /// a large mesh stops reconciling every pair twice a round. At least 1; a node with fewer
    /// peers summarises to all of them.
    pub sync_fanout: usize,
    /// The floor of the owed stream's pacing: events a peer may be sent per round when it does
    /// not acknowledge progress, and the burst sent at once when a difference is found.
    pub events_per_round_max: u32,
    /// The owed stream's ceiling, events per second per peer: about 16 MB/s of typical
    /// events, above what a receiving node stores (about 35,000 a second on a 2-core machine),
    /// so the stream's window (`owed.rs`), not this cap, is what holds a fast link back. The
    /// rate grows toward it while the peer acknowledges progress and halves on loss.
    pub stream_rate_max: u32,
    /// Follow-up summaries per round without progress (to one peer, and over all peers
    /// together), one about every round trip (at least 100 ms) while a peer's summary
    /// differs, before backing off to `sync_interval`.
    pub followups_per_round_max: u32,
    /// False-positive rate of each Bloom filter. A false positive only delays an event a round.
    pub filter_fp_rate: f64,
    /// A bucket with at most this many ids on either side is settled with filters rather than
    /// by descending further: about where a filter gets cheaper than another digest.
    pub leaf_items_max: u32,
    /// Outputs waiting for `poll_output`; transmits beyond it are dropped and counted.
    pub output_queue_max: usize,
    /// Peers an event received from a peer is forwarded to at once, at most, besides the one
    /// it came from and its author (`node/forward.rs`). 1 to `REPLY_FACTOR` (3): a node then
    /// sends at most three times the event bytes it received, QUIC's amplification factor.
    pub forward_fanout: usize,
    /// Bytes of file shards per second this node sends one peer at most (`node/blobs`): what
    /// a peer's asks can make it send, whatever it asks. 64 MiB/s by default.
    pub blob_serve_rate: u64,
    /// Largest file this node fetches when a message names it: 4 GiB by default, the
    /// device's `--file-size-max`. Its outboard (1/256 of it) is held in memory while fetched.
    pub blob_fetch_size_max: u64,
    // The switches below break the node on purpose, to show the checkers catch it: on in
    // every device, settable only with the `testing` feature (the simulator, the tests).
    /// Push a local append to every online peer at once.
    #[cfg(feature = "testing")]
    pub eager_push: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) eager_push: bool,
    /// Run Bloom anti-entropy rounds. Off only to prove the checkers catch its absence.
    #[cfg(feature = "testing")]
    pub anti_entropy: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) anti_entropy: bool,
    /// Forward events authored by others. Off only to prove the checkers catch its absence.
    #[cfg(feature = "testing")]
    pub relay: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) relay: bool,
    /// Forward an event received from a peer at once to up to `forward_fanout` others, rather
    /// than leaving it to the next anti-entropy round. Off only to show what it buys.
    #[cfg(feature = "testing")]
    pub eager_forward: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) eager_forward: bool,
    /// Bound answers to a peer by 3× what it sent plus a credit granted once (QUIC's
    /// amplification rule). Off only to prove the checkers catch its absence.
    #[cfg(feature = "testing")]
    pub amplification_budget: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) amplification_budget: bool,
    /// Drop packets seen before or from an old epoch (`replayed`). Off only to prove the
    /// checkers catch its absence.
    #[cfg(feature = "testing")]
    pub replay_protection: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) replay_protection: bool,
    /// Introduce pairs of peers this node sees to each other, and punch toward peers it is
    /// introduced to (`node/punch.rs`): NAT traversal. Off by default so simulated worlds,
    /// where every device is reachable, keep their traffic; the backend turns it on.
    pub introductions: bool,
    /// The lowest epoch this run may use (`Store::next_epoch`): Unix seconds in production,
    /// so a device that lost its store still starts above what its peers saw; 0 in the
    /// simulator, where the store's own counter is never lost.
    pub epoch_floor: u64,
    /// How long an epoch key, and the receive-key secret an epoch key was sealed to, are kept
    /// after a newer one replaces them; `None`: kept for ever. Shorter is more forward secret
    /// (a device stolen later opens less of what was recorded) and loses more: an event of a
    /// forgotten epoch that arrives late is refused here (`unknown_epoch`).
    pub key_retention: Option<Duration>,
    /// A one-line change to the node, for the record-and-replay test only: a local append is
    /// pushed to every peer but the first. Replaying a recording with it on must report the
    /// first step whose outputs differ.
    #[doc(hidden)]
    #[cfg(feature = "testing")]
    pub test_divergence: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) test_divergence: bool,
    /// A broken clock, for the simulator's clock-order checker only: events are stamped with
    /// the device's raw clock instead of the hybrid clock (`clock.rs`).
    #[doc(hidden)]
    #[cfg(feature = "testing")]
    pub test_raw_clock: bool,
    #[cfg(not(feature = "testing"))]
    pub(crate) test_raw_clock: bool,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    #[error("device {0} is not in the community roster")]
    NotAMember(String),
    #[error("the roster's key for {0} does not match this device's key")]
    KeyMismatch(String),
    #[error("peer {0} is not in the community roster (neither genesis nor admitted in the log)")]
    UnknownPeer(String),
    #[error("peer {0} has a small-order key in the roster: no packet key can be agreed with it")]
    WeakPeerKey(String),
    #[error("peer {0} is this device itself")]
    SelfPeer(String),
    #[error("{0} peers, at most {PEERS_MAX}")]
    TooManyPeers(usize),
    #[error("{field} = {value}: {why}")]
    OutOfRange {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

impl Config {
    /// A config with the defaults the seed's demo used (5 s rounds).
    pub fn new(
        keys: DeviceKeys,
        community: Community,
        peers: Vec<DeviceId>,
        seed: [u8; 32],
    ) -> Self {
        Config {
            keys,
            community,
            peers,
            seed,
            sync_interval: Duration::from_secs(5),
            sync_jitter: Duration::from_millis(500),
            sync_fanout: 3,
            events_per_round_max: 256,
            stream_rate_max: 100_000,
            // 16 × 100 ms: the first 1.6 s or so of a 5 s round; at 50% loss a
            // SUMMARY → SKETCH → EVENTS exchange survives 1 time in 8, so most differences
            // settle within the bound and the rest wait for the next round.
            followups_per_round_max: 16,
            filter_fp_rate: 0.01,
            leaf_items_max: 64,
            output_queue_max: 16_384,
            forward_fanout: 3,
            blob_serve_rate: 64 << 20,
            blob_fetch_size_max: 4 << 30,
            eager_push: true,
            anti_entropy: true,
            relay: true,
            eager_forward: true,
            amplification_budget: true,
            replay_protection: true,
            introductions: false,
            epoch_floor: 0,
            key_retention: None,
            test_divergence: false,
            test_raw_clock: false,
        }
    }

    /// Checks what the config alone can tell. A peer outside the genesis roster passes here:
    /// only the membership events in the store say whether it was admitted, so `Node::new`
    /// checks it once it has settled the roster (`UnknownPeer` then).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let me = &self.keys.device;
        match self.community.member(me) {
            None => return Err(ConfigError::NotAMember(me.to_string())),
            Some(key) if *key != self.keys.public() => {
                return Err(ConfigError::KeyMismatch(me.to_string()))
            }
            Some(_) => {}
        }
        if self.peers.len() > PEERS_MAX {
            return Err(ConfigError::TooManyPeers(self.peers.len()));
        }
        for peer in &self.peers {
            if peer == me {
                return Err(ConfigError::SelfPeer(peer.to_string()));
            }
            if self.community.member(peer).is_some_and(PublicKey::is_weak) {
                return Err(ConfigError::WeakPeerKey(peer.to_string()));
            }
        }
        let range = |field, value: String, ok: bool, why| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { field, value, why })
            }
        };
        if let Some(retention) = self.key_retention {
            range(
                "key_retention",
                retention.to_string(),
                retention >= Duration::from_secs(1),
                "at least 1s",
            )?;
        }
        range(
            "sync_interval",
            self.sync_interval.to_string(),
            self.sync_interval >= Duration::from_millis(10),
            "at least 10ms",
        )?;
        range(
            "sync_jitter",
            self.sync_jitter.to_string(),
            self.sync_jitter < self.sync_interval,
            "less than sync_interval",
        )?;
        range(
            "sync_fanout",
            self.sync_fanout.to_string(),
            (1..=PEERS_MAX).contains(&self.sync_fanout),
            "1 to 64",
        )?;
        range(
            "events_per_round_max",
            self.events_per_round_max.to_string(),
            (1..=100_000).contains(&self.events_per_round_max),
            "1 to 100,000",
        )?;
        range(
            "blob_serve_rate",
            self.blob_serve_rate.to_string(),
            (1_024..=1 << 40).contains(&self.blob_serve_rate),
            "1 KiB/s to 1 TiB/s",
        )?;
        range(
            "blob_fetch_size_max",
            self.blob_fetch_size_max.to_string(),
            self.blob_fetch_size_max <= crate::event::BLOB_SIZE_MAX,
            "at most 1 TiB",
        )?;
        range(
            "stream_rate_max",
            self.stream_rate_max.to_string(),
            (1..=1_000_000).contains(&self.stream_rate_max),
            "1 to 1,000,000",
        )?;
        range(
            "followups_per_round_max",
            self.followups_per_round_max.to_string(),
            self.followups_per_round_max <= 1_000,
            "0 to 1,000",
        )?;
        range(
            "filter_fp_rate",
            self.filter_fp_rate.to_string(),
            self.filter_fp_rate > 0.0 && self.filter_fp_rate < 1.0,
            "between 0 and 1",
        )?;
        range(
            "leaf_items_max",
            self.leaf_items_max.to_string(),
            (1..=100_000).contains(&self.leaf_items_max),
            "1 to 100,000",
        )?;
        range(
            "forward_fanout",
            self.forward_fanout.to_string(),
            (1..=crate::node::REPLY_FACTOR as usize).contains(&self.forward_fanout),
            "1 to 3",
        )?;
        range(
            "output_queue_max",
            self.output_queue_max.to_string(),
            self.output_queue_max >= 64,
            "at least 64",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PublicKey;
    use crate::testing::keys;

    #[test]
    fn a_peer_with_a_small_order_key_is_refused_by_name() {
        let alice = keys("alice", 1);
        let weak = DeviceId::new("weak").unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let roster = [
            (alice.device.clone(), alice.public()),
            (weak.clone(), PublicKey::from_bytes(&identity).unwrap()),
        ]
        .into_iter()
        .collect();
        let config = Config::new(alice, Community::new([1; 32], roster), vec![weak], [0; 32]);
        assert_eq!(
            config.validate(),
            Err(ConfigError::WeakPeerKey("weak".into()))
        );
        assert!(config.replay_protection, "on by default");
        assert_eq!(config.epoch_floor, 0);
    }
}
