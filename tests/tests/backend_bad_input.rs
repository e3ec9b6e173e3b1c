//! Bad input gets a 4xx with a JSON error naming the problem; nothing is stored; the server
//! keeps serving. Bad datagrams are dropped and counted while HTTP keeps answering.

mod backend_support;

use std::net::UdpSocket;
use std::time::Duration;

use anyhow::{Context, Result};
use backend_support::{error_of, get, lone_alice, post, post_raw, wait_for};
use meshlog_core::crypto::PairKey;
use meshlog_core::{BucketSummary, Prefix};
use meshlog_core::{DeviceId, DeviceKeys, Packet, Payload};
use serde_json::{json, Value};

#[test]
fn bad_http_input_is_refused_and_nothing_is_stored() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    let messages = alice.url("/api/messages");
    let unknown_id = "ab".repeat(32);

    let (status, error) = error_of(post_raw(&messages, b"{\"text\": ".to_vec())?);
    assert_eq!(status, 400, "malformed JSON: {error}");

    let (status, error) = error_of(post(&messages, &json!({"text": 5}))?);
    assert!(
        status == 422 && error.contains("text"),
        "wrong type: {status} {error}"
    );

    let (status, error) = error_of(post(&messages, &json!({"txt": "hi"}))?);
    assert!(
        status == 422 && error.contains("text"),
        "missing field: {status} {error}"
    );

    let big = json!({"text": "x", "attachment": {"name": "a", "mime": "b", "data_base64": "A".repeat(600_000)}});
    let (status, error) = error_of(post(&messages, &big)?);
    assert_eq!(status, 413, "oversized body: {error}");

    let (status, error) = error_of(post(&messages, &json!({"text": "x".repeat(701)}))?);
    assert!(
        status == 400 && error.contains("text"),
        "text too long: {status} {error}"
    );

    let bad_base64 = json!({"text": "x", "attachment": {"name": "a", "mime": "text/plain", "data_base64": "!!!"}});
    let (status, error) = error_of(post(&messages, &bad_base64)?);
    assert!(
        status == 400 && error.contains("data_base64"),
        "bad base64: {status} {error}"
    );

    let (status, error) = error_of(post(
        &alice.url(&format!("/api/messages/{unknown_id}/reactions")),
        &json!({"emoji": "👍"}),
    )?);
    assert!(
        status == 404 && error.contains(&unknown_id),
        "unknown message: {status} {error}"
    );

    let (status, error) = error_of(post(
        &alice.url("/api/messages/xyz/reactions"),
        &json!({"emoji": "👍"}),
    )?);
    assert!(
        status == 400 && error.contains("id"),
        "malformed id: {status} {error}"
    );

    let (status, error) = error_of(get(
        &alice.url(&format!("/api/messages/{unknown_id}/attachment"))
    )?);
    assert_eq!(status, 404, "unknown file: {error}");

    let (status, error) = error_of(post(
        &alice.url("/api/device-status"),
        &json!({"online": "yes"}),
    )?);
    assert!(
        status == 422 && error.contains("online"),
        "wrong type: {status} {error}"
    );

    let (status, error) = error_of(get(&alice.url("/api/network-events?since=soon"))?);
    assert!(
        status == 400 && error.contains("since"),
        "bad since: {status} {error}"
    );

    let (status, error) = error_of(get(&alice.url("/api/nothing-here"))?);
    assert_eq!(status, 404, "unknown endpoint: {error}");

    // Nothing stored, and the server still serves.
    assert!(alice.messages()?.is_empty());
    assert_eq!(alice.stats()?["events"], 0);
    assert_eq!(get(&alice.url("/api/health"))?.0, 200);
    Ok(())
}

#[test]
fn bad_datagrams_are_dropped_and_counted_while_http_answers() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let target = alice.spec.udp;

    socket.send_to(
        "not a meshlog packet, just bytes ".repeat(8).as_bytes(),
        target,
    )?;
    socket.send_to(b"ML", target)?; // truncated
    socket.send_to(&[0u8; 2_000], target)?; // oversized

    // Well-formed, claiming to be bob, tagged with the key alice would share with a forger
    // holding a key that is not bob's.
    let community = meshlog_backend::keys::load_community(&root.path().join("keys"))?;
    let alice_id = DeviceId::new("alice").unwrap();
    let forger = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"not bob's key");
    let forged_key = PairKey::derive(
        &forger,
        &alice_id,
        community.member(&alice_id).unwrap(),
        &community,
    )
    .unwrap();
    let forged = Packet {
        source: DeviceId::new("bob").unwrap(),
        target: alice_id.clone(),
        epoch: 1,
        counter: 0,
        echo: 0,
        payload: Payload::Summary {
            prefix: Prefix::ROOT,
            summary: BucketSummary {
                count: 3,
                fingerprint: 7,
            },
        },
    }
    .seal(&forged_key);
    socket.send_to(&forged, target)?;

    let expected = ["bad_magic", "malformed", "too_large", "bad_mac"];
    wait_for(Duration::from_secs(20), || {
        let drops = &alice.stats()?["drops"];
        Ok(expected
            .iter()
            .all(|reason| drops[reason].as_u64() == Some(1)))
    })
    .with_context(|| {
        format!(
            "drops: {}",
            alice
                .stats()
                .map(|s| s["drops"].clone())
                .unwrap_or_default()
        )
    })?;
    // The network log is filled from the driver's events by a task of its own, a moment
    // after the counters: wait for its rows too, then ask for exactly the four.
    let dropped_rows = || -> Result<(usize, Value)> {
        let (_, log) = get(&alice.url("/api/network-events"))?;
        let rows = log["events"].as_array().map_or(0, |rows| {
            rows.iter().filter(|e| e["direction"] == "dropped").count()
        });
        Ok((rows, log))
    };
    wait_for(Duration::from_secs(20), || Ok(dropped_rows()?.0 >= 4))
        .with_context(|| format!("network log: {:?}", dropped_rows().map(|(_, log)| log)))?;
    let (rows, log) = dropped_rows()?;
    assert_eq!(rows, 4, "{log}");
    assert_eq!(get(&alice.url("/api/health"))?.0, 200);
    assert_eq!(alice.stats()?["events"], 0);
    Ok(())
}
