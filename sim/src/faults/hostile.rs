//! Hostile members: roster devices that send their peers the worst packets a member can
//! seal, at a steady pace, beside or instead of running the protocol. They use only the
//! public packet API and their own keys, as a compromised device would.

use meshlog_core::crypto::DeviceKeys;
use meshlog_core::crypto::Keyring;
use meshlog_core::packet::WireEvent;
use meshlog_core::packet::{overhead, BucketFilter, Digest};
use meshlog_core::testing::wire::{WireFilter, FANOUT};
use meshlog_core::testing::{derive_seed, keys};
use meshlog_core::{BucketSummary, Prefix};
use meshlog_core::{Community, DeviceId, Packet, Payload, DATAGRAM_SIZE_MAX};
use meshlog_core::{Event, EventBody, OpenedEvent};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::kernel::World;
use crate::scenario::{HostileKind, HostileSpec};

/// Ids a hostile summary or digest child claims: far more than any honest bucket holds, so
/// the receiver descends rather than settling with a filter.
const CLAIMED_COUNT: u32 = 1_000_000;
/// The most hash functions a filter may name (the core refuses more): the costliest check.
const HASH_FUNCTIONS_WORST: u8 = 32;
/// A hostile member's epoch: it never restarts, and its peers have not seen it before.
const HOSTILE_EPOCH: u64 = 1;

#[derive(Debug)]
pub(super) struct Hostile {
    device: usize,
    name: DeviceId,
    /// Its pairwise keys with every member: what a member seals packets with.
    keyring: Keyring,
    /// Packets sent so far, to anyone: the counter of the next, as a node numbers them.
    counter: u64,
    peers: Vec<usize>,
    kinds: Vec<HostileKind>,
    every: meshlog_core::Duration,
    turn: usize,
    /// Its own dice (filter nonces, fingerprints): an attack shifts no other stream.
    rng: ChaCha20Rng,
    /// The genesis community, to seal forged events under.
    community: Community,
    /// Forged events made so far (their texts differ).
    forged: u64,
}

impl Hostile {
    pub(super) fn new(spec: &HostileSpec, world: &World, community: &Community) -> Hostile {
        let seed = world.seed();
        let device = world.device(&spec.device);
        let name = DeviceId::new(&spec.device).expect("validated device name");
        Hostile {
            device,
            keyring: Keyring::for_roster(&keys(&spec.device, seed), community),
            name,
            counter: 0,
            peers: world.peers_of(device).to_vec(),
            kinds: spec.kinds.clone(),
            every: spec.every.0,
            turn: 0,
            rng: ChaCha20Rng::from_seed(derive_seed(seed, &format!("hostile {}", spec.device))),
            community: community.clone(),
            forged: 0,
        }
    }

    /// A message claiming `victim` wrote it, signed with a key of the hostile member's own
    /// making under the victim's name: the author signature cannot verify.
    fn forged_event(&mut self, victim: &DeviceId, now: meshlog_core::Instant) -> OpenedEvent {
        self.forged += 1;
        let event = Event {
            author: victim.clone(),
            created_at: now,
            body: EventBody::Message {
                text: format!("forged by {} #{}", self.name, self.forged),
                attachment: None,
                auto: false,
            },
        };
        let fake = DeviceKeys::derived(victim.clone(), self.name.as_str().as_bytes());
        let mut nonce = [0u8; 24];
        self.rng.fill_bytes(&mut nonce);
        meshlog_core::event::seal(&event, &fake, &self.community, nonce).expect("a short message")
    }

    fn payload(&mut self, kind: HostileKind, to: &DeviceId) -> Payload {
        let mut claim = || BucketSummary {
            count: CLAIMED_COUNT,
            fingerprint: self.rng.next_u64(),
        };
        match kind {
            HostileKind::Summary => Payload::Summary {
                prefix: Prefix::ROOT,
                summary: claim(),
            },
            HostileKind::Digest => {
                let children = std::array::from_fn::<_, FANOUT, _>(|_| claim());
                Payload::Digests(vec![Digest {
                    prefix: Prefix::ROOT,
                    children,
                }])
            }
            HostileKind::FilterEmpty | HostileKind::FilterFull => {
                let full = kind == HostileKind::FilterFull;
                let mut filter = BucketFilter {
                    prefix: Prefix::ROOT,
                    reply: true,
                    filter: WireFilter {
                        nonce: self.rng.next_u64(),
                        items: 1,
                        hash_functions: if full { HASH_FUNCTIONS_WORST } else { 7 },
                        bitmap: Vec::new(),
                    },
                };
                let room = DATAGRAM_SIZE_MAX - overhead(&self.name, to) - filter.encoded_len();
                filter.filter.bitmap = vec![if full { 0xff } else { 0 }; room];
                Payload::Filters(vec![filter])
            }
            HostileKind::ForgedAuthor => unreachable!("made in `attack`, which records it"),
        }
    }
}

impl Hostile {
    /// Sends each of its peers its next worst-case packet, then waits `every` (it is
    /// hostile member number `index`).
    pub(super) fn attack(&mut self, world: &mut World, index: usize) {
        let kind = self.kinds[self.turn % self.kinds.len()];
        self.turn += 1;
        for &to in &self.peers.clone() {
            let target = world.name(to).clone();
            // A member learns a peer's epoch from the header of any packet it gets from it,
            // so the worst case echoes it (0 while the target is down: it is not listening).
            let echo = world.epoch_of(to);
            self.counter += 1;
            let payload = if kind == HostileKind::ForgedAuthor {
                // Claims the receiver's other peer, else the receiver itself: a member the
                // receiver knows, who never wrote it.
                let victim = world
                    .peers_of(to)
                    .iter()
                    .copied()
                    .find(|&p| p != self.device)
                    .unwrap_or(to);
                let victim = world.name(victim).clone();
                let forged = self.forged_event(&victim, world.now());
                let sealed = forged.sealed.clone();
                world.forged_event(self.device, to, forged);
                Payload::Events(vec![WireEvent::new(sealed)])
            } else {
                self.payload(kind, &target)
            };
            let packet = Packet {
                source: self.name.clone(),
                target: target.clone(),
                epoch: HOSTILE_EPOCH,
                counter: self.counter,
                echo,
                payload,
            };
            let key = self.keyring.key(&target).expect("peers are members");
            let bytes = packet.seal(key);
            world.send_as(self.device, to, packet.payload.kind(), bytes, kind.name());
        }
        let at = world.now() + self.every;
        world.schedule_hostile(at, index);
    }
}
