//! What the kernel says happened: one typed stream, in the order things happen, fanned out to
//! every registered [`Observer`] in registration order. The trace, the counters, the report
//! and every checker are observers; none of them reaches into the kernel, and none parses
//! text back. Devices are named by index; an observer looks anything else up in the
//! read-only [`View`] it is handed with each happening.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use meshlog_core::event::open;
use meshlog_core::{
    DeviceId, EventId, Instant, NodeEvent, OpenedEvent, Origin, PacketKind, Transmit,
};
use serde::Serialize;

use super::appended::AppendedEvents;
use super::device::Device;
use super::members::Members;
use super::network::{Delivery, DropCause, Network};
use super::shelf::SharedShelf;
use crate::scenario::{Fault, MemberChange, Scenario};

/// Who put a datagram on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Node,
    /// An attacker on the link, re-sending what the receiver accepted earlier.
    Replay,
    /// A hostile member's worst-case packet.
    Hostile,
    /// An attacker's forgery claiming the source's name.
    Forged,
}

impl Via {
    /// The trace's tag after a delivery or a drop at an unreachable receiver.
    pub fn tag(self) -> &'static str {
        match self {
            Via::Node => "",
            Via::Replay => " replayed",
            Via::Hostile => " hostile",
            Via::Forged => " forged",
        }
    }
}

/// What a datagram carries, as its sender describes it (formatted only where it is shown).
pub trait Note: fmt::Display + fmt::Debug {}
impl<T: fmt::Display + fmt::Debug + ?Sized> Note for T {}

