//! The loop that owns a `Node` and its socket, and the handle everyone else talks to it through.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlog_core::member::{EpochKeys, Invite, PersonKeys, Role, Roster};
use meshlog_core::node::{AddressSource, MemberError};
use meshlog_core::{
    AppendError, BucketSummary, DeviceId, Duration, EventBody, EventId, Instant, Node, NodeEvent,
    Output, PacketKind, PacketNote, PeerBook, PeerInfo, Stats, Store,
};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::blocked::{Blocked, Blocklist};
use crate::clock::Clock;
use crate::recorder::Recorder;
use crate::socket::DatagramSocket;

mod batch;
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

#[derive(Debug, Error)]
pub enum DriverError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Member(#[from] MemberError),
    /// A recording (`--record`) holds appends, not membership verbs, which draw from the
    /// node's random generator: a replay could not follow one.
    #[error("membership changes are not recorded; restart the device without --record")]
    NotRecordable,
    /// LAN discovery draws the node's random generator (each announcement's nonce) and feeds
    /// it inputs a recording does not hold: a replay could not follow.
    #[error("LAN discovery is not recorded; restart the device with --no-discover to record")]
    DiscoveryNotRecordable,
    #[error("the device's network loop has stopped")]
    Stopped,
}

/// An admin's membership verb, carried out by the node (`Node::remove_member`, ...).
#[derive(Debug)]
pub enum MemberVerb {
    /// Removes the device; a new key epoch follows.
    Remove(DeviceId),
    /// Removes a person and every device certified for them; a new key epoch follows.
    RemovePerson(DeviceId),
    /// Publishes the person's certificate for this device, if the roster lacks it.
    Certify(Box<PersonKeys>),
    /// Starts a new key epoch.
    RotateKeys,
    /// An invite valid for `valid_for` from now, for `uses` devices, naming `address`.
    Invite {
        role: Role,
        valid_for: Duration,
        uses: u16,
        address: String,
    },
}

/// What a [`MemberVerb`] did.
#[derive(Debug)]
pub enum MemberOutcome {
    /// The key epoch new events are sealed under now.
    KeyEpoch(u32),
    Invite(Box<Invite>),
}

/// Membership as the node holds it, taken between two inputs.
#[derive(Clone, Debug)]
pub struct Members {
    pub roster: Roster,
    pub key_epoch: u32,
    /// Every epoch key the device holds (the device persists them).
    pub epoch_keys: EpochKeys,
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
        /// What it carries (`Display` shows it as the network log does).
        note: PacketNote,
    },
    /// A datagram could not be sent (no address for the peer, or the socket refused it).
    SendFailed {
        to: DeviceId,
        kind: PacketKind,
        size: usize,
        error: String,
    },
    /// A datagram to or from a blocked peer was dropped (`kind` is known for outbound only).
    Blocked {
        peer: DeviceId,
        outbound: bool,
        kind: Option<PacketKind>,
        size: usize,
    },
    Node(NodeEvent),
    /// `device` is reached at `addr` from now on (admitted through a join request from there,
    /// or its newest packet came from there, ...: `source`); a device server keeps it for its
    /// restarts.
    PeerLearned {
        device: DeviceId,
        addr: SocketAddr,
        source: AddressSource,
    },
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
    /// The key epoch new events are sealed under (0: the community key).
    pub key_epoch: u32,
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
    Members {
        reply: oneshot::Sender<Members>,
    },
    Member {
        verb: MemberVerb,
        reply: oneshot::Sender<Result<MemberOutcome, DriverError>>,
    },
    /// This device's LAN announcement, naming `ports` (`Node::announcement`).
    Announcement {
        ports: Vec<u16>,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, DriverError>>,
    },
    /// An announcement heard on the discovery port (`Input::Announcement`).
    Heard {
        from: SocketAddr,
        bytes: Vec<u8>,
    },
}

/// Cheap to clone; every clone talks to the same loop.
#[derive(Clone, Debug)]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<DriverEvent>,
    blocked: Blocklist,
}

impl DriverHandle {
    /// Appends one event; the id comes back once it is in the store.
    pub async fn append(&self, body: EventBody) -> Result<EventId, DriverError> {
        let ids = self.append_all(vec![body]).await?;
        Ok(ids[0])
    }

    /// Appends events together (file chunks, then the message that refers to them): all are
    /// in the store when this returns `Ok`, and none is (nor was pushed) on an error.
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

    /// The roster, the key epoch and the epoch keys held.
    pub async fn members(&self) -> Result<Members, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Members { reply }, answer).await
    }

    /// Carries out an admin's membership verb; `DriverError::Member` if the node refuses it.
    pub async fn member(&self, verb: MemberVerb) -> Result<MemberOutcome, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Member { verb, reply }, answer)
            .await?
    }

    /// This device's LAN announcement naming its sync `ports`, to send on the local link;
    /// `None` if it is not an active member. Refused while recording.
    pub async fn announcement(&self, ports: Vec<u16>) -> Result<Option<Vec<u8>>, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.request(Command::Announcement { ports, reply }, answer)
            .await?
    }

    /// Hands the node an announcement heard from `from`; the node counts what it drops.
    /// Waits while the loop's command queue is full (back-pressure on the discovery socket,
    /// whose kernel buffer then drops the excess).
    pub async fn heard_announcement(
        &self,
        from: SocketAddr,
        bytes: Vec<u8>,
    ) -> Result<(), DriverError> {
        self.commands
            .send(Command::Heard { from, bytes })
            .await
            .map_err(|_| DriverError::Stopped)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DriverEvent> {
        self.events.subscribe()
    }

    /// The peers blocked for now (`POST /api/peers/:name/blocked`); applies to the next datagram.
    pub fn blocklist(&self) -> &Blocklist {
        &self.blocked
    }

    pub fn set_blocked(&self, peer: DeviceId, blocked: Blocked) {
        self.blocked.set(peer, blocked);
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
