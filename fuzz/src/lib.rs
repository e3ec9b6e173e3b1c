//! Coverage-guided fuzz targets for meshlog, run by AFL++ through `cargo afl` (stable Rust).
//!
//! Each target is a function of arbitrary bytes that must return normally for every input; a
//! panic (including a failed assertion, an overflow or an out-of-bounds index, since the fuzz
//! build keeps debug checks) is a finding. The thin binaries in `src/bin/` hand AFL++'s inputs
//! to these functions. The tests below replay the committed corpus through them (`scripts/fuzz`
//! runs them on the instrumented build first; plain `cargo test --lib` works too).
//!
//! | target           | what it feeds                                                         |
//! |------------------|-----------------------------------------------------------------------|
//! | `packet_open`    | a datagram to `Packet::peek`, `Packet::open` (then bob's node)        |
//! | `payload_decode` | payload bytes of each kind in a genuinely tagged packet from alice,   |
//! |                  | to `Packet::open` and bob's node, which holds events to answer with    |
//! | `event_open`     | sealed bytes to `open`, or plaintext signed and encrypted for real     |
//! | `scenario_parse` | TOML text to `Scenario::parse` (validation included) and `World::new` |
//!
//! Everything is fixed and deterministic: a three-member community (alice, bob, carol) from
//! seed 1, and bob's store of events by alice and carol, built once per process.

use std::sync::OnceLock;

use meshlog_core::crypto::{Keyring, PairKey};
use meshlog_core::testing::{community_of, derive_seed, keyring_of, keys};
use meshlog_core::{
    seal, Community, Config, DeviceId, DeviceKeys, Event, EventBody, InMemoryStore, Input, Instant,
    Node, Output, Store,
};

mod event;
mod packet;
mod scenario;

pub use event::event_open;
pub use packet::{packet_open, payload_decode};
pub use scenario::scenario_parse;

/// Seed of every key and of the community.
pub const SEED: u64 = 1;
pub const MEMBERS: [&str; 3] = ["alice", "bob", "carol"];
/// Events in bob's store before each input: over `leaf_items_max` (64), so digests and
/// filters from alice have something to differ from.
const STORED_EVENTS: u32 = 96;

pub fn device(name: &str) -> DeviceId {
    DeviceId::new(name).expect("fixture names are valid")
}

pub fn community() -> &'static Community {
    static COMMUNITY: OnceLock<Community> = OnceLock::new();
    COMMUNITY.get_or_init(|| community_of(&MEMBERS, SEED))
}

/// A member's keys, derived once per process (deriving costs a scalar multiplication).
pub fn member_keys(name: &str) -> &'static DeviceKeys {
    static KEYS: OnceLock<Vec<DeviceKeys>> = OnceLock::new();
    let all = KEYS.get_or_init(|| MEMBERS.iter().map(|n| keys(n, SEED)).collect());
    all.iter()
        .find(|k| k.device.as_str() == name)
        .expect("a fixture member")
}

/// Bob's pairwise keys with every other member.
pub fn bob_keyring() -> &'static Keyring {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get_or_init(|| keyring_of("bob", community(), SEED))
}

/// The key alice tags her packets to bob with.
pub fn alice_to_bob_key() -> &'static PairKey {
    static KEY: OnceLock<PairKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let alice = keyring_of("alice", community(), SEED);
        alice.key(&device("bob")).expect("bob is a member").clone()
    })
}

/// Bob's store: events by alice and carol (messages and chunks of a few sizes).
fn bob_store() -> &'static InMemoryStore {
    static STORE: OnceLock<InMemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut store = InMemoryStore::new();
        for (i, event) in sample_events().enumerate() {
            let author = member_keys(event.author.as_str());
            let nonce = derive_seed(i as u64, "fuzz event nonce");
            let nonce: [u8; 24] = nonce[..24].try_into().expect("32 bytes hold 24");
            let opened = seal(&event, author, community(), nonce).expect("fixture events seal");
            store.insert(&opened, 0).expect("in-memory insert");
        }
        store
    })
}

