//! Issue 25's "end-to-end latency vs hops", printed (not a timed test): a line of six devices
//! on loopback (alice – bob – carol – dave – erin – frank), each told only its neighbours'
//! addresses, with LAN discovery and peer exchange off so the line stays a line. `MESSAGES`
//! times, alice posts and the clock runs until the message shows on each device's
//! `GET /api/stream` (SSE): p50 and max per hop count, against the target of
//! hops × link latency + 50 ms (loopback's link latency is well under a millisecond, so the
//! target here is about 50 ms at any hop count).
//!
//! `cargo bench -p meshlog-backend --bench hops [-- MESSAGES]`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meshlog_backend::keys;
use tokio::sync::mpsc;

mod support;

use support::*;

const LINE: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
/// A message that has not reached every device after this failed.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    // The devices get an executor of their own, as in `meshlog device`; the bench another.
    let server = tokio::runtime::Runtime::new()?;
    let clients = tokio::runtime::Runtime::new()?;
    clients.block_on(hops(server.handle(), messages))
}

async fn hops(server: &tokio::runtime::Handle, messages: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    keys::create_community(&root.path().join("keys"), &LINE.map(String::from))?;
    let free = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr());
    let udp = LINE
        .iter()
        .map(|_| free())
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut devices = Vec::new();
    for (i, name) in LINE.iter().enumerate() {
        let mut options = options(root.path(), name, udp[i], "x", udp[0]);
        options.peers = [i.checked_sub(1), Some(i + 1).filter(|n| *n < LINE.len())]
            .into_iter()
            .flatten()
            .map(|n| (LINE[n].to_owned(), udp[n]))
            .collect();
        options.peer_exchange = false;
        devices.push(start_on(server, options).await?);
    }
    let apis = devices
        .iter()
        .map(Api::of)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (tx, mut arrivals) = mpsc::unbounded_channel();
    for (index, api) in apis.iter().enumerate().skip(1) {
        watch(api, index, tx.clone()).await?;
    }

    // The first post also lets every device hear its neighbours (their epochs), after which
    // appends are pushed at once; it is not counted.
    let mut by_hops: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    for i in 0..=messages {
        let sent = Instant::now();
        let id = post(&apis[0], &format!("hop probe {i}")).await?;
        let mut pending: Vec<usize> = (1..LINE.len()).collect();
        while !pending.is_empty() {
            let (index, got, at) = tokio::time::timeout(ARRIVAL_LIMIT, arrivals.recv())
                .await
                .map_err(|_| anyhow::anyhow!("message {i} never reached {pending:?}"))?
                .ok_or_else(|| anyhow::anyhow!("every stream ended"))?;
            if got == id {
                pending.retain(|p| *p != index);
                if i > 0 {
                    by_hops.entry(index).or_default().push(at - sent);
                }
            }
        }
    }
    for (hops, samples) in &mut by_hops {
        samples.sort();
        println!(
            "hops {hops}: POST on alice -> message on {}'s stream, {} messages: p50 {:.1} ms, max {:.1} ms (target {hops} x link latency + 50 ms)",
            LINE[*hops],
            samples.len(),
            ms(samples[samples.len() / 2]),
            ms(samples[samples.len() - 1]),
        );
    }
    for device in devices {
        stop_device(device);
    }
    Ok(())
}

async fn post(api: &Api, text: &str) -> anyhow::Result<String> {
    let answer: serde_json::Value = api
        .client
        .post(format!("{}/api/messages", api.base))
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["id"].as_str().unwrap_or_default().to_owned())
}

/// Reads `api`'s event stream on a task of its own and sends `(index, message id, when)` for
/// each message frame.
async fn watch(
    api: &Api,
    index: usize,
    tx: mpsc::UnboundedSender<(usize, String, Instant)>,
) -> anyhow::Result<()> {
    let mut stream = api
        .client
        .get(format!("{}/api/stream", api.base))
        .send()
        .await?
        .error_for_status()?
        .bytes_stream();
    tokio::spawn(async move {
        let mut pending = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let at = Instant::now();
            pending.push_str(&String::from_utf8_lossy(&chunk));
            // SSE frames end with a blank line; a frame may arrive in pieces.
            while let Some(end) = pending.find("\n\n") {
                let frame: String = pending.drain(..end + 2).collect();
                let is_message = frame.lines().any(|l| l == "event: message");
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                if let (true, Some(data)) = (is_message, data) {
                    if let Ok(json) = serde_json::from_str::<serde_json::Value>(data) {
                        let id = json["id"].as_str().unwrap_or_default().to_owned();
                        if tx.send((index, id, at)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}
