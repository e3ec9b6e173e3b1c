//! The loop that owns a `Node` and its socket; `handle.rs` is the handle everyone else talks to it through.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlog_core::{DeviceId, Instant, Node, NodeEvent, Output, PeerBook, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::blocked::Blocklist;
use crate::clock::Clock;
use crate::recorder::Recorder;
use crate::socket::DatagramSocket;

mod batch;
mod handle;
mod precheck;
use batch::{run_batch, Batch, Done, GroupCommit, Work};

/// Commands waiting for the loop; senders wait when it is full (back-pressure, not memory).
const COMMAND_QUEUE_LEN: usize = 256;
/// Events kept for slow subscribers; a subscriber further behind skips ahead (and is told).
const EVENT_QUEUE_LEN: usize = 4096;
/// Inputs (datagrams, commands, timeouts) handled in one go before the store commits and the
/// outputs go out. One commit per batch is what makes ingest fast; the bound keeps a flood of
/// datagrams from holding back the outputs and the replies of waiting commands for long, and
/// bounds the batch's memory (at most this many datagrams, copied).
const BATCH_INPUTS_MAX: usize = 256;
/// Receive buffer: bigger than any datagram the protocol sends, so an oversized datagram is
/// seen whole and counted as `too_large` instead of being silently truncated to a valid size.
const RECEIVE_BUFFER_LEN: usize = 65_536;

use handle::Command;
pub use handle::{
    DriverError, DriverEvent, DriverHandle, MemberOutcome, MemberVerb, Members, NetEventKind,
    Snapshot,
};

/// Where the node runs. `Here`: on the driver's task (a store in memory, or turmoil, where a
/// real thread would break the simulated clock). `Thread`: on its own thread, so a store that
/// blocks on disk (SQLite, fsync) never blocks the async executor.
enum Home<S: Store> {
    /// Boxed: a node is a kilobyte, the thread's handles a few words.
    Here(Box<Node<S>>),
    Thread {
        /// Holds one batch: the driver waits for each batch's `Done` before sending the next,
        /// so a send never blocks.
        batches: std::sync::mpsc::SyncSender<(Batch, oneshot::Sender<Done>)>,
        /// The node, handed back when the thread ends.
        node: oneshot::Receiver<Node<S>>,
    },
}

/// Owns the node and the socket; `run` until every handle is dropped.
pub struct Driver<S: Store, K: DatagramSocket, C: Clock> {
    home: Home<S>,
    socket: K,
    /// Where each peer's datagrams go (core's `PeerBook`, which the simulator sends by too).
    peer_addrs: PeerBook,
    clock: C,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<DriverEvent>,
    blocked: Blocklist,
    /// Records every batch, when the device was asked to (`--record`); moves with the node.
    recorder: Option<Recorder>,
}

impl<S: Store, K: DatagramSocket, C: Clock> std::fmt::Debug for Driver<S, K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let home = match &self.home {
            Home::Here(node) => format!("{node:?}"),
            Home::Thread { .. } => "its own thread".to_owned(),
        };
        f.debug_struct("Driver")
            .field("node", &home)
            .field("peer_addrs", &self.peer_addrs)
            .finish()
    }
}

