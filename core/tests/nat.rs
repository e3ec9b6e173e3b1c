//! NAT traversal (`node/punch.rs`): alice and bob, each behind a NAT of its own, know only
//! carol, who is reachable; carol introduces them to each other and they punch through.
//!
//! A small world of its own drives the three nodes: it routes by address, as a socket does,
//! so the addresses the nodes learn decide where their datagrams go. A NAT maps each inside
//! socket to a public port (one for every destination if endpoint-independent, one per
//! destination if symmetric) and, as Linux conntrack does, lets a datagram in only from an
//! address the inside socket sent to from that mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use meshlog_core::node::{AddressSource, PUNCH_CANDIDATES_MAX};
use meshlog_core::testing::wire::Wire;
use meshlog_core::testing::{
    community_of, derive_seed, keyring_of, keys, message, Harness, Topology,
};
use meshlog_core::{
    Config, DeviceId, Duration, InMemoryStore, Input, Instant, Node, Output, PacketKind, Payload,
    PeerBook, PeerInfo,
};

const SEED: u64 = 25;
const LATENCY: Duration = Duration(10_000);

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}
fn dev(name: &str) -> DeviceId {
    DeviceId::new(name).expect("a name")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nat {
    EndpointIndependent,
    Symmetric,
}

struct Host {
    node: Node<InMemoryStore>,
    /// What the driver sends by: the node's `PeerAddress` events applied to its configuration.
    sends_to: PeerBook,
    /// Its own address, or its NAT's public IP with a port per mapping.
    public_ip: SocketAddr,
    nat: Option<Nat>,
    /// Public source port used toward each destination (NAT only).
    mappings: BTreeMap<SocketAddr, SocketAddr>,
    /// (public source, destination) pairs sent through: what the NAT lets back in.
    conntrack: BTreeSet<(SocketAddr, SocketAddr)>,
    deadline: Instant,
}

struct World {
    hosts: BTreeMap<DeviceId, Host>,
    in_flight: BTreeMap<(Instant, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
    sequence: u64,
    now: Instant,
    /// Datagrams delivered, by (from device, to device).
    delivered: BTreeMap<(DeviceId, DeviceId), u64>,
    /// Datagrams a NAT refused (nothing sent to their source from that mapping yet).
    filtered: u64,
    /// When alice first took a packet of bob's as confirming his address.
    direct_at: Option<Instant>,
}

fn config(name: &str, peers: &[&str], introductions: bool) -> Config {
    let mut config = Config::new(
        keys(name, SEED),
        community_of(&["alice", "bob", "carol"], SEED),
        peers.iter().map(|p| dev(p)).collect(),
        derive_seed(SEED, name),
    );
    config.sync_interval = Duration::from_millis(1_000);
    config.sync_jitter = Duration::from_millis(100);
    config.introductions = introductions;
    config
}

impl World {
    /// Carol at a public address; alice and bob each behind a NAT of kind `nat`, configured
    /// with carol's address only; carol with no address for either.
    fn new(nat: Nat, introductions: bool) -> World {
        World::with(nat, introductions, |_, _| {})
    }

    /// As `new`, with `tweak` applied to each device's configuration.
    fn with(nat: Nat, introductions: bool, tweak: impl Fn(&str, &mut Config)) -> World {
        let carol_addr = addr("203.0.113.3:7000");
        let mut hosts = BTreeMap::new();
        let mut add = |name: &str, peers: &[&str], public_ip: &str, nat: Option<Nat>| {
            let mut config = config(name, peers, introductions);
            tweak(name, &mut config);
            let node =
                Node::new(config, InMemoryStore::new(), Instant::ZERO).expect("valid config");
            let sends_to = PeerBook::new(
                peers
                    .iter()
                    .filter(|p| **p == "carol")
                    .map(|p| (dev(p), carol_addr))
                    .collect(),
            );
            hosts.insert(
                dev(name),
                Host {
                    node,
                    sends_to,
                    public_ip: addr(public_ip),
                    nat,
                    mappings: BTreeMap::new(),
                    conntrack: BTreeSet::new(),
                    deadline: Instant::ZERO,
                },
            );
        };
        add("alice", &["carol"], "198.51.100.1:7000", Some(nat));
        add("bob", &["carol"], "198.51.100.2:7000", Some(nat));
        add("carol", &["alice", "bob"], "203.0.113.3:7000", None);
        World {
            hosts,
            in_flight: BTreeMap::new(),
            sequence: 0,
            now: Instant::ZERO,
            delivered: BTreeMap::new(),
            filtered: 0,
            direct_at: None,
        }
    }

    fn drain(&mut self, name: &DeviceId) {
        let now = self.now;
        // Read from the node, not its events: a packet at the address an introduction hinted
        // confirms it without a `PeerAddress` event (the driver has that address already).
        let bob_seen = self.hosts[name].node.peer_address(&dev("bob"));
        if name.as_str() == "alice"
            && matches!(bob_seen, Some((_, AddressSource::Packet)))
            && self.direct_at.is_none()
        {
            self.direct_at = Some(now);
        }
        loop {
            let host = self.hosts.get_mut(name).expect("a host");
            match host.node.poll_output() {
                Output::Timeout(at) => {
                    host.deadline = at;
                    return;
                }
                Output::Event(event) => {
                    host.sends_to.follow(&event);
                }
                Output::Transmit(t) => {
                    let Some(to) = host.sends_to.destination(&t) else {
                        continue;
                    };
                    let from = match host.nat {
                        None => host.public_ip,
                        Some(kind) => {
                            let next_port = 40_000 + host.mappings.len() as u16;
                            let ip = host.public_ip.ip();
                            let key = match kind {
                                // One mapping for every destination.
                                Nat::EndpointIndependent => host.public_ip,
                                Nat::Symmetric => to,
                            };
                            *host
                                .mappings
                                .entry(key)
                                .or_insert(SocketAddr::new(ip, next_port))
                        }
                    };
                    host.conntrack.insert((from, to));
                    self.sequence += 1;
                    self.in_flight
                        .insert((now + LATENCY, self.sequence), (from, to, t.bytes));
                }
            }
        }
    }

    /// The host a datagram to `to` reaches, if its NAT lets one from `from` in.
    fn route(&mut self, from: SocketAddr, to: SocketAddr) -> Option<DeviceId> {
        for (name, host) in &self.hosts {
            let reaches = match host.nat {
                None => host.public_ip == to,
                Some(_) => host.mappings.values().any(|m| *m == to),
            };
            if reaches {
                if host.nat.is_some() && !host.conntrack.contains(&(to, from)) {
                    self.filtered += 1;
                    return None;
                }
                return Some(name.clone());
            }
        }
        None
    }

    fn owner_of(&self, seen: SocketAddr) -> Option<DeviceId> {
        self.hosts
            .iter()
            .find(|(_, h)| h.public_ip == seen || h.mappings.values().any(|m| *m == seen))
            .map(|(name, _)| name.clone())
    }

    fn run_for(&mut self, duration: Duration) {
        let names: Vec<DeviceId> = self.hosts.keys().cloned().collect();
        for name in &names {
            self.drain(name);
        }
        let limit = self.now + duration;
        loop {
            let next_delivery = self.in_flight.keys().next().map(|(at, _)| *at);
            let next_timeout = self.hosts.values().map(|h| h.deadline).min();
            let next = [next_delivery, next_timeout]
                .into_iter()
                .flatten()
                .min()
                .expect("timers");
            if next > limit {
                self.now = limit;
                return;
            }
            self.now = next;
            if next_delivery == Some(next) {
                let (_, (from, to, bytes)) = self.in_flight.pop_first().expect("due");
                let Some(target) = self.route(from, to) else {
                    continue;
                };
                if let Some(sender) = self.owner_of(from) {
                    *self.delivered.entry((sender, target.clone())).or_default() += 1;
                }
                let host = self.hosts.get_mut(&target).expect("routed");
                host.node.handle_input(Input::Datagram {
                    now: next,
                    from,
                    bytes: &bytes,
                });
                self.drain(&target);
            } else {
                for name in &names {
                    if self.hosts[name].deadline <= next {
                        let host = self.hosts.get_mut(name).expect("a host");
                        host.node.handle_input(Input::Timeout(next));
                        self.drain(name);
                    }
                }
            }
        }
    }

    fn node(&mut self, name: &str) -> &mut Node<InMemoryStore> {
        &mut self.hosts.get_mut(&dev(name)).expect("a host").node
    }

    fn append(&mut self, name: &str, text: &str) {
        let now = self.now;
        self.node(name).append(now, message(text)).expect("append");
        self.drain(&dev(name));
    }

    fn direct(&self, from: &str, to: &str) -> u64 {
        self.delivered
            .get(&(dev(from), dev(to)))
            .copied()
            .unwrap_or(0)
    }

    /// What `me` says of its peer `other`, who must be one (introduced, if not configured).
    fn peer_info(&mut self, me: &str, other: &str) -> PeerInfo {
        let peers = self.node(me).peers();
        let info = peers.into_iter().find(|p| p.device == dev(other));
        info.unwrap_or_else(|| panic!("{me} has {other} as a peer"))
    }

    /// The public address bob's NAT gave the socket toward alice (or toward carol).
    fn nat_public(&self, name: &str) -> std::net::IpAddr {
        self.hosts[&dev(name)].public_ip.ip()
    }
}

#[test]
fn two_devices_behind_endpoint_independent_nats_connect_directly_after_an_introduction() {
    let mut world = World::new(Nat::EndpointIndependent, true);
    world.run_for(Duration::from_millis(500));
    world.append("alice", "from alice");
    world.append("bob", "from bob");
    world.run_for(Duration::from_secs(6));

    let alice_sees = world.node("alice").peer_address(&dev("bob"));
    let bob_sees = world.node("bob").peer_address(&dev("alice"));
    assert!(
        matches!(alice_sees, Some((a, AddressSource::Packet)) if a.ip() == world.nat_public("bob")),
        "alice reaches bob at his NAT's address, confirmed by his packet: {alice_sees:?}"
    );
    assert!(
        matches!(bob_sees, Some((a, AddressSource::Packet)) if a.ip() == world.nat_public("alice")),
        "bob reaches alice at her NAT's address: {bob_sees:?}"
    );
    assert!(world.direct("alice", "bob") > 0 && world.direct("bob", "alice") > 0);
    assert_eq!(world.node("alice").event_count(), 2);
    assert_eq!(world.node("bob").event_count(), 2);
    let carol = world.node("carol").stats().introductions_sent;
    assert!(
        (2..=4).contains(&carol),
        "carol introduced the pair: {carol}"
    );
    let punches = world.node("alice").stats().punch_packets;
    assert!(
        (1..=u64::from(meshlog_core::node::PUNCH_PACKETS)).contains(&punches),
        "alice punched a bounded number of times: {punches}"
    );
    let direct_at = world.direct_at.expect("alice confirmed bob's address");
    println!(
        "nat: direct link alice<-bob confirmed at {direct_at} (virtual, 10 ms one way), \
         {punches} punch packets from alice, {} datagrams filtered by the NATs",
        world.filtered
    );
}

#[test]
fn without_introductions_devices_behind_nats_never_reach_each_other() {
    let mut world = World::new(Nat::EndpointIndependent, false);
    world.run_for(Duration::from_millis(500));
    world.append("alice", "from alice");
    world.run_for(Duration::from_secs(6));
    assert_eq!(world.node("alice").peer_address(&dev("bob")), None);
    assert_eq!(world.direct("alice", "bob"), 0);
    // Carol forwards the event (relay of events is the sync's own): they converge through her.
    assert_eq!(world.node("bob").event_count(), 1);
}

#[test]
fn behind_symmetric_nats_the_punch_fails_boundedly_and_they_fall_back_to_carols_relay() {
    let mut world = World::new(Nat::Symmetric, true);
    world.run_for(Duration::from_millis(500));
    world.append("alice", "from alice");
    world.append("bob", "from bob");
    world.run_for(Duration::from_secs(8));
    // Each side's NAT gave the socket toward the other a new port, not the one carol saw, so
    // no punch packet gets in and nothing confirms either address: after the punch, their
    // datagrams go through carol, and her address is never taken for theirs.
    assert_eq!(world.direct("alice", "bob"), 0);
    assert_eq!(world.direct("bob", "alice"), 0);
    assert!(matches!(
        world.node("alice").peer_address(&dev("bob")),
        Some((_, AddressSource::Introduced))
    ));
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let info = world.peer_info(me, other);
        assert_eq!(
            info.relayed_via,
            Some(dev("carol")),
            "{me} reaches {other} via carol"
        );
        assert!(
            info.state.last_exchange.is_some(),
            "{me} heard {other} through carol"
        );
        assert!(world.node(me).stats().relay_received > 0);
    }
    let carol = world.node("carol").stats().clone();
    assert!(carol.relayed_datagrams > 0);
    assert_eq!(carol.drops.get("relay_rate"), None);
    println!(
        "nat: symmetric NATs: carol relayed {} datagrams, {} bytes",
        carol.relayed_datagrams, carol.relayed_bytes
    );
    let punches = world.node("alice").stats().punch_packets;
    assert!(
        punches <= u64::from(meshlog_core::node::PUNCH_PACKETS),
        "one introduction, one bounded punch: {punches}"
    );
    assert_eq!(world.node("alice").event_count(), 2);
    assert_eq!(world.node("bob").event_count(), 2);
}

#[test]
fn answers_through_a_relay_are_counted_at_their_own_size_not_the_wrappers() {
    // Carol forwards no events of others, so alice's and bob's reach each other only by
    // reconciling through her relay: summaries, then answers (sketches, digests) sealed for
    // the peer and wrapped for carol. The budget reserves an answer's own bytes, as the
    // credit counts the relayed datagrams' own bytes; the wrapper must not be charged on top
    // (it was, and the node panicked: "an answer of 244 bytes where 186 were reserved").
    let mut world = World::with(Nat::Symmetric, true, |name, config| {
        if name == "carol" {
            config.relay = false;
            config.eager_forward = false;
        }
    });
    world.run_for(Duration::from_millis(500));
    for n in 0..20 {
        world.append("alice", &format!("alice {n}"));
        world.append("bob", &format!("bob {n}"));
    }
    world.run_for(Duration::from_secs(20));
    assert_eq!(world.direct("alice", "bob"), 0);
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let via = world.peer_info(me, other).relayed_via;
        assert_eq!(via, Some(dev("carol")), "{me} relays");
    }
    // `sent` counts by the sealed payload's kind, wrapped for a relay or not.
    let sent = &world.node("alice").stats().sent;
    let answers: u64 = [PacketKind::Sketch, PacketKind::Digest, PacketKind::Filter]
        .iter()
        .filter_map(|kind| sent.get(kind).map(|t| t.count))
        .sum();
    let relayed = world.node("carol").stats().relayed_datagrams;
    println!(
        "nat: reconciling through carol's relay: {answers} answers from alice, carol relayed \
         {relayed} datagrams"
    );
    assert!(answers > 0, "alice answered bob through the relay");
    assert_eq!(world.node("alice").event_count(), 40);
    assert_eq!(world.node("bob").event_count(), 40);
}

