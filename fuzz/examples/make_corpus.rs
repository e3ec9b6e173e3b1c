//! Writes the seed corpus under `fuzz/corpus/<target>/` from real traffic:
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus`.
//!
//! Alice (400 new events, then five more) and bob (the fixture store) sync for a minute
//! of virtual time;
//! the datagrams they exchange become packet and payload seeds, bob's stored events become
//! sealed-event seeds, and the repository's scenario files become scenario seeds.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use meshlog_core::crypto::MAC_LEN;
use meshlog_core::testing::derive_seed;
use meshlog_core::testing::wire::Writer;
use meshlog_core::{
    Config, DeviceId, EventBody, InMemoryStore, Input, Instant, Node, Output, PacketKind,
};
use meshlog_fuzz::{bob_node, community, device, member_keys, SEED};

/// Writes one event body.
type BodyWriter = fn(&mut Writer);

/// Seeds kept per packet kind and per target: a few, so the corpus stays small.
const SEEDS_PER_KIND: usize = 3;
/// Alice's own events, appended at the start.
const ALICE_EVENTS: usize = 400;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let traffic = sync_traffic();
    let mut per_kind: BTreeMap<PacketKind, usize> = BTreeMap::new();
    for (to, kind, bytes) in &traffic {
        let n = per_kind.entry(*kind).or_default();
        if *to != device("bob") || *n >= SEEDS_PER_KIND {
            continue;
        }
        *n += 1;
        let name = format!("{}-{n}", kind.name().to_lowercase());
        write(&root, "packet_open", &name, bytes)?;
        // The payload sits between the header (magic, version, kind, two names, epoch,
        // counter and echo) and the tag; the seed's first byte picks the kind back.
        let source = meshlog_core::Packet::peek(bytes)
            .expect("own packets parse")
            .1;
        let target_len = usize::from(bytes[5 + source.len()]);
        let header_len = 2 + 1 + 1 + 1 + source.len() + 1 + target_len + 8 + 8 + 8;
        let payload = &bytes[header_len..bytes.len() - MAC_LEN];
        let selector = kind.code() - 1;
        write(
            &root,
            "payload_decode",
            &name,
            &[&[selector], payload].concat(),
        )?;
    }

    // Sealed events as stored (mode 0), and plaintexts for alice to seal (mode 1).
    let node = bob_node();
    for (i, (_, entry)) in node.store().entries().take(6).enumerate() {
        write(
            &root,
            "event_open",
            &format!("sealed-{i}"),
            &[&[0], &entry.sealed[..]].concat(),
        )?;
    }
    // Plaintexts as `event.rs` lays them out: version, author, created_at, kind, body.
    let plaintexts: [(&str, BodyWriter); 5] = [
        ("message", |w| {
            w.u8(1).bytes_u16(b"hello").u8(0).u8(0);
        }),
        ("attachment", |w| {
            w.u8(1).bytes_u16(b"see file").u8(0).u8(1).raw(&[5; 32]);
            w.u32(2000)
                .u16(3)
                .bytes_u8(b"a.txt")
                .bytes_u8(b"text/plain");
        }),
        ("reaction", |w| {
            w.u8(2).raw(&[7; 32]).bytes_u8("\u{1f44d}".as_bytes()).u8(0);
        }),
        ("chunk", |w| {
            w.u8(3).raw(&[9; 32]).u16(0).u16(1).bytes_u16(b"abc");
        }),
        ("status", |w| {
            w.u8(4).u8(1);
        }),
    ];
    for (name, body) in plaintexts {
        let mut w = Writer::new();
        w.u8(1).bytes_u8(b"alice").u64(1_000_000);
        body(&mut w);
        let seed = [&[1], &w.bytes[..]].concat();
        write(&root, "event_open", &format!("plaintext-{name}"), &seed)?;
    }

    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for entry in std::fs::read_dir(scenarios)? {
        let path = entry?.path();
        // Scenario files only: `scenarios/scale/` holds big worlds, not new syntax.
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        write(&root, "scenario_parse", &name, &std::fs::read(&path)?)?;
    }
    Ok(())
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir: PathBuf = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

/// Every datagram alice and bob send each other in a minute, in order: (to, kind, bytes).
fn sync_traffic() -> Vec<(DeviceId, PacketKind, Vec<u8>)> {
    let mut config = Config::new(
        member_keys("alice").clone(),
        community().clone(),
        vec![device("bob"), device("carol")],
        derive_seed(SEED, "alice"),
    );
    // No eager push: the difference is reconciled, so every packet kind is sent.
    config.eager_push = false;
    let mut nodes = BTreeMap::from([
        (
            device("alice"),
            Node::new(config, InMemoryStore::new(), Instant::ZERO).expect("valid config"),
        ),
        (device("bob"), bob_node()),
    ]);
    let mut sent = Vec::new();
    let mut queue = VecDeque::new();
    for second in 0..60u64 {
        let now = Instant::from_millis(second * 1_000);
        for (name, node) in nodes.iter_mut() {
            // Over `leaf_items_max` (64) apart, so the rounds descend through digests.
            // A few more once in sync: a small difference, settled by SKETCH.
            let batch = match second {
                1 => 0..ALICE_EVENTS,
                30 => ALICE_EVENTS..ALICE_EVENTS + 5,
                _ => 0..0,
            };
            if name.as_str() == "alice" {
                for i in batch {
                    let text = format!("from alice, {i}");
                    let body = EventBody::Message {
                        text,
                        attachment: None,
                        auto: false,
                    };
                    node.append(now, body).expect("append");
                }
            }
            node.handle_input(Input::Timeout(now));
        }
        loop {
            for node in nodes.values_mut() {
                loop {
                    match node.poll_output() {
                        Output::Transmit(t) => queue.push_back(t),
                        Output::Event(_) => {}
                        Output::Timeout(_) => break,
                    }
                }
            }
            let Some(t) = queue.pop_front() else { break };
            sent.push((t.to.clone(), t.kind, t.bytes.clone()));
            if let Some(node) = nodes.get_mut(&t.to) {
                node.handle_input(Input::Datagram {
                    now,
                    from: meshlog_core::testing::OUTSIDE,
                    bytes: &t.bytes,
                });
            }
        }
    }
    sent
}
