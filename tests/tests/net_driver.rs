//! The driver on real loopback UDP, in-process: eager push, offline both ways, catch-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use meshlog_core::testing::{community_of, keys};
use meshlog_core::{Config, DeviceId, EventBody, EventId, InMemoryStore, Node, NodeEvent};
use meshlog_net::{os_seed, Clock, Driver, DriverHandle, NetEventKind, SystemClock};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(20);

async fn pair() -> (DriverHandle, DriverHandle) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    let mut handles = Vec::new();
    for (i, (name, socket)) in [("alice", a), ("bob", b)].into_iter().enumerate() {
        let peer = if i == 0 { "bob" } else { "alice" };
        let peers: BTreeMap<DeviceId, SocketAddr> =
            [(DeviceId::new(peer).unwrap(), addrs[1 - i])].into();
        let mut config = Config::new(
            keys(name, 5),
            community_of(&["alice", "bob"], 5),
            vec![DeviceId::new(peer).unwrap()],
            os_seed(),
        );
        config.sync_interval = meshlog_core::Duration::from_millis(200);
        config.sync_jitter = meshlog_core::Duration::from_millis(20);
        let node = Node::new(config, InMemoryStore::new(), SystemClock.now()).unwrap();
        let (driver, handle) = Driver::new(node, socket, peers, SystemClock);
        tokio::spawn(driver.run());
        handles.push(handle);
    }
    let bob = handles.pop().unwrap();
    (handles.pop().unwrap(), bob)
}

fn text(t: &str) -> EventBody {
    EventBody::Message {
        text: t.into(),
        attachment: None,
        auto: false,
    }
}

/// Waits (bounded) until `events` reports `id` stored.
async fn stored(events: &mut broadcast::Receiver<meshlog_net::DriverEvent>, id: EventId) {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.unwrap();
            if let NetEventKind::Node(NodeEvent::EventStored { id: got, .. }) = event.kind {
                if got == id {
                    return;
                }
            }
        }
    })
    .await
    .expect("event arrives in time");
}

#[tokio::test]
async fn append_arrives_and_offline_stops_traffic_both_ways() {
    let (alice, bob) = pair().await;
    let mut bob_events = bob.subscribe();
    let first = alice.append(text("hi")).await.unwrap();
    stored(&mut bob_events, first).await;

    bob.set_online(false).await.unwrap();
    let sent_before = bob.snapshot().await.unwrap().stats.sent_total().count;
    let missed = alice.append(text("while you were out")).await.unwrap();
    // Wait for bob's driver to drop alice's push (counted) and for several rounds to pass.
    tokio::time::timeout(WAIT, async {
        loop {
            let snapshot = bob.snapshot().await.unwrap();
            if snapshot.stats.drops.get("offline").copied().unwrap_or(0) >= 3 {
                return snapshot;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("pushes and summaries reach offline bob and are dropped");
    let snapshot = bob.snapshot().await.unwrap();
    assert!(!snapshot.online);
    assert_eq!(snapshot.events, 1, "nothing got in while offline");
    assert_eq!(
        snapshot.stats.sent_total().count,
        sent_before,
        "nothing went out while offline"
    );

    bob.set_online(true).await.unwrap();
    stored(&mut bob_events, missed).await;
    assert_eq!(
        bob.snapshot().await.unwrap().summary,
        alice.snapshot().await.unwrap().summary
    );
}
