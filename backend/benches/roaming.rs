//! Issue 25's "time to reconnect after an address change", printed (not a timed test): alice
//! and bob, two `meshlog device` processes on loopback, each told the other's address at
//! start. Then, `runs` times, bob moves: his process is killed and started again on a new
//! UDP port (same data, same keys; nobody tells alice). Each time: bob posts, and the clock
//! runs until alice holds the post (she hears bob from where he is now); then alice posts and
//! the clock runs until bob holds it (she must send to where he is now, which she learned
//! only from his packets). A run also checks that alice's view of bob's address followed.
//!
//! Real processes, because a move is a new socket: one process per device, as a user runs it.
//! (A move between networks without a restart is `tests/tests/real_network_roaming.rs`, in
//! network namespaces.)
//!
//! `cargo bench -p meshlog-backend --bench roaming [-- runs=N]`

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use meshlog_backend::keys;

mod support;

use support::{client_with_token, ms, runs_arg, Api};

/// A wait longer than this failed: the exchanges take milliseconds.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How often a wait asks: the times printed are this fine.
const POLL: Duration = Duration::from_millis(2);

fn main() -> anyhow::Result<()> {
    let runs = runs_arg(10);
    let clients = tokio::runtime::Runtime::new()?;
    clients.block_on(roam(runs))
}

async fn roam(runs: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    keys::create_community(&root.path().join("keys"), &["alice".into(), "bob".into()])?;
    let (alice_udp, bob_udp) = (free_udp()?, free_udp()?);
    let alice = Device::start(root.path(), "alice", alice_udp, ("bob", bob_udp))?;
    let mut bob = Device::start(root.path(), "bob", bob_udp, ("alice", alice_udp))?;
    let (alice_api, mut bob_api) = (alice.api().await?, bob.api().await?);
    exchange(&alice_api, &bob_api, "at the start").await?;

    let (mut there, mut back, mut restart) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        drop(bob);
        let moved_to = free_udp()?;
        let started = Instant::now();
        bob = Device::start(root.path(), "bob", moved_to, ("alice", alice_udp))?;
        bob_api = bob.api().await?;
        restart.push(started.elapsed());
        let (t, b) = exchange(&alice_api, &bob_api, &format!("move {run}")).await?;
        let followed = peer_address(&alice_api, "bob").await?;
        anyhow::ensure!(
            followed == Some(moved_to),
            "alice holds bob at {followed:?}, not {moved_to}"
        );
        println!(
            "roaming run {run}: bob restarted on {moved_to} ({:.0} ms to answer HTTP); his post reached alice in {:.0} ms, hers reached him in {:.0} ms",
            ms(restart[run - 1]),
            ms(t),
            ms(b)
        );
        there.push(t);
        back.push(b);
    }
    let summary = |samples: &mut Vec<Duration>| {
        samples.sort();
        format!(
            "p50 {:.0} ms, max {:.0} ms",
            ms(samples[samples.len() / 2]),
            ms(samples[samples.len() - 1])
        )
    };
    println!(
        "roaming ({runs} moves, a new port after a restart, nobody told): bob -> alice {}; alice -> bob {}; process start to HTTP {}",
        summary(&mut there),
        summary(&mut back),
        summary(&mut restart),
    );
    Ok(())
}

/// Bob posts and alice must hold it, then the other way; the two times.
async fn exchange(alice: &Api, bob: &Api, label: &str) -> anyhow::Result<(Duration, Duration)> {
    let held = alice.stats().await?["messages"].as_u64().unwrap_or(0);
    let started = Instant::now();
    post(bob, &format!("bob {label}")).await?;
    alice
        .poll_stat("messages", held + 1, WAIT_LIMIT, POLL)
        .await?;
    let there = started.elapsed();
    let started = Instant::now();
    post(alice, &format!("alice {label}")).await?;
    bob.poll_stat("messages", held + 2, WAIT_LIMIT, POLL)
        .await?;
    Ok((there, started.elapsed()))
}

async fn post(api: &Api, text: &str) -> anyhow::Result<()> {
    api.client
        .post(format!("{}/api/messages", api.base))
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn peer_address(api: &Api, name: &str) -> anyhow::Result<Option<SocketAddr>> {
    let stats = api.stats().await?;
    let peer = stats["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["name"] == name))
        .with_context(|| format!("no peer {name}"))?;
    Ok(peer["address"].as_str().map(str::parse).transpose()?)
}

fn free_udp() -> std::io::Result<SocketAddr> {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
}

/// A `meshlog device` process, killed when dropped (SIGKILL: a move is as abrupt as a lid
/// closed).
struct Device {
    child: Child,
    http: String,
    data: PathBuf,
}

impl Device {
    fn start(
        root: &Path,
        name: &str,
        udp: SocketAddr,
        (peer, peer_udp): (&str, SocketAddr),
    ) -> anyhow::Result<Device> {
        let data = root.join(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshlog"))
            .args(["device", "--name", name, "--http", "127.0.0.1:0"])
            .arg("--udp")
            .arg(udp.to_string())
            .arg("--data")
            .arg(&data)
            .arg("--keys")
            .arg(root.join("keys"))
            .args([
                "--no-discover",
                "--parent-pid",
                &std::process::id().to_string(),
            ])
            .arg("--peer")
            .arg(format!("{peer}@{peer_udp}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        // The device prints its bound HTTP address on one line (`http=...`); read on a thread
        // so a device that never prints cannot hang the bench.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http=").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let Ok(http) = rx.recv_timeout(WAIT_LIMIT) else {
            let _ = child.kill();
            bail!("{name} did not print its HTTP address");
        };
        Ok(Device { child, http, data })
    }

    async fn api(&self) -> anyhow::Result<Api> {
        let token = std::fs::read_to_string(self.data.join("api-token"))?;
        let api = Api {
            client: client_with_token(token.trim())?,
            base: self.http.trim_end_matches('/').to_owned(),
        };
        // Up once it answers.
        api.stats().await?;
        Ok(api)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
