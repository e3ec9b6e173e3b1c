//! The way out: what a node has for a peer while it handles one input (events to push,
//! digests, filters) waits here, then goes out packed into as few datagrams as it fits; every
//! datagram is sealed here (its pairwise tag, epoch and counter) and queued for `poll_output`.
//! Each datagram costs a tag and a header, so ten filters in one datagram cost a tenth of ten
//! datagrams; a lost datagram still loses only what it carried.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Node, Output, Transmit};
use crate::id::DeviceId;
use crate::packet::{
    event_encoded_len, overhead, BucketFilter, Digest, PacketNote, Payload, RecoveryShard,
    RootSketch, WireEvent, DATAGRAM_SIZE_MAX,
};
use crate::store::Store;

/// Items waiting for one peer, in the order they were queued.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    events: Vec<WireEvent>,
    digests: Vec<Digest>,
    filters: Vec<BucketFilter>,
    sketches: Vec<RootSketch>,
}

pub(super) type Outboxes = BTreeMap<DeviceId, Outbox>;

impl<S: Store> Node<S> {
    pub(super) fn queue_event(&mut self, peer: &DeviceId, event: WireEvent) {
        self.outbox_of(peer).events.push(event);
    }
    pub(super) fn queue_digest(&mut self, peer: &DeviceId, digest: Digest) {
        self.outbox_of(peer).digests.push(digest);
    }
    pub(super) fn queue_filter(&mut self, peer: &DeviceId, filter: BucketFilter) {
        self.outbox_of(peer).filters.push(filter);
    }
    pub(super) fn queue_sketch(&mut self, peer: &DeviceId, sketch: RootSketch) {
        self.outbox_of(peer).sketches.push(sketch);
    }

    fn outbox_of(&mut self, peer: &DeviceId) -> &mut Outbox {
        self.outbox.entry(peer.clone()).or_default()
    }

    /// Seals one packet for `to` and queues it. Returns its sealed length (0 if not queued),
    /// without the wrapper a relay adds (`relay.rs`).
    pub(super) fn send(&mut self, to: &DeviceId, payload: Payload) -> usize {
        let note = PacketNote::of(&payload);
        self.transmit(Some(to), payload, note, None)
    }

    /// Seals one packet for `to` and sends it to `address`, not through a relay and not where
    /// the driver holds `to` to be (a punch toward a candidate address, `punch.rs`).
    pub(super) fn send_to_address(&mut self, to: &DeviceId, payload: Payload, address: SocketAddr) {
        let note = PacketNote::of(&payload);
        self.transmit(Some(to), payload, note, Some(address));
    }

    /// Queues `payload` for every peer, sealed for each (its own tag and counter).
    pub(super) fn send_to_every_peer(&mut self, payload: Payload, note: PacketNote) {
        self.transmit(None, payload, note, None);
    }

    fn transmit(
        &mut self,
        target: Option<&DeviceId>,
        payload: Payload,
        note: PacketNote,
        address: Option<SocketAddr>,
    ) -> usize {
        if !self.online {
            return 0;
        }
        let kind = payload.kind();
        let events = match &payload {
            Payload::Events(events) => events.len() as u32,
            _ => 0,
        };
        let receivers: Vec<DeviceId> = match target {
            Some(to) => vec![to.clone()],
            None => self.peers.keys().cloned().collect(),
        };
        let room = self
            .config
            .output_queue_max
            .saturating_sub(self.outputs.len());
        if receivers.len() > room {
            self.stats.transmits_dropped += (receivers.len() - room) as u64;
        }
        let count = receivers.len().min(room);
        let mut last_len = 0;
        let mut recovery = Vec::new();
        // The names move into the transmits rather than being copied.
        for to in receivers.into_iter().take(count) {
            if let Payload::Events(events) = &payload {
                let counter = self.wire.counter_next(&to);
                let closed = self.fec_note_sent(&to, counter, events);
                if !closed.is_empty() {
                    recovery.push((to.clone(), closed));
                }
            }
            let bytes = self.wire.seal(&to, &payload);
            self.note_crossed(&to, events);
            // The sealed length, not the relay's wrapper: the budget reserved and credits
            // the peer's own datagrams (a relayed one is credited at its inner size).
            last_len = bytes.len();
            let (to, bytes) = match address {
                Some(_) => (to, bytes),
                None => self.wrap_for_relay(to, bytes),
            };
            self.stats.sent.entry(kind).or_default().add(bytes.len());
            self.outputs.push_back(Output::Transmit(Transmit {
                to,
                address,
                bytes,
                kind,
                note,
            }));
        }
        // A group closed because this packet did not fit it: its shards follow the packet.
        for (to, shards) in recovery {
            self.send_recovery(&to, shards);
        }
        last_len
    }

