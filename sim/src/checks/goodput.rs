//! Goodput (`[expect] file_goodput_min`): over links with a capacity
//! (`capacity_bytes_per_s`), each receiver takes a file in steady state at no less than a
//! share of what the link can carry at its loss, (1 − loss) × capacity. Steady state is from
//! the moment it holds a tenth of the file to the moment it holds nine tenths: the start
//! (the message's sync, the outboard, the window's first round trips) and the tail (the last
//! groups' retries) are left out. A receiver that restarted in between is not judged; the
//! resume checker judges it.
//!
//! The bound is the link from the file's author: a receiver may also fetch from other
//! holders, which only adds to what it can take.

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::Instant;

use super::files::receivers;
use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Goodput {
    /// Per (receiver, file index): when it first held a tenth and nine tenths of the file.
    progress: BTreeMap<(usize, usize), Progress>,
    /// (device, file index) pairs found not to be receivers (the author, forgers), so that
    /// each datagram handled does not list the receivers again.
    not_receivers: BTreeSet<(usize, usize)>,
}

#[derive(Debug, Default)]
struct Progress {
    tenth_at: Option<Instant>,
    nine_tenths_at: Option<Instant>,
    /// Restarted between the two: not steady state.
    restarted: bool,
}

/// One receiver's steady-state goodput and its bound, in bytes per second.
struct Judged {
    device: usize,
    index: usize,
    goodput_bytes_per_s: f64,
    bound_bytes_per_s: f64,
}

impl Goodput {
    fn judged<'a>(&'a self, view: &'a View<'_>) -> impl Iterator<Item = Judged> + 'a {
        self.progress
            .iter()
            .filter_map(move |(&(device, index), p)| {
                let (Some(tenth), Some(nine)) = (p.tenth_at, p.nine_tenths_at) else {
                    return None;
                };
                let spec = &view.scenario.workload.files[index];
                let author = view.index_of(&crate::kernel::device_id(&spec.device))?;
                let model = view.network.model(author, device);
                if p.restarted || model.capacity_bytes_per_s == 0 {
                    return None;
                }
                let span_s = nine.saturating_since(tenth).as_micros().max(1) as f64 / 1e6;
                let bytes = (steady_end(spec.size_bytes) - steady_start(spec.size_bytes)) as f64;
                let kept = 1.0 - f64::from(model.loss_ppm) / 1e6;
                Some(Judged {
                    device,
                    index,
                    goodput_bytes_per_s: bytes / span_s,
                    bound_bytes_per_s: kept * model.capacity_bytes_per_s as f64,
                })
            })
    }
}

fn steady_start(size_bytes: u64) -> u64 {
    size_bytes / 10
}

fn steady_end(size_bytes: u64) -> u64 {
    size_bytes * 9 / 10
}

impl Checker for Goodput {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Handled { to, .. } => {
                for (index, id) in view.file_ids.iter().enumerate() {
                    let key = (to, index);
                    let done = self.progress.get(&key).map(|p| p.nine_tenths_at.is_some());
                    if done == Some(true) || self.not_receivers.contains(&key) {
                        continue;
                    }
                    let held = view.devices[to].store.borrow().files.held_bytes(id);
                    let Some(held) = held else { continue };
                    let size = view.scenario.workload.files[index].size_bytes;
                    if done.is_none() && !receivers(view, index).contains(&to) {
                        self.not_receivers.insert(key);
                        continue;
                    }
                    let p = self.progress.entry(key).or_default();
                    if held >= steady_start(size) && p.tenth_at.is_none() {
                        p.tenth_at = Some(view.now);
                    }
                    if held >= steady_end(size) {
                        p.nine_tenths_at = Some(view.now);
                    }
                }
            }
            Happening::Restarted { device } => {
                for ((d, _), p) in self.progress.iter_mut() {
                    if *d == device && p.tenth_at.is_some() && p.nine_tenths_at.is_none() {
                        p.restarted = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let Some(share_min) = view.scenario.expect.file_goodput_min else {
            return;
        };
        for judged in self.judged(view) {
            if judged.goodput_bytes_per_s < share_min * judged.bound_bytes_per_s {
                failures.push(Failure::FileGoodput {
                    device: view.name(judged.device).to_string(),
                    file: view.file_ids[judged.index].to_string(),
                    goodput_bytes_per_s: judged.goodput_bytes_per_s as u64,
                    bound_bytes_per_s: (share_min * judged.bound_bytes_per_s) as u64,
                });
            }
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        figures.file_goodput_share_worst = self
            .judged(view)
            .map(|j| j.goodput_bytes_per_s / j.bound_bytes_per_s)
            .reduce(f64::min);
    }
}