/// Carol's end of the wire, knowing alice's epoch so what it seals is accepted.
fn carol_wire(h: &Harness, names: &[&str]) -> Wire {
    member_wire(h, names, "carol")
}

/// `name`'s end of the wire toward alice, knowing her epoch.
fn member_wire(h: &Harness, names: &[&str], name: &str) -> Wire {
    let community = community_of(names, SEED);
    let mut wire = Wire::new(keyring_of(name, &community, SEED), 1, true);
    wire.hear(&dev("alice"), h.node("alice").epoch());
    wire
}

fn feed(h: &mut Harness, from: SocketAddr, bytes: &[u8]) {
    let now = h.now();
    h.node_mut("alice")
        .handle_input(Input::Datagram { now, from, bytes });
    while !matches!(h.node_mut("alice").poll_output(), Output::Timeout(_)) {}
}

#[test]
fn an_introduction_never_moves_an_address_a_packet_confirmed_nor_names_a_non_member() {
    let names = ["alice", "bob", "carol"];
    let mut h = Harness::with_config(&names, Topology::FullMesh, SEED, |c| {
        c.introductions = true;
    });
    let mut carol = carol_wire(&h, &names);
    let mut bob = member_wire(&h, &names, "bob");
    let home = addr("10.0.0.2:8002");
    let summary = Payload::Summary {
        prefix: meshlog_core::Prefix::ROOT,
        summary: Default::default(),
    };
    feed(&mut h, home, &bob.seal(&dev("alice"), &summary));
    assert_eq!(
        h.node("alice").peer_address(&dev("bob")),
        Some((home, AddressSource::Packet))
    );
    let carol_at = addr("203.0.113.3:7000");
    let lie = Payload::Introduction {
        peer: dev("bob"),
        addr: addr("192.0.2.66:666"),
    };
    feed(&mut h, carol_at, &carol.seal(&dev("alice"), &lie));
    assert_eq!(
        h.node("alice").peer_address(&dev("bob")),
        Some((home, AddressSource::Packet)),
        "a hint moved a confirmed address"
    );
    assert_eq!(h.node("alice").stats().punch_packets, 0);

    // Naming alice herself, or carol (the sender): dropped and counted.
    for peer in ["alice", "carol"] {
        let odd = Payload::Introduction {
            peer: dev(peer),
            addr: addr("192.0.2.66:666"),
        };
        feed(&mut h, carol_at, &carol.seal(&dev("alice"), &odd));
    }
    assert_eq!(
        h.node("alice").stats().drops.get("bad_introduction"),
        Some(&2)
    );
    // Naming a device outside the roster: the same.
    let stranger = Payload::Introduction {
        peer: dev("mallory"),
        addr: addr("192.0.2.66:666"),
    };
    feed(&mut h, carol_at, &carol.seal(&dev("alice"), &stranger));
    assert_eq!(
        h.node("alice").stats().drops.get("bad_introduction"),
        Some(&3)
    );
    assert!(h
        .node("alice")
        .peers()
        .iter()
        .all(|p| p.device.as_str() != "mallory"));
}

