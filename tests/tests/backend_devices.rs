//! Two real `meshlog device` processes on loopback UDP.

mod backend_support;

use std::time::Duration;

use anyhow::Result;
use backend_support::{get, pair, post, wait_for, DeviceProcess};
use base64::Engine;
use serde_json::{json, Value};

const CONVERGE: Duration = Duration::from_secs(30);

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn message_reaction_and_attachment_cross_over() -> Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 1_000)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let bob = DeviceProcess::start(&bob_spec)?;

    let id = alice.post_message("hello bob")?;
    wait_for(CONVERGE, || Ok(texts(&bob.messages()?) == ["hello bob"]))?;
    let on_bob = &bob.messages()?[0];
    assert_eq!(on_bob["id"], json!(id));
    assert_eq!(on_bob["author"], "alice");
    assert_eq!(on_bob["auto"], false);

    let (status, _) = post(
        &bob.url(&format!("/api/messages/{id}/reactions")),
        &json!({"emoji": "👍"}),
    )?;
    assert_eq!(status, 201);
    wait_for(CONVERGE, || {
        Ok(alice.messages()?[0]["reactions"] == json!([{ "emoji": "👍", "authors": ["bob"] }]))
    })?;

    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let (status, created) = post(
        &alice.url("/api/messages"),
        &json!({"text": "the report", "attachment": {"name": "report.bin", "mime": "application/octet-stream", "data_base64": encoded}}),
    )?;
    assert_eq!(status, 201, "{created}");
    let file_url = created["attachment"]["url"].as_str().unwrap().to_owned();
    assert_eq!(created["attachment"]["size"], 200_000);
    assert_eq!(created["attachment"]["complete"], true);
    wait_for(CONVERGE, || {
        Ok(bob
            .messages()?
            .iter()
            .any(|m| m["attachment"]["complete"] == true))
    })?;
    let bytes = backend_support::get_response(&bob.url(&file_url))?;
    assert_eq!(bytes.status(), 200);
    assert_eq!(
        bytes.headers()["content-type"].to_str()?,
        "application/octet-stream"
    );
    assert_eq!(bytes.bytes()?.to_vec(), content);

    let stats = bob.stats()?;
    assert_eq!(stats["messages"], 2);
    assert_eq!(stats["reactions"], 1);
    assert_eq!(
        stats["events_by_origin"]["local"], 1,
        "bob authored the reaction"
    );
    assert!(
        stats["packets_received"]["EVENT"]["count"]
            .as_u64()
            .unwrap()
            >= 252
    );
    Ok(())
}

#[test]
fn offline_bob_catches_up_on_fifty_messages() -> Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 1_000)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let bob = DeviceProcess::start(&bob_spec)?;

    let (status, body) = post(&bob.url("/api/device-status"), &json!({"online": false}))?;
    assert_eq!((status, body), (200, json!({"online": false})));
    for i in 0..50 {
        alice.post_message(&format!("message {i}"))?;
    }
    // Offline stops traffic both ways: alice's pushes reach bob's socket and are dropped.
    wait_for(CONVERGE, || {
        Ok(bob.stats()?["drops"]["offline"].as_u64().unwrap_or(0) >= 50)
    })?;
    assert!(bob.messages()?.is_empty());
    assert_eq!(bob.stats()?["online"], false);

    post(&bob.url("/api/device-status"), &json!({"online": true}))?;
    wait_for(CONVERGE, || Ok(bob.messages()?.len() == 50))?;
    let mut got = texts(&bob.messages()?);
    got.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("message {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    wait_for(
        CONVERGE,
        || Ok(bob.stats()?["sync_percent"] == json!(100.0)),
    )?;
    Ok(())
}

#[test]
fn network_log_and_stream_show_traffic() -> Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 1_000)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let bob = DeviceProcess::start(&bob_spec)?;

    let mut stream = reqwest::blocking::Client::new()
        .get(bob.url("/api/stream"))
        .bearer_auth(&bob.token)
        .send()?;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // Alice has heard bob's summary (so she knows his epoch): her append is pushed at once,
    // noted as the message it is. Before that it would be held for the greeting and go out
    // later as plain `ev` items, which a loaded machine showed once.
    wait_for(CONVERGE, || {
        Ok(alice.stats()?["sync_percent"] == json!(100.0))
    })?;
    let id = alice.post_message("over the wire")?;

    // The stream says hello, then announces the message (among network frames).
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + CONVERGE;
    while !seen.contains(&id) && std::time::Instant::now() < deadline {
        let n = std::io::Read::read(&mut stream, &mut buf)?;
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.starts_with("event: hello\ndata: {\"device\":\"bob\"}"),
        "{seen}"
    );
    assert!(seen.contains("event: message\ndata: {"), "{seen}");
    assert!(seen.contains(&id));

    wait_for(CONVERGE, || {
        let (_, log) = get(&alice.url("/api/network-events?since=0"))?;
        Ok(log["events"].as_array().unwrap().iter().any(|e| {
            e["direction"] == "sent"
                && e["kind"] == "EVENT"
                && e["summary"]
                    .as_str()
                    .unwrap()
                    .starts_with("alice → bob EVENT message ")
        }))
    })?;
    let (_, log) = get(&bob.url("/api/network-events"))?;
    let next = log["next"].as_u64().unwrap();
    assert!(log["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["direction"] == "received" && e["from"] == "alice"));
    let (_, later) = get(&bob.url(&format!("/api/network-events?since={next}")))?;
    assert!(later["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["seq"].as_u64().unwrap() >= next));
    Ok(())
}
