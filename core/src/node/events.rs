//! Events in: appended here (sealed, stored all-or-nothing, then pushed to every peer) or
//! received from a peer (opened, checked and stored once).

use rand_core::RngCore;

use super::{AppendError, Node, NodeEvent, Origin};
use crate::event::{open_hashed, seal, Event, EventBody, OpenedEvent, RejectReason};
use crate::id::{DeviceId, EventId};
use crate::packet::{PacketNote, Payload, WireEvent};
use crate::store::Store;
use crate::time::Instant;

impl<S: Store> Node<S> {
    /// Signs, encrypts and stores a new event (stamped by the hybrid clock: `now`, or just
    /// past the newest event time seen), then pushes it to every peer at once (one
    /// packet per peer).
    /// Returns after the store has accepted it (durably, for a durable store).
    pub fn append(&mut self, now: Instant, body: EventBody) -> Result<EventId, AppendError> {
        Ok(self.append_all(now, vec![body])?[0])
    }

    /// Appends events that stand or fall together (a file's chunks and the message that
    /// attaches them): all are sealed, then stored in one `insert_all`; only if that succeeds
    /// are they indexed and pushed. A failure leaves no trace, here or at any peer.
    pub fn append_all(
        &mut self,
        now: Instant,
        bodies: Vec<EventBody>,
    ) -> Result<Vec<EventId>, AppendError> {
        let now = self.advance(now);
        let mut sealed = Vec::with_capacity(bodies.len());
        for body in bodies {
            let event = Event {
                author: self.config.keys.device.clone(),
                created_at: if self.config.test_raw_clock {
                    now
                } else {
                    self.clock.tick(now)
                },
                body,
            };
            let mut nonce = [0u8; crate::event::NONCE_LEN];
            self.rng.fill_bytes(&mut nonce);
            sealed.push(seal(
                &event,
                &self.config.keys,
                &self.config.community,
                nonce,
            )?);
        }
        self.store.insert_all(&sealed, now.as_micros())?;
        let mut ids = Vec::with_capacity(sealed.len());
        let membership: Vec<(EventId, Event)> = sealed
            .iter()
            .filter(|o| matches!(o.event.body, EventBody::Membership { .. }))
            .map(|o| (o.id, o.event.clone()))
            .collect();
        for opened in sealed {
            let fresh = self.index.insert(opened.id);
            assert!(fresh, "a fresh nonce makes every sealed event new");
            if !self.config.relay {
                // Only read with relay off: kept otherwise, it cost an id per event authored.
                self.own.insert(opened.id);
            }
            self.stats.events_local += 1;
            let OpenedEvent { id, sealed, event } = opened;
            if self.online && self.config.eager_push {
                let note = PacketNote::fresh(event.body.kind_name(), &id);
                if self.config.test_divergence {
                    let payload = Payload::Events(vec![WireEvent::known(id, sealed.clone())]);
                    let others: Vec<DeviceId> = self.peers.keys().skip(1).cloned().collect();
                    for peer in others {
                        self.send(&peer, payload.clone());
                    }
                } else {
                    self.push_fresh(id, &sealed, note);
                }
            }
            self.emit(NodeEvent::EventStored {
                id,
                origin: Origin::Local,
                from: None,
                event,
                size: sealed.len(),
            });
            ids.push(id);
        }
        // After every event is indexed and pushed: settling may append (a new epoch).
        for (id, event) in membership {
            self.observe_stored(now, id, &event);
        }
        Ok(ids)
    }

    /// `pushed`: it came alone in its datagram (an eager push or a forward, not a batch of
    /// the owed stream).
    pub(super) fn receive_event(
        &mut self,
        now: Instant,
        from: &DeviceId,
        event: &WireEvent,
        pushed: bool,
    ) {
        // The id is the hash of these very bytes, so a held id means identical bytes that were
        // verified on the way in: skip the decrypt and signature check (duplicates are common
        // with several peers and eager push).
        if self.index.contains(event.id()) {
            self.stats.events_duplicate += 1;
            if pushed {
                self.note_duplicate_push(from, event.id());
            }
            return;
        }
        let opened = match open_hashed(*event.id(), event.sealed(), &self.config.community) {
            Ok(opened) => opened,
            Err(reason) => {
                self.stats.drop(event_reject_code(&reason));
                return self.emit(NodeEvent::EventRejected {
                    from: from.clone(),
                    reason,
                });
            }
        };
        match self.store.insert(&opened, now.as_micros()) {
            Ok(_) => {
                self.clock.observe(opened.event.created_at, now);
                self.index.insert(opened.id);
                self.stats.events_from_peers += 1;
                self.note_crossed(from, 1);
                let OpenedEvent { id, sealed, event } = opened;
                self.observe_stored(now, id, &event);
                // After settling a membership event: a peer it removes is not forwarded to.
                let membership = matches!(event.body, EventBody::Membership { .. });
                self.forward(from, &event.author, id, &sealed, membership);
                self.observe_blob_ref(now, &event.body);
                self.emit(NodeEvent::EventStored {
                    id,
                    origin: Origin::Peer,
                    from: Some(from.clone()),
                    event,
                    size: sealed.len(),
                });
            }
            Err(err) => {
                self.stats.drop("store_failed");
                self.emit(NodeEvent::StoreFailed {
                    detail: err.to_string(),
                });
            }
        }
    }
}

fn event_reject_code(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::BadEncoding(_) => "event_bad_encoding",
        RejectReason::WrongKey => "event_wrong_key",
        RejectReason::UnknownAuthor(_) => "event_unknown_author",
        RejectReason::BadSignature => "event_bad_signature",
        RejectReason::UnknownEpoch(_) => "event_unknown_epoch",
        RejectReason::IdMismatch => "event_id_mismatch",
        RejectReason::TooLarge { .. } => "event_too_large",
    }
}