/// Alice's end toward carol, and a harness where carol is the node under test (peers alice,
/// bob, dave; bob's address confirmed by his packet, dave's never heard).
fn relay_harness() -> (Harness, Wire, Wire) {
    let names = ["alice", "bob", "carol", "dave"];
    let mut h = Harness::with_config(&names, Topology::FullMesh, SEED, |c| {
        c.introductions = true;
    });
    let community = community_of(&names, SEED);
    let wire_of = |name: &str, h: &Harness| {
        let mut wire = Wire::new(keyring_of(name, &community, SEED), 1, true);
        wire.hear(&dev("carol"), h.node("carol").epoch());
        wire
    };
    let (alice, mut bob) = (wire_of("alice", &h), wire_of("bob", &h));
    let summary = Payload::Summary {
        prefix: meshlog_core::Prefix::ROOT,
        summary: Default::default(),
    };
    let bytes = bob.seal(&dev("carol"), &summary);
    feed_to(&mut h, "carol", addr("198.51.100.2:40000"), &bytes);
    (h, alice, bob)
}

fn feed_to(
    h: &mut Harness,
    name: &str,
    from: SocketAddr,
    bytes: &[u8],
) -> Vec<meshlog_core::Transmit> {
    let now = h.now();
    let node = h.node_mut(name);
    node.handle_input(Input::Datagram { now, from, bytes });
    let mut sent = Vec::new();
    loop {
        match node.poll_output() {
            Output::Transmit(t) => sent.push(t),
            Output::Event(_) => {}
            Output::Timeout(_) => return sent,
        }
    }
}