/// The fixture's events, alternating authors alice and carol.
pub fn sample_events() -> impl Iterator<Item = Event> {
    (0..STORED_EVENTS).map(|i| {
        let author = if i % 2 == 0 { "alice" } else { "carol" };
        let body = match i % 3 {
            0 => EventBody::Message {
                text: format!("message {i}"),
                attachment: None,
                auto: i % 5 == 0,
            },
            1 => EventBody::FileChunk {
                file: meshlog_core::FileId([i as u8; 32]),
                index: 0,
                count: 1,
                bytes: vec![i as u8; (i as usize * 13) % 700],
            },
            _ => EventBody::DeviceStatus { online: i % 4 == 1 },
        };
        Event {
            author: device(author),
            created_at: Instant::from_millis(u64::from(i) * 1_000),
            body,
        }
    })
}

/// Bob's node over a copy of the fixture store. Its one peer is alice, who sends every fuzzed
/// packet: building a node costs a key agreement per peer (about half its cost here).
pub fn bob_node() -> Node<InMemoryStore> {
    let config = Config::new(
        member_keys("bob").clone(),
        community().clone(),
        vec![device("alice")],
        derive_seed(SEED, "bob"),
    );
    let node =
        Node::new(config, bob_store().clone(), Instant::ZERO).expect("fixture config is valid");
    assert_eq!(
        node.epoch(),
        BOB_EPOCH,
        "each run starts from the fixture's store"
    );
    node
}

/// Bob's epoch in every `bob_node`: what a packet must echo to reach its payload handling.
pub const BOB_EPOCH: u64 = 1;

/// Hands `datagram` to bob's node and drains everything it does about it.
pub fn deliver_to_bob(datagram: &[u8]) {
    let mut node = bob_node();
    let held = node.store().len().expect("in-memory len");
    node.handle_input(Input::Datagram {
        now: Instant::from_millis(1_000),
        from: meshlog_core::testing::OUTSIDE,
        bytes: datagram,
    });
    while !matches!(node.poll_output(), Output::Timeout(_)) {}
    assert!(
        node.store().len().expect("in-memory len") >= held,
        "a datagram never removes events"
    );
}

#[cfg(test)]
mod corpus_replay {
    //! Every committed seed through its target, so the targets build and hold without AFL++;
    //! and every seed still gets past the front door (a corpus left behind by a format change
    //! would fuzz nothing but the version check).

    use std::path::Path;

    use meshlog_core::{open, seal_plaintext, Packet};
    use meshlog_sim::Scenario;

    use super::{bob_keyring, community, member_keys};

    fn seeds(target: &str, run: fn(&[u8])) -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut seeds = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            run(&bytes);
            seeds.push((path.display().to_string(), bytes));
        }
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        seeds
    }

    #[test]
    fn packet_open() {
        for (name, bytes) in seeds("packet_open", super::packet_open) {
            let opened = Packet::open(&bytes, bob_keyring());
            assert!(opened.is_ok(), "{name}: {opened:?}");
        }
    }

    #[test]
    fn payload_decode() {
        for (name, bytes) in seeds("payload_decode", super::payload_decode) {
            let (_, datagram) = super::packet::alice_to_bob(&bytes).expect("a seed fits");
            let opened = Packet::open(&datagram, bob_keyring());
            assert!(opened.is_ok(), "{name}: {opened:?}");
        }
    }

    #[test]
    fn event_open() {
        for (name, bytes) in seeds("event_open", super::event_open) {
            let (mode, rest) = bytes.split_first().expect("a mode byte");
            let sealed = match mode % 2 {
                0 => rest.to_vec(),
                _ => seal_plaintext(rest, member_keys("alice"), community(), [*mode; 24])
                    .expect("a seed fits"),
            };
            let opened = open(&sealed, community());
            assert!(opened.is_ok(), "{name}: {opened:?}");
        }
    }

    #[test]
    fn scenario_parse() {
        for (name, bytes) in seeds("scenario_parse", super::scenario_parse) {
            let text = String::from_utf8(bytes).expect("UTF-8");
            let parsed = Scenario::parse(&text, &name);
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
    }
}
