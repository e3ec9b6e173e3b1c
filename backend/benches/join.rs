//! Issue 23's join figure, printed (not a timed test): a new device, dave, joins a community
//! whose admin alice holds 10,000 messages, on real UDP sockets on loopback, with an invite
//! alice made through her API. From the first join request until dave's store holds every
//! message: the join exchange (request to welcome), the start, and the catch-up, in wall and
//! CPU time. Target: full history within 2 s.
//!
//! `cargo bench -p meshlog-backend --bench join [-- MESSAGES] [-- runs=N]`

use std::time::{Duration, Instant};

mod support;

use meshlog_backend::device::{self, DeviceOptions};
use support::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let runs = runs_arg(3);
    // The devices get an executor of their own, as in `meshlog device`; the bench another.
    let server = tokio::runtime::Runtime::new()?;
    let clients = tokio::runtime::Runtime::new()?;
    for run in 1..=runs {
        clients.block_on(join(server.handle(), messages, run))?;
    }
    Ok(())
}

async fn join(server: &tokio::runtime::Handle, messages: usize, run: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    // alice is the admin (the first named); bob is a member who is not running: half the
    // history is his, as a community's would be.
    let (alice_udp, bob_udp) = setup(root.path())?;
    prefill(root.path(), "alice", "alice", messages / 2)?;
    prefill(root.path(), "alice", "bob", messages - messages / 2)?;
    let alice = start_on(
        server,
        options(root.path(), "alice", alice_udp, "bob", bob_udp),
    )
    .await?;
    let alice_api = Api::of(&alice)?;
    alice_api
        .wait_for_stat("messages", messages as u64, Duration::from_secs(30))
        .await?;
    let invite: serde_json::Value = alice_api
        .client
        .post(format!("{}/api/invites", alice_api.base))
        .json(&serde_json::json!({"role": "member", "expires_in_s": 600, "uses": 1}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = invite["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {invite}"))?
        .to_owned();

    let free = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let mut dave = DeviceOptions {
        peers: Vec::new(),
        keys_dir: root.path().join("dave-keys"),
        ..options(root.path(), "dave", free, "alice", alice_udp)
    };
    let (started, cpu) = (Instant::now(), process_cpu_time());
    // What `meshlog device --join TOKEN` does: the exchange, then the device with the inviter
    // as its peer.
    let joining = dave.clone();
    let (inviter, address) = server
        .spawn(async move { device::join::join(&joining, &token).await })
        .await??;
    let welcomed = started.elapsed();
    dave.peers.push((inviter, address));
    let dave = start_on(server, dave).await?;
    let running = started.elapsed();
    let dave_api = Api::of(&dave)?;
    dave_api
        .wait_for_stat("messages", messages as u64, Duration::from_secs(120))
        .await?;
    let (done, cpu) = (started.elapsed(), since(cpu));
    let stats = dave_api.stats().await?;
    println!(
        "join into {messages} messages on loopback UDP (run {run}): welcomed after {:.0} ms, \
         running after {:.0} ms, full history after {:.0} ms ({:.0} messages/s; \
         {} events held; CPU of both devices and the bench {}; dave dropped {})",
        ms(welcomed),
        ms(running),
        ms(done),
        messages as f64 / done.as_secs_f64(),
        stats["events"],
        cpu.map_or("?".into(), |cpu| format!("{:.0} ms", ms(cpu))),
        stats["drops"],
    );
    stop_device(dave);
    stop_device(alice);
    Ok(())
}
