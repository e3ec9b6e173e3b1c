//! Peers this device refuses to talk to for now: the demo's cuts and partitions on real UDP.
//! The driver drops datagrams to a peer blocked outbound and from one blocked inbound (known
//! by the source address its peer list gives it) before the node sees them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use meshlog_core::DeviceId;

/// Which ways a peer is blocked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blocked {
    /// Datagrams from the peer are dropped.
    pub inbound: bool,
    /// Datagrams to the peer are dropped.
    pub outbound: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Only peers blocked some way; at most one entry per configured peer.
    peers: BTreeMap<DeviceId, Blocked>,
    dropped: u64,
}

/// Shared by the driver (which reads it for every datagram) and its handles (which set it).
#[derive(Clone, Debug, Default)]
pub struct Blocklist(Arc<Mutex<Inner>>);

impl Blocklist {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, peer: DeviceId, blocked: Blocked) {
        let mut inner = self.inner();
        if blocked == Blocked::default() {
            inner.peers.remove(&peer);
        } else {
            inner.peers.insert(peer, blocked);
        }
    }

    pub fn get(&self, peer: &DeviceId) -> Blocked {
        self.inner().peers.get(peer).copied().unwrap_or_default()
    }

    /// Every peer blocked some way, and how many datagrams were dropped for it so far.
    pub fn snapshot(&self) -> (BTreeMap<DeviceId, Blocked>, u64) {
        let inner = self.inner();
        (inner.peers.clone(), inner.dropped)
    }

    /// Whether a datagram to `peer` must be dropped (and counts it if so).
    pub(crate) fn drop_outbound(&self, peer: &DeviceId) -> bool {
        let mut inner = self.inner();
        let drop = inner.peers.get(peer).is_some_and(|b| b.outbound);
        inner.dropped += u64::from(drop);
        drop
    }

    /// The blocked peer a datagram from `from` came from, if it must be dropped (and counts it).
    pub(crate) fn drop_inbound(
        &self,
        from: SocketAddr,
        peer_addrs: &BTreeMap<DeviceId, SocketAddr>,
    ) -> Option<DeviceId> {
        let mut inner = self.inner();
        if inner.peers.is_empty() {
            return None;
        }
        let peer = inner
            .peers
            .iter()
            .filter(|(_, b)| b.inbound)
            .map(|(peer, _)| peer)
            .find(|peer| peer_addrs.get(*peer) == Some(&from))?
            .clone();
        inner.dropped += 1;
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_the_blocked_direction_and_counts() {
        let bob = DeviceId::new("bob").unwrap();
        let addr: SocketAddr = "127.0.0.1:8002".parse().unwrap();
        let addrs = BTreeMap::from([(bob.clone(), addr)]);
        let list = Blocklist::default();
        assert!(!list.drop_outbound(&bob));
        assert_eq!(list.drop_inbound(addr, &addrs), None);
        list.set(
            bob.clone(),
            Blocked {
                inbound: true,
                outbound: false,
            },
        );
        assert!(!list.drop_outbound(&bob));
        assert_eq!(list.drop_inbound(addr, &addrs), Some(bob.clone()));
        let other: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(list.drop_inbound(other, &addrs), None);
        assert_eq!(list.snapshot().1, 1);
        list.set(bob.clone(), Blocked::default());
        assert!(list.snapshot().0.is_empty());
    }
}
