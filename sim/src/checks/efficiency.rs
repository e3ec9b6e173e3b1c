//! The scenario's efficiency bounds (`[expect]`): bytes the nodes sent per event delivered to
//! a peer (`bytes_per_event_max`), and sync intervals from the heal until the last device
//! converged (`rounds_to_converge_max`). A lost answer or a wasted round costs bytes or time
//! even when the world converges.

use meshlog_core::PacketKind;

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Efficiency {
    /// Bytes of every datagram a node handed the network.
    sent_bytes: u64,
    /// Events stored from a peer, over all devices.
    inserted: u64,
}

impl Efficiency {
    fn bytes_per_event(&self) -> Option<f64> {
        (self.inserted > 0).then(|| self.sent_bytes as f64 / self.inserted as f64)
    }
}

/// Sync intervals from the end-of-workload heal to the last convergence among the devices
/// expected to converge; `None` before the heal or if one never converged.
pub fn rounds_to_converge(world: &View<'_>) -> Option<f64> {
    let heal_at = world.heal_at?;
    let mut rounds: f64 = 0.0;
    for d in world
        .devices
        .iter()
        .filter(|d| !d.down_for_good && !d.removed)
    {
        let after = d.converged_at?.saturating_since(heal_at).as_micros();
        let interval = d.config.sync_interval.as_micros().max(1);
        rounds = rounds.max(after as f64 / interval as f64);
    }
    Some(rounds)
}

impl Checker for Efficiency {
    fn observe(&mut self, _: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            // Files' bytes are the files checker's to count: an event's cost is the sync's.
            Happening::Transmit { transmit, .. } if transmit.kind != PacketKind::Blob => {
                self.sent_bytes += transmit.bytes.len() as u64;
            }
            Happening::Node { .. } if happening.inserted().is_some() => self.inserted += 1,
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let expect = &view.scenario.expect;
        let measured = [
            (
                "bytes_per_event",
                expect.bytes_per_event_max,
                self.bytes_per_event(),
            ),
            (
                "rounds_to_converge",
                expect.rounds_to_converge_max,
                rounds_to_converge(view),
            ),
        ];
        for (measure, bound, value) in measured {
            if let (Some(bound), Some(value)) = (bound, value) {
                if value > bound {
                    failures.push(Failure::Inefficient {
                        measure: measure.to_owned(),
                        value,
                        bound,
                    });
                }
            }
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        figures.bytes_per_event = self.bytes_per_event();
        figures.rounds_to_converge = rounds_to_converge(view);
    }
}
