//! Five real `meshlog device` processes in a ring, each in a network namespace of its own on
//! one bridge (`netns_support`), each peered with its two neighbours only: convergence at heavy
//! loss with flapping cuts, and the latency of one and two hops. Needs root; elsewhere every
//! test prints why it is skipped and passes. See docs/REAL_NETWORK.md.
#![cfg(target_os = "linux")]

mod backend_support;
mod netns_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use backend_support::{community, DeviceProcess, DeviceSpec};
use netns_support::{say, Needs, Net, UdpCounters};
use serde_json::Value;

const RING: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
/// How long the ring at half loss may take to hold every message everywhere.
const CONVERGE_LOSSY: Duration = Duration::from_secs(120);
const CONVERGE: Duration = Duration::from_secs(30);

/// The tests that run five devices take turns: two rings at once on two cores would blur
/// each other's times (the small tests still run alongside).
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Five hosts on one LAN (10.77.0.10-14), each running a device peered with its two ring
/// neighbours at their LAN addresses. Loss set before (`before_start`) applies from the first
/// packet on.
fn ring(
    net: &mut Net,
    root: &std::path::Path,
    sync_interval_ms: u64,
    before_start: impl FnOnce(&Net, netns_support::Segment) -> Result<()>,
) -> Result<Vec<DeviceProcess>> {
    let lan = net.lan()?;
    for name in RING {
        net.add_host(name, lan)?;
    }
    before_start(net, lan)?;
    let keys = root.join("keys");
    community(&keys, &RING)?;
    let mut devices = Vec::new();
    for (i, name) in RING.iter().enumerate() {
        let neighbours = [
            RING[(i + RING.len() - 1) % RING.len()],
            RING[(i + 1) % RING.len()],
        ];
        let spec = DeviceSpec {
            name: (*name).into(),
            udp: net.udp(name),
            peers: neighbours
                .iter()
                .map(|n| ((*n).to_owned(), net.udp(n)))
                .collect(),
            data: root.join(name),
            keys: keys.clone(),
            sync_interval_ms,
        };
        devices.push(net.device(name, &spec, &[])?);
    }
    Ok(devices)
}

/// The ring with `switch_percent`% loss on its bridge and `host_percent`% more at every
/// receiver, from the first packet on, and the default 5 s rounds.
fn lossy_ring(
    net: &mut Net,
    root: &std::path::Path,
    switch_percent: u8,
    host_percent: u8,
) -> Result<Vec<DeviceProcess>> {
    ring(net, root, 5_000, |net, lan| {
        net.set_switch_loss(lan, switch_percent)?;
        for name in RING {
            net.set_loss(name, host_percent)?;
        }
        Ok(())
    })
}

/// The UDP counters of the ring's switch, and of its five receivers together (each since
/// its own faults last changed).
fn ring_counters(net: &Net) -> Result<(UdpCounters, UdpCounters)> {
    let switch = net.switch_counters(net.segment_of(RING[0]))?;
    let mut hosts = UdpCounters::default();
    for name in RING {
        let c = net.host_counters(name)?;
        hosts.seen += c.seen;
        hosts.lost += c.lost;
    }
    Ok((switch, hosts))
}

/// The texts `device` holds (its newest 500: more than any test here posts).
fn texts(device: &DeviceProcess) -> Result<BTreeSet<String>> {
    let (status, body) = backend_support::get(&device.url("/api/messages?limit=500"))?;
    if status != 200 {
        bail!("GET /api/messages at {}: {status} {body}", device.spec.name);
    }
    Ok(body["messages"]
        .as_array()
        .context("a page of messages")?
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect())
}

