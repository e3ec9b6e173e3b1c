//! A small deterministic harness for the core's own tests and benchmarks (after quinn-proto's
//! `Pair`): a few nodes over `InMemoryStore`, direct delivery with optional loss and a fixed
//! latency, virtual time that jumps to the next wake-up, and a digest of everything that
//! happened. The full simulator with its fault model is `meshlog-sim`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::config::Config;
use crate::crypto::{Community, DeviceKeys, Keyring, PairKey};
use crate::event::EventBody;
use crate::id::{DeviceId, EventId};
use crate::node::{Input, Node, NodeEvent, Output};
use crate::packet::{Packet, Payload, WireEvent, PACKET_VERSION};
use crate::store::InMemoryStore;
use crate::time::{Duration, Instant};

/// Deterministic keys for `name`, derived from `seed`.
pub fn keys(name: &str, seed: u64) -> DeviceKeys {
    DeviceKeys::derived(device(name), &seed.to_le_bytes())
}

/// `name` as a device name (a test's own spelling: an invalid one is the test's bug).
/// Where `name`'s datagrams come from in tests: a fixed address in 10.0.0.0/8 drawn from the
/// name, so two names get two sources (`Input::Datagram::from`).
pub fn address(name: &str) -> SocketAddr {
    let hash = blake3::hash(name.as_bytes());
    let b = hash.as_bytes();
    SocketAddr::from((
        [10, b[0], b[1], b[2]],
        u16::from_le_bytes([b[3], b[4]]).max(1),
    ))
}

/// The source of datagrams handed in from outside a harness (`Harness::deliver_now`).
pub const OUTSIDE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    9,
);

pub fn device(name: &str) -> DeviceId {
    DeviceId::new(name).expect("valid test device name")
}

/// A plain text message.
pub fn message(text: &str) -> EventBody {
    EventBody::Message {
        text: text.into(),
        attachment: None,
        auto: false,
    }
}

/// A community of `names` whose key is derived from `seed`.
pub fn community_of(names: &[&str], seed: u64) -> Community {
    let key = blake3::derive_key("meshlog test community key", &seed.to_le_bytes());
    let roster = names
        .iter()
        .map(|n| {
            (
                DeviceId::new(n).expect("valid name"),
                keys(n, seed).public(),
            )
        })
        .collect();
    Community::new(key, roster)
}

/// `name`'s pairwise keys with every other member of `community` (made by `community_of`
/// with the same `seed`).
pub fn keyring_of(name: &str, community: &Community, seed: u64) -> Keyring {
    Keyring::for_roster(&keys(name, seed), community)
}

/// A packet from `from` to `to` at `(epoch, counter)`.
pub fn packet(from: &str, to: &str, (epoch, counter): (u64, u64), payload: Payload) -> Packet {
    Packet {
        source: DeviceId::new(from).expect("valid name"),
        target: DeviceId::new(to).expect("valid name"),
        epoch,
        counter,
        echo: 0,
        payload,
    }
}

/// An EVENT payload of these sealed events (each hashed for its id).
pub fn events_payload(sealed: Vec<Vec<u8>>) -> Payload {
    Payload::Events(sealed.into_iter().map(WireEvent::new).collect())
}

/// A current-version datagram whose payload is `payload` byte for byte, whatever it holds,
/// tagged under `key`: what a hostile member can send, for fuzzing the payload decoders
/// behind the tag check. `kind` is the raw kind code (any byte).
pub fn seal_raw(
    from: &str,
    to: &str,
    kind: u8,
    [epoch, counter, echo]: [u64; 3],
    payload: &[u8],
    key: &PairKey,
) -> Vec<u8> {
    let mut bytes = b"ML".to_vec();
    bytes.extend_from_slice(&[PACKET_VERSION, kind]);
    for name in [from, to] {
        bytes.push(u8::try_from(name.len()).expect("a short name"));
        bytes.extend_from_slice(name.as_bytes());
    }
    for field in [epoch, counter, echo] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    let mut tagger = key.tagger();
    tagger.update(&bytes);
    // An EVENT payload that frames well is tagged as a sender tags one (lengths and ids);
    // anything else byte for byte, which the receiver refuses as malformed before the tag.
    match crate::packet::event_cover(kind, payload) {
        Some(cover) => tagger.update(&cover),
        None => tagger.update(payload),
    };
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&tagger.tag());
    bytes
}

