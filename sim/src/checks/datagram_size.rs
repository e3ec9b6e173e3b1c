//! One datagram, one packet: nothing a node hands the network is larger than
//! `DATAGRAM_SIZE_MAX` (QUIC's safe size), so no IP fragmentation, and a lost datagram loses
//! only itself. The core bounds every packet it builds; this checker holds every node of every
//! world to it, whatever the scenario makes the node send.

use meshlog_core::DATAGRAM_SIZE_MAX;

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

/// Datagrams over the size, per sender: how many, and the first.
#[derive(Debug, Default)]
pub(super) struct DatagramSize {
    over: std::collections::BTreeMap<usize, Oversized>,
}

#[derive(Debug)]
struct Oversized {
    count: u64,
    first_at_us: u64,
    first_to: usize,
    first_bytes: usize,
    first_kind: &'static str,
}

impl Checker for DatagramSize {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let Happening::Transmit { from, to, transmit } = *happening else {
            return;
        };
        let bytes = transmit.bytes.len();
        if bytes <= DATAGRAM_SIZE_MAX {
            return;
        }
        self.over
            .entry(from)
            .and_modify(|o| o.count += 1)
            .or_insert(Oversized {
                count: 1,
                first_at_us: view.now.as_micros(),
                first_to: to,
                first_bytes: bytes,
                first_kind: transmit.kind.name(),
            });
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for (from, o) in &self.over {
            failures.push(Failure::DatagramTooLarge {
                device: view.name(*from).to_string(),
                count: o.count,
                first_at_us: o.first_at_us,
                first_to: view.name(o.first_to).to_string(),
                first_kind: o.first_kind.to_owned(),
                first_bytes: o.first_bytes,
                bound: DATAGRAM_SIZE_MAX,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use meshlog_core::{DeviceId, PacketKind, PacketNote, Transmit};

    use super::*;
    use crate::kernel::World;
    use crate::scenario::Scenario;

    fn world() -> World {
        let text = "name = \"d\"\nduration = \"10s\"\ndevices = [\"alice\", \"bob\"]\n";
        World::new(&Scenario::parse(text, "d.toml").unwrap(), 1, None).unwrap()
    }

    /// A real world passes; the same world with one node sending a datagram a byte over the
    /// bound (a broken packer) fails, naming the sender, the receiver and the size.
    #[test]
    fn a_datagram_over_the_bound_fails_the_world() {
        let mut world = world();
        world.run();
        let mut checker = DatagramSize::default();
        let mut failures = Vec::new();
        let view = world.view();
        for bytes in [DATAGRAM_SIZE_MAX, DATAGRAM_SIZE_MAX + 1] {
            let transmit = Transmit {
                to: DeviceId::new("bob").unwrap(),
                address: None,
                bytes: vec![0; bytes],
                kind: PacketKind::Event,
                note: PacketNote::default(),
            };
            checker.observe(
                &view,
                &Happening::Transmit {
                    from: 0,
                    to: 1,
                    transmit: &transmit,
                },
            );
        }
        checker.verdict(&view, &mut failures);
        assert!(
            world.finish().passed(),
            "the real world sends no datagram over the bound"
        );
        let [Failure::DatagramTooLarge {
            device,
            count,
            first_to,
            first_bytes,
            ..
        }] = failures.as_slice()
        else {
            panic!("one failure expected: {failures:?}");
        };
        assert_eq!((device.as_str(), first_to.as_str()), ("alice", "bob"));
        assert_eq!((*count, *first_bytes), (1, DATAGRAM_SIZE_MAX + 1));
    }
}
