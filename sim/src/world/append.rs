//! The workload's actions on a device: messages (an attachment's chunks first), reactions,
//! and the append each is made of, recorded for the checkers.

use meshlog_core::event::open;
use meshlog_core::{chunk_file, AppendError, Community, EventBody, EventId, OpenedEvent};

use super::World;
use crate::clocks::reacts_to;
use crate::outcome::Appended;
use crate::workload::Action;

impl World {
    pub(super) fn perform(&mut self, action: Action) {
        match action {
            Action::Message {
                device,
                text,
                attachment,
            } => {
                let file = attachment.map(|content| {
                    let name = format!("file-{}.bin", content.len());
                    chunk_file(&name, "application/octet-stream", &content)
                        .expect("workload attachments fit FILE_SIZE_MAX")
                });
                let (file_ref, chunks) = match file {
                    Some((file_ref, chunks)) => (Some(file_ref), chunks),
                    None => (None, Vec::new()),
                };
                for chunk in chunks {
                    if self.append(device, chunk).is_none() {
                        return;
                    }
                }
                let body = EventBody::Message {
                    text,
                    attachment: file_ref,
                    auto: true,
                };
                if let Some(id) = self.append(device, body) {
                    let appended = self.appended.get(&id).expect("just appended");
                    self.workload.note_message(appended.slot);
                }
            }
            Action::Reaction {
                device,
                message_slot,
                emoji,
            } => {
                let message = EventId::of_bytes(self.shelf.borrow().bytes(message_slot));
                let body = EventBody::Reaction {
                    message,
                    emoji: emoji.to_owned(),
                    remove: false,
                };
                self.append(device, body);
            }
        }
    }

    /// What `device`'s node sealed as `id` (its time is the node's hybrid clock's): the
    /// checkers compare every stored copy against it. `None` if the store lacks it.
    pub(super) fn appended_of(&self, device: usize, id: EventId) -> Option<Appended> {
        let slot = self.devices[device].store.borrow().events().slot_of(&id)?;
        Some(Appended { slot })
    }

    /// An appended event, decoded now (bodies are not kept: `shelf.rs`).
    pub fn appended_event(&self, id: &EventId) -> Option<OpenedEvent> {
        self.opened_slot(self.appended.get(id)?.slot)
    }

    /// The shelf's bytes in `slot`, decoded now.
    pub(crate) fn opened_slot(&self, slot: u32) -> Option<OpenedEvent> {
        open(self.shelf.borrow().bytes(slot), &self.community).ok()
    }

    /// The sealed bytes of every event appended so far (each counted once).
    pub fn sealed_bytes(&self) -> usize {
        let shelf = self.shelf.borrow();
        self.appended
            .slots()
            .map(|slot| shelf.bytes(slot).len())
            .sum()
    }

    /// The roster's keys, for decoding what the stores hold (`SimStore::snapshot`).
    pub fn community(&self) -> &Community {
        &self.community
    }

    /// Appends on `device` and records the sealed bytes; `None` if the device is crashed or
    /// its disk is full (the person sees an error and nothing is stored or sent).
    fn append(&mut self, device: usize, body: EventBody) -> Option<EventId> {
        let now = self.now;
        let d = &mut self.devices[device];
        let Some(node) = d.node.as_mut() else {
            self.trace.line(format_args!(
                "{now} skip {} crashed {}",
                d.name,
                body.kind_name()
            ));
            self.counters.skipped_appends += 1;
            return None;
        };
        let refused_before = node.stats().transmits_dropped;
        let kind = body.kind_name();
        let reacts_to = reacts_to(&body);
        let id = match node.append(d.clock.read(now), body) {
            Ok(id) => id,
            Err(AppendError::Store(_)) if d.store.borrow().full => {
                self.trace
                    .line(format_args!("{now} refused {} disk full {kind}", d.name));
                self.counters.refused_appends += 1;
                self.drain(device);
                return None;
            }
            Err(err) => panic!("a workload event was refused: {err}"),
        };
        let pushes_refused = node.stats().transmits_dropped > refused_before;
        let appended = self.appended_of(device, id).expect("just stored");
        self.check_event_time(device, id, &appended, reacts_to);
        self.appended.insert(id, appended);
        if !pushes_refused {
            self.expect_pushes(device, id);
        }
        if !self.options.hold_appends {
            self.drain(device);
        }
        Some(id)
    }
}
