//! `cargo bench -p meshlog-core --bench members`: what membership costs. Figures are printed,
//! never asserted (issue 23's targets are beside them).
//!
//! - rekey CPU: sealing a new epoch key to 10 / 100 / 1,000 members (target ≤ 100 ms at
//!   1,000), and the bytes of the events that carry it;
//! - settling the roster from that many membership events;
//! - in the core's harness (virtual time, 10 ms links): a removal at 30% loss until every
//!   remaining member seals with the new epoch, in sync rounds; a device joining a community
//!   that holds 10,000 events until it holds them all.

use std::collections::BTreeMap;
use std::time::Instant as WallClock;

use meshlog_core::member::join::Joiner;
use meshlog_core::member::roster::settle;
use meshlog_core::member::{share_key, unwrap_key, MemberOp, OpRecord, Recipient, Role};
use meshlog_core::testing::{derive_seed, keys, Harness, Topology};
use meshlog_core::{
    seal, Config, DeviceId, Duration, Event, EventBody, InMemoryStore, Instant, Node, Store,
};

fn main() {
    println!("rekey: one new epoch key sealed to every member");
    println!(
        "{:>8} {:>12} {:>9} {:>12} {:>14}",
        "members", "seal ms", "events", "bytes", "bytes/member"
    );
    for members in [10usize, 100, 1_000] {
        rekey(members);
    }
    println!();
    settle_cost();
    println!();
    removal_at_loss();
    join_with_history(10_000);
}

fn rekey(members: usize) {
    let recipients: Vec<Recipient> = (0..members)
        .map(|i| Recipient {
            device_key: keys(&format!("d{i}"), 1).public(),
            receive_key: None,
        })
        .collect();
    let started = WallClock::now();
    let ops = share_key(1, &[7; 32], &recipients, [3; 32]);
    let seal_ms = started.elapsed().as_secs_f64() * 1e3;
    // As events: each op signed and sealed like any event.
    let community = meshlog_core::testing::community_of(&["d0"], 1);
    let admin = keys("d0", 1);
    let bytes: usize = ops
        .iter()
        .map(|op| {
            let event = Event {
                author: admin.device.clone(),
                created_at: Instant::from_millis(1),
                body: EventBody::Membership {
                    parents: Vec::new(),
                    op: Box::new(op.clone()),
                },
            };
            seal(&event, &admin, &community, [1; 24])
                .unwrap()
                .sealed
                .len()
        })
        .sum();
    let holder = keys(&format!("d{}", members - 1), 1);
    let started = WallClock::now();
    let opened = ops.iter().find_map(|op| unwrap_key(&holder, &[], op));
    let unwrap_us = started.elapsed().as_secs_f64() * 1e6;
    assert!(opened.is_some());
    println!(
        "{members:>8} {seal_ms:>12.2} {:>9} {bytes:>12} {:>14.1}   (one member opens its copy in {unwrap_us:.0} µs)",
        ops.len(),
        bytes as f64 / members as f64
    );
}

fn settle_cost() {
    println!("settling the roster: adds by one admin, each naming the one before");
    for adds in [100usize, 1_000] {
        let admin = keys("admin", 1);
        let genesis = BTreeMap::from([(admin.device.clone(), (admin.public(), Role::Admin))]);
        let mut ops = BTreeMap::new();
        let mut parent = None;
        for i in 0..adds {
            let id = meshlog_core::EventId::of_bytes(format!("op{i}").as_bytes());
            ops.insert(
                id,
                OpRecord {
                    author: admin.device.clone(),
                    created_at: Instant::from_millis(i as u64),
                    parents: parent.into_iter().collect(),
                    op: MemberOp::Add {
                        device: DeviceId::new(&format!("m{i}")).unwrap(),
                        key: keys(&format!("m{i}"), 1).public(),
                        role: Role::Member,
                    },
                },
            );
            parent = Some(id);
        }
        let started = WallClock::now();
        let roster = settle(&[0; 16], &genesis, &ops);
        println!(
            "{adds:>8} events: {:.2} ms, {} members",
            started.elapsed().as_secs_f64() * 1e3,
            roster.active().count()
        );
    }
}

fn removal_at_loss() {
    let names: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut h = Harness::new(&names, Topology::FullMesh, 3);
    h.loss_ppm = 300_000;
    h.run_for(Duration::from_secs(10));
    let start = h.now();
    let removed = DeviceId::new("d9").unwrap();
    h.node_mut("d0").remove_member(start, &removed).unwrap();
    let mut rounds = 0;
    while names[..9].iter().any(|n| h.node(n).key_epoch() < 1) && rounds < 100 {
        h.run_for(Duration::from_secs(1));
        rounds += 1;
    }
    let took = h.now().saturating_since(start);
    println!(
        "removal at 30% loss, 10 devices, 5 s rounds: every remaining member on the new epoch after {took} ({:.1} rounds)",
        took.as_micros() as f64 / 5e6
    );
}

fn join_with_history(events: usize) {
    let mut h = Harness::new(&["alice", "bob"], Topology::FullMesh, 5);
    h.append_messages("alice", events);
    h.run_until_converged(Duration::from_secs(3_600))
        .expect("converges");
    let now = h.now();
    let invite = h
        .node_mut("alice")
        .create_invite(
            now,
            Role::Member,
            Duration::from_secs(600),
            1,
            String::new(),
        )
        .unwrap();
    let dave = keys("dave", 5);
    let mut joiner = Joiner::new(dave.clone(), invite);
    let start = h.now();
    let request = joiner.poll_transmit(start).unwrap().unwrap();
    h.deliver_now("alice", &request);
    let welcomed = h
        .take_outside("dave")
        .iter()
        .find_map(|part| joiner.handle_datagram(part).unwrap())
        .expect("welcomed");
    let mut store = InMemoryStore::new();
    for event in &welcomed.events {
        store.insert(event, 0).unwrap();
    }
    let config = Config::new(
        dave,
        welcomed.community,
        vec![welcomed.inviter],
        derive_seed(5, "dave"),
    );
    h.add_node(Node::new(config, store, start).unwrap(), &["alice"]);
    let wall = WallClock::now();
    let done = h
        .run_until_converged(Duration::from_secs(600))
        .expect("converges");
    println!(
        "join into {events} events (harness, 10 ms links): full history after {} virtual, {:.2} s of CPU",
        done.saturating_since(start),
        wall.elapsed().as_secs_f64()
    );
}
