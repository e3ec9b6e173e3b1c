//! A forger on a link: an attacker outside the community who knows the roster's names and
//! sends datagrams claiming to come from a member, sealed with keys it made up. The link's
//! `forge` rate says how often (the network's dice); the refused-at-the-door checker
//! (`checks/attack.rs`) wants every one dropped at the packet layer.
//!
//! With `forge_keys = "stolen"` it holds the claimed sender's real keys instead, as a world
//! broken on purpose: its forgeries pass the packet layer and reach event decoding, which the
//! checker must report.

use meshlog_core::crypto::Keyring;
use meshlog_core::packet::WireEvent;
use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{Packet, Payload};

use crate::kernel::World;

/// Bytes of garbage in a forged event: the size of a short message.
const FORGED_EVENT_LEN: usize = 200;
/// A stolen-key forgery's counters start here, far past any honest one, so the receiver's
/// replay window does not refuse it for being old.
const STOLEN_COUNTER_BASE: u64 = 1 << 40;

#[derive(Debug, Default)]
pub(super) struct Forger {
    /// Forgeries sent so far: a stolen-key forgery's counter follows it.
    sent: u64,
}

impl Forger {
    /// One forged `EVENT` from `from` (claimed) to `to`, the link's fastest latency from now.
    pub(super) fn forge(&mut self, world: &mut World, from: usize, to: usize) {
        let seed = world.seed();
        let model = world.link_model(from, to);
        let (stolen, latency_us) = (model.forge_stolen, model.latency_us_min);
        let source = world.name(from).clone();
        let target = world.name(to).clone();
        let keyring = if stolen {
            Keyring::for_roster(&keys(source.as_str(), seed), world.community())
        } else {
            // The same names, keys from a seed no member uses.
            let names: Vec<String> = world.device_names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let outsider_seed = u64::from_le_bytes(
                derive_seed(seed, "forger")[..8]
                    .try_into()
                    .expect("8 bytes"),
            );
            let community = community_of(&names, outsider_seed);
            Keyring::for_roster(&keys(source.as_str(), outsider_seed), &community)
        };
        self.sent += 1;
        let (epoch, counter) = match (stolen, world.is_running(from)) {
            (true, true) => (world.epoch_of(from), STOLEN_COUNTER_BASE + self.sent),
            _ => (1 + world.forge_draw() % 1_000, world.forge_draw() >> 1),
        };
        let mut garbage = vec![0u8; FORGED_EVENT_LEN];
        for chunk in garbage.chunks_mut(8) {
            let draw = world.forge_draw().to_le_bytes();
            chunk.copy_from_slice(&draw[..chunk.len()]);
        }
        // A forger learns the target's epoch from any packet it overhears from it.
        let echo = world.epoch_of(to);
        let packet = Packet {
            source,
            target: target.clone(),
            epoch,
            counter,
            echo,
            payload: Payload::Events(vec![WireEvent::new(garbage)]),
        };
        let key = keyring.key(&target).expect("the target is on the roster");
        let bytes = packet.seal(key);
        let kind = packet.payload.kind();
        world.forge_onto((from, to), kind, bytes, latency_us, stolen);
    }
}
