//! Resumption (`[expect] resume_received_max`): a device that restarts holding part of a file
//! (at least its outboard) fetches only what it lacks. From the restart until it holds the
//! file whole, the shard bytes its node receives, every source's and every copy, are at most
//! a multiple of the bytes it was missing. Issue 26 asks 1.1 on a clean link; over a lossy one
//! recovery shards add to it, so lossy worlds print the figure without setting the bound.
//!
//! The node's count is of all files: where two files are fetched at once after a restart,
//! both count against each, which overstates the waste, never hides it.

use std::collections::BTreeMap;

use meshlog_core::{FileId, NodeEvent};

use super::files::receivers;
use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Resume {
    /// Per (device, file), from its latest restart holding part of it.
    resumed: BTreeMap<(usize, FileId), Resumed>,
}

#[derive(Debug)]
struct Resumed {
    missing_bytes: u64,
    /// Shard bytes its node had received when the file was whole (`None`: not yet).
    received_bytes: Option<u64>,
}

impl Checker for Resume {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Restarted { device } => {
                for (index, id) in view.file_ids.iter().enumerate() {
                    let size = view.scenario.workload.files[index].size_bytes;
                    let held = view.devices[device].store.borrow().files.held_bytes(id);
                    let Some(held) = held.filter(|&h| h < size) else {
                        continue;
                    };
                    if receivers(view, index).contains(&device) {
                        let resumed = Resumed {
                            missing_bytes: size - held,
                            received_bytes: None,
                        };
                        self.resumed.insert((device, *id), resumed);
                    }
                }
            }
            Happening::Node {
                device,
                event: NodeEvent::BlobComplete { file, .. },
            } => {
                let Some(resumed) = self.resumed.get_mut(&(device, *file)) else {
                    return;
                };
                if resumed.received_bytes.is_none() {
                    resumed.received_bytes = view
                        .node(device)
                        .map(|node| node.stats().blobs.shard_bytes_received);
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let Some(ratio_max) = view.scenario.expect.resume_received_max else {
            return;
        };
        for (&(device, file), resumed) in &self.resumed {
            let Some(received) = resumed.received_bytes else {
                continue; // never whole: the files checker says so
            };
            if received as f64 > ratio_max * resumed.missing_bytes as f64 {
                failures.push(Failure::ResumeWasteful {
                    device: view.name(device).to_string(),
                    file: file.to_string(),
                    missing_bytes: resumed.missing_bytes,
                    received_bytes: received,
                });
            }
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.resume_received_worst = self
            .resumed
            .values()
            .filter_map(|r| Some(r.received_bytes? as f64 / r.missing_bytes.max(1) as f64))
            .reduce(f64::max);
    }
}