#[test]
fn a_relay_forwards_one_for_one_only_between_its_peers_and_within_the_rate_bound() {
    let (mut h, mut alice, _bob) = relay_harness();
    let alice_at = addr("198.51.100.1:40000");
    let inner = vec![0x4d; 200];
    let relay = |to: &str, bytes: &[u8]| Payload::Relay {
        to: dev(to),
        bytes: bytes.to_vec(),
    };
    // To a non-member, to dave (a peer whose address no packet confirmed), to alice herself:
    // nothing goes out.
    for (to, reason) in [
        ("mallory", "relay_not_a_peer"),
        ("dave", "relay_unreachable"),
        ("alice", "relay_not_a_peer"),
    ] {
        let sent = feed_to(
            &mut h,
            "carol",
            alice_at,
            &alice.seal(&dev("carol"), &relay(to, &inner)),
        );
        assert!(
            sent.iter()
                .all(|t| t.kind != meshlog_core::PacketKind::Relayed),
            "{to}"
        );
        assert!(
            h.node("carol").stats().drops.contains_key(reason),
            "{reason}"
        );
    }
    // To bob: one datagram out per datagram in, until the per-second bound.
    let bound = meshlog_core::node::RELAY_DATAGRAMS_PER_SECOND_MAX;
    let mut forwarded = 0;
    for _ in 0..bound + 20 {
        let bytes = alice.seal(&dev("carol"), &relay("bob", &inner));
        let sent = feed_to(&mut h, "carol", alice_at, &bytes);
        let out: Vec<_> = sent
            .iter()
            .filter(|t| t.kind == meshlog_core::PacketKind::Relayed)
            .collect();
        assert!(out.len() <= 1, "one for one");
        for t in out {
            assert_eq!(t.to, dev("bob"));
            assert!(
                t.bytes.len() <= bytes.len() + 8,
                "never larger than what came in (+ names)"
            );
            forwarded += 1;
        }
    }
    let stats = h.node("carol").stats();
    assert_eq!(forwarded, bound);
    assert_eq!(stats.relayed_datagrams, bound);
    assert_eq!(stats.drops.get("relay_rate"), Some(&20));
    // A nested relay is refused.
    let inside = alice.seal(&dev("carol"), &relay("bob", &inner));
    let nested = alice.seal(&dev("carol"), &relay("bob", &inside));
    feed_to(&mut h, "carol", alice_at, &nested);
    assert_eq!(h.node("carol").stats().drops.get("relay_nested"), Some(&1));
}

