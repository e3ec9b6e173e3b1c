//! The loop that owns a `Node` and its socket, and the handle everyone else talks to it through.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlog_core::sync::index::BucketSummary;
use meshlog_core::{
    AppendError, DeviceId, EventBody, EventId, Input, Instant, Node, NodeEvent, Output, PacketKind,
    PeerInfo, Stats, Store,
};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::socket::DatagramSocket;

/// Commands waiting for the loop; senders wait when it is full (back-pressure, not memory).
const COMMAND_QUEUE_LEN: usize = 256;
/// Events kept for slow subscribers; a subscriber further behind skips ahead (and is told).
const EVENT_QUEUE_LEN: usize = 4096;
/// Receive buffer: bigger than any datagram the protocol sends, so an oversized datagram is
/// seen whole and counted as `too_large` instead of being silently truncated to a valid size.
const RECEIVE_BUFFER_LEN: usize = 65_536;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("the device's network loop has stopped")]
    Stopped,
}

/// Something that happened on the node, stamped with the driver's clock.
#[derive(Clone, Debug)]
pub struct DriverEvent {
    pub at: Instant,
    pub kind: NetEventKind,
}

#[derive(Clone, Debug)]
pub enum NetEventKind {
    /// A datagram left for `to`.
    Sent {
        to: DeviceId,
        kind: PacketKind,
        size: usize,
        note: String,
    },
    /// A datagram could not be sent (no address for the peer, or the socket refused it).
    SendFailed {
        to: DeviceId,
        kind: PacketKind,
        size: usize,
        error: String,
    },
    Node(NodeEvent),
}

/// A consistent view of the node, taken between two inputs.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub device: DeviceId,
    pub online: bool,
    pub events: usize,
    /// Count and fingerprint of the whole id set: equal summaries mean equal sets.
    pub summary: BucketSummary,
    pub stats: Stats,
    pub peers: Vec<PeerInfo>,
    pub sync_percent: f64,
    pub now: Instant,
}

#[derive(Debug)]
enum Command {
    Append {
        bodies: Vec<EventBody>,
        reply: oneshot::Sender<Result<Vec<EventId>, DriverError>>,
    },
    SetOnline {
        online: bool,
        reply: oneshot::Sender<()>,
    },
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
}

/// Cheap to clone; every clone talks to the same loop.
#[derive(Clone, Debug)]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<DriverEvent>,
}

impl DriverHandle {
    /// Appends one event; the id comes back once it is in the store.
    pub async fn append(&self, body: EventBody) -> Result<EventId, DriverError> {
        let ids = self.append_all(vec![body]).await?;
        Ok(ids[0])
    }

    /// Appends events in order (file chunks, then the message that refers to them), stopping
    /// at the first failure. Every id returned is in the store.
    pub async fn append_all(&self, bodies: Vec<EventBody>) -> Result<Vec<EventId>, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Append { bodies, reply }, answer)
            .await?
    }

    pub async fn set_online(&self, online: bool) -> Result<(), DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::SetOnline { online, reply }, answer)
            .await
    }

    pub async fn snapshot(&self) -> Result<Snapshot, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Snapshot { reply }, answer).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DriverEvent> {
        self.events.subscribe()
    }

    async fn request<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, DriverError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| DriverError::Stopped)?;
        answer.await.map_err(|_| DriverError::Stopped)
    }
}

/// Owns the node and the socket; `run` until every handle is dropped.
pub struct Driver<S: Store, K: DatagramSocket, C: Clock> {
    node: Node<S>,
    socket: K,
    peer_addrs: BTreeMap<DeviceId, SocketAddr>,
    clock: C,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<DriverEvent>,
}

impl<S: Store, K: DatagramSocket, C: Clock> std::fmt::Debug for Driver<S, K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node)
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
        let handle = DriverHandle {
            commands: command_tx,
            events: events.clone(),
        };
        let driver = Driver {
            node,
            socket,
            peer_addrs,
            clock,
            commands,
            events,
        };
        (driver, handle)
    }

    /// Runs until every `DriverHandle` is dropped; returns the node (and so its store).
    pub async fn run(mut self) -> Node<S> {
        let mut buf = vec![0u8; RECEIVE_BUFFER_LEN];
        loop {
            let wake_at = self.flush().await;
            let now = self.clock.now();
            let sleep = std::time::Duration::from_micros(
                wake_at.as_micros().saturating_sub(now.as_micros()),
            );
            // Biased, so a run under turmoil is deterministic (tokio's default picks branches at
            // random). Commands and timers come first; they are only sometimes ready, so a
            // flood of datagrams cannot starve them, nor can they starve the socket.
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => return self.node,
                },
                () = tokio::time::sleep(sleep) => {
                    let now = self.clock.now();
                    self.node.handle_input(Input::Timeout(now));
                }
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, _from)) => {
                        let now = self.clock.now();
                        self.node.handle_input(Input::Datagram { now, bytes: &buf[..len] });
                    }
                    // Linux reports an earlier send's ICMP "port unreachable" on the next
                    // receive; a peer being down is normal, so note it and keep going.
                    Err(err) => tracing::debug!(%err, "udp receive error"),
                },
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Append { bodies, reply } => {
                let mut ids = Vec::with_capacity(bodies.len());
                let mut result = Ok(());
                for body in bodies {
                    match self.node.append(self.clock.now(), body) {
                        Ok(id) => ids.push(id),
                        Err(err) => {
                            result = Err(DriverError::Append(err));
                            break;
                        }
                    }
                }
                // A caller that went away still had its events stored; nothing to undo.
                let _ = reply.send(result.map(|()| ids));
            }
            Command::SetOnline { online, reply } => {
                self.node.set_online(self.clock.now(), online);
                let _ = reply.send(());
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(Snapshot {
                    device: self.node.device().clone(),
                    online: self.node.is_online(),
                    events: self.node.event_count(),
                    summary: self.node.summary(),
                    stats: self.node.stats().clone(),
                    peers: self.node.peers(),
                    sync_percent: self.node.sync_percent(),
                    now: self.clock.now(),
                });
            }
        }
    }

    /// Sends and publishes everything the node has queued; returns when it next wants a wake-up.
    async fn flush(&mut self) -> Instant {
        loop {
            match self.node.poll_output() {
                Output::Timeout(at) => return at,
                Output::Event(event) => self.publish(NetEventKind::Node(event)),
                Output::Transmit(transmit) => {
                    let size = transmit.bytes.len();
                    let outcome = match self.peer_addrs.get(&transmit.to) {
                        None => Err("no address for this peer".to_owned()),
                        Some(addr) => self
                            .socket
                            .send_to(&transmit.bytes, *addr)
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
    }

    fn publish(&self, kind: NetEventKind) {
        // No subscriber is fine: the HTTP layer may not have started listening yet.
        let _ = self.events.send(DriverEvent {
            at: self.clock.now(),
            kind,
        });
    }
}
