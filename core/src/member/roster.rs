//! The merge rule: from the genesis roster and every membership event held, the roster and the
//! key epochs. A pure function of the set of events, so every device that holds the same
//! events computes the same roster, whatever order they arrived in.
//!
//! 1. **Order.** Membership events form a graph: each names the membership heads its author
//!    held (`parents`). An event whose parents are not all held waits. The rest are taken in
//!    one topological order: parents first; among events ready at once, a founder's first
//!    (the genesis admins, in name order), then the earlier `created_at`, then the lower
//!    event id. Founders outrank: a timestamp is the author's to choose, a founder's rank is
//!    not, so no later admin wins a conflict with a founder by backdating.
//! 2. **Counting.** In that order, an event counts if its author is an active member and its
//!    role allows the change (admins: add, remove, set a role, share keys; any member: admit
//!    a device with a valid invite), and the change makes sense (no removed name reused, never
//!    fewer than one admin, an invite within its expiry and its uses).
//! 3. **Revocation.** A counted change that takes a device's admin right away (removal or
//!    demotion) voids every change by that device which the changer had not seen (not in its
//!    causal past): a removed admin cannot act by backdating, or by staying out of touch.
//!    Voiding can change what counts, so counting runs again with the voided set, until no
//!    new change is voided (the set only grows, so this ends).
//!
//! Consequences, written down in `docs/PROTOCOL.md`: two admins who remove each other at once
//! — the removal that comes first in the order (a founder's, else the earlier) stands and
//! voids the other; an add racing a
//! remove of the adding admin — the add stands only if the remover had seen it; two
//! admissions with one invite on both sides of a partition — the first `uses` in the order
//! stand, the later ones are void and their devices are not members.

use std::collections::{BTreeMap, BTreeSet};

use crate::crypto::PublicKey;
use crate::id::{DeviceId, EventId};
use crate::time::Instant;

use super::invite::{verify_proof, InviteError};
use super::op::{MemberOp, Role};
use super::person::{certify, remove_person, PersonInfo};
use super::{recipient_id, KeyId};

/// A membership event as the rule reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    pub author: DeviceId,
    pub created_at: Instant,
    pub parents: Vec<EventId>,
    pub op: MemberOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Active,
    Removed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Removed => "removed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub key: PublicKey,
    pub role: Role,
    pub status: Status,
    /// `None` for the genesis members.
    pub added_by: Option<DeviceId>,
    pub added_at: Instant,
    /// The counted removal: who and when.
    pub removed: Option<(DeviceId, Instant)>,
    /// The newest key it published for epoch keys to be sealed to (`ReceiveKey`); `None`:
    /// seal to its device key.
    pub receive_key: Option<[u8; 32]>,
    /// The person whose device it is, once it published their certificate (`Certify`).
    pub person: Option<DeviceId>,
}

/// One epoch key as the log describes it (the key itself only its recipients can open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochInfo {
    pub epoch: u32,
    /// `recipient_id`s of the devices given this key, by a wrap or by admission.
    pub recipients: BTreeSet<[u8; 8]>,
    /// The counted events that share it.
    pub events: Vec<EventId>,
}

/// The roster and epochs one set of membership events settles to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    pub members: BTreeMap<DeviceId, MemberInfo>,
    pub epochs: BTreeMap<KeyId, EpochInfo>,
    /// Events with no child among those held: the parents of this device's next change.
    pub heads: Vec<EventId>,
    /// Events that do not count, and why (`not_an_admin`, `voided`, `waiting`, an invite's
    /// refusal code…): shown, never silently lost.
    pub refused: BTreeMap<EventId, &'static str>,
    /// Admissions counted per invite (by its key).
    pub invite_uses: BTreeMap<[u8; 32], u16>,
    /// The persons certified devices name: each name bound to the key of its first counted
    /// certificate.
    pub persons: BTreeMap<DeviceId, PersonInfo>,
}

