//! The workload's actions on a device: messages (an attachment's chunks first), reactions,
//! and the append each is made of, recorded for the checkers.

use meshlog_core::{chunk_file, AppendError, Community, EventBody, EventId, OpenedEvent};

use super::workload::Action;
use super::{Appended, Happening, World};

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
        self.view().appended_event(id)
    }

    /// `device` just made `id`: it joins what the checkers trust, and they are told. `None`
    /// if its store does not hold it.
    pub(crate) fn made(
        &mut self,
        device: usize,
        id: EventId,
        reacts_to: Option<EventId>,
        pushes_refused: bool,
    ) -> Option<()> {
        let appended = self.appended_of(device, id)?;
        self.appended.insert(id, appended);
        self.note_appended(device, id, None);
        self.emit(Happening::Made {
            device,
            id,
            reacts_to,
            pushes_refused,
        });
        Some(())
    }

    /// Keeps the membership books (`members.rs`): `device` appended `id`, which is `event`
    /// if the caller has it decoded (a membership event must be). A changed roster marks the
    /// removed devices.
    pub(crate) fn note_appended(
        &mut self,
        device: usize,
        id: EventId,
        event: Option<&meshlog_core::Event>,
    ) {
        if self.members.appended(&self.community, id, device, event) {
            for d in &mut self.devices {
                d.removed = self.members.is_removed(&d.name);
            }
        }
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
    /// Appends `body` at `device` as the workload does (`files.rs` posts its messages here).
    pub(super) fn append_body(&mut self, device: usize, body: EventBody) -> Option<EventId> {
        self.append(device, body)
    }

    fn append(&mut self, device: usize, body: EventBody) -> Option<EventId> {
        let now = self.now;
        let d = &mut self.devices[device];
        let Some(node) = d.node.as_mut() else {
            self.emit(Happening::AppendSkipped {
                device,
                kind: body.kind_name(),
            });
            return None;
        };
        let refused_before = node.stats().transmits_dropped;
        let kind = body.kind_name();
        let reacts_to = reacts_to(&body);
        let id = match node.append(d.clock.read(now), body) {
            Ok(id) => id,
            Err(AppendError::Store(_)) if d.store.borrow().full => {
                self.emit(Happening::AppendRefused { device, kind });
                self.drain(device);
                return None;
            }
            Err(err) => panic!("a workload event was refused: {err}"),
        };
        let pushes_refused = node.stats().transmits_dropped > refused_before;
        self.made(device, id, reacts_to, pushes_refused)
            .expect("just stored");
        if !self.options.hold_appends {
            self.drain(device);
        }
        Some(id)
    }
}

/// The message a reaction answers (the clock checker compares their times).
pub(crate) fn reacts_to(body: &EventBody) -> Option<EventId> {
    match body {
        EventBody::Reaction { message, .. } => Some(*message),
        _ => None,
    }
}
