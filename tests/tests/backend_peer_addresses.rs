//! Real processes on loopback, finding each other's addresses: a device that comes back on
//! another address keeps syncing, because its peers follow its newest authentic packet
//! (WireGuard's roaming), and its new address is kept for the peer's restarts; devices that
//! know only one member find the rest through the address records it passes along.

mod backend_support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use backend_support::{community, free_udp_addr, pair, wait_for, DeviceProcess, DeviceSpec};
use serde_json::Value;

const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

fn holds(device: &DeviceProcess, text: &str) -> Result<bool> {
    Ok(device
        .messages()?
        .iter()
        .any(|m| m["text"].as_str() == Some(text)))
}

/// `name` as `device`'s stats list it, if they do.
fn peer_of(device: &DeviceProcess, name: &str) -> Result<Option<Value>> {
    let stats = device.stats()?;
    Ok(stats["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["name"] == name).cloned()))
}

fn bob_as_alice_sees_him(alice: &DeviceProcess) -> Result<Value> {
    peer_of(alice, "bob")?.context("alice lists bob")
}

#[test]
fn a_device_back_on_a_new_port_keeps_syncing_and_its_peer_follows_it() -> Result<()> {
    let root = tempfile::tempdir()?;
    // A long interval: what reaches bob quickly after his move comes from alice's eager push
    // and answers, which only reach him if she follows him to his new port.
    let (alice_spec, mut bob_spec) = pair(root.path(), 1_000)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let bob = DeviceProcess::start(&bob_spec)?;
    alice.post_message("before the move")?;
    wait_for(CONVERGE_TIMEOUT, || holds(&bob, "before the move"))?;

    // Bob's laptop changes networks: the same data, a new port. Alice was never told.
    bob.kill();
    let old = bob_spec.udp;
    bob_spec.udp = free_udp_addr();
    assert_ne!(old, bob_spec.udp);
    let bob = DeviceProcess::start(&bob_spec)?;

    // What alice posts now reaches bob at his new port: her push and her answers to his
    // summaries only get there if she follows him.
    let posted_at = Instant::now();
    alice.post_message("after the move")?;
    wait_for(CONVERGE_TIMEOUT, || holds(&bob, "after the move"))
        .context("alice's post after bob moved reaches him")?;
    println!(
        "bob moved to {}; alice's post reached him {} ms after it was made",
        bob_spec.udp,
        posted_at.elapsed().as_millis()
    );
    let peer = bob_as_alice_sees_him(&alice)?;
    assert_eq!(peer["address"], bob_spec.udp.to_string(), "{peer}");
    assert_eq!(peer["address_source"], "packet", "{peer}");
    assert!(alice.stats()?["peer_moves"].as_u64() >= Some(1));

    // Alice keeps his new address for her own restarts (her flag still names the old port).
    drop(alice);
    let peers = std::fs::read_to_string(alice_spec.data.join("peers.json"))?;
    assert!(
        peers.contains(&bob_spec.udp.to_string()),
        "peers.json does not hold bob's new address: {peers}"
    );
    Ok(())
}

#[test]
fn devices_that_know_only_one_member_find_each_other_through_its_address_records() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &["alice", "bob", "carol"])?;
    let udp = |_| free_udp_addr();
    let (alice_udp, bob_udp, carol_udp) = (udp(0), udp(1), udp(2));
    let spec = |name: &str, udp, peers: Vec<(String, std::net::SocketAddr)>| DeviceSpec {
        name: name.into(),
        udp,
        peers,
        data: root.path().join(name),
        keys: keys.clone(),
        sync_interval_ms: 500,
    };
    // Alice and bob were each told only where carol is.
    let carol = DeviceProcess::start(&spec(
        "carol",
        carol_udp,
        vec![("alice".into(), alice_udp), ("bob".into(), bob_udp)],
    ))?;
    let started = Instant::now();
    let alice = DeviceProcess::start(&spec("alice", alice_udp, vec![("carol".into(), carol_udp)]))?;
    let bob = DeviceProcess::start(&spec("bob", bob_udp, vec![("carol".into(), carol_udp)]))?;
    wait_for(CONVERGE_TIMEOUT, || {
        let heard = |device: &DeviceProcess, name: &str| -> Result<bool> {
            Ok(peer_of(device, name)?.is_some_and(|p| p["last_exchange_ms"].is_u64()))
        };
        Ok(heard(&alice, "bob")? && heard(&bob, "alice")?)
    })
    .context("alice and bob become each other's peers")?;
    let found_after = started.elapsed();
    let bob_seen = peer_of(&alice, "bob")?.context("alice lists bob")?;
    assert_eq!(bob_seen["address"], bob_udp.to_string(), "{bob_seen}");

    // The link is their own: with carol gone, alice's post still reaches bob.
    carol.kill();
    let posted_at = Instant::now();
    alice.post_message("without carol")?;
    wait_for(CONVERGE_TIMEOUT, || holds(&bob, "without carol"))
        .context("alice's post reaches bob with carol gone")?;
    println!(
        "alice and bob found each other {} ms after starting; with carol gone, a post took {} ms",
        found_after.as_millis(),
        posted_at.elapsed().as_millis()
    );
    Ok(())
}