#[test]
fn forged_or_garbage_relayed_datagrams_are_dropped_and_never_move_an_address() {
    let names = ["alice", "bob", "carol"];
    let mut h = Harness::with_config(&names, Topology::FullMesh, SEED, |c| {
        c.introductions = true;
    });
    let mut carol = carol_wire(&h, &names);
    let carol_at = addr("203.0.113.3:7000");
    let relayed = |from: &str, bytes: Vec<u8>| Payload::Relayed {
        from: dev(from),
        bytes,
    };
    // Garbage inside (no header naming bob): dropped, counted.
    feed(
        &mut h,
        carol_at,
        &carol.seal(&dev("alice"), &relayed("bob", vec![7; 50])),
    );
    assert_eq!(
        h.node("alice").stats().drops.get("relay_mismatch"),
        Some(&1)
    );
    // Carol's own datagram passed off as bob's: refused.
    let own = carol.seal(
        &dev("alice"),
        &Payload::Summary {
            prefix: meshlog_core::Prefix::ROOT,
            summary: Default::default(),
        },
    );
    feed(
        &mut h,
        carol_at,
        &carol.seal(&dev("alice"), &relayed("bob", own)),
    );
    assert_eq!(
        h.node("alice").stats().drops.get("relay_mismatch"),
        Some(&2)
    );
    // A forged datagram in bob's name (a bad tag): dropped as bad_mac.
    let community = community_of(&names, SEED);
    let mut bob = Wire::new(keyring_of("bob", &community, SEED), 1, true);
    bob.hear(&dev("alice"), h.node("alice").epoch());
    let summary = Payload::Summary {
        prefix: meshlog_core::Prefix::ROOT,
        summary: Default::default(),
    };
    let mut forged = bob.seal(&dev("alice"), &summary);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    feed(
        &mut h,
        carol_at,
        &carol.seal(&dev("alice"), &relayed("bob", forged)),
    );
    assert_eq!(h.node("alice").stats().drops.get("bad_mac"), Some(&1));
    // Bob's authentic datagram through carol: opened, and bob's address is not carol's.
    feed(
        &mut h,
        carol_at,
        &carol.seal(
            &dev("alice"),
            &relayed("bob", bob.seal(&dev("alice"), &summary)),
        ),
    );
    assert_eq!(h.node("alice").stats().relay_received, 1);
    assert_ne!(
        h.node("alice").peer_address(&dev("bob")).map(|a| a.0),
        Some(carol_at),
        "a relayed packet moved bob to the relay's address"
    );
}

