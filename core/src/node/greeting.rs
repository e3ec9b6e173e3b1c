//! First contact. A packet must echo its receiver's current epoch (see `packet`), so until a
//! node has heard a peer in that peer's current run, whatever it sends the peer is refused.
//! Anti-entropy would repair a refused push at the next round, which is too late for a
//! prompt delivery, and with anti-entropy off nothing would. So a fresh event for a peer whose
//! epoch is unknown is held here, a greeting goes out to draw the peer's epoch, and the held
//! events follow as soon as it is heard.

use super::Node;
use crate::id::{DeviceId, EventId};
use crate::packet::{PacketNote, Payload, WireEvent};
use crate::store::Store;
use crate::sync::prefix::Prefix;

/// Fresh events held per peer while its epoch is unknown: a burst of appends at start-up.
/// Beyond it anti-entropy carries them; a peer that never answers must not grow memory.
pub(super) const HELD_PUSHES_MAX: usize = 64;

impl<S: Store> Node<S> {
    /// Pushes a fresh event to every peer: at once to those whose epoch is known, held (with a
    /// greeting) for the others.
    pub(super) fn push_fresh(&mut self, id: EventId, sealed: &[u8], note: PacketNote) {
        let payload = Payload::Events(vec![WireEvent::known(id, sealed.to_vec())]);
        let unheard: Vec<DeviceId> = self
            .peers
            .keys()
            .filter(|peer| !self.wire.knows_epoch_of(peer))
            .cloned()
            .collect();
        if unheard.is_empty() {
            return self.send_to_every_peer(payload, note);
        }
        let peers: Vec<DeviceId> = self.peers.keys().cloned().collect();
        for peer in peers {
            if unheard.contains(&peer) {
                self.hold_push(&peer, id);
            } else {
                self.send(&peer, payload.clone());
            }
        }
    }

    fn hold_push(&mut self, peer: &DeviceId, id: EventId) {
        let held = &mut self
            .links
            .get_mut(peer)
            .expect("a peer has a link")
            .held_pushes;
        if held.len() < HELD_PUSHES_MAX {
            held.push(id);
        }
        // Every held push greets, not only the first: a lost greeting must not strand the
        // rest. One summary per append and peer, smaller than the push it stands for.
        self.greet(peer);
    }

    /// Sends what was held for `peer` once its epoch is known (a no-op otherwise).
    pub(super) fn release_held_pushes(&mut self, peer: &DeviceId) {
        if !self.wire.knows_epoch_of(peer) {
            return;
        }
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        for id in std::mem::take(&mut link.held_pushes) {
            // The event was stored before it was held, and a store never forgets (a failing
            // read only costs the prompt push; anti-entropy still carries the event).
            if let Ok(Some(sealed)) = self.store.get(&id) {
                self.queue_event(peer, WireEvent::known(id, sealed));
            }
        }
    }

    /// Teaches `peer` this run's epoch with a root summary. Sent when a peer's packet came
    /// with a stale echo (it restarted, met us for the first time, or missed our greeting)
    /// and to draw the epoch of a peer we have not heard. Never more than one per authentic,
    /// unreplayed packet received or append made, so it amplifies nothing.
    pub(super) fn greet(&mut self, peer: &DeviceId) {
        if !self.peers.contains_key(peer) {
            return;
        }
        self.stats.greetings += 1;
        let summary = self.index.summary(Prefix::ROOT);
        self.send_root_summary(peer, summary);
    }
}
