//! A real run, replayed: three `meshlog device` processes on loopback, each recording
//! (`--record`), exchange messages through a lossy UDP relay this test runs (30% of datagrams
//! dropped, each way). Each device is then SIGKILLed, and `meshlog replay` rebuilds each node
//! from its recording and must reproduce every step's outputs; with a one-line change to the
//! node (`--test-divergence`) it must name the first step that differs.

mod backend_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use backend_support::{community, free_udp_addr, meshlog_bin, wait_for, DeviceProcess, DeviceSpec};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];
/// Datagrams the relay drops, in percent.
const LOSS_PERCENT: u32 = 30;
const MESSAGES_PER_DEVICE: usize = 6;

/// Forwards every datagram that reaches `listen` to `target`, dropping `LOSS_PERCENT` of them,
/// until `stop`; returns how many it dropped. One per device: its peers send to the relay
/// instead of to it.
fn lossy_relay(listen: UdpSocket, target: SocketAddr, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    listen
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0u8; 65_536];
    let mut dropped = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, _)) = listen.recv_from(&mut buf) else {
            continue;
        };
        if rng.next_u32() % 100 >= LOSS_PERCENT {
            let _ = listen.send_to(&buf[..len], target);
        } else {
            dropped += 1;
        }
    }
    dropped
}

fn replay(recording: &Path, keys: &Path, extra: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(meshlog_bin())
        .arg("replay")
        .arg(recording)
        .arg("--keys")
        .arg(keys)
        .args(extra)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn a_real_lossy_run_replays_exactly_and_a_changed_node_is_caught() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &NAMES)?;
    let udp: Vec<SocketAddr> = NAMES.iter().map(|_| free_udp_addr()).collect();
    let relays: Vec<UdpSocket> = NAMES
        .iter()
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let relay_addrs: Vec<SocketAddr> = relays
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<Result<_, _>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut relay_threads = Vec::new();
    for (i, relay) in relays.into_iter().enumerate() {
        let (target, stop) = (udp[i], stop.clone());
        relay_threads.push(std::thread::spawn(move || {
            lossy_relay(relay, target, i as u64, stop)
        }));
    }

    let mut devices = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let spec = DeviceSpec {
            name: name.to_string(),
            udp: udp[i],
            // Every peer is reached through its lossy relay.
            peers: NAMES
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, peer)| (peer.to_string(), relay_addrs[j]))
                .collect(),
            data: root.path().join(name),
            keys: keys.clone(),
            sync_interval_ms: 300,
        };
        let recording = root.path().join(format!("{name}.rec"));
        devices.push(DeviceProcess::start_with(
            &spec,
            &["--record", recording.to_str().unwrap()],
        )?);
    }
    for round in 0..MESSAGES_PER_DEVICE {
        for device in &devices {
            device.post_message(&format!("{} says {round}", device.spec.name))?;
        }
    }
    let total = MESSAGES_PER_DEVICE * NAMES.len();
    wait_for(Duration::from_secs(60), || {
        for device in &devices {
            if device.stats()?["events"].as_u64() != Some(total as u64) {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    for device in devices {
        device.kill();
    }
    stop.store(true, Ordering::Relaxed);
    let dropped: u64 = relay_threads
        .into_iter()
        .map(|t| t.join().expect("relay thread"))
        .sum();
    ensure!(dropped > 0, "the relays dropped nothing");

    for name in NAMES {
        let recording = root.path().join(format!("{name}.rec"));
        let (matched, text) = replay(&recording, &keys, &[])?;
        ensure!(matched, "{name}: {text}");
        ensure!(text.contains("result   MATCH"), "{name}: {text}");
        let digests: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("recorded digest ")
                    .or(l.strip_prefix("replayed digest "))
            })
            .collect();
        ensure!(digests.len() == 2 && digests[0] == digests[1], "{text}");
    }
    // Alice pushes her appends eagerly to her first peer: without that line the replay differs,
    // and says where.
    let (matched, text) = replay(
        &root.path().join("alice.rec"),
        &keys,
        &["--test-divergence"],
    )?;
    ensure!(!matched, "{text}");
    ensure!(text.contains("DIFFERS at step"), "{text}");
    ensure!(
        text.contains("append message"),
        "the step is an append: {text}"
    );
    Ok(())
}
