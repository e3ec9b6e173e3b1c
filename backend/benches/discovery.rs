//! Issue 25's "time to discover on a LAN", printed (not a timed test): three devices on
//! loopback, none told another's address, each with LAN discovery on one shared port (a free
//! one, so a demo on the default port is not heard). From the moment all three are started:
//! until every device has both others as peers (discovered), and until a post alice makes
//! then is held by bob and carol. `runs` repetitions, each in a fresh community.
//!
//! `cargo bench -p meshlog-backend --bench discovery [-- runs=N]`

use std::time::{Duration, Instant};

mod support;

use meshlog_backend::keys;
use support::*;

/// A run that takes longer failed: announcements go out at 0, 1, 2 and 4 s.
const DISCOVERY_LIMIT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("runs=")?.parse().ok())
        .unwrap_or(5);
    let server = tokio::runtime::Runtime::new()?;
    let clients = tokio::runtime::Runtime::new()?;
    let mut found = Vec::new();
    let mut delivered = Vec::new();
    for run in 1..=runs {
        let (f, d) = clients.block_on(discover(server.handle()))?;
        println!(
            "discovery run {run}: all peers found {:.0} ms after start, alice's post held by all {:.0} ms after it was made",
            ms(f),
            ms(d)
        );
        found.push(f);
        delivered.push(d);
    }
    found.sort();
    delivered.sort();
    println!(
        "discovery ({runs} runs, 3 devices, no --peer): found p50 {:.0} ms, max {:.0} ms; first post everywhere p50 {:.0} ms, max {:.0} ms",
        ms(found[runs / 2]),
        ms(found[runs - 1]),
        ms(delivered[runs / 2]),
        ms(delivered[runs - 1]),
    );
    Ok(())
}

async fn discover(server: &tokio::runtime::Handle) -> anyhow::Result<(Duration, Duration)> {
    let root = tempfile::tempdir()?;
    let names = ["alice", "bob", "carol"];
    keys::create_community(&root.path().join("keys"), &names.map(String::from))?;
    let free_udp = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr());
    let discovery_port = free_udp()?.port();
    let started = Instant::now();
    let mut devices = Vec::new();
    for name in names {
        let mut options = options(root.path(), name, free_udp()?, "x", free_udp()?);
        options.peers.clear();
        options.discovery_port = Some(discovery_port);
        devices.push(start_on(server, options).await?);
    }
    let apis = devices
        .iter()
        .map(Api::of)
        .collect::<anyhow::Result<Vec<_>>>()?;
    loop {
        let mut all = true;
        for api in &apis {
            let peers = api.stats().await?["peers"]
                .as_array()
                .map_or(0, |p| p.len());
            all &= peers == names.len() - 1;
        }
        if all {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < DISCOVERY_LIMIT,
            "not every device found both others within {DISCOVERY_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let found = started.elapsed();
    let posted = Instant::now();
    apis[0]
        .client
        .post(format!("{}/api/messages", apis[0].base))
        .json(&serde_json::json!({ "text": "found you" }))
        .send()
        .await?
        .error_for_status()?;
    for api in &apis[1..] {
        api.wait_for_stat("messages", 1, DISCOVERY_LIMIT).await?;
    }
    let delivered = posted.elapsed();
    for device in devices {
        stop_device(device);
    }
    Ok((found, delivered))
}
