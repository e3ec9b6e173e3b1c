//! Simulated mode (`meshlog sim-service --sim`): the simulation service hosts a meshlog-sim
//! world, serves the device API for each simulated device, and its step and network controls
//! act on the world. Run in-process on ephemeral ports; time moves only by `step`, so every
//! check is on virtual time and each wait is bounded.

mod backend_support;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use backend_support::{get, post, wait_for, SimModeRun};
use serde_json::{json, Value};

/// Three devices so the partition (first device vs the rest) leaves bob and carol together.
const SCENARIO: &str = r#"
name = "sim-mode-test"
seed = 7
duration = "1m"
devices = ["alice", "bob", "carol"]
[network]
latency = { min = "5ms", max = "20ms" }
"#;

/// Bounded by wall time: the HTTP round trips of a loop of steps, never a sleep for time to pass.
const WAIT: Duration = Duration::from_secs(20);

fn start() -> Result<SimModeRun> {
    SimModeRun::start(SCENARIO)
}

fn texts(device: &str) -> Result<Vec<String>> {
    let (status, body) = get(&format!("{device}/api/messages"))?;
    ensure!(status == 200, "GET messages: {status} {body}");
    Ok(body["messages"]
        .as_array()
        .context("messages array")?
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect())
}

fn step(sim: &str, seconds: f64) -> Result<Value> {
    let (status, body) = post(
        &format!("{sim}/api/simulation/step"),
        &json!({ "seconds": seconds }),
    )?;
    ensure!(status == 200, "step: {status} {body}");
    Ok(body)
}

fn send(device: &str, text: &str) -> Result<()> {
    let (status, body) = post(&format!("{device}/api/messages"), &json!({ "text": text }))?;
    ensure!(status == 201, "POST message: {status} {body}");
    ensure!(body["text"] == text, "the 201 carries the message: {body}");
    Ok(())
}