impl Roster {
    pub fn is_active(&self, device: &DeviceId) -> bool {
        self.members
            .get(device)
            .is_some_and(|m| m.status == Status::Active)
    }
    pub fn is_admin(&self, device: &DeviceId) -> bool {
        self.members
            .get(device)
            .is_some_and(|m| m.status == Status::Active && m.role == Role::Admin)
    }
    pub fn active(&self) -> impl Iterator<Item = (&DeviceId, &MemberInfo)> {
        self.members
            .iter()
            .filter(|(_, m)| m.status == Status::Active)
    }
    /// The newest epoch number the log knows (0: only the community's own key).
    pub fn epoch_max(&self) -> u32 {
        self.epochs.values().map(|e| e.epoch).max().unwrap_or(0)
    }
    pub(super) fn admins(&self) -> usize {
        self.active().filter(|(_, m)| m.role == Role::Admin).count()
    }
}

/// Settles `ops` over `genesis` (see the module's rule).
pub fn settle(
    community: &[u8; 16],
    genesis: &BTreeMap<DeviceId, (PublicKey, Role)>,
    ops: &BTreeMap<EventId, OpRecord>,
) -> Roster {
    let founders: BTreeMap<&DeviceId, u32> = genesis
        .iter()
        .filter(|(_, (_, role))| *role == Role::Admin)
        .enumerate()
        .map(|(rank, (device, _))| (device, rank as u32))
        .collect();
    let rank = |author: &DeviceId| founders.get(author).copied().unwrap_or(u32::MAX);
    let (order, waiting) = topological_order(ops, rank);
    let mut voided: BTreeSet<EventId> = BTreeSet::new();
    // Each pass voids at least one more event or stops, so passes <= events + 1.
    for _pass in 0..=ops.len() {
        let (mut roster, revocations) = count(community, genesis, ops, &order, &voided);
        let mut newly = BTreeSet::new();
        for (revocation, device) in &revocations {
            let seen = ancestors(ops, *revocation);
            for id in &order {
                let record = &ops[id];
                if &record.author == device
                    && id != revocation
                    && !seen.contains(id)
                    && !voided.contains(id)
                {
                    newly.insert(*id);
                }
            }
        }
        if newly.is_empty() {
            for id in &voided {
                roster.refused.insert(*id, "voided");
            }
            for id in &waiting {
                roster.refused.insert(*id, "waiting");
            }
            roster.heads = heads(ops, &order);
            return roster;
        }
        voided.extend(newly);
    }
    unreachable!("the voided set grows every pass and is bounded by the events");
}

/// Counts the events in `order` that are not voided; returns the roster and the counted
/// revocations (event, device that lost its admin right).
fn count(
    community: &[u8; 16],
    genesis: &BTreeMap<DeviceId, (PublicKey, Role)>,
    ops: &BTreeMap<EventId, OpRecord>,
    order: &[EventId],
    voided: &BTreeSet<EventId>,
) -> (Roster, Vec<(EventId, DeviceId)>) {
    let mut roster = Roster::default();
    for (device, (key, role)) in genesis {
        roster.members.insert(
            device.clone(),
            MemberInfo {
                key: *key,
                role: *role,
                status: Status::Active,
                added_by: None,
                added_at: Instant::from_micros(0),
                removed: None,
                receive_key: None,
                person: None,
            },
        );
    }
    let mut revocations = Vec::new();
    for id in order {
        if voided.contains(id) {
            continue;
        }
        let record = &ops[id];
        match apply(community, &mut roster, *id, record) {
            Ok(revoked) => revocations.extend(revoked.into_iter().map(|device| (*id, device))),
            Err(reason) => {
                roster.refused.insert(*id, reason);
            }
        }
    }
    (roster, revocations)
}

