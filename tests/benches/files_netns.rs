//! A file between two real devices over a real lossy link (issue 26): alice and bob, each
//! `meshlog device` in a network namespace of its own, joined by a Linux bridge
//! (`netns_support`), 100 MB by the blob transfer, against the `(1 − p)` bound.
//!
//! ```text
//! cargo bench -p meshlog-tests --bench files_netns          # as root; 100 MB, 30% loss
//! FILES_NETNS_MB=20 FILES_NETNS_LOSS_PERCENT=10 cargo bench -p meshlog-tests --bench files_netns
//! FILES_NETNS_LOSS_AT=bob cargo bench -p meshlog-tests --bench files_netns
//! ```
//!
//! It runs the `meshlog` binary `backend_support` finds (`MESHLOG_BIN`, or a release build it
//! asks cargo for).
//!
//! **Where the loss is:** nftables on the bridge drops `p` of the UDP datagrams crossing it,
//! both directions alike (`Net::set_switch_loss`): alice's shards to bob and bob's asks to
//! alice each lose `p`. The bound uses `p` of the data direction, alice to bob, which is the
//! same `p`. `FILES_NETNS_LOSS_AT=bob` drops at bob's input instead (`Net::set_loss`): the
//! data direction alone, bob's asks all arrive. The devices' API is reached by loopback forwarders inside their namespaces and
//! never crosses the bridge.
//!
//! **The capacity it is held against,** measured in the same run before any loss:
//! - the link's: a raw UDP blast of 1,100-byte datagrams (a BLOB datagram's size) from alice's
//!   namespace to bob's for two seconds, bytes that reached bob's socket per second;
//! - the transfer's own: the same transfer of another file of the same size at 0% loss, file
//!   bytes per second from the post until bob holds it whole. On two shared cores the devices'
//!   CPU (encryption, coding, hashing), not the veth, is the limit, so this is the capacity
//!   the protocol can use; the raw blast is printed beside it.
//!
//! Printed: goodput (file bytes / seconds, from the post until bob's store holds the file
//! whole, and over the groups alone, from when bob's store had the file) against
//! `0.8 × (1 − p) × capacity` and `(1 − p) × capacity`, the loss nftables counted, and BLOB bytes on the wire (datagrams, headers included) per file byte, against
//! `1 / (1 − p)`. Nothing is asserted. Not root (or no `ip`/`nft`): prints why and skips.
//! Every namespace is deleted when the `Net` drops, also on an error.

