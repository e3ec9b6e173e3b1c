//! SIGKILL a device right after it answered 201s; restarted on the same data directory,
//! it still has every acknowledged event.

mod backend_support;

use anyhow::Result;
use backend_support::{community, free_udp_addr, post, DeviceProcess, DeviceSpec};
use base64::Engine;
use serde_json::json;

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
    // The decrypted views come back too: an attachment and a reaction.
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let (status, created) = post(
        &alice.url("/api/messages"),
        &json!({"text": "with file", "attachment": {"name": "f.bin", "mime": "application/octet-stream",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&content)}}),
    )?;
    assert_eq!(status, 201);
    let with_file = created["id"].as_str().unwrap().to_owned();
    let reaction = json!({"emoji": "🎉"});
    let (status, _) = post(
        &alice.url(&format!("/api/messages/{with_file}/reactions")),
        &reaction,
    )?;
    assert_eq!(status, 201);
    acknowledged.push(with_file.clone());
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
    // 40 messages, 1 message with 13 chunks, 1 reaction.
    assert_eq!(alice.stats()?["events"], 40 + 1 + 13 + 1);
    let messages = alice.messages()?;
    let restored = messages
        .iter()
        .find(|m| m["id"] == json!(with_file))
        .unwrap();
    assert_eq!(
        restored["reactions"],
        json!([{"emoji": "🎉", "authors": ["alice"]}])
    );
    let url = alice.url(restored["attachment"]["url"].as_str().unwrap());
    assert_eq!(
        backend_support::get_response(&url)?.bytes()?.to_vec(),
        content
    );
    Ok(())
}