impl<S, K, C> Driver<S, K, C>
where
    S: Store + Send + 'static,
    K: DatagramSocket,
    C: Clock,
{
    /// `peer_addrs` maps each of the node's peers to where its socket listens.
    pub fn new(
        node: Node<S>,
        socket: K,
        peer_addrs: BTreeMap<DeviceId, SocketAddr>,
        clock: C,
    ) -> (Self, DriverHandle) {
        let (command_tx, commands) = mpsc::channel(COMMAND_QUEUE_LEN);
        let (events, _) = broadcast::channel(EVENT_QUEUE_LEN);
        let blocked = Blocklist::default();
        let handle = DriverHandle {
            commands: command_tx,
            events: events.clone(),
            blocked: blocked.clone(),
        };
        let driver = Driver {
            home: Home::Here(Box::new(node)),
            socket,
            peer_addrs: PeerBook::new(peer_addrs),
            clock,
            commands,
            events,
            blocked,
            recorder: None,
        };
        (driver, handle)
    }

    /// Records the node's inputs and a digest of its outputs, batch by batch, from the first
    /// (see `meshlog_core::record`). Before `with_node_thread`, which takes the recorder along.
    pub fn record(mut self, recorder: Recorder) -> Self {
        assert!(
            matches!(self.home, Home::Here(_)),
            "record before moving the node to its thread"
        );
        self.recorder = Some(recorder);
        self
    }

    /// Moves the node (and so its store) to a thread of its own, the store's one writer: the
    /// driver hands it each batch of inputs and sends what comes back.
    pub fn with_node_thread(mut self) -> std::io::Result<Self> {
        let mut node = match self.home {
            Home::Here(node) => node,
            thread @ Home::Thread { .. } => {
                self.home = thread;
                return Ok(self);
            }
        };
        let (batches, queue) = std::sync::mpsc::sync_channel::<(Batch, oneshot::Sender<Done>)>(1);
        let (give_back, node_back) = oneshot::channel();
        let mut recorder = self.recorder.take();
        std::thread::Builder::new()
            .name(format!("node-{}", node.device()))
            .spawn(move || {
                let mut group = GroupCommit::default();
                while let Ok((batch, reply)) = queue.recv() {
                    let done = run_batch(&mut node, batch, Some(&mut group), recorder.as_mut());
                    let _ = reply.send(done);
                }
                let _ = give_back.send(*node);
            })?;
        self.home = Home::Thread {
            batches,
            node: node_back,
        };
        Ok(self)
    }

    /// Runs until every `DriverHandle` is dropped; returns the node (and so its store).
    pub async fn run(mut self) -> Node<S> {
        let mut buf = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut done = self.process(Vec::new()).await;
        loop {
            if done.held {
                // The node holds a commit open for more input: take what is ready, or
                // nothing, which makes it commit.
                let mut batch = Vec::new();
                self.gather(&mut batch, &mut buf).await;
                done = self.process(batch).await;
                continue;
            }
            let wake_at = self.send_outputs(done).await;
            let now = self.clock.now();
            let sleep = std::time::Duration::from_micros(
                wake_at.as_micros().saturating_sub(now.as_micros()),
            );
            let mut batch = Vec::new();
            // Biased, so a run under turmoil is deterministic (tokio's default picks branches at
            // random). Commands and timers come first; they are only sometimes ready, so a
            // flood of datagrams cannot starve them, nor can they starve the socket.
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => batch.push(Work::Command { now: self.clock.now(), command }),
                    None => return self.into_node().await,
                },
                () = tokio::time::sleep(sleep) => batch.push(Work::Timeout(self.clock.now())),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.received(&mut batch, &buf[..len], from),
                    // Linux reports an earlier send's ICMP "port unreachable" on the next
                    // receive; a peer being down is normal, so note it and keep going.
                    Err(err) => tracing::debug!(%err, "udp receive error"),
                },
            }
            // Under a flood the socket is always ready, and tokio's timer fires only when its
            // driver turns: a catch-up's acknowledgements waited 600 ms behind a due wake-up.
            // A wake-up that is past goes with the batch.
            let now = self.clock.now();
            if now >= wake_at && !matches!(batch.first(), Some(Work::Timeout(_))) {
                batch.push(Work::Timeout(now));
            }
            self.gather(&mut batch, &mut buf).await;
            done = self.process(batch).await;
        }
    }

    /// Adds whatever else is ready now (commands, then datagrams) to `batch`, without waiting.
    async fn gather(&mut self, batch: &mut Vec<Work>, buf: &mut [u8]) {
        while batch.len() < BATCH_INPUTS_MAX {
            if let Ok(command) = self.commands.try_recv() {
                batch.push(Work::Command {
                    now: self.clock.now(),
                    command,
                });
                continue;
            }
            // `recv_from` is cancel-safe: polled once, and dropped if nothing is there.
            let received = tokio::select! {
                biased;
                received = self.socket.recv_from(buf) => received,
                () = std::future::ready(()) => return,
            };
            match received {
                Ok((len, from)) => self.received(batch, &buf[..len], from),
                Err(err) => {
                    tracing::debug!(%err, "udp receive error");
                    return;
                }
            }
        }
    }

    /// Queues a datagram for the node, unless it comes from a peer blocked inbound.
    fn received(&self, batch: &mut Vec<Work>, bytes: &[u8], from: SocketAddr) {
        if let Some(peer) = self.blocked.drop_inbound(from, self.peer_addrs.addresses()) {
            self.publish(NetEventKind::Blocked {
                peer,
                outbound: false,
                kind: None,
                size: bytes.len(),
            });
            return;
        }
        batch.push(Work::Datagram {
            now: self.clock.now(),
            from,
            bytes: bytes.to_vec(),
        });
    }

    async fn process(&mut self, work: Vec<Work>) -> Done {
        let done = self.run_on_node(work).await;
        // Before anything is sent: a peer that moved (or was just admitted) is reached at its
        // new address by this batch's own datagrams, a welcome or an answer to its greeting.
        for output in &done.outputs {
            if let Output::Event(event @ NodeEvent::PeerAddress { peer, addr, source }) = output {
                if !self.peer_addrs.follow(event) {
                    continue;
                }
                tracing::info!(%peer, %addr, source = source.name(), "peer reached at a new address");
                self.publish(NetEventKind::PeerLearned {
                    device: peer.clone(),
                    addr: *addr,
                    source: *source,
                });
            }
        }
        done
    }

    async fn run_on_node(&mut self, work: Vec<Work>) -> Done {
        let batch = Batch {
            more_waiting: work.len() >= BATCH_INPUTS_MAX,
            work,
        };
        match &mut self.home {
            // On the driver's task a store is in memory (or simulated): nothing to group.
            Home::Here(node) => run_batch(node, batch, None, self.recorder.as_mut()),
            Home::Thread { batches, .. } => {
                let (reply, done) = oneshot::channel();
                batches
                    .send((batch, reply))
                    .expect("the node thread runs while the driver does");
                done.await.expect("the node thread answers every batch")
            }
        }
    }

    async fn into_node(self) -> Node<S> {
        match self.home {
            Home::Here(node) => *node,
            Home::Thread { batches, node } => {
                drop(batches);
                node.await.expect("the node thread hands the node back")
            }
        }
    }

    /// Sends and publishes a batch's outputs; returns when the node next wants a wake-up.
    async fn send_outputs(&mut self, done: Done) -> Instant {
        for output in done.outputs {
            match output {
                Output::Timeout(_) => unreachable!("run_batch keeps the timeout apart"),
                Output::Event(event) => self.publish(NetEventKind::Node(event)),
                Output::Transmit(transmit) => {
                    let size = transmit.bytes.len();
                    if self.blocked.drop_outbound(&transmit.to) {
                        self.publish(NetEventKind::Blocked {
                            peer: transmit.to,
                            outbound: true,
                            kind: Some(transmit.kind),
                            size,
                        });
                        continue;
                    }
                    let outcome = match self.peer_addrs.destination(&transmit) {
                        None => Err("no address for this peer".to_owned()),
                        Some(addr) => self
                            .socket
                            .send_to(&transmit.bytes, addr)
                            .await
                            .map(|_| ())
                            .map_err(|err| err.to_string()),
                    };
                    let kind = match outcome {
                        Ok(()) => NetEventKind::Sent {
                            to: transmit.to,
                            kind: transmit.kind,
                            size,
                            note: transmit.note,
                        },
                        Err(error) => NetEventKind::SendFailed {
                            to: transmit.to,
                            kind: transmit.kind,
                            size,
                            error,
                        },
                    };
                    self.publish(kind);
                }
            }
        }
        done.wake_at
    }

    fn publish(&self, kind: NetEventKind) {
        // No subscriber is fine: the HTTP layer may not have started listening yet.
        let _ = self.events.send(DriverEvent {
            at: self.clock.now(),
            kind,
        });
    }
}
