//! Own events kept: no event a device appended (and was told was stored) is ever lost to a
//! power cut or a reopened store (`faults/power.rs` says how the world models both).

use meshlog_core::EventId;

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

/// Ids listed in a failure; the count says how many there were.
const IDS_LISTED_MAX: usize = 5;

/// A power cut or a reopened store took events the device had appended itself.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnLoss {
    device: usize,
    /// `power cut` or `reopened store`.
    cause: &'static str,
    at_us: u64,
    count: usize,
    ids: Vec<EventId>,
}

#[derive(Debug, Default)]
pub(super) struct OwnLosses {
    losses: Vec<OwnLoss>,
}

impl OwnLosses {
    fn note(&mut self, view: &View<'_>, device: usize, cause: &'static str, own: Vec<EventId>) {
        if !own.is_empty() {
            self.losses.push(OwnLoss {
                device,
                cause,
                at_us: view.now.as_micros(),
                count: own.len(),
                ids: own.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }
}

impl Checker for OwnLosses {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::PowerCut { device, lost } => {
                let name = view.name(device);
                let own = lost
                    .iter()
                    .filter(|id| {
                        view.appended_event(id)
                            .is_some_and(|a| &a.event.author == name)
                    })
                    .copied()
                    .collect();
                self.note(view, device, "power cut", own);
            }
            Happening::Reopened {
                device, own_lost, ..
            } => self.note(view, device, "reopened store", own_lost.to_vec()),
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for loss in &self.losses {
            failures.push(Failure::OwnEventLost {
                device: view.name(loss.device).to_string(),
                cause: loss.cause.to_owned(),
                at_us: loss.at_us,
                count: loss.count,
                ids: loss.ids.iter().map(EventId::to_string).collect(),
            });
        }
    }
}