/// Steps virtual time until `device` holds `text`: at most `steps` steps of `seconds`.
fn step_until_delivered(
    sim: &str,
    device: &str,
    text: &str,
    seconds: f64,
    steps: u32,
) -> Result<bool> {
    for _ in 0..steps {
        step(sim, seconds)?;
        if texts(device)?.iter().any(|t| t == text) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[test]
fn messages_cross_the_virtual_network_and_partitions_stop_them() -> Result<()> {
    let run = start()?;
    let (sim, alice, bob) = (&run.sim, &run.devices[0], &run.devices[1]);

    let (status, state) = get(&format!("{sim}/api/simulation"))?;
    assert_eq!(status, 200);
    assert_eq!(state["mode"], "sim");
    assert_eq!(state["devices"].as_array().map(Vec::len), Some(3));
    assert_eq!(state["devices"][0]["url"], json!(alice));
    assert_eq!(state["network"]["partitioned"], false);
    let (_, stats) = get(&format!("{bob}/api/stats"))?;
    assert_eq!(stats["device"], "bob");

    // Connected: eager push gets it there within a second of virtual time.
    send(alice, "hello bob")?;
    assert!(
        !texts(bob)?.contains(&"hello bob".to_owned()),
        "paused: no virtual time has passed, nothing delivered yet"
    );
    assert!(step_until_delivered(sim, bob, "hello bob", 1.0, 3)?);
    let (_, stats) = get(&format!("{bob}/api/stats"))?;
    assert_eq!(stats["device"], "bob");
    assert!(stats["messages"].as_u64() >= Some(1), "{stats}");
    let (_, log) = get(&format!("{bob}/api/network-events?since=0"))?;
    assert!(
        log["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["direction"] == "received")),
        "bob's network log shows what reached him: {log}"
    );

    // Partitioned: alice on one side; a minute of virtual time (a dozen sync rounds) later
    // bob still lacks it.
    let (status, state) = post(
        &format!("{sim}/api/network/partition"),
        &json!({ "partitioned": true }),
    )?;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["network"]["partitioned"], true);
    send(alice, "across the partition")?;
    assert!(!step_until_delivered(
        sim,
        bob,
        "across the partition",
        10.0,
        6
    )?);
    let (_, log) = get(&format!("{alice}/api/network-events?since=0"))?;
    assert!(
        log["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["reason"] == "partition")),
        "alice's log shows packets the partition dropped"
    );

    // Healed: anti-entropy brings it over within a few sync rounds.
    let (status, state) = post(
        &format!("{sim}/api/network/partition"),
        &json!({ "partitioned": false }),
    )?;
    assert_eq!(status, 200, "{state}");
    assert!(step_until_delivered(
        sim,
        bob,
        "across the partition",
        5.0,
        12
    )?);
    Ok(())
}

#[test]
fn network_controls_and_the_generator_act_on_the_world() -> Result<()> {
    let run = start()?;
    let (sim, bob) = (&run.sim, &run.devices[1]);

    let (status, state) = post(
        &format!("{sim}/api/network"),
        &json!({ "loss": 0.25, "latency_ms_min": 10, "latency_ms_max": 40 }),
    )?;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["network"]["loss"], 0.25);
    assert_eq!(state["network"]["latency_ms_max"], 40);
    for bad in [
        json!({ "loss": 1.5 }),
        json!({ "latency_ms_min": 50, "latency_ms_max": 10 }),
    ] {
        let (status, body) = post(&format!("{sim}/api/network"), &bad)?;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(body["error"].is_string());
    }
    let (status, _) = post(&format!("{sim}/api/network"), &json!({ "loss": "lots" }))?;
    assert_eq!(status, 422);
    let (_, state) = get(&format!("{sim}/api/simulation"))?;
    assert_eq!(
        state["network"]["loss"], 0.25,
        "refused changes change nothing"
    );

    // The generator posts through the simulated devices' own API, as in real mode.
    post(&format!("{sim}/api/network"), &json!({ "loss": 0.0 }))?;
    let (status, _) = post(
        &format!("{sim}/api/simulation/message-rate"),
        &json!({ "messages_per_hour": 3600 }),
    )?;
    assert_eq!(status, 200);
    step(sim, 30.0)?;
    // The posts travel over HTTP after the step answered; then a step delivers them.
    wait_for(WAIT, || {
        step(sim, 1.0)?;
        let (_, messages) = get(&format!("{bob}/api/messages"))?;
        Ok(messages["messages"]
            .as_array()
            .is_some_and(|m| m.iter().filter(|m| m["auto"] == true).count() >= 20))
    })?;

    let (status, body) = post(
        &format!("{bob}/api/messages/{}/reactions", "ab".repeat(32)),
        &json!({ "emoji": "👍" }),
    )?;
    assert_eq!(status, 404, "{body}");
    Ok(())
}

fn set(sim: &str, what: &str, body: Value) -> Result<Value> {
    let (status, state) = post(&format!("{sim}/api/simulation/{what}"), &body)?;
    ensure!(status == 200, "{what}: {status} {state}");
    Ok(state)
}

/// Issue 24: simulated mode read real mode's generator settings (`sim-service.json`), so a
/// real demo left at 100× and 3,600 an hour started every simulated run there. Simulated mode
/// keeps its own (`sim-mode.json`) and leaves real mode's alone.
#[test]
fn simulated_mode_keeps_its_own_generator_settings() -> Result<()> {
    let data = tempfile::tempdir()?;
    let real = data.path().join("sim-service.json");
    let real_settings =
        r#"{"messages_per_hour": 3600.0, "attachment_percent": 30.0, "speed": 100.0}"#;
    std::fs::write(&real, real_settings)?;

    let run = SimModeRun::start_in(SCENARIO, Some(data.path()))?;
    let (_, state) = get(&format!("{}/api/simulation", run.sim))?;
    assert_eq!(
        state["speed"], 1.0,
        "real mode's speed stays there: {state}"
    );
    assert_eq!(state["messages_per_hour"], 50.0, "{state}");
    set(
        &run.sim,
        "message-rate",
        json!({ "messages_per_hour": 720 }),
    )?;
    set(&run.sim, "speed", json!({ "speed": 5 }))?;
    drop(run);
    assert_eq!(
        std::fs::read_to_string(&real)?,
        real_settings,
        "real mode's file is not written by simulated mode"
    );
    let own: Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("sim-mode.json"))?)?;
    assert_eq!(own["messages_per_hour"], 720.0);

    // The next simulated run starts where this one was left.
    let again = SimModeRun::start_in(SCENARIO, Some(data.path()))?;
    let (_, state) = get(&format!("{}/api/simulation", again.sim))?;
    assert_eq!(state["messages_per_hour"], 720.0, "{state}");
    assert_eq!(state["speed"], 5.0, "{state}");
    assert_eq!(state["persistent"], false, "the world itself is not kept");
    Ok(())
}