/// One thing that happened. `from`, `to` and `device` are device indices.
#[derive(Clone, Copy, Debug)]
pub enum Happening<'a> {
    /// The world is built and about to start.
    Start,
    /// Virtual time moved to `at` to handle the next item on the queue.
    Advance { at: Instant },
    /// A node handed a datagram for `to` to the network (whatever its fate).
    Transmit {
        from: usize,
        to: usize,
        transmit: &'a Transmit,
    },
    /// A hostile member sealed its next worst-case packet (`attack`: its kind's name).
    HostileSent {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        attack: &'static str,
    },
    /// The network put a copy of a datagram on its way, arriving at `copy.at`.
    OnWire {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        note: &'a dyn Note,
        copy: &'a Delivery,
        via: Via,
    },
    /// The network lost a datagram.
    Lost {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        note: &'a dyn Note,
        cause: DropCause,
        via: Via,
    },
    /// An attacker on the link re-sent a recorded datagram, arriving at `arrives`.
    Replayed {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        arrives: Instant,
    },
    /// An attacker outside the community sent a datagram claiming to be `from`'s.
    Forged {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        arrives: Instant,
        stolen_keys: bool,
    },
    /// A datagram reached a receiver with no running node (`code`: `crashed`, `not_running`).
    NotRunning {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        code: &'static str,
        via: Via,
    },
    /// A datagram reached `to`'s running node, which handles it next.
    Delivered {
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
        via: Via,
    },
    /// `to`'s node has handled that datagram and sent whatever it sent in answer.
    /// `earlier_life`: a replay of what an earlier incarnation of `to` accepted.
    Handled {
        from: usize,
        to: usize,
        bytes: usize,
        via: Via,
        corrupted: bool,
        earlier_life: bool,
    },
    /// The workload made an event on `device` (before it goes out): `reacts_to` is the message
    /// a reaction answers; `pushes_refused`, whether the node's full queue refused its pushes.
    Made {
        device: usize,
        id: EventId,
        reacts_to: Option<EventId>,
        pushes_refused: bool,
    },
    /// `device`'s node said something: an event stored (appended there or received), a
    /// datagram accepted or dropped, an event refused, a peer in sync, a store failure.
    Node { device: usize, event: &'a NodeEvent },
    /// After the heal, `device` holds every appended event.
    Converged { device: usize },
    /// A workload append skipped: the device's node is down.
    AppendSkipped { device: usize, kind: &'static str },
    /// A workload append its full disk refused.
    AppendRefused { device: usize, kind: &'static str },
    /// A scheduled fault is about to be applied, and (`applied`) has been.
    Fault { fault: &'a Fault, applied: bool },
    /// A `[[member]]` change is about to be made (`outcome: None`), and was: its admin's
    /// node took it (`"epoch N"`: the key epoch it seals under now) or refused it (why).
    Member {
        change: &'a MemberChange,
        outcome: Option<&'a str>,
    },
    /// The end of the workload: every fault not marked permanent is lifted, and (`done`) has been.
    Heal { done: bool },
    /// A hostile member made event `id` in another member's name, for `to`.
    ForgedEvent { from: usize, to: usize, id: EventId },
    /// A join ended (`outcome`: welcomed by whom, or why not). A welcomed device's node
    /// starts next (`Restarted`).
    JoinEnded {
        device: usize,
        welcomed: bool,
        outcome: &'a str,
    },
    /// `device`'s node started again (a new life: fresh credit, an index rebuilt from its store).
    Restarted { device: usize },
    /// A power cut dropped `device`'s node and took `lost` from its store.
    PowerCut {
        device: usize,
        lost: &'a BTreeSet<EventId>,
    },
    /// A provided store was opened again at a restart: it holds `held`, and lacks
    /// `own_lost`, events the device had appended itself.
    Reopened {
        device: usize,
        held: u64,
        own_lost: &'a [EventId],
    },
    /// A command of the simulation service (`crash`, `restart`).
    Host {
        device: usize,
        command: &'static str,
    },
    /// `device` put an announcement on its local links (`lan.rs`), to each other device there.
    Announced { device: usize, bytes: &'a [u8] },
    /// The link from `from` to `to` lost `from`'s announcement.
    AnnounceLost {
        from: usize,
        to: usize,
        cause: DropCause,
    },
    /// `from`'s announcement reached `to`'s running node, which handles it next.
    AnnounceHeard {
        from: usize,
        to: usize,
        bytes: &'a [u8],
    },
    /// `device` is reached at `now` from here on, no longer at `was` (`address_change`).
    AddressChanged {
        device: usize,
        was: SocketAddr,
        now: SocketAddr,
    },
    /// `device`'s datagram made a new mapping on box `nat`: it leaves as `public` (`nat.rs`).
    NatMapped {
        nat: usize,
        device: usize,
        public: SocketAddr,
    },
    /// The run is over.
    End,
}

impl Happening<'_> {
    /// `(device, id)` if this is a device storing an event a peer sent it.
    pub fn inserted(&self) -> Option<(usize, EventId)> {
        match *self {
            Happening::Node {
                device,
                event:
                    NodeEvent::EventStored {
                        id,
                        origin: Origin::Peer,
                        ..
                    },
            } => Some((device, *id)),
            _ => None,
        }
    }
}

/// What an observer may read of the kernel: everything, read-only.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub now: Instant,
    pub seed: u64,
    pub scenario: &'a Scenario,
    pub(crate) devices: &'a [Device],
    pub(crate) index: &'a BTreeMap<DeviceId, usize>,
    pub(crate) network: &'a Network,
    pub(crate) addresses: &'a super::address::Addresses,
    pub(crate) lans: &'a [Vec<usize>],
    pub(crate) appended: &'a AppendedEvents,
    pub(crate) shelf: &'a SharedShelf,
    pub(crate) community: &'a meshlog_core::Community,
    /// Membership events appended and the roster they settle to.
    pub members: &'a Members,
    /// When the end-of-workload heal happened.
    pub heal_at: Option<Instant>,
    /// The ids of `[[workload.file]]`s, in order.
    pub file_ids: &'a [meshlog_core::FileId],
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("now", &self.now).finish()
    }
}

impl View<'_> {
    pub fn name(&self, device: usize) -> &DeviceId {
        &self.devices[device].name
    }
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }
    pub fn index_of(&self, name: &DeviceId) -> Option<usize> {
        self.index.get(name).copied()
    }
    /// Removed from the community, as every membership event appended so far settles.
    pub fn is_removed(&self, device: usize) -> bool {
        self.devices[device].removed
    }
    /// The device's running node (`None` while it is crashed or a hostile member's).
    pub fn node(&self, device: usize) -> Option<&meshlog_core::Node<super::store::SharedStore>> {
        self.devices[device].node.as_ref()
    }
    /// Of another community (`[world] strangers`).
    pub fn is_stranger(&self, device: usize) -> bool {
        self.devices[device].stranger
    }
    /// Where `device` is reached now, from its own network.
    pub fn address_of(&self, device: usize) -> SocketAddr {
        self.addresses.of(device)
    }
    /// Whether a peer sending to `addr` now reaches `device`: its own address, or a live
    /// mapping of the NAT box it is behind.
    pub fn is_address_of(&self, device: usize, addr: SocketAddr) -> bool {
        self.addresses.is_address_of(device, addr, self.now)
    }
    /// The kind of NAT box `device` is behind, if any.
    pub fn nat_kind(&self, device: usize) -> Option<crate::scenario::NatKind> {
        self.addresses.nat_of(device).map(|nat| nat.kind())
    }
    /// The device `from`'s driver would reach by sending to `to` now: `to` itself, unless its
    /// book holds a stale address (or none) for it.
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        self.devices[from]
            .book
            .resolve(&self.devices[to].name)
            .and_then(|addr| self.addresses.would_reach(from, addr, self.now))
            == Some(to)
    }
    /// The `[[lan]]`s, as device indices.
    pub fn lans(&self) -> &[Vec<usize>] {
        self.lans
    }
    /// Down for good (crashed or offline by a permanent fault, or a hostile member).
    pub fn is_down_for_good(&self, device: usize) -> bool {
        self.devices[device].down_for_good
    }
    /// The community the world was built with (genesis roster and keys, no later epoch).
    pub fn community(&self) -> &meshlog_core::Community {
        self.community
    }
    /// An appended event, decoded now (bodies are not kept: `shelf.rs`).
    pub fn appended_event(&self, id: &EventId) -> Option<OpenedEvent> {
        self.opened_slot(self.appended.get(id)?.slot)
    }
    /// The shelf's bytes in `slot`, decoded now: with the world's community, or, for an
    /// event sealed under a later epoch key, with the keys some running node holds (the world
    /// sees every device's keys).
    pub(crate) fn opened_slot(&self, slot: u32) -> Option<OpenedEvent> {
        let shelf = self.shelf.borrow();
        let bytes = shelf.bytes(slot);
        match open(bytes, self.community) {
            Ok(opened) => Some(opened),
            Err(meshlog_core::RejectReason::UnknownEpoch(_)) => self
                .devices
                .iter()
                .filter_map(|d| d.node.as_ref())
                .find_map(|node| open(bytes, &node.config().community).ok()),
            Err(_) => None,
        }
    }
}

/// Sees every happening, in order. Registered when the world is built.
pub trait Observer: AsAny {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>);
}

/// Lets whoever registered an observer read it back after the run
/// ([`World::observer`](super::World::observer)). Every `'static` type has it.
pub trait AsAny: Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}
