//! The workload's actions on a device: messages (an attachment's chunks first), reactions,
//! and the append each is made of, recorded for the checkers.

use meshlog_core::{chunk_file, Event, EventBody, EventId, Store};

use super::World;
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
                    self.workload.note_message(id);
                }
            }
            Action::Reaction {
                device,
                message,
                emoji,
            } => {
                let body = EventBody::Reaction {
                    message,
                    emoji: emoji.to_owned(),
                    remove: false,
                };
                self.append(device, body);
            }
        }
    }

    /// Appends on `device` and records the sealed bytes; `None` if the device is crashed.
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
        // What the node seals: the checkers compare every stored copy against it.
        let event = Event {
            author: d.name.clone(),
            created_at: now,
            body: body.clone(),
        };
        let refused_before = node.stats().transmits_dropped;
        let id = node
            .append(now, body)
            .expect("workload events are valid and the in-memory store never fails");
        let pushes_refused = node.stats().transmits_dropped > refused_before;
        let sealed = d
            .store
            .borrow()
            .get(&id)
            .expect("in-memory")
            .expect("just stored");
        self.appended.insert(id, Appended { sealed, event });
        if !pushes_refused {
            self.expect_pushes(device, id);
        }
        if !self.options.hold_appends {
            self.drain(device);
        }
        Some(id)
    }
}
