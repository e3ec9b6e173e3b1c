//! The handle everyone else talks to a running driver through, and what it answers: commands
//! in, events and snapshots out.

use std::net::SocketAddr;

use meshlog_core::member::{EpochKeys, Invite, PersonKeys, Role, Roster};
use meshlog_core::node::{AddressSource, MemberError};
use meshlog_core::{
    AppendError, BucketSummary, DeviceId, Duration, EventBody, EventId, Instant, NodeEvent,
    PacketKind, PacketNote, PeerInfo, Stats,
};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::blocked::{Blocked, Blocklist};

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
pub(super) enum Command {
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
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<DriverEvent>,
    pub(super) blocked: Blocklist,
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
