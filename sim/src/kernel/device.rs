//! One device of a world: its name, config, store and (while it runs) node, and the kernel's
//! books about it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use meshlog_core::{Config, DeviceId, EventId, Instant, Node, PeerBook};

use super::clock::DeviceClock;
use super::store::SharedStore;

pub(crate) struct Device {
    pub(crate) name: DeviceId,
    pub(crate) config: Config,
    pub(crate) store: SharedStore,
    /// `None` while crashed.
    pub(crate) node: Option<Node<SharedStore>>,
    /// What the scenario last said (a restart keeps an offline device offline).
    pub(crate) online: bool,
    /// Down (crashed or offline) by a permanent fault: excused from converging.
    pub(crate) down_for_good: bool,
    pub(crate) wake_at: Option<Instant>,
    pub(crate) incarnation: u32,
    pub(crate) converged_at: Option<Instant>,
    /// A hostile member: it never has a node.
    pub(crate) attacker_only: bool,
    /// Events its store holds but has not made durable (`faults/power.rs`).
    pub(crate) unsynced: BTreeSet<EventId>,
    /// Removed from the community, as every membership event appended settles
    /// (`members.rs`): excused from converging, and its events need not reach anyone.
    pub(crate) removed: bool,
    /// A permanent `disk_full`: no heal frees it.
    pub(crate) disk_full_for_good: bool,
    /// Its clock's reading of world time (`clock.rs`): all its node ever sees.
    pub(crate) clock: DeviceClock,
    /// Outside the genesis roster and not yet welcomed: it has no node to start.
    pub(crate) outsider: bool,
    /// On its way in (`join.rs`).
    pub(crate) joining: Option<Box<Joining>>,
    /// Where its driver sends each peer's datagrams (`address.rs`): `configured`, moved by
    /// what its node learns; a restart starts again from `configured`.
    pub(crate) book: PeerBook,
    /// The peers' addresses it was configured with (`[knows]` or the topology, as they were
    /// at the start; a welcomed device's inviter, as it was at the welcome).
    pub(crate) configured: BTreeMap<DeviceId, SocketAddr>,
    /// Of another community (`[world] strangers`).
    pub(crate) stranger: bool,
    /// Its announcement schedule (`lan.rs`): how many it has sent since its node started,
    /// and which schedule is current (a restart starts a new one).
    pub(crate) announced: u32,
    pub(crate) announce_schedule: u32,
}

/// A device on its way in (`join.rs`): its joiner and the member it asks.
#[derive(Debug)]
pub(crate) struct Joining {
    pub(crate) joiner: meshlog_core::member::join::Joiner,
    pub(crate) inviter: usize,
}