/// Polls until every device holds every text in `want`, or fails naming who lacks how many.
fn converge(devices: &[DeviceProcess], want: &BTreeSet<String>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for device in devices {
            let have = texts(device)?;
            let lacking = want.difference(&have).count();
            if lacking > 0 {
                missing.push(format!("{} lacks {lacking}", device.spec.name));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not converged within {timeout:?}: {}", missing.join(", "));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn five_device_ring_converges_at_half_loss() -> Result<()> {
    let Some(mut net) = Net::start("five_device_ring_converges_at_half_loss", Needs::Nftables)
    else {
        return Ok(());
    };
    let _turn = heavy();
    let root = tempfile::tempdir()?;
    // 30% on the switch, then 30% at each receiver: 1 - 0.7 * 0.7 = 51% of datagrams lost.
    let devices = lossy_ring(&mut net, root.path(), 30, 30)?;
    let started = Instant::now();
    let mut want = BTreeSet::new();
    for round in 0..4 {
        for device in &devices {
            let text = format!("{} #{round}", device.spec.name);
            device.post_message(&text)?;
            want.insert(text);
        }
    }
    assert_eq!(want.len(), 20);
    converge(&devices, &want, CONVERGE_LOSSY)?;
    let took = started.elapsed();
    for device in &devices {
        assert_eq!(
            texts(device)?,
            want,
            "{} holds exactly the 20",
            device.spec.name
        );
    }

    let (switch, hosts) = ring_counters(&net)?;
    let end_to_end =
        100.0 - (100.0 - switch.loss_percent()) * (100.0 - hosts.loss_percent()) / 100.0;
    say(&format!(
        "real_network: 5-device ring, 20 messages, converged in {:.1} s at {end_to_end:.0}% \
         UDP loss (switch dropped {switch}, receivers {hosts})",
        took.as_secs_f64(),
    ));
    assert!(
        switch.loss_percent() > 20.0 && hosts.loss_percent() > 20.0,
        "the loss was applied: {switch:?} {hosts:?}"
    );
    Ok(())
}

/// Issue 26, item 6's target on real hosts: within this of the last cut's repair, with the
/// loss still on, every device holds every message.
const HOLD_AFTER_HEAL: Duration = Duration::from_secs(30);

/// One step of the flapping: at `at_s` seconds into the workload, cut or restore `from` → `to`.
struct Flap {
    at_s: u64,
    cut: bool,
    from: &'static str,
    to: &'static str,
}

/// The one-way cuts of `scenarios/ring-loss-70.toml`, at 8 s steps instead of 15 s (at 40 s,
/// the heal, every cut left is repaired): each device misses what crossed a cut link, which
/// only anti-entropy can bring it.
const FLAPS: [Flap; 8] = [
    Flap {
        at_s: 0,
        cut: true,
        from: "alice",
        to: "bob",
    },
    Flap {
        at_s: 8,
        cut: false,
        from: "alice",
        to: "bob",
    },
    Flap {
        at_s: 8,
        cut: true,
        from: "bob",
        to: "carol",
    },
    Flap {
        at_s: 16,
        cut: true,
        from: "dave",
        to: "erin",
    },
    Flap {
        at_s: 24,
        cut: false,
        from: "bob",
        to: "carol",
    },
    Flap {
        at_s: 24,
        cut: true,
        from: "alice",
        to: "bob",
    },
    Flap {
        at_s: 32,
        cut: false,
        from: "dave",
        to: "erin",
    },
    Flap {
        at_s: 32,
        cut: true,
        from: "erin",
        to: "alice",
    },
];

/// Issue 26, item 6: five real hosts in a ring at about 65% loss (50% on the switch, then 30%
/// at every receiver), 100 messages posted over 40 s while one-way cuts flap; the last cuts
/// are repaired and the loss stays. Every device must hold all 100 within `HOLD_AFTER_HEAL`:
/// what the streams and their recovery datagrams carry, not round after round of
/// re-requests. (When issue 26 was filed: 92–120 s, one host stalled at 77–79 of 101.)
#[test]
fn five_device_ring_at_65_percent_loss_holds_everything_soon_after_its_cuts_heal() -> Result<()> {
    let Some(mut net) = Net::start(
        "five_device_ring_at_65_percent_loss_holds_everything_soon_after_its_cuts_heal",
        Needs::Nftables,
    ) else {
        return Ok(());
    };
    let _turn = heavy();
    let root = tempfile::tempdir()?;
    // 1 - 0.5 * 0.7 = 65% of datagrams lost, for the whole test.
    let devices = lossy_ring(&mut net, root.path(), 50, 30)?;
    let messages = 100;
    let workload = Duration::from_secs(40);
    let started = Instant::now();
    let mut flaps = FLAPS.iter().peekable();
    let mut cut = BTreeSet::new();
    let mut want = BTreeSet::new();
    for k in 0..messages {
        // Posts evenly spread over the workload, flaps applied as their time comes.
        let post_at = workload * k / messages;
        while let Some(flap) = flaps.next_if(|f| Duration::from_secs(f.at_s) <= post_at) {
            if flap.cut {
                net.cut(flap.from, flap.to)?;
                cut.insert((flap.from, flap.to));
            } else {
                net.restore(flap.from, flap.to)?;
                cut.remove(&(flap.from, flap.to));
            }
        }
        std::thread::sleep(post_at.saturating_sub(started.elapsed()));
        let device = &devices[k as usize % devices.len()];
        let text = format!("{} #{k}", device.spec.name);
        device.post_message(&text)?;
        want.insert(text);
    }
    std::thread::sleep(workload.saturating_sub(started.elapsed()));
    for (from, to) in std::mem::take(&mut cut) {
        net.restore(from, to)?;
    }
    let healed = Instant::now();
    let held_at_heal: Vec<usize> = devices
        .iter()
        .map(|d| Ok(texts(d)?.intersection(&want).count()))
        .collect::<Result<_>>()?;
    converge(&devices, &want, HOLD_AFTER_HEAL)?;
    let took = healed.elapsed();

    let (switch, hosts) = ring_counters(&net)?;
    say(&format!(
        "real_network: 5-device ring at 65% loss, {messages} messages over {}s with flapping \
         cuts; held at the heal {held_at_heal:?}; all {messages} everywhere {:.1} s after it \
         (switch dropped {switch} of the whole run, receivers {hosts} since the heal)",
        workload.as_secs(),
        took.as_secs_f64(),
    ));
    assert!(
        switch.loss_percent() > 40.0 && hosts.loss_percent() > 20.0,
        "the loss was applied: {switch:?} {hosts:?}"
    );
    Ok(())
}

/// A thread per device reading its `/api/stream`, reporting (device index, message id, when).
fn watch_streams(devices: &[DeviceProcess]) -> Result<mpsc::Receiver<(usize, String, Instant)>> {
    let (tx, rx) = mpsc::channel();
    let client = reqwest::blocking::Client::builder().timeout(None).build()?;
    for (i, device) in devices.iter().enumerate() {
        let response = client
            .get(device.url("/api/stream"))
            .bearer_auth(&device.token)
            .send()?;
        if response.status() != 200 {
            bail!("stream of {}: {}", device.spec.name, response.status());
        }
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in BufReader::new(response).lines().map_while(Result::ok) {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    if event == "message" {
                        let json: Value = serde_json::from_str(data).unwrap_or_default();
                        if let Some(id) = json["id"].as_str() {
                            if tx.send((i, id.to_owned(), Instant::now())).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
    Ok(rx)
}

#[test]
fn five_device_ring_latency_without_loss() -> Result<()> {
    let Some(mut net) = Net::start("five_device_ring_latency_without_loss", Needs::Namespaces)
    else {
        return Ok(());
    };
    let _turn = heavy();
    let root = tempfile::tempdir()?;
    let sync_interval_ms = 5_000;
    let devices = ring(&mut net, root.path(), sync_interval_ms, |_, _| Ok(()))?;
    // Every device has heard its neighbours (knows their epochs), so appends are pushed at once.
    backend_support::wait_for(CONVERGE, || {
        for device in &devices {
            if device.stats()?["sync_percent"] != serde_json::json!(100.0) {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    let arrivals = watch_streams(&devices)?;

    // Hop counts from each author: 1 to both neighbours, 2 to the far two.
    let n = devices.len();
    let mut by_hops: [Vec<Duration>; 3] = Default::default();
    let rounds = 2;
    for round in 0..rounds {
        for (author, device) in devices.iter().enumerate() {
            let sent = Instant::now();
            let id = device.post_message(&format!("latency {round} from {author}"))?;
            let mut pending: BTreeSet<usize> = (0..n).filter(|i| *i != author).collect();
            let deadline = sent + CONVERGE;
            while !pending.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                let (at, got, when) = arrivals
                    .recv_timeout(left)
                    .with_context(|| format!("message {id} never reached {pending:?}"))?;
                if got == id && pending.remove(&at) {
                    let hops = (at + n - author) % n;
                    by_hops[hops.min(n - hops)].push(when - sent);
                }
            }
        }
    }
    let describe = |samples: &mut Vec<Duration>| {
        samples.sort();
        format!(
            "median {:.0} ms, max {:.0} ms ({} samples)",
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples[samples.len() - 1].as_secs_f64() * 1e3,
            samples.len()
        )
    };
    say(&format!(
        "real_network: 5-device ring without loss (sync interval {sync_interval_ms} ms), \
         POST to the message on a peer's stream: 1 hop {}; 2 hops {}",
        describe(&mut by_hops[1]),
        describe(&mut by_hops[2]),
    ));
    let want: BTreeSet<String> = texts(&devices[0])?;
    assert_eq!(want.len(), rounds * n);
    converge(&devices, &want, CONVERGE)?;
    Ok(())
}
