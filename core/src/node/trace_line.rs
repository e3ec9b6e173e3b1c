//! A node event as one trace line: the one shape every trace of node events uses (the
//! simulator's, a recording's replay and this crate's test harness). It is data until it is
//! formatted: nothing is built unless a trace is written.

use std::fmt;

use super::{NodeEvent, Origin};

/// `append alice 1a2b… message`, `insert bob 1a2b… from alice`, `drop at bob 90 replayed`,
/// `reject at bob from carol bad_signature`, `peer alice bob in_sync=true`,
/// `store_failed alice disk full` (the time is the trace's to put in front).
#[derive(Clone, Copy)]
pub struct TraceLine<'a> {
    device: &'a dyn fmt::Display,
    event: &'a NodeEvent,
}

impl NodeEvent {
    /// This event of `device`'s node as a trace line; `None` for an accepted datagram (the
    /// trace's delivery line already says it).
    pub fn trace_line<'a>(&'a self, device: &'a dyn fmt::Display) -> Option<TraceLine<'a>> {
        match self {
            // Addresses are the driver's business; the simulator's devices keep theirs.
            NodeEvent::PacketReceived { .. } | NodeEvent::PeerAddress { .. } => None,
            event => Some(TraceLine { device, event }),
        }
    }
}

impl fmt::Debug for TraceLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TraceLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.device;
        match self.event {
            NodeEvent::EventStored {
                id,
                origin: Origin::Local,
                event,
                ..
            } => write!(f, "append {name} {id} {}", event.body.kind_name()),
            NodeEvent::EventStored { id, from, .. } => {
                let from = from.as_ref().map_or("", |f| f.as_str());
                write!(f, "insert {name} {id} from {from}")
            }
            NodeEvent::PacketDropped { reason, size, .. } => {
                write!(f, "drop at {name} {size} {}", reason.code())
            }
            NodeEvent::EventRejected { from, reason } => {
                write!(f, "reject at {name} from {from} {}", reason.code())
            }
            NodeEvent::PeerSync { peer, in_sync } => {
                write!(f, "peer {name} {peer} in_sync={in_sync}")
            }
            NodeEvent::StoreFailed { detail } => write!(f, "store_failed {name} {detail}"),
            NodeEvent::MemberChanged {
                device,
                status,
                role,
            } => write!(
                f,
                "member at {name} {device} {} {}",
                status.name(),
                role.name()
            ),
            NodeEvent::BlobComplete { file, size_bytes } => {
                write!(f, "blob_complete at {name} {file} {size_bytes}")
            }
            NodeEvent::KeyEpoch { epoch } => write!(f, "key_epoch at {name} {epoch}"),
            NodeEvent::KeysForgotten { count } => write!(f, "keys_forgotten at {name} {count}"),
            NodeEvent::Admitted { device } => write!(f, "admit at {name} {device}"),
            NodeEvent::JoinRefused { device, reason } => {
                write!(f, "join_refused at {name} {device} {reason}")
            }
            NodeEvent::PacketReceived { .. } | NodeEvent::PeerAddress { .. } => Ok(()),
        }
    }
}
