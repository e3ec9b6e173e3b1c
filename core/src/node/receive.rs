//! One datagram in: opened (or dropped, with its reason counted and reported), credited to
//! the sender's budget, then handed to what its payload asks for: events to store, a summary
//! to reconcile against, or a sketch, digests or filters answering an earlier question.

use std::net::SocketAddr;

use super::{reconcile, Node, NodeEvent};
use crate::id::DeviceId;
use crate::packet::{DropReason, Packet, PacketNote, Payload, WireEvent};
use crate::store::Store;
use crate::sync::prefix::Prefix;
use crate::time::Instant;

/// Where a datagram came from: a socket address, or a relay that forwarded it.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Direct(SocketAddr),
    /// Forwarded by this peer (`relay.rs`): its sender's address is not followed.
    Relayed(DeviceId),
}

impl<S: Store> Node<S> {
    pub(super) fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        self.handle_datagram_from(now, Source::Direct(source), bytes);
    }

    pub(super) fn handle_datagram_from(&mut self, now: Instant, source: Source, bytes: &[u8]) {
        let dropped = |reason: DropReason| NodeEvent::PacketDropped {
            claimed: Packet::peek(bytes),
            size: bytes.len(),
            reason,
        };
        if !self.online {
            self.stats.drop(DropReason::Offline.code());
            return self.emit(dropped(DropReason::Offline));
        }
        // A device that is not a member yet asks to join: not a tagged packet (`admit.rs`).
        if crate::member::welcome::is_join_datagram(bytes) {
            return match source {
                Source::Direct(addr) => self.handle_join_datagram(now, addr, bytes),
                // Joins come from strangers, who are nobody's peers: never relayed.
                Source::Relayed(_) => self.stats.drop("relay_nested"),
            };
        }
        // Only peers hold a key, so anything that opens comes from a peer, once.
        let mut opened = self.wire.open(bytes);
        if let Err(DropReason::NotAPeer(name)) = &opened {
            // An active member this device has no link with yet, say one that found it by its
            // address record or was introduced to it: a peer if its packet proves it.
            let member = DeviceId::new(name);
            if let Some(retried) = member.and_then(|m| self.adopt_member(&m, bytes)) {
                opened = retried;
            }
        }
        match &source {
            Source::Direct(addr) => self.follow_newest_packet(*addr),
            Source::Relayed(via) => self.follow_relayed_packet(via),
        }
        let packet = match opened {
            Ok(packet) => packet,
            Err(reason) => {
                self.stats.drop(reason.code());
                // A peer new in this epoch, or one saying it never heard us (its greeting
                // from us was lost), learns our epoch now; either way we heard its epoch.
                let greet = match &reason {
                    DropReason::StaleEcho {
                        from,
                        first_of_epoch,
                        echo,
                        ..
                    } if *first_of_epoch || *echo == 0 => Some(from.clone()),
                    _ => None,
                };
                self.emit(dropped(reason));
                if let Some(peer) = greet {
                    self.greet(&peer);
                    self.release_held_pushes(&peer);
                }
                return;
            }
        };
        let (from, epoch) = (packet.source, packet.epoch);
        let kind = packet.payload.kind();
        self.release_held_pushes(&from);
        {
            let link = self.links.get_mut(&from).expect("checked peer");
            let state = self.peers.get_mut(&from).expect("checked peer");
            link.budget.credit(bytes.len(), &mut state.budget);
        }
        self.stats
            .received
            .entry(kind)
            .or_default()
            .add(bytes.len());
        let note = PacketNote::of(&packet.payload);
        self.emit(NodeEvent::PacketReceived {
            from: from.clone(),
            kind,
            size: bytes.len(),
            note,
        });
        self.peers
            .get_mut(&from)
            .expect("checked peer")
            .last_exchange = Some(now);
        self.fec_note_packet(&from, epoch, packet.counter);
        match packet.payload {
            Payload::Events(events) => {
                self.fec_note_events(&from, epoch, packet.counter, &events);
                self.on_events(now, &from, &events);
            }
            Payload::Recovery(shard) => self.on_recovery(now, &from, epoch, shard),
            Payload::Summary { prefix, summary } => {
                if prefix == Prefix::ROOT {
                    self.note_peer_summary(&from, summary);
                }
                // Off means off: a node without anti-entropy neither starts nor answers
                // reconciliation, so a greeting teaches it an epoch and nothing else.
                if !self.config.anti_entropy {
                    return;
                }
                if prefix == Prefix::ROOT && summary != self.summary() {
                    self.want_followup(&from);
                }
                if !self.settling_with(&from) {
                    self.reconcile(&from, prefix, summary);
                }
            }
            Payload::Sketch(sketch) => {
                self.note_answer(&from);
                self.on_sketch(&from, sketch);
            }
            Payload::Digests(digests) => {
                self.note_answer(&from);
                if let Some(root) = digests.iter().find(|d| d.prefix == Prefix::ROOT) {
                    let summary = reconcile::digest_total(root);
                    self.note_peer_summary(&from, summary);
                }
                if self.settling_with(&from) {
                    return;
                }
                for digest in digests {
                    self.on_digest(&from, digest);
                }
            }
            Payload::Addresses(records) => self.on_address_records(now, &from, records),
            Payload::Filters(filters) => {
                self.note_answer(&from);
                for filter in filters {
                    if self.on_filter(&from, filter).is_err() {
                        // One unusable filter spoils only itself; the tag vouches for
                        // the sender, so this is a bug or a hostile member: count it.
                        self.stats.drop("bad_filter");
                        let reason = DropReason::Malformed(crate::codec::DecodeError::invalid(
                            "filter",
                            "unusable bitmap",
                        ));
                        self.emit(NodeEvent::PacketDropped {
                            claimed: Some((kind, from.to_string())),
                            size: bytes.len(),
                            reason,
                        });
                    }
                }
            }
            Payload::Introduction { peer, addr } => self.on_introduction(now, &from, peer, addr),
            Payload::Relay { to, bytes } => self.on_relay(now, &from, to, bytes),
            Payload::Relayed {
                from: sender,
                bytes,
            } => self.on_relayed(now, &from, sender, bytes),
            Payload::Blob(items) => self.on_blob_items(now, &from, epoch, items),
        }
    }

    /// The events of one EVENT packet, arrived or rebuilt from recovery shards.
    pub(super) fn on_events(&mut self, now: Instant, from: &DeviceId, events: &[WireEvent]) {
        // A packet of several events comes from a peer's owed stream and is acknowledged; an
        // eager push (one event, its author's fresh append) is not, or every append would
        // cost a summary from every peer.
        let streamed = events.len() > 1;
        let before = self.stats.events_from_peers;
        for event in events {
            // The sender's own removal may come in this very packet (it relays it): from then
            // on it is refused as at the door, its other events too.
            if self.membership.is_leaving(from) {
                self.stats.drop("source_removed");
                continue;
            }
            self.receive_event(now, from, event, !streamed);
        }
        if streamed && self.stats.events_from_peers > before {
            self.note_events_from(from);
        }
    }
}