/// Feeds alice one datagram and returns where each punch packet she sent in answer goes.
fn punch_addresses(h: &mut Harness, from: SocketAddr, bytes: &[u8]) -> Vec<SocketAddr> {
    let now = h.now();
    let alice = h.node_mut("alice");
    alice.handle_input(Input::Datagram { now, from, bytes });
    let mut to = Vec::new();
    loop {
        match alice.poll_output() {
            Output::Timeout(_) => return to,
            Output::Transmit(t) => to.extend(t.address),
            Output::Event(_) => {}
        }
    }
}

#[test]
fn a_punch_tries_every_address_introduced_for_the_peer_up_to_its_bound() {
    let names = ["alice", "bob", "carol", "dave"];
    let mut h = Harness::with_config(&names, Topology::FullMesh, SEED, |c| {
        c.introductions = true;
    });
    let mut carol = carol_wire(&h, &names);
    let mut dave = member_wire(&h, &names, "dave");
    let (carol_at, dave_at) = (addr("203.0.113.3:7000"), addr("192.168.1.4:7000"));
    let introduce = |wire: &mut Wire, at: &str| {
        let payload = Payload::Introduction {
            peer: dev("bob"),
            addr: addr(at),
        };
        wire.seal(&dev("alice"), &payload)
    };
    // Carol sees bob at his NAT's address; dave, on bob's LAN, at his private one.
    let public = addr("198.51.100.2:40000");
    let private = addr("192.168.1.2:7000");
    let first = introduce(&mut carol, "198.51.100.2:40000");
    assert_eq!(punch_addresses(&mut h, carol_at, &first), vec![public]);
    let second = introduce(&mut dave, "192.168.1.2:7000");
    assert_eq!(
        punch_addresses(&mut h, dave_at, &second),
        vec![public, private],
        "a second view joins the punch, and each punch packet goes to both"
    );
    // The same address again adds nothing; a third one does; a fourth is past the bound.
    assert!(punch_addresses(
        &mut h,
        carol_at,
        &introduce(&mut carol, "198.51.100.2:40000")
    )
    .is_empty());
    let third = introduce(&mut carol, "198.51.100.9:1");
    assert_eq!(punch_addresses(&mut h, carol_at, &third).len(), 3);
    let fourth = introduce(&mut carol, "198.51.100.9:2");
    assert!(
        punch_addresses(&mut h, carol_at, &fourth).is_empty(),
        "at most {PUNCH_CANDIDATES_MAX} candidates"
    );
    // The first hint stays where the rounds send; only a packet of bob's confirms one.
    assert_eq!(
        h.node("alice").peer_address(&dev("bob")),
        Some((public, AddressSource::Introduced))
    );
}