/// Applies one event if it counts; `Ok(devices)`: those whose rights it took (removed or
/// demoted).
fn apply(
    community: &[u8; 16],
    roster: &mut Roster,
    id: EventId,
    record: &OpRecord,
) -> Result<Vec<DeviceId>, &'static str> {
    let author = &record.author;
    if !roster.is_active(author) {
        return Err("author_not_a_member");
    }
    // Any member may admit, publish its receive key, or pass on a key an admin started to a
    // member who lacks it (its id is checked by whoever opens it); only admins start epochs.
    let admin_only = match &record.op {
        MemberOp::Admit { .. } | MemberOp::ReceiveKey { .. } | MemberOp::Certify(_) => false,
        MemberOp::Keys { key_id, .. } => !roster.epochs.contains_key(key_id),
        _ => true,
    };
    if admin_only && !roster.is_admin(author) {
        return Err("not_an_admin");
    }
    match &record.op {
        MemberOp::Add { device, key, role } => {
            if roster.members.contains_key(device) {
                return Err("name_taken");
            }
            join(roster, device, *key, *role, author, record.created_at);
            Ok(Vec::new())
        }
        MemberOp::Remove { device } => {
            let was_admin = roster.is_admin(device);
            if !roster.is_active(device) {
                return Err("not_a_member");
            }
            if was_admin && roster.admins() == 1 {
                return Err("last_admin");
            }
            let member = roster.members.get_mut(device).expect("active, so present");
            member.status = Status::Removed;
            member.removed = Some((author.clone(), record.created_at));
            Ok(vec![device.clone()])
        }
        MemberOp::SetRole { device, role } => {
            if !roster.is_active(device) {
                return Err("not_a_member");
            }
            let was_admin = roster.is_admin(device);
            if was_admin && *role != Role::Admin && roster.admins() == 1 {
                return Err("last_admin");
            }
            roster.members.get_mut(device).expect("active").role = *role;
            Ok((was_admin && *role != Role::Admin)
                .then(|| device.clone())
                .into_iter()
                .collect())
        }
        MemberOp::Admit(admission) => {
            let super::op::Admission {
                grant,
                device,
                key,
                proof,
            } = admission.as_ref();
            let refusal = check_admission(community, roster, grant, device, key, proof, record)
                .err()
                .map(|e| e.code());
            if let Some(code) = refusal {
                return Err(code);
            }
            *roster.invite_uses.entry(grant.id()).or_insert(0) += 1;
            join(roster, device, *key, grant.role, author, record.created_at);
            Ok(Vec::new())
        }
        MemberOp::Certify(cert) => certify(community, roster, record, cert),
        MemberOp::RemovePerson { person } => remove_person(roster, record, person),
        MemberOp::ReceiveKey { key } => {
            roster.members.get_mut(author).expect("active").receive_key = Some(*key);
            Ok(Vec::new())
        }
        MemberOp::Keys {
            epoch,
            key_id,
            wraps,
            ..
        } => {
            let max = roster.epoch_max();
            match roster.epochs.get_mut(key_id) {
                Some(known) if known.epoch != *epoch => return Err("epoch_mismatch"),
                Some(known) => {
                    known.recipients.extend(wraps.iter().map(|w| w.recipient));
                    known.events.push(id);
                }
                None if *epoch > max.saturating_add(1) => return Err("epoch_skipped"),
                None => {
                    roster.epochs.insert(
                        *key_id,
                        EpochInfo {
                            epoch: *epoch,
                            recipients: wraps.iter().map(|w| w.recipient).collect(),
                            events: vec![id],
                        },
                    );
                }
            }
            Ok(Vec::new())
        }
    }
}

/// Whether an admission by a member counts: the checks every device makes alike. The
/// admitting member's node makes them before it writes the event, with its own clock.
pub fn check_admission(
    community: &[u8; 16],
    roster: &Roster,
    grant: &super::invite::Grant,
    device: &DeviceId,
    key: &PublicKey,
    proof: &[u8; 64],
    record: &OpRecord,
) -> Result<(), InviteError> {
    if &grant.community != community {
        return Err(InviteError::WrongCommunity);
    }
    let admin = roster
        .members
        .get(&grant.admin)
        .filter(|m| m.status == Status::Active && m.role == Role::Admin)
        .ok_or_else(|| InviteError::NotAnAdmin(grant.admin.to_string()))?;
    if !grant.verify(&admin.key) {
        return Err(InviteError::Forged);
    }
    if !verify_proof(grant, device, key, proof) {
        return Err(InviteError::BadProof);
    }
    if record.created_at > grant.expires_at {
        return Err(InviteError::Expired);
    }
    if roster.invite_uses.get(&grant.id()).copied().unwrap_or(0) >= grant.uses {
        return Err(InviteError::UsedUp);
    }
    match roster.members.get(device) {
        Some(m) if m.status == Status::Removed => Err(InviteError::Removed(device.to_string())),
        Some(_) => Err(InviteError::AlreadyMember(device.to_string())),
        None => Ok(()),
    }
}

