//! What an attacker on a device's links records: every EVENT datagram it is an end of (what
//! it sent, and what was sent to it, lost or not), opened with the receiving end's pairwise
//! key (packets are authenticated, not encrypted, so anyone on the link reads what a
//! receiver reads), its sealed events kept by id, the first copy. The confidentiality and
//! forward-secrecy checkers listen this way.

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::testing::keyring_of;
use meshlog_core::{EventId, Keyring, Packet, PacketKind, Payload};

use crate::kernel::{Happening, View};
use crate::scenario::MemberAction;

#[derive(Debug, Default)]
pub(super) struct Overheard {
    /// The devices whose links are recorded.
    pub(super) watched: BTreeSet<usize>,
    /// Every sealed event seen on a watched device's links, by device.
    pub(super) heard: BTreeMap<usize, BTreeMap<EventId, Vec<u8>>>,
    /// Each receiving device's pairwise keys, made on first use.
    keyrings: BTreeMap<usize, Keyring>,
    /// `watched` is set (at the first happening seen).
    started: bool,
}

impl Overheard {
    /// At the first happening, watches the devices `pick` names in the scenario's
    /// `[[member]]` changes; then records what their links carry. False while nothing is
    /// watched: the caller has nothing to judge.
    pub(super) fn observe(
        &mut self,
        view: &View<'_>,
        happening: &Happening<'_>,
        pick: fn(&MemberAction) -> Option<&String>,
    ) -> bool {
        if !self.started {
            self.started = true;
            for change in &view.scenario.members {
                let name = pick(&change.action);
                if let Some(i) = name.and_then(|n| view.index_of(&crate::kernel::device_id(n))) {
                    self.watched.insert(i);
                }
            }
        }
        if self.watched.is_empty() {
            return false;
        }
        self.record(view, happening);
        true
    }

    /// Records the sealed events of an EVENT transmit on a watched device's link.
    fn record(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let Happening::Transmit { from, to, transmit } = *happening else {
            return;
        };
        if transmit.kind != PacketKind::Event
            || !(self.watched.contains(&from) || self.watched.contains(&to))
        {
            return;
        }
        let keyring = self
            .keyrings
            .entry(to)
            .or_insert_with(|| keyring_of(view.name(to).as_str(), view.community(), view.seed));
        let Ok(packet) = Packet::open(&transmit.bytes, keyring) else {
            return;
        };
        let Payload::Events(events) = packet.payload else {
            return;
        };
        for end in [from, to] {
            if self.watched.contains(&end) {
                let heard = self.heard.entry(end).or_default();
                for event in &events {
                    heard
                        .entry(*event.id())
                        .or_insert_with(|| event.sealed().to_vec());
                }
            }
        }
    }

    /// What `device`'s links carried so far.
    pub(super) fn of(&self, device: usize) -> impl Iterator<Item = (&EventId, &Vec<u8>)> {
        self.heard.get(&device).into_iter().flatten()
    }
}
