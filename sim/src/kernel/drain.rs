//! Draining a node: its datagrams go to the virtual network, what it says to the observers, its
//! next wake-up to the queue.

use std::net::SocketAddr;

use meshlog_core::{NodeEvent, Origin, Output, PacketKind};

use super::address::Route;
use super::happening::Note;
use super::network::DropCause;
use super::{Happening, Item, Sender, World};

impl World {
    /// Hands everything the node produced to the network and the observers, until its next
    /// wake-up.
    pub(crate) fn drain(&mut self, device: usize) {
        loop {
            let Some(node) = self.devices[device].node.as_mut() else {
                return;
            };
            let output = node.poll_output();
            let now = self.now;
            match output {
                Output::Timeout(at) => {
                    // The end of a batch of inputs, where the real driver commits too.
                    self.commit_store(device);
                    let at = self.devices[device].clock.world_time_of(at).max(now);
                    if self.devices[device].wake_at != Some(at) {
                        self.devices[device].wake_at = Some(at);
                        self.schedule(at, Item::Wake(device));
                    }
                    return;
                }
                Output::Transmit(t) => {
                    let to = self.index[&t.to];
                    self.emit(Happening::Transmit {
                        from: device,
                        to,
                        transmit: &t,
                    });
                    // Where the driver sends it, and who holds that address now.
                    let route = self.devices[device]
                        .book
                        .destination(&t)
                        .ok_or(DropCause::NoRoute)
                        .and_then(|addr| self.addresses.route(device, addr, now));
                    if let Ok(Route {
                        source,
                        mapped: Some(nat),
                        ..
                    }) = route
                    {
                        self.emit(Happening::NatMapped {
                            nat,
                            device,
                            public: source,
                        });
                    }
                    match route {
                        Ok(route) => self.put_on_wire(
                            (device, route.source),
                            route.to,
                            t.kind,
                            t.bytes,
                            &t.note,
                            Sender::Node,
                        ),
                        Err(cause) => self.emit(Happening::Lost {
                            from: device,
                            to,
                            kind: t.kind,
                            bytes: t.bytes.len(),
                            note: &t.note,
                            cause,
                            via: Sender::Node.via(),
                        }),
                    }
                }
                Output::Event(event) => self.record(device, event),
            }
        }
    }

    /// The network decides the datagram's fate; the trace says it. `source`: the address
    /// it comes from, as its receiver will see it.
    pub(crate) fn put_on_wire(
        &mut self,
        (from, source): (usize, SocketAddr),
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        note: &dyn Note,
        origin: Sender,
    ) {
        let now = self.now;
        let len = bytes.len();
        let via = origin.via();
        match self.network.transmit(now, from, to, bytes) {
            Err(cause) => self.emit(Happening::Lost {
                from,
                to,
                kind,
                bytes: len,
                note,
                cause,
                via,
            }),
            Ok(deliveries) => {
                for copy in &deliveries {
                    self.emit(Happening::OnWire {
                        from,
                        to,
                        kind,
                        bytes: len,
                        note,
                        copy,
                        via,
                    });
                }
                for copy in deliveries {
                    self.schedule(
                        copy.at,
                        Item::Deliver {
                            from,
                            to,
                            kind,
                            bytes: copy.bytes,
                            origin,
                            corrupted: copy.corrupted,
                            source,
                        },
                    );
                }
            }
        }
        if origin == Sender::Node && self.network.forge_now(from, to) {
            self.with_agents(|agents, world| agents.forge(world, from, to));
        }
    }

    /// Tells the observers what the node said, and keeps the kernel's own books.
    fn record(&mut self, device: usize, event: NodeEvent) {
        // The driver follows where its node says a peer is now (before the event's
        // observers look, as the real driver updates its map before sending).
        self.devices[device].book.follow(&event);
        self.emit(Happening::Node {
            device,
            event: &event,
        });
        match event {
            NodeEvent::EventStored {
                id,
                origin: Origin::Local,
                event,
                ..
            } => {
                if !self.appended.contains_key(&id) {
                    // The node appended it of its own accord (a membership change, a key
                    // shared): it joins what the checkers trust like a workload append.
                    self.note_appended(device, id, Some(&event));
                    self.made(device, id, None, false)
                        .expect("a local event is stored");
                }
                self.note_stored(device, id, true);
            }
            NodeEvent::EventStored { id, .. } => {
                self.accepted = true;
                self.note_stored(device, id, false);
                self.note_convergence(device);
            }
            NodeEvent::PacketReceived { .. } => self.accepted = true,
            _ => {}
        }
    }

    /// After the heal, a device has converged once it holds every appended event.
    pub(crate) fn note_convergence(&mut self, device: usize) {
        if self.heal_at.is_none() {
            return;
        }
        let d = &self.devices[device];
        let Some(node) = d.node.as_ref() else {
            return;
        };
        if d.converged_at.is_some() || d.removed {
            return;
        }
        let holds_all = if self.members.kept {
            // Every event of a device still in the community; a removed one's only if some
            // member holds it (the convergence checker asks that all or none do).
            let devices = &self.devices;
            self.members
                .authors()
                .all(|(id, author)| devices[*author].removed || node.contains(id))
        } else {
            node.event_count() == self.appended.len() && self.appended.all(|id| node.contains(id))
        };
        if holds_all {
            self.devices[device].converged_at = Some(self.now);
            self.emit(Happening::Converged { device });
            // Once every device that should converge has, only the quiet period is left:
            // idle rounds until the liveness bound would prove nothing more.
            let all = self
                .devices
                .iter()
                .all(|d| d.down_for_good || d.removed || d.converged_at.is_some());
            if all {
                self.end = self.end.min(self.now + self.scenario.expect.quiet.0);
            }
        }
    }
}
