//! Local links (`[[lan]]`) and addresses that change: LAN discovery on the simulated network,
//! as the backend's discovery task does it on real sockets (`backend/src/device/discovery.rs`).
//!
//! A device on a local link announces itself when its node starts, then after each of core's
//! `ANNOUNCE_FIRST_DELAYS`, then every `ANNOUNCE_INTERVAL` (the backend's schedule, from
//! core, so the two cannot drift apart), and at once when its address changes. Each
//! announcement goes to every other device on each of its links through that link's model
//! (loss, latency, duplication, corruption, partitions and cuts apply: a broadcast is one
//! datagram per receiver on the wire), from the sender's current address, and arrives as
//! `Input::Announcement`. An offline device announces nothing; a crashed one's schedule ends
//! and its restart starts another.
//!
//! Nothing here draws dice unless a scenario has a `[[lan]]`: a world without one is the
//! world it was.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use meshlog_core::discovery::{ANNOUNCE_FIRST_DELAYS, ANNOUNCE_INTERVAL};
use meshlog_core::Input;

use super::{Happening, Item, World};

impl World {
    /// The devices sharing a local link with `device`, in index order.
    fn lan_neighbours(&self, device: usize) -> BTreeSet<usize> {
        self.lans
            .iter()
            .filter(|lan| lan.contains(&device))
            .flatten()
            .copied()
            .filter(|&d| d != device)
            .collect()
    }

    /// A new announcement schedule for `device`, its first one now: its node just started (or
    /// its address changed). Nothing for a device on no local link or without a node.
    pub(crate) fn start_announcing(&mut self, device: usize) {
        if !self.lans.iter().any(|lan| lan.contains(&device)) {
            return;
        }
        let d = &mut self.devices[device];
        if d.node.is_none() {
            return;
        }
        d.announce_schedule += 1;
        let schedule = d.announce_schedule;
        self.schedule(self.now, Item::Announce { device, schedule });
    }

    /// `device`'s announcement is due: it goes out on every local link, and the next is
    /// scheduled.
    pub(crate) fn announce(&mut self, device: usize, schedule: u32) {
        let now = self.now;
        let port = self.addresses.of(device).port();
        let d = &mut self.devices[device];
        if d.announce_schedule != schedule {
            return; // superseded by a restart or a move
        }
        let device_now = d.clock.read(now);
        let online = d.online;
        let Some(node) = d.node.as_mut() else {
            return; // crashed: a restart starts another schedule
        };
        let bytes = if online {
            node.announcement(device_now, &[port])
        } else {
            None
        };
        let step = d.announced as usize;
        d.announced = d.announced.saturating_add(1);
        let delay = ANNOUNCE_FIRST_DELAYS
            .get(step)
            .copied()
            .unwrap_or(ANNOUNCE_INTERVAL);
        self.schedule(now + delay, Item::Announce { device, schedule });
        self.drain(device);
        let Some(bytes) = bytes else {
            return;
        };
        self.emit(Happening::Announced {
            device,
            bytes: &bytes,
        });
        let source = self.addresses.of(device);
        for to in self.lan_neighbours(device) {
            match self.network.transmit(now, device, to, bytes.clone()) {
                Err(cause) => self.emit(Happening::AnnounceLost {
                    from: device,
                    to,
                    cause,
                }),
                Ok(copies) => {
                    for copy in copies {
                        let item = Item::Hear {
                            from: device,
                            to,
                            source,
                            bytes: copy.bytes,
                        };
                        self.schedule(copy.at, item);
                    }
                }
            }
        }
    }

    /// An announcement `from` sent reaches `to`: its node hears it, if it runs.
    pub(crate) fn hear(&mut self, from: usize, to: usize, source: SocketAddr, bytes: &[u8]) {
        if self.devices[to].node.is_none() {
            return;
        }
        self.emit(Happening::AnnounceHeard { from, to, bytes });
        let d = &mut self.devices[to];
        let now = d.clock.read(self.now);
        if let Some(node) = d.node.as_mut() {
            node.handle_input(Input::Announcement {
                now,
                from: source,
                bytes,
            });
        }
        self.drain(to);
    }

    /// `device` is reached at `to` (or the next fresh address) from now on. Its driver
    /// notices: with peer exchange, its node signs a record of the new address; on a local
    /// link, it announces at once. Its peers learn of it from its packets.
    pub fn change_address(&mut self, device: usize, to: Option<SocketAddr>) {
        let (was, now_at) = self.addresses.move_to(device, to);
        self.emit(Happening::AddressChanged {
            device,
            was,
            now: now_at,
        });
        if self.scenario.world.peer_exchange {
            let d = &mut self.devices[device];
            let device_now = d.clock.read(self.now);
            if let Some(node) = d.node.as_mut() {
                node.set_own_addresses(device_now, &[now_at]);
            }
            self.drain(device);
        }
        self.start_announcing(device);
    }
}