/// A 32-byte seed for `purpose`, derived from a root seed.
pub fn derive_seed(root: u64, purpose: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("meshlog seed derivation v1");
    hasher
        .update(&root.to_le_bytes())
        .update(purpose.as_bytes());
    *hasher.finalize().as_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Every device peers with every other.
    FullMesh,
    /// Each device peers only with its neighbours in the given order: a–b–c.
    Line,
}

pub struct Harness {
    nodes: BTreeMap<DeviceId, Node<InMemoryStore>>,
    deadlines: BTreeMap<DeviceId, Instant>,
    /// Directed links that deliver; a missing pair is cut.
    links: BTreeSet<(DeviceId, DeviceId)>,
    in_flight: BTreeMap<(Instant, u64), (DeviceId, DeviceId, Vec<u8>)>,
    sequence: u64,
    now: Instant,
    rng: ChaCha20Rng,
    /// Chance, in parts per million, that a datagram is lost.
    pub loss_ppm: u32,
    pub latency: Duration,
    /// Each datagram takes `latency` plus a uniform draw below `jitter`. At 0 (the default)
    /// a link delivers in the order it was sent; above the gap between two sends, a later
    /// datagram can arrive first.
    pub jitter: Duration,
    /// Per directed link, the latest-sent datagram delivered so far (by send sequence).
    delivered_upto: BTreeMap<(DeviceId, DeviceId), u64>,
    trace: blake3::Hasher,
    pub trace_lines: u64,
    pub datagrams_delivered: u64,
    pub datagrams_lost: u64,
    pub bytes_delivered: u64,
    /// Deliveries that arrived after a datagram sent later on the same link.
    pub datagrams_reordered: u64,
    /// Datagrams for devices not in the harness, by device (`take_outside`).
    outside: BTreeMap<DeviceId, Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("now", &self.now)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Harness {
    pub fn new(names: &[&str], topology: Topology, seed: u64) -> Self {
        Self::with_config(names, topology, seed, |_| {})
    }

    /// `tweak` adjusts each node's config (same change for every node).
    pub fn with_config(
        names: &[&str],
        topology: Topology,
        seed: u64,
        tweak: impl Fn(&mut Config),
    ) -> Self {
        let community = community_of(names, seed);
        let ids: Vec<DeviceId> = names
            .iter()
            .map(|n| DeviceId::new(n).expect("valid name"))
            .collect();
        let mut links = BTreeSet::new();
        let mut nodes = BTreeMap::new();
        for (i, me) in ids.iter().enumerate() {
            let peers: Vec<DeviceId> = match topology {
                Topology::FullMesh => ids.iter().filter(|p| *p != me).cloned().collect(),
                Topology::Line => ids
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| j.abs_diff(i) == 1)
                    .map(|(_, p)| p.clone())
                    .collect(),
            };
            for peer in &peers {
                links.insert((me.clone(), peer.clone()));
            }
            let mut config = Config::new(
                keys(me.as_str(), seed),
                community.clone(),
                peers,
                derive_seed(seed, me.as_str()),
            );
            tweak(&mut config);
            let node = Node::new(config, InMemoryStore::new(), Instant::ZERO)
                .expect("valid harness config");
            nodes.insert(me.clone(), node);
        }
        Harness {
            nodes,
            deadlines: BTreeMap::new(),
            links,
            in_flight: BTreeMap::new(),
            sequence: 0,
            now: Instant::ZERO,
            rng: ChaCha20Rng::from_seed(derive_seed(seed, "network")),
            loss_ppm: 0,
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            delivered_upto: BTreeMap::new(),
            trace: blake3::Hasher::new(),
            trace_lines: 0,
            datagrams_delivered: 0,
            datagrams_lost: 0,
            bytes_delivered: 0,
            datagrams_reordered: 0,
            outside: BTreeMap::new(),
        }
    }