/// `device` joins the roster (added by an admin or admitted by a member).
fn join(
    roster: &mut Roster,
    device: &DeviceId,
    key: PublicKey,
    role: Role,
    by: &DeviceId,
    at: Instant,
) {
    let info = MemberInfo {
        key,
        role,
        status: Status::Active,
        added_by: Some(by.clone()),
        added_at: at,
        removed: None,
        receive_key: None,
        person: None,
    };
    roster.members.insert(device.clone(), info);
    give_current_keys(roster, &key);
}

/// A device admitted or added is handed every key its admitter holds (the welcome): counted
/// as a recipient of every epoch known so far.
fn give_current_keys(roster: &mut Roster, key: &PublicKey) {
    let recipient = recipient_id(key);
    for epoch in roster.epochs.values_mut() {
        epoch.recipients.insert(recipient);
    }
}

/// Events whose parents are all held, parents first, ties by (founder rank, `created_at`,
/// id); and the events that wait for a parent.
fn topological_order(
    ops: &BTreeMap<EventId, OpRecord>,
    rank: impl Fn(&DeviceId) -> u32,
) -> (Vec<EventId>, Vec<EventId>) {
    let key = |id: &EventId| {
        let record = &ops[id];
        (rank(&record.author), record.created_at, *id)
    };
    let mut missing: BTreeMap<EventId, usize> = BTreeMap::new();
    let mut children: BTreeMap<EventId, Vec<EventId>> = BTreeMap::new();
    let mut ready = BTreeSet::new();
    for (id, record) in ops {
        let parents: BTreeSet<&EventId> = record.parents.iter().collect();
        let mut waiting_for = 0;
        for parent in parents {
            if parent == id {
                waiting_for += 1; // its own parent: never ready
                continue;
            }
            waiting_for += 1;
            children.entry(*parent).or_default().push(*id);
        }
        // A parent that is not held never comes up, so its child keeps waiting.
        if waiting_for == 0 {
            ready.insert(key(id));
        } else {
            missing.insert(*id, waiting_for);
        }
    }
    let mut order = Vec::with_capacity(ops.len());
    while let Some((_, _, id)) = ready.pop_first() {
        order.push(id);
        for child in children.get(&id).into_iter().flatten() {
            let left = missing
                .get_mut(child)
                .expect("a child waits for its parents");
            *left -= 1;
            if *left == 0 {
                missing.remove(child);
                ready.insert(key(child));
            }
        }
    }
    (order, missing.into_keys().collect())
}

/// Every event in `id`'s causal past (its parents, theirs, …).
fn ancestors(ops: &BTreeMap<EventId, OpRecord>, id: EventId) -> BTreeSet<EventId> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<EventId> = ops[&id].parents.clone();
    while let Some(next) = stack.pop() {
        if seen.insert(next) {
            if let Some(record) = ops.get(&next) {
                stack.extend(record.parents.iter().copied());
            }
        }
    }
    seen
}

/// Ordered events that no other ordered event names as a parent.
fn heads(ops: &BTreeMap<EventId, OpRecord>, order: &[EventId]) -> Vec<EventId> {
    let named: BTreeSet<EventId> = order
        .iter()
        .flat_map(|id| ops[id].parents.iter().copied())
        .collect();
    order
        .iter()
        .filter(|id| !named.contains(id))
        .copied()
        .collect()
}
