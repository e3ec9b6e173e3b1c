//! A forger on a link: an attacker outside the community who knows the roster's names and
//! sends datagrams claiming to come from a member, sealed with keys it made up. The
//! refused-at-the-door checker (`attack.rs`) wants every one dropped at the packet layer.
//!
//! With `forge_keys = "stolen"` it holds the claimed sender's real keys instead, as a world
//! broken on purpose: its forgeries pass the packet layer and reach event decoding, which the
//! checker must report.

use meshlog_core::crypto::Keyring;
use meshlog_core::packet::WireEvent;
use meshlog_core::testing::{community_of, derive_seed, keys};
use meshlog_core::{Duration, Packet, Payload};

use crate::world::{Item, Sender, World};

/// Bytes of garbage in a forged event: the size of a short message.
const FORGED_EVENT_LEN: usize = 200;
/// A stolen-key forgery's counters start here, far past any honest one, so the receiver's
/// replay window does not refuse it for being old.
const STOLEN_COUNTER_BASE: u64 = 1 << 40;

impl World {
    /// One forged `EVENT` from `from` (claimed) to `to`, the link's fastest latency from now.
    pub(crate) fn forge(&mut self, from: usize, to: usize) {
        let now = self.now;
        let model = self.network.model(from, to);
        let (stolen, latency_us) = (model.forge_stolen, model.latency_us_min);
        let source = self.devices[from].name.clone();
        let target = self.devices[to].name.clone();
        let keyring = if stolen {
            Keyring::for_roster(&keys(source.as_str(), self.seed), &self.community)
        } else {
            // The same names, keys from a seed no member uses.
            let names: Vec<&str> = self.devices.iter().map(|d| d.name.as_str()).collect();
            let outsider_seed = u64::from_le_bytes(
                derive_seed(self.seed, "forger")[..8]
                    .try_into()
                    .expect("8 bytes"),
            );
            let community = community_of(&names, outsider_seed);
            Keyring::for_roster(&keys(source.as_str(), outsider_seed), &community)
        };
        self.attack.counters.forged_sent += 1;
        let (epoch, counter) = match (stolen, self.devices[from].node.as_ref()) {
            (true, Some(node)) => (
                node.epoch(),
                STOLEN_COUNTER_BASE + self.attack.counters.forged_sent,
            ),
            _ => (
                1 + self.network.forge_draw() % 1_000,
                self.network.forge_draw() >> 1,
            ),
        };
        let mut garbage = vec![0u8; FORGED_EVENT_LEN];
        for chunk in garbage.chunks_mut(8) {
            let draw = self.network.forge_draw().to_le_bytes();
            chunk.copy_from_slice(&draw[..chunk.len()]);
        }
        // A forger learns the target's epoch from any packet it overhears from it.
        let echo = self.devices[to].node.as_ref().map_or(0, |n| n.epoch());
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
        let at = now + Duration::from_micros(latency_us);
        let how = if stolen { "stolen" } else { "outsider" };
        self.trace.line(format_args!(
            "{now} forge {}>{target} {kind} {} at {at} {how}",
            packet.source,
            bytes.len()
        ));
        self.attack.counters.forged_bytes += bytes.len() as u64;
        self.schedule(
            at,
            Item::Deliver {
                from,
                to,
                kind,
                bytes,
                origin: Sender::Forged,
                corrupted: false,
            },
        );
    }
}