    /// Packs and sends everything queued, peer by peer (in name order), kind by kind.
    /// Answers (sketches, digests, filters) go only within the peer's amplification budget;
    /// events are the owed stream's and were paced when queued.
    pub(super) fn flush(&mut self) {
        for (peer, outbox) in std::mem::take(&mut self.outbox) {
            let header = overhead(self.device(), &peer);
            let room = DATAGRAM_SIZE_MAX - header;
            // Room for a recovery shard's header beside the payload, so every EVENT packet
            // can be coded (`stream_fec`).
            let events_room = room - RecoveryShard::header_len(1) - 1;
            for batch in pack(outbox.events, events_room, |e| {
                event_encoded_len(e.sealed())
            }) {
                self.send(&peer, Payload::Events(batch));
            }
            for sketch in outbox.sketches {
                self.send_answer(&peer, Payload::Sketch(sketch));
            }
            for batch in pack(outbox.digests, room, Digest::encoded_len) {
                self.send_answer(&peer, Payload::Digests(batch));
            }
            for batch in pack(outbox.filters, room, BucketFilter::encoded_len) {
                self.send_answer(&peer, Payload::Filters(batch));
            }
            if let Some(link) = self.links.get_mut(&peer) {
                link.budget.settle();
            }
        }
    }

    /// Sends one answer datagram. Its items were reserved in the peer's budget when they
    /// were queued (`reconcile.rs`), so it fits: spending asserts it, since an answer sent
    /// past the budget is the amplification the budget exists to prevent.
    fn send_answer(&mut self, peer: &DeviceId, payload: Payload) {
        let enforced = self.config.amplification_budget;
        let sent = self.send(peer, payload);
        let link = self.links.get_mut(peer).expect("known peer");
        let state = self.peers.get_mut(peer).expect("known peer");
        link.budget.spend(sent, enforced, &mut state.budget);
    }
}

/// Splits `items` in order into runs whose encoded lengths fit `room` bytes. Every item fits
/// on its own (the node sizes events and filters for one datagram), so none is dropped.
fn pack<T>(items: Vec<T>, room: usize, len: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut batches: Vec<Vec<T>> = Vec::new();
    let mut used = 0;
    for item in items {
        let size = len(&item);
        assert!(size <= room, "an item of {size} bytes cannot fit {room}");
        if batches.is_empty() || used + size > room {
            batches.push(Vec::new());
            used = 0;
        }
        used += size;
        batches.last_mut().expect("a batch was started").push(item);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn packing_keeps_order_and_fills_each_batch() {
        let batches = pack(vec![4, 4, 2, 5, 1, 6], 10, |n| *n);
        assert_eq!(batches, vec![vec![4, 4, 2], vec![5, 1], vec![6]]);
        assert!(pack(Vec::<usize>::new(), 10, |n| *n).is_empty());
    }

    #[test]
    #[should_panic(expected = "cannot fit")]
    fn an_item_larger_than_a_datagram_is_a_bug() {
        pack(vec![11], 10, |n| *n);
    }
}
