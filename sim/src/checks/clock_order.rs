//! Clock order: the core's hybrid clock (`meshlog_core::clock`) must keep each author's
//! events in the order they were made and every reaction after its message (one the reacting
//! device held), whatever the skew of the device clocks (`[[clock]]`). Event times are part of
//! the sealed bytes, the same on every device, so checking them once as each event is made
//! checks every device's view.

use meshlog_core::{EventId, Instant};

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

/// Out-of-order pairs listed in a failure.
pub const CLOCK_BREAKS_LISTED_MAX: usize = 10;

/// Two events whose times sort against the order they were made in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClockBreak {
    /// "author order" or "reaction before its message".
    rule: &'static str,
    earlier: EventId,
    earlier_at: Instant,
    later: EventId,
    later_at: Instant,
}

/// Per author, the last event made; and the breaks found.
#[derive(Debug, Default)]
pub(super) struct ClockOrder {
    last_by_author: Vec<Option<(EventId, Instant)>>,
    breaks: Vec<ClockBreak>,
    break_count: u64,
}

impl ClockOrder {
    pub(super) fn new(devices: usize) -> Self {
        ClockOrder {
            last_by_author: vec![None; devices],
            ..ClockOrder::default()
        }
    }

    fn note_break(&mut self, found: ClockBreak) {
        self.break_count += 1;
        if self.breaks.len() < CLOCK_BREAKS_LISTED_MAX {
            self.breaks.push(found);
        }
    }
}

impl Checker for ClockOrder {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        if let Happening::Made {
            device,
            id,
            reacts_to,
            ..
        } = *happening
        {
            self.check_event_time(view, device, id, reacts_to);
        }
    }

    fn verdict(&self, _: &View<'_>, failures: &mut Vec<Failure>) {
        if self.break_count == 0 {
            return;
        }
        failures.push(Failure::ClockOrder {
            count: self.break_count,
            breaks: self
                .breaks
                .iter()
                .map(|b| {
                    (
                        b.rule.to_owned(),
                        b.earlier.to_string(),
                        b.earlier_at.as_micros(),
                        b.later.to_string(),
                        b.later_at.as_micros(),
                    )
                })
                .collect(),
        });
    }
}

impl ClockOrder {
    /// `device` just made `id`: its time must follow the author's last event and, for a
    /// reaction (`reacts_to`, the message), the message it reacts to.
    fn check_event_time(
        &mut self,
        world: &View<'_>,
        device: usize,
        id: EventId,
        reacts_to: Option<EventId>,
    ) {
        // Bodies are not kept (`shelf.rs`): the time as the author's store took it (decoded
        // from the bytes only if the store did not say).
        let stored_at = (world.devices[device].store.borrow().last_appended)
            .iter()
            .find(|(appended_id, _)| *appended_id == id)
            .map(|&(_, at)| at);
        let at = match stored_at {
            Some(at) => at,
            None => {
                world
                    .appended_event(&id)
                    .expect("the author's bytes open")
                    .event
                    .created_at
            }
        };
        if let Some((last, last_at)) = self.last_by_author[device] {
            if at <= last_at {
                self.note_break(ClockBreak {
                    rule: "author order",
                    earlier: last,
                    earlier_at: last_at,
                    later: id,
                    later_at: at,
                });
            }
        }
        self.last_by_author[device] = Some((id, at));
        if let Some(message) = &reacts_to {
            // The workload may react to a message the device has not received yet (no person
            // could); only an answer to something seen must sort after it.
            let seen = world.devices[device]
                .node
                .as_ref()
                .is_some_and(|node| node.contains(message));
            let original = seen.then(|| world.appended_event(message)).flatten();
            if let Some(original) = original {
                let message_at = original.event.created_at;
                if at <= message_at {
                    self.note_break(ClockBreak {
                        rule: "reaction before its message",
                        earlier: *message,
                        earlier_at: message_at,
                        later: id,
                        later_at: at,
                    });
                }
            }
        }
    }
}