    /// Hands `bytes` to `to` now, as if it arrived from outside the harness (a join request),
    /// from `OUTSIDE`.
    pub fn deliver_now(&mut self, to: &str, bytes: &[u8]) {
        self.deliver_now_from(to, OUTSIDE, bytes);
    }

    /// Hands `bytes` to `to` now, as if it arrived from `from` outside the harness.
    pub fn deliver_now_from(&mut self, to: &str, from: SocketAddr, bytes: &[u8]) {
        let now = self.now;
        self.node_mut(to)
            .handle_input(Input::Datagram { now, from, bytes });
        self.drain_outputs();
    }

    /// Datagrams sent to `name`, a device not in the harness, since the last call.
    pub fn take_outside(&mut self, name: &str) -> Vec<Vec<u8>> {
        self.drain_outputs();
        self.outside.remove(&device(name)).unwrap_or_default()
    }

    /// Adds a node (a device that joined), linked both ways with `peers`.
    pub fn add_node(&mut self, node: Node<InMemoryStore>, peers: &[&str]) {
        let me = node.device().clone();
        for peer in peers {
            self.links.insert((me.clone(), device(peer)));
            self.links.insert((device(peer), me.clone()));
        }
        self.nodes.insert(me, node);
    }

    pub fn now(&self) -> Instant {
        self.now
    }
    pub fn node(&self, name: &str) -> &Node<InMemoryStore> {
        &self.nodes[&device(name)]
    }
    pub fn node_mut(&mut self, name: &str) -> &mut Node<InMemoryStore> {
        self.nodes.get_mut(&device(name)).expect("known node")
    }
    pub fn nodes(&self) -> impl Iterator<Item = &Node<InMemoryStore>> {
        self.nodes.values()
    }

    pub fn append(&mut self, name: &str, body: EventBody) -> EventId {
        let now = self.now;
        let id = self
            .node_mut(name)
            .append(now, body)
            .expect("append in harness");
        self.record(format!("{now} {name} append {id}"));
        id
    }

    /// `count` short messages from `name`, all at the current instant.
    pub fn append_messages(&mut self, name: &str, count: usize) -> Vec<EventId> {
        (0..count)
            .map(|i| self.append(name, message(&format!("{name} #{i}"))))
            .collect()
    }

    pub fn set_online(&mut self, name: &str, online: bool) {
        let now = self.now;
        self.node_mut(name).set_online(now, online);
        self.deadlines.remove(&device(name));
        self.record(format!("{now} {name} online={online}"));
    }

    /// Cuts or restores the link both ways.
    pub fn set_link(&mut self, a: &str, b: &str, up: bool) {
        for pair in [(device(a), device(b)), (device(b), device(a))] {
            if up {
                self.links.insert(pair);
            } else {
                self.links.remove(&pair);
            }
        }
    }

