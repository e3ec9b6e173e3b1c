//! Files (`[[workload.file]]`): every device that must converge ends holding each file
//! whole, and no device ever stored a group that differs from the file's bytes (each group
//! is compared with them as it is stored, `InMemoryBlobs`), forgers present or not.

use std::collections::BTreeMap;

use meshlog_core::{FileId, NodeEvent, PacketKind};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Files {
    /// Bytes of BLOB packets put on the wire, over the run.
    wire_bytes: u64,
    /// When each device completed each file (µs), the first time.
    completed_at_us: BTreeMap<(usize, FileId), u64>,
}

/// The devices that must end with file `index`: every one that must converge, but its
/// author and its forgers.
pub(super) fn receivers(view: &View<'_>, index: usize) -> Vec<usize> {
    let spec = &view.scenario.workload.files[index];
    (0..view.devices.len())
        .filter(|&d| {
            let name = view.name(d).as_str();
            let device = &view.devices[d];
            !device.down_for_good
                && !device.removed
                && name != spec.device
                && !spec.forged_by.iter().any(|f| f == name)
        })
        .collect()
}

impl Checker for Files {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Transmit { transmit, .. } if transmit.kind == PacketKind::Blob => {
                self.wire_bytes += transmit.bytes.len() as u64;
            }
            Happening::Node {
                device,
                event: NodeEvent::BlobComplete { file, .. },
            } => {
                self.completed_at_us
                    .entry((device, *file))
                    .or_insert(view.now.as_micros());
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for (index, id) in view.file_ids.iter().enumerate() {
            for device in receivers(view, index) {
                let store = view.devices[device].store.borrow();
                let status = store.files.files().find(|(f, _)| *f == id).map(|(_, s)| s);
                if !status.is_some_and(|s| s.is_complete()) {
                    failures.push(Failure::FileIncomplete {
                        device: view.name(device).to_string(),
                        file: id.to_string(),
                        groups_have: status.map_or(0, |s| s.groups_have),
                        groups_total: status.map_or(0, |s| s.groups_total),
                    });
                }
            }
        }
        for (device, d) in view.devices.iter().enumerate() {
            let mismatched = d.store.borrow().files.mismatched_groups;
            if mismatched > 0 {
                failures.push(Failure::FileBytesDiffer {
                    device: view.name(device).to_string(),
                    groups: mismatched,
                });
            }
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        let mut delivered_bytes = 0;
        // The slowest completion after its post; `None` once one never completed.
        let mut worst_us = Some(0);
        for (index, id) in view.file_ids.iter().enumerate() {
            let spec = &view.scenario.workload.files[index];
            for device in receivers(view, index) {
                delivered_bytes += spec.size_bytes;
                let after = self
                    .completed_at_us
                    .get(&(device, *id))
                    .map(|at| at.saturating_sub(spec.at.0.as_micros()));
                worst_us = worst_us.zip(after).map(|(w, a)| w.max(a));
            }
        }
        if delivered_bytes > 0 {
            figures.file_bytes_delivered = delivered_bytes;
            figures.file_wire_bytes = self.wire_bytes;
            figures.file_complete_worst_us = worst_us;
        }
    }
}
