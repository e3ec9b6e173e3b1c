//! The kernel's books on membership: every membership event appended in the run, and the
//! roster they settle to (the core's own merge rule, `meshlog_core::member::roster::settle`,
//! over every such event, whichever device holds it). That settled roster is what the nodes
//! must converge on; it says which devices are removed, and so excused from converging, and
//! whose events the others need not hold.
//!
//! Kept only in a world with `[[member]]` changes: elsewhere no membership event is ever
//! appended, and the books would cost an id per event for nothing.

use std::collections::BTreeMap;

use meshlog_core::member::roster::settle;
use meshlog_core::member::{OpRecord, Roster, Status};
use meshlog_core::{Community, DeviceId, Event, EventBody, EventId};

#[derive(Debug, Default)]
pub struct Members {
    /// The scenario makes membership changes: the books are kept.
    pub(crate) kept: bool,
    ops: BTreeMap<EventId, OpRecord>,
    settled: Roster,
    /// Every appended event's author (kept worlds only).
    authors: BTreeMap<EventId, usize>,
}

impl Members {
    pub(crate) fn new(kept: bool) -> Self {
        Members {
            kept,
            ..Members::default()
        }
    }

    /// The roster every membership event appended so far settles to (the genesis roster
    /// while there is none).
    pub fn settled(&self) -> &Roster {
        &self.settled
    }

    /// Every membership event appended so far, as the merge rule reads them.
    pub fn ops(&self) -> &BTreeMap<EventId, OpRecord> {
        &self.ops
    }

    /// The author of an appended event, in a world that keeps the books.
    pub fn author(&self, id: &EventId) -> Option<usize> {
        self.authors.get(id).copied()
    }

    /// Every appended event with its author, in id order.
    pub fn authors(&self) -> impl Iterator<Item = (&EventId, &usize)> {
        self.authors.iter()
    }

    pub fn is_removed(&self, device: &DeviceId) -> bool {
        self.settled
            .members
            .get(device)
            .is_some_and(|m| m.status == Status::Removed)
    }

    /// Settles the genesis roster alone (before any change).
    pub(crate) fn start(&mut self, community: &Community) {
        if self.kept {
            self.settled = settle(community.id(), &community.genesis(), &self.ops);
        }
    }

    /// `author` appended `id`; a membership event settles the roster again. True if the
    /// roster changed.
    pub(crate) fn appended(
        &mut self,
        community: &Community,
        id: EventId,
        author: usize,
        event: Option<&Event>,
    ) -> bool {
        if !self.kept {
            return false;
        }
        self.authors.insert(id, author);
        let Some(Event {
            author,
            created_at,
            body: EventBody::Membership { parents, op },
        }) = event
        else {
            return false;
        };
        self.ops.insert(
            id,
            OpRecord {
                author: author.clone(),
                created_at: *created_at,
                parents: parents.clone(),
                op: op.as_ref().clone(),
            },
        );
        let settled = settle(community.id(), &community.genesis(), &self.ops);
        let changed = settled.members != self.settled.members;
        self.settled = settled;
        changed
    }
}