    /// Drains every node's outputs, then advances time to the next delivery or wake-up at or
    /// before `limit` and handles it. False if nothing is due by `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.drain_outputs();
        let next_delivery = self.in_flight.keys().next().map(|(t, _)| *t);
        let next_timeout = self.deadlines.values().min().copied();
        let Some(next) = [next_delivery, next_timeout].into_iter().flatten().min() else {
            return false;
        };
        if next > limit {
            return false;
        }
        self.now = next;
        if next_delivery == Some(next) {
            let ((_, sent), (from, to, bytes)) = self.in_flight.pop_first().expect("due delivery");
            let upto = self
                .delivered_upto
                .entry((from.clone(), to.clone()))
                .or_default();
            if sent < *upto {
                self.datagrams_reordered += 1;
            }
            *upto = sent.max(*upto);
            self.datagrams_delivered += 1;
            self.bytes_delivered += bytes.len() as u64;
            self.record(format!("{next} {to} recv {from} {}", bytes.len()));
            self.nodes
                .get_mut(&to)
                .expect("known node")
                .handle_input(Input::Datagram {
                    now: next,
                    from: address(from.as_str()),
                    bytes: &bytes,
                });
        } else {
            let due: Vec<DeviceId> = self
                .deadlines
                .iter()
                .filter(|(_, t)| **t <= next)
                .map(|(d, _)| d.clone())
                .collect();
            for name in due {
                self.deadlines.remove(&name);
                self.nodes
                    .get_mut(&name)
                    .expect("known node")
                    .handle_input(Input::Timeout(next));
            }
        }
        true
    }

    pub fn run_for(&mut self, duration: Duration) {
        let limit = self.now + duration;
        while self.step(limit) {}
        self.now = self.now.max(limit);
    }

    /// Runs until every node holds the same set, or `limit` passes. Returns when they converged.
    pub fn run_until_converged(&mut self, limit: Duration) -> Option<Instant> {
        let limit = self.now + limit;
        loop {
            if self.converged() {
                return Some(self.now);
            }
            if !self.step(limit) {
                return None;
            }
        }
    }

    pub fn converged(&self) -> bool {
        let mut summaries = self.nodes.values().map(|n| n.summary());
        let first = summaries.next();
        summaries.all(|s| Some(s) == first)
    }

    /// blake3 of every trace line so far: the run's fingerprint.
    pub fn digest(&self) -> String {
        self.trace.clone().finalize().to_hex().to_string()
    }

    fn drain_outputs(&mut self) {
        let names: Vec<DeviceId> = self.nodes.keys().cloned().collect();
        for name in names {
            loop {
                let output = self.nodes.get_mut(&name).expect("known node").poll_output();
                match output {
                    Output::Timeout(at) => {
                        self.deadlines.insert(name.clone(), at);
                        break;
                    }
                    Output::Event(event) => self.record_event(&name, &event),
                    Output::Transmit(t) if !self.nodes.contains_key(&t.to) => {
                        // For a device not in the harness (yet): a joiner's welcome.
                        self.outside.entry(t.to).or_default().push(t.bytes);
                    }
                    Output::Transmit(t) => {
                        let now = self.now;
                        let lost =
                            self.loss_ppm > 0 && (self.rng.next_u32() % 1_000_000) < self.loss_ppm;
                        let linked = self.links.contains(&(name.clone(), t.to.clone()));
                        let fate = if !linked {
                            "cut"
                        } else if lost {
                            "lost"
                        } else {
                            "sent"
                        };
                        self.record(format!(
                            "{now} {name} {fate} {} {} {} {} {}",
                            t.to,
                            t.kind,
                            t.bytes.len(),
                            t.note,
                            // The datagram's own hash: equal digests mean byte-identical outputs.
                            &blake3::hash(&t.bytes).to_hex()[..16]
                        ));
                        if linked && !lost {
                            self.sequence += 1;
                            let jitter = self.jitter.as_micros();
                            let delay = if jitter == 0 {
                                self.latency
                            } else {
                                Duration::from_micros(
                                    self.latency.as_micros() + self.rng.next_u64() % jitter,
                                )
                            };
                            self.in_flight.insert(
                                (now + delay, self.sequence),
                                (name.clone(), t.to, t.bytes),
                            );
                        } else {
                            self.datagrams_lost += 1;
                        }
                    }
                }
            }
        }
    }

    fn record_event(&mut self, name: &DeviceId, event: &NodeEvent) {
        if let Some(line) = event.trace_line(name) {
            let now = self.now;
            self.record(format!("{now} {line}"));
        }
    }

    fn record(&mut self, line: String) {
        if std::env::var_os("MESHLOG_HARNESS_PRINT").is_some() {
            println!("{line}");
        }
        self.trace.update(line.as_bytes()).update(b"\n");
        self.trace_lines += 1;
    }
}

/// The wire's and the sync engine's internals, which the crate keeps to itself otherwise: for
/// tests that build packets by hand and for the simulator's hostile members.
pub mod wire {
    pub use crate::codec::{Reader, Writer};
    pub use crate::packet::wire::Wire;
    pub use crate::sync::filter::{bitmap_len, WireFilter};
    pub use crate::sync::prefix::{FANOUT, PREFIX_DEPTH_MAX};
    pub use crate::sync::sketch::Sketch;
}
