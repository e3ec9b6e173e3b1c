//! A datagram arrives: the receiver's node handles it and answers before it returns (it is
//! sans-IO), so the observers see the delivery, then whatever the node did about it, then
//! that it was handled. A datagram the node accepted may be recorded by an attacker on the
//! link for replay (`network.rs`); the replay is put back on the wire here.

use std::net::SocketAddr;

use meshlog_core::{Input, PacketKind};

use super::network::{Recorded, Replay};
use super::{Happening, Item, Sender, World};

impl World {
    /// `source`: the address it comes from, as `to` sees it.
    pub(crate) fn deliver(
        &mut self,
        (from, source): (usize, SocketAddr),
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        origin: Sender,
        corrupted: bool,
    ) {
        let len = bytes.len();
        let via = origin.via();
        let joining = self.devices[to].joining.is_some();
        if self.devices[to].node.is_none() && !joining {
            let code = if self.devices[to].attacker_only {
                "not_running"
            } else {
                "crashed"
            };
            self.emit(Happening::NotRunning {
                from,
                to,
                kind,
                bytes: len,
                code,
                via,
            });
            return;
        }
        self.emit(Happening::Delivered {
            from,
            to,
            kind,
            bytes: len,
            via,
        });
        self.accepted = false;
        let device_now = self.devices[to].clock.read(self.now);
        match self.devices[to].node.as_mut() {
            // A joining device has no node yet: its joiner takes what arrives.
            None => self.joiner_receives(to, &bytes),
            Some(node) => {
                node.handle_input(Input::Datagram {
                    now: device_now,
                    from: source,
                    bytes: &bytes,
                });
                self.drain(to);
            }
        }
        let incarnation = self.devices[to].incarnation;
        let earlier_life = matches!(origin, Sender::Replay { incarnation: i } if i != incarnation);
        self.emit(Happening::Handled {
            from,
            to,
            bytes: len,
            via,
            corrupted,
            earlier_life,
        });
        if origin == Sender::Node && self.accepted {
            let datagram = Recorded {
                kind,
                bytes,
                incarnation,
                source,
            };
            if let Some(replay) = self.network.accepted(self.now, from, to, datagram) {
                self.inject(from, to, replay);
            }
        }
    }

    /// Puts a recorded datagram back on its link. The attacker sends it from its own socket,
    /// so the link's loss, partitions and cuts do not stop it; it spoofs the source the
    /// datagram first came from, and reaches the receiver wherever it is now.
    fn inject(&mut self, from: usize, to: usize, replay: Replay) {
        let datagram = replay.datagram;
        self.emit(Happening::Replayed {
            from,
            to,
            kind: datagram.kind,
            bytes: datagram.bytes.len(),
            arrives: replay.at,
        });
        self.schedule(
            replay.at,
            Item::Deliver {
                from,
                to,
                kind: datagram.kind,
                bytes: datagram.bytes,
                origin: Sender::Replay {
                    incarnation: datagram.incarnation,
                },
                corrupted: false,
                // Where the recorded datagram came from: after a move, the old address.
                source: datagram.source,
            },
        );
    }
}
