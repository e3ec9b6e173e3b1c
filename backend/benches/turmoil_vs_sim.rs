//! The same two-device scenario, wall time side by side: the production driver
//! (`meshlog-net`) under turmoil, and the `meshlog-sim` discrete-event world.
//!
//! Scenario: alice and bob, 600 messages an hour between them for 10 virtual minutes,
//! latency 2-15 ms, 5 s anti-entropy rounds; done when both hold all 100 messages.
//!
//! Each side's best of several runs: one run of the simulator takes about 10 ms, so a single
//! timing on a shared machine mostly measures who else held the CPU.
//!
//! `cargo bench -p meshlog-backend --bench turmoil_vs_sim`

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshlog_core::testing::{community_of, keys};
use meshlog_core::{Config, DeviceId, EventBody, InMemoryStore, Node};
use meshlog_net::{Clock, Driver, TokioClock};
use rand_chacha::rand_core::SeedableRng;

const SCENARIO: &str = r#"
name = "bench-two-devices"
seed = 1
duration = "10m"
devices = ["alice", "bob"]
[network]
latency = { min = "2ms", max = "15ms" }
[workload]
messages_per_hour = 600
attachment_percent = 0
[expect]
converged_within = "30s"
"#;

const DEVICES: [&str; 2] = ["alice", "bob"];
const PORT: u16 = 9_000;
const WORKLOAD_SECONDS: u64 = 600;
/// 600 an hour between two devices: each posts every 12 s.
const POST_EVERY_SECONDS: u64 = 12;
/// Runs per side; the fastest counts.
const SIM_RUNS: usize = 20;
const TURMOIL_RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let scenario = meshlog_sim::Scenario::parse(SCENARIO, "bench")?;
    let mut sim_wall = Duration::MAX;
    let mut outcome = None;
    for _ in 0..SIM_RUNS {
        let started = Instant::now();
        let run = meshlog_sim::run(&scenario, 1, None)?;
        sim_wall = sim_wall.min(started.elapsed());
        anyhow::ensure!(
            run.failures.is_empty(),
            "sim run failed: {:?}",
            run.failures
        );
        outcome = Some(run);
    }
    let outcome = outcome.expect("at least one run");

    let mut turmoil_wall = Duration::MAX;
    let mut converged_at = Duration::ZERO;
    for _ in 0..TURMOIL_RUNS {
        let started = Instant::now();
        converged_at = turmoil_run(1)?;
        turmoil_wall = turmoil_wall.min(started.elapsed());
    }

    println!(
        "two devices, 10 virtual minutes, 600 messages/h, best of {SIM_RUNS} and \
         {TURMOIL_RUNS} runs: meshlog-sim {:.1} ms wall ({} events), turmoil + production \
         driver {:.1} ms wall (converged at {:.1} virtual s); turmoil / sim = {:.1}x",
        sim_wall.as_secs_f64() * 1e3,
        outcome.events,
        turmoil_wall.as_secs_f64() * 1e3,
        converged_at.as_secs_f64(),
        turmoil_wall.as_secs_f64() / sim_wall.as_secs_f64()
    );
    Ok(())
}

/// Runs the production driver on turmoil until both devices hold every message; returns
/// the virtual time that took.
fn turmoil_run(seed: u64) -> anyhow::Result<Duration> {
    let counts = Arc::new(Mutex::new(BTreeMap::<&str, (u32, u64)>::new()));
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(WORKLOAD_SECONDS + 120))
        .min_message_latency(Duration::from_millis(2))
        .max_message_latency(Duration::from_millis(15))
        .build_with_rng(Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)));
    for name in DEVICES {
        let counts = counts.clone();
        sim.host(name, move || device(name, seed, counts.clone()));
    }
    let done = Arc::new(Mutex::new(Duration::ZERO));
    let (watch, done_at) = (counts.clone(), done.clone());
    sim.client("watch", async move {
        let want = (WORKLOAD_SECONDS / POST_EVERY_SECONDS) as u32 * DEVICES.len() as u32;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let counts = watch.lock().unwrap();
            let first = counts.values().next().copied();
            if counts.len() == DEVICES.len()
                && first.is_some_and(|(count, _)| count == want)
                && counts.values().all(|c| Some(*c) == first)
            {
                *done_at.lock().unwrap() = turmoil::elapsed();
                return Ok(());
            }
        }
    });
    sim.run().map_err(|err| anyhow::anyhow!("{err}"))?;
    let at = *done.lock().unwrap();
    Ok(at)
}

async fn device(
    name: &'static str,
    seed: u64,
    counts: Arc<Mutex<BTreeMap<&'static str, (u32, u64)>>>,
) -> turmoil::Result {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT);
    let socket = turmoil::net::UdpSocket::bind(any).await?;
    let peers: BTreeMap<DeviceId, SocketAddr> = DEVICES
        .iter()
        .filter(|p| **p != name)
        .map(|p| {
            (
                DeviceId::new(p).expect("name"),
                SocketAddr::new(turmoil::lookup(*p), PORT),
            )
        })
        .collect();
    let config = Config::new(
        keys(name, seed),
        community_of(&DEVICES, seed),
        peers.keys().cloned().collect(),
        *blake3::hash(name.as_bytes()).as_bytes(),
    );
    let clock = TokioClock::new(0);
    let node = Node::new(config, InMemoryStore::new(), clock.now())?;
    let (driver, handle) = Driver::new(node, socket, peers, clock);
    tokio::spawn(driver.run());
    let mut next_post = Duration::from_secs(POST_EVERY_SECONDS);
    let started = tokio::time::Instant::now();
    let mut posted = 0;
    loop {
        if started.elapsed() >= next_post && next_post.as_secs() <= WORKLOAD_SECONDS {
            posted += 1;
            let text = format!("{name} {posted}");
            let body = EventBody::Message {
                text,
                attachment: None,
                auto: true,
            };
            handle.append(body).await?;
            next_post += Duration::from_secs(POST_EVERY_SECONDS);
        }
        let snapshot = handle.snapshot().await?;
        counts
            .lock()
            .unwrap()
            .insert(name, (snapshot.summary.count, snapshot.summary.fingerprint));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