#[cfg(target_os = "linux")]
#[path = "../tests/backend_support/mod.rs"]
mod backend_support;
#[cfg(target_os = "linux")]
#[path = "../tests/netns_support/mod.rs"]
mod netns_support;
#[cfg(target_os = "linux")]
#[path = "../../backend/benches/support/transfer_wait.rs"]
mod transfer_wait;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a test run of benches (`cargo test --benches`) does not.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    return linux::run();
    #[cfg(not(target_os = "linux"))]
    {
        println!("files_netns: skipped: needs Linux network namespaces");
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context, Result};
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use serde_json::{json, Value};

    use crate::backend_support::{community, get, get_with, post, post_bytes};
    use crate::backend_support::{DeviceProcess, DeviceSpec};
    use crate::netns_support::{Needs, Net};
    use crate::transfer_wait::TransferWait;

    /// The raw blast's datagram: about a BLOB shard's (1 KiB of shard, its header and tag).
    const BLAST_DATAGRAM_BYTES: usize = 1_100;
    const BLAST_FOR: Duration = Duration::from_secs(2);
    /// Where bob's namespace listens for the blast (the devices use `DEVICE_PORT`).
    const BLAST_PORT: u16 = 9_000;
    const POLL_EVERY: Duration = Duration::from_millis(50);

    fn env_u64(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`).
    fn effective_uid() -> Option<u32> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("Uid:"))?;
        line.split_whitespace().nth(2)?.parse().ok()
    }

    pub fn run() -> Result<()> {
        if effective_uid() != Some(0) {
            println!("files_netns: skipped: needs root (network namespaces, nftables)");
            return Ok(());
        }
        let size_bytes = env_u64("FILES_NETNS_MB", 100) * 1_000_000;
        let loss_percent = u8::try_from(env_u64("FILES_NETNS_LOSS_PERCENT", 30).min(99))?;
        let loss_at_bob = match std::env::var("FILES_NETNS_LOSS_AT").as_deref() {
            Ok("bob") => true,
            Ok("bridge") | Err(_) => false,
            Ok(other) => bail!("FILES_NETNS_LOSS_AT={other}: `bridge` or `bob`"),
        };
        let Some(mut net) = Net::start("files_netns", Needs::Nftables) else {
            println!("files_netns: skipped: this machine cannot make namespaces (see above)");
            return Ok(());
        };
        let lan = net.lan()?;
        net.add_host("alice", lan)?;
        net.add_host("bob", lan)?;
        // The bridge's fault table, empty: its counters are the loss figures later.
        net.set_switch_loss(lan, 0)?;

        let blast_bytes_per_s = udp_capacity(&net, "alice", "bob")?;

        let root = tempfile::tempdir()?;
        let keys = root.path().join("keys");
        community(&keys, &["alice", "bob"])?;
        let spec = |name: &str, peer: &str| DeviceSpec {
            name: name.into(),
            udp: net.udp(name),
            peers: vec![(peer.into(), net.udp(peer))],
            data: root.path().join(name),
            keys: keys.clone(),
            sync_interval_ms: 200,
        };
        let alice = net.device("alice", &spec("alice", "bob"), &[])?;
        let bob = net.device("bob", &spec("bob", "alice"), &[])?;

        let clean = send_and_wait(&alice, &bob, size_bytes, 1)?;
        // Counted from here: setting a loss rewrites the table and its counters.
        if loss_at_bob {
            net.set_loss("bob", loss_percent)?;
        } else {
            net.set_switch_loss(lan, loss_percent)?;
        }
        let lossy = send_and_wait(&alice, &bob, size_bytes, 2)?;
        let counted = if loss_at_bob {
            net.host_counters("bob")?
        } else {
            net.switch_counters(lan)?
        };
        let placement = if loss_at_bob {
            "at bob's input: alice to bob only"
        } else {
            "on the bridge: both directions"
        };

        let p = f64::from(loss_percent) / 100.0;
        let mb = |bytes_per_s: f64| bytes_per_s / 1e6;
        println!(
            "files_netns: {} MB alice -> bob, two devices in namespaces on one bridge",
            size_bytes / 1_000_000
        );
        println!(
            "  link capacity, raw UDP blast at 0% loss: {:.1} MB/s ({BLAST_DATAGRAM_BYTES}-byte \
             datagrams, {BLAST_FOR:?})",
            mb(blast_bytes_per_s)
        );
        println!("  clean transfer (0% loss): {}", clean.line(size_bytes));
        println!(
            "  lossy transfer ({loss_percent}% dropped {placement}; it counted {} of {} UDP \
             datagrams, {:.1}%): {}",
            counted.lost,
            counted.seen,
            counted.loss_percent(),
            lossy.line(size_bytes)
        );
        let comparisons = [
            (
                "from the post",
                lossy.goodput(size_bytes),
                "the clean transfer",
                clean.goodput(size_bytes),
            ),
            (
                "from the post",
                lossy.goodput(size_bytes),
                "the raw blast",
                blast_bytes_per_s,
            ),
            (
                "groups alone",
                lossy.groups_goodput(size_bytes),
                "the clean transfer's groups",
                clean.groups_goodput(size_bytes),
            ),
        ];
        for (span, goodput, what, capacity) in comparisons {
            println!(
                "  goodput ({span}) {:.1} MB/s against {what} at {:.1} MB/s: 0.8 x (1 - p) x \
                 capacity = {:.1} MB/s, (1 - p) x capacity = {:.1} MB/s; goodput is {:.2} x \
                 (1 - p) x capacity",
                mb(goodput),
                mb(capacity),
                mb(0.8 * (1.0 - p) * capacity),
                mb((1.0 - p) * capacity),
                goodput / ((1.0 - p) * capacity)
            );
        }
        println!(
            "  BLOB bytes on the wire per file byte: alice sent {:.3}, bob received {:.3}; \
             1 / (1 - p) = {:.3}",
            lossy.sent_blob_bytes as f64 / size_bytes as f64,
            lossy.received_blob_bytes as f64 / size_bytes as f64,
            1.0 / (1.0 - p)
        );
        // Devices first (they are killed when dropped), then the namespaces.
        drop((alice, bob));
        drop(net);
        Ok(())
    }

    /// Bytes per second that reach a socket in `to`'s namespace from one in `from`'s, sent
    /// as fast as one thread can for [`BLAST_FOR`].
    fn udp_capacity(net: &Net, from: &str, to: &str) -> Result<f64> {
        let listener = net.udp_socket(to, SocketAddr::from(([0, 0, 0, 0], BLAST_PORT)))?;
        listener.set_read_timeout(Some(Duration::from_millis(200)))?;
        let sender = net.udp_socket(from, SocketAddr::from(([0, 0, 0, 0], 0)))?;
        let target = SocketAddr::from((net.ip(to), BLAST_PORT));
        let sending = Arc::new(AtomicBool::new(true));
        let reader = {
            let sending = sending.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2_048];
                let (mut bytes, mut first, mut last) = (0u64, None, None);
                loop {
                    match listener.recv(&mut buf) {
                        Ok(n) => {
                            let now = Instant::now();
                            first.get_or_insert(now);
                            last = Some(now);
                            bytes += n as u64;
                        }
                        // Quiet for the read timeout after the sender stopped: all is in.
                        Err(_) if !sending.load(Ordering::SeqCst) => break,
                        Err(_) => {}
                    }
                }
                (bytes, first, last)
            })
        };
        let datagram = [0x5au8; BLAST_DATAGRAM_BYTES];
        let until = Instant::now() + BLAST_FOR;
        while Instant::now() < until {
            // A full socket buffer is the receiver's loss, not an error of the bench.
            let _ = sender.send_to(&datagram, target);
        }
        sending.store(false, Ordering::SeqCst);
        let (bytes, first, last) = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the blast's reader panicked"))?;
        match (first, last) {
            (Some(first), Some(last)) if last > first => {
                Ok(bytes as f64 / (last - first).as_secs_f64())
            }
            _ => bail!("the raw UDP blast from {from} to {to} delivered {bytes} bytes"),
        }
    }

    /// One transfer's figures: seconds from the post until bob holds the file whole, and the
    /// BLOB datagram bytes it cost (deltas of both devices' counters).
    struct Transfer {
        seconds: f64,
        /// When bob's store first had the file (its outboard fetched): the message's sync
        /// and the outboard's trip, part of `seconds`.
        appeared_after_seconds: f64,
        sent_blob_bytes: u64,
        received_blob_bytes: u64,
        /// Bob's `blobs` totals after it.
        bob_blobs: Value,
    }

    impl Transfer {
        fn goodput(&self, size_bytes: u64) -> f64 {
            size_bytes as f64 / self.seconds
        }

        /// Over the groups alone: from when bob's store had the file (the message synced,
        /// the outboard fetched, both bound by round trips and timers, not by the link).
        fn groups_goodput(&self, size_bytes: u64) -> f64 {
            size_bytes as f64 / (self.seconds - self.appeared_after_seconds).max(1e-3)
        }

        fn line(&self, size_bytes: u64) -> String {
            format!(
                "{:.2} s ({:.2} s until bob's store had the file), {:.1} MB/s of file bytes; \
                 BLOB datagram bytes sent {} ({:.3} x), received {} ({:.3} x); bob's blob \
                 totals {}",
                self.seconds,
                self.appeared_after_seconds,
                self.goodput(size_bytes) / 1e6,
                self.sent_blob_bytes,
                self.sent_blob_bytes as f64 / size_bytes as f64,
                self.received_blob_bytes,
                self.received_blob_bytes as f64 / size_bytes as f64,
                self.bob_blobs
            )
        }
    }

    fn stats(device: &DeviceProcess) -> Result<Value> {
        let (status, body) = get(&device.url("/api/stats"))?;
        if status != 200 {
            bail!("GET /api/stats of {}: {status} {body}", device.spec.name);
        }
        Ok(body)
    }

    fn blob_datagram_bytes(stats: &Value, direction: &str) -> u64 {
        stats[direction]["BLOB"]["bytes"].as_u64().unwrap_or(0)
    }

    /// Alice takes `size_bytes` (seeded by `seed`) by upload and posts a message naming the
    /// file; waits until bob's store holds it whole, then checks his copy hashes to its id.
    fn send_and_wait(
        alice: &DeviceProcess,
        bob: &DeviceProcess,
        size_bytes: u64,
        seed: u64,
    ) -> Result<Transfer> {
        let mut content = vec![0u8; usize::try_from(size_bytes)?];
        rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut content);
        let (status, body) = post_bytes(&alice.url("/api/files"), content)?;
        if status != 201 {
            bail!("POST /api/files: {status} {body}");
        }
        let id = body["file_id"].as_str().context("file_id")?.to_owned();
        let (alice_before, bob_before) = (stats(alice)?, stats(bob)?);
        let message = json!({
            "text": format!("file {seed}"), "file_id": id, "name": "bench.bin",
            "mime": "application/octet-stream"
        });
        let posted = Instant::now();
        let (status, body) = post(&alice.url("/api/messages"), &message)?;
        if status != 201 {
            bail!("POST /api/messages with file_id: {status} {body}");
        }
        // Bounded: at least 0.5 MB/s, and never a minute without a group gained.
        let mut wait = TransferWait::new(posted, size_bytes, 500_000);
        let progress_url = bob.url(&format!("/api/files/{id}/progress"));
        let took = loop {
            let (status, progress) = get(&progress_url)?;
            if let Some(took) = wait
                .note(Instant::now(), status, &progress)
                .with_context(|| format!("bob, file {seed}"))?
            {
                break took;
            }
            std::thread::sleep(POLL_EVERY);
        };
        let (alice_after, bob_after) = (stats(alice)?, stats(bob)?);
        let copy = get_with(&bob.url(&format!("/api/files/{id}")), &[])?;
        if copy.status().as_u16() != 200 {
            bail!("GET bob's copy: {}", copy.status());
        }
        let hash = blake3::hash(&copy.bytes()?).to_hex().to_string();
        if hash != id {
            bail!("bob's copy of file {seed} hashes to {hash}, not to its id {id}");
        }
        Ok(Transfer {
            seconds: took.as_secs_f64(),
            appeared_after_seconds: wait.appeared.unwrap_or(took).as_secs_f64(),
            sent_blob_bytes: blob_datagram_bytes(&alice_after, "packets_sent")
                - blob_datagram_bytes(&alice_before, "packets_sent"),
            received_blob_bytes: blob_datagram_bytes(&bob_after, "packets_received")
                - blob_datagram_bytes(&bob_before, "packets_received"),
            bob_blobs: bob_after["blobs"].clone(),
        })
    }
}
