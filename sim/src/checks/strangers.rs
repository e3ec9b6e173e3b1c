//! No stranger learns a member's identity from announcements (issue 25): on a local link with
//! a device of another community (`[world] strangers`),
//!
//! - the stranger opens none of the members' announcements (tried here with every key its
//!   node holds, as its node would), and never makes a member a peer;
//! - no announcement on the air carries a member's name field (as the plaintext lays it out:
//!   its length, then the name zero-padded), its public key or the community id in clear;
//! - no two announcements on the air are byte-equal, so none can be linked to another.
//!
//! Always on: a world without a `[[lan]]` puts no announcement on the air.

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::discovery::{open_announcement, opening_keys};
use meshlog_core::id::DEVICE_NAME_LEN_MAX;
use meshlog_core::NodeEvent;

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Strangers {
    /// blake3 of every announcement put on the air: one per announcement a run makes (each
    /// device on a local link: four at each start, then one per `ANNOUNCE_INTERVAL`; an hour
    /// of ten devices is 1,240, 40 KB).
    seen: BTreeSet<[u8; 32]>,
    /// What would give a member away in clear: its name field, its public key; and the
    /// community id. A few dozen bytes a member.
    giveaways: Vec<Vec<u8>>,
    sent: u64,
    to_strangers: u64,
    /// What went wrong, per (device, what): how often, and the first time (µs). At most one
    /// entry per device and kind of wrong.
    wrong: BTreeMap<(usize, &'static str), (u64, u64)>,
}

impl Strangers {
    fn start(&mut self, view: &View<'_>) {
        let community = view.community();
        for (name, key) in community.members() {
            let name = name.as_str().as_bytes();
            let mut field = vec![0u8; 1 + DEVICE_NAME_LEN_MAX];
            field[0] = u8::try_from(name.len()).expect("a name is at most 32 bytes");
            field[1..=name.len()].copy_from_slice(name);
            self.giveaways.push(field);
            self.giveaways.push(key.to_bytes().to_vec());
        }
        self.giveaways.push(community.id().to_vec());
    }

    fn note(&mut self, device: usize, what: &'static str, at_us: u64) {
        self.wrong
            .entry((device, what))
            .and_modify(|(count, _)| *count += 1)
            .or_insert((1, at_us));
    }

    fn announced(&mut self, view: &View<'_>, device: usize, bytes: &[u8]) {
        let at_us = view.now.as_micros();
        self.sent += 1;
        if !self.seen.insert(*blake3::hash(bytes).as_bytes()) {
            self.note(
                device,
                "sent an announcement byte-equal to an earlier one",
                at_us,
            );
        }
        let gives_away = self
            .giveaways
            .iter()
            .any(|g| bytes.windows(g.len()).any(|w| w == g.as_slice()));
        if gives_away {
            self.note(
                device,
                "sent an announcement carrying a member's name or key, or the community id, \
                 in clear",
                at_us,
            );
        }
    }

    fn heard(&mut self, view: &View<'_>, from: usize, to: usize, bytes: &[u8]) {
        if !view.is_stranger(to) || view.is_stranger(from) {
            return;
        }
        self.to_strangers += 1;
        let Some(node) = view.node(to) else {
            return;
        };
        let community = &node.config().community;
        if open_announcement(bytes, community.id(), &opening_keys(community)).is_ok() {
            self.note(to, "opened a member's announcement", view.now.as_micros());
        }
    }
}

impl Checker for Strangers {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Start => self.start(view),
            Happening::Announced { device, bytes } => self.announced(view, device, bytes),
            Happening::AnnounceHeard { from, to, bytes } => self.heard(view, from, to, bytes),
            Happening::Node {
                device,
                event: NodeEvent::PeerAddress { peer, .. },
            } if view.is_stranger(device) && view.community().member(peer).is_some() => {
                self.note(device, "made a member a peer", view.now.as_micros());
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let mut wrong = self.wrong.clone();
        for device in (0..view.device_count()).filter(|&d| view.is_stranger(d)) {
            let Some(node) = view.node(device) else {
                continue;
            };
            let members = node
                .peers()
                .into_iter()
                .filter(|p| view.community().member(&p.device).is_some())
                .count() as u64;
            if members > 0 {
                wrong.insert(
                    (device, "holds members as peers at the end"),
                    (members, view.now.as_micros()),
                );
            }
        }
        for ((device, what), (count, first_at_us)) in wrong {
            failures.push(Failure::Stranger {
                device: view.name(device).to_string(),
                what: what.to_owned(),
                count,
                first_at_us,
            });
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.announcements_sent = self.sent;
        figures.announcements_to_strangers = self.to_strangers;
    }
}
