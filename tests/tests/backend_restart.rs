//! SIGKILL a device right after it answered 201s; restarted on the same data directory,
//! it still has every acknowledged event.

mod backend_support;

use anyhow::Result;
use backend_support::{community, free_udp_addr, DeviceProcess, DeviceSpec};

#[test]
fn every_acknowledged_event_survives_sigkill() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &["alice", "bob"])?;
    // bob is never started: alice must keep her events on her own disk.
    let spec = DeviceSpec {
        name: "alice".into(),
        udp: free_udp_addr(),
        peers: vec![("bob".into(), free_udp_addr())],
        data: root.path().join("alice"),
        keys,
        sync_interval_ms: 1_000,
    };
    let alice = DeviceProcess::start(&spec)?;
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        acknowledged.push(alice.post_message(&format!("durable {i}"))?);
    }
    alice.kill(); // immediately after the last 201

    let alice = DeviceProcess::start(&spec)?;
    let mut held: Vec<String> = alice
        .messages()?
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    held.sort();
    acknowledged.sort();
    assert_eq!(held, acknowledged);
    assert_eq!(alice.stats()?["events"], 40);
    Ok(())
}
