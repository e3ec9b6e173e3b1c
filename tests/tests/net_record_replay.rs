//! A real run, replayed: three `meshlog device` processes on loopback, each recording
//! (`--record`), exchange messages through a lossy UDP relay this test runs (30% of datagrams
//! dropped, each way). Each device is then SIGKILLed, and `meshlog replay` rebuilds each node
//! from its recording and must reproduce every step's outputs; with a one-line change to the
//! node (`--test-divergence`) it must name the first step that differs. `--report` draws a
//! recording as `meshlog run --report` draws a run, and what it draws agrees with the trace.

mod backend_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use backend_support::report::{drawn_dom, embedded_report};
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
/// Relay `i` listens for datagrams to device `i` (every peer is told relay `i` is where `i`
/// is) and passes on all but `LOSS_PERCENT` of them. It sends each from the relay of the device
/// that sent it, as a NAT would rewrite the source: a device follows its peer's newest packet
/// to where it came from, and that is the sender's relay, so its answers stay on the lossy path.
fn lossy_relay(
    i: usize,
    relays: Vec<UdpSocket>,
    devices: Vec<SocketAddr>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    let listen = &relays[i];
    listen
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0u8; 65_536];
    let mut dropped = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = listen.recv_from(&mut buf) else {
            continue;
        };
        // Only the devices' own datagrams are relayed.
        let Some(sender) = devices.iter().position(|d| *d == from) else {
            continue;
        };
        if rng.next_u32() % 100 >= LOSS_PERCENT {
            let _ = relays[sender].send_to(&buf[..len], devices[i]);
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

/// Three recording devices exchange `MESSAGES_PER_DEVICE` each through the lossy relays
/// until all hold every message, and are killed: `root/NAME.rec` are their recordings, the
/// keys are in the returned directory.
fn record_a_lossy_run(root: &Path) -> Result<std::path::PathBuf> {
    let keys = root.join("keys");
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
    for i in 0..relays.len() {
        let sockets: Vec<UdpSocket> = relays
            .iter()
            .map(UdpSocket::try_clone)
            .collect::<Result<_, _>>()?;
        let (devices, stop) = (udp.clone(), stop.clone());
        relay_threads.push(std::thread::spawn(move || {
            lossy_relay(i, sockets, devices, i as u64, stop)
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
            data: root.join(name),
            keys: keys.clone(),
            sync_interval_ms: 300,
        };
        let recording = root.join(format!("{name}.rec"));
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
    Ok(keys)
}

#[test]
fn a_real_lossy_run_replays_exactly_and_a_changed_node_is_caught() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = record_a_lossy_run(root.path())?;

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

#[test]
fn a_replays_report_draws_the_devices_view_as_its_trace_tells_it() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = record_a_lossy_run(root.path())?;
    let (trace, page) = (
        root.path().join("alice.trace"),
        root.path().join("alice.html"),
    );
    let (matched, text) = replay(
        &root.path().join("alice.rec"),
        &keys,
        &[
            "--trace",
            trace.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ],
    )?;
    ensure!(matched, "{text}");
    let html = std::fs::read_to_string(&page)?;
    let report = embedded_report(&html)?;
    assert_eq!(report["passed"], true);
    let replayed = text
        .lines()
        .find_map(|l| l.strip_prefix("replayed digest "))
        .expect("the digest line");
    assert_eq!(report["digest"], replayed);
    // Alice's lane first, then her peers'; she ends holding every message.
    let lanes: Vec<&str> = report["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(lanes, NAMES);
    // What she held over time is what the trace says she appended and stored from peers
    // (the kill may cut the last batch from the recording, so the trace is the measure).
    let trace = std::fs::read_to_string(&trace)?;
    // `TIME append alice ID KIND`, `TIME insert alice ID from PEER` (not `TIME api append`).
    let count = |verb: &str| {
        trace
            .lines()
            .filter(|l| l.split(' ').skip(1).take(2).eq([verb, "alice"]))
            .count() as u64
    };
    let (appended, inserted) = (count("append"), count("insert"));
    assert!(appended > 0 && inserted > 0, "{trace}");
    let held = report["devices"][0]["events"]
        .as_array()
        .and_then(|points| points.last())
        .and_then(|point| point[1].as_u64());
    assert_eq!(held, Some(appended + inserted));
    assert_eq!(report["events"], appended, "her appends");

    // Per peer, what the rows count equals what the trace says she sent and received.
    let rows = report["links"].as_array().expect("links");
    for peer in &NAMES[1..] {
        let sent_lines = trace
            .lines()
            .filter(|l| l.contains(&format!(" send alice>{peer} ")))
            .count() as u64;
        let received_lines = trace
            .lines()
            .filter(|l| l.contains(&format!(" deliver {peer}>alice ")))
            .count() as u64;
        let sum = |from: &str, to: &str, field: &str| -> u64 {
            rows.iter()
                .filter(|r| r["from"] == from && r["to"] == to)
                .map(|r| r[field].as_u64().unwrap_or(0))
                .sum()
        };
        assert!(sent_lines > 0 && received_lines > 0, "{peer}");
        assert_eq!(sum("alice", peer, "sent_packets"), sent_lines, "to {peer}");
        assert_eq!(
            sum(peer, "alice", "delivered_packets"),
            received_lines,
            "from {peer}"
        );
    }
    // The sequence diagram shows her datagrams both ways.
    let arrows = report["sequence"]["arrows"].as_array().expect("arrows");
    assert!(arrows.iter().any(|a| a["from"] == 0 && a["to"] != 0));
    assert!(arrows.iter().any(|a| a["to"] == 0 && a["from"] != 0));

    if let Some(dom) = drawn_dom(&page)? {
        for made in [
            "data-rendered=\"yes\"",
            "class=\"lane\"",
            "class=\"link-row\"",
            "class=\"arrow sent\"",
            "class=\"lifeline\"",
        ] {
            assert!(dom.contains(made), "{made} not in the drawn page");
        }
    }
    Ok(())
}
