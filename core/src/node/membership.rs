//! The node's side of membership (`crate::member`): it keeps every membership event it holds,
//! settles the roster after each one, and acts on the result:
//! - the community it seals and opens with holds every member's key and every epoch key this
//!   device was given;
//! - a removed device loses its pairwise key and its place among the peers at once, so its
//!   packets are strangers' at the door;
//! - an admin that sees the current epoch key held by a removed device starts a new epoch,
//!   and one that sees an active member without the current key shares it.
//!
//! Admin verbs (remove, add, set a role, rotate, invite) append membership events; the
//! settled roster, not the verb, decides what they did.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::RngCore;
use thiserror::Error;

use super::{AppendError, Node, NodeEvent};
use crate::crypto::PublicKey;
use crate::event::{Event, EventBody};
use crate::id::{DeviceId, EventId};
use crate::member::roster::settle;
use crate::member::{
    recipient_id, share_key, unwrap_key, EpochKey, EpochKeys, Invite, InviteError, MemberOp,
    OpRecord, Role, Roster, Status, PARENTS_MAX,
};
use crate::store::{Store, StoreError};
use crate::time::{Duration, Instant};

/// Most membership events a node keeps in memory for the merge rule. Membership events are
/// rare (a change, or a rotation of one event per 12 members); a member that floods them is
/// bounded here, and events past the bound are stored and relayed but do not count.
pub const MEMBERSHIP_EVENTS_MAX: usize = 16_384;

#[derive(Debug, Error)]
pub enum MemberError {
    #[error("only an admin may do that")]
    NotAnAdmin,
    #[error("{0} is not an active member")]
    NotAMember(String),
    #[error("{0} is already a member or was one")]
    NameTaken(String),
    #[error("a community keeps at least one admin")]
    LastAdmin,
    #[error("this device was removed from the community")]
    Removed,
    #[error(transparent)]
    Invite(#[from] InviteError),
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// What a node knows of membership.
#[derive(Debug, Default)]
pub(super) struct Membership {
    ops: BTreeMap<EventId, OpRecord>,
    roster: Roster,
    /// Epoch keys this device was given (welcome or wraps): the community's copy is rebuilt
    /// from this.
    keys: EpochKeys,
    /// Peers removed while an input was handled: dropped before anything is sent.
    leaving: BTreeSet<DeviceId>,
}

impl Membership {
    pub(super) fn new(keys: EpochKeys) -> Self {
        Membership {
            keys,
            ..Membership::default()
        }
    }
    pub(super) fn roster(&self) -> &Roster {
        &self.roster
    }
    pub(super) fn keys(&self) -> &EpochKeys {
        &self.keys
    }
    /// Every membership event held, in id order (a welcome carries them all).
    pub(super) fn event_ids(&self) -> Vec<EventId> {
        self.ops.keys().copied().collect()
    }
}

impl<S: Store> Node<S> {
    /// The roster as settled from every membership event held.
    pub fn roster(&self) -> &Roster {
        &self.membership.roster
    }
    /// The epoch new events are sealed under (0: the community's own key).
    pub fn key_epoch(&self) -> u32 {
        self.membership.keys.epoch()
    }
    /// Every epoch key this device holds (a driver persists them; the welcome's cannot be
    /// found again in the log).
    pub fn epoch_keys(&self) -> &EpochKeys {
        &self.membership.keys
    }

    /// Reads the membership events of a store that already holds events (a restart).
    pub(super) fn load_membership(&mut self) -> Result<(), StoreError> {
        let mut pending = self.store.membership_events()?;
        // Keys events may be sealed under keys that earlier keys events give: open what opens,
        // learn from it, and try the rest again until nothing more opens.
        loop {
            let before = pending.len();
            pending.retain(|(id, sealed)| {
                match crate::event::open_expecting(id, sealed, &self.config.community) {
                    Ok(opened) => {
                        self.note_membership(opened.id, &opened.event);
                        false
                    }
                    Err(_) => true,
                }
            });
            if pending.len() == before {
                break;
            }
        }
        self.resettle(self.now);
        Ok(())
    }

    /// Called for every event stored; a membership event updates the roster.
    pub(super) fn observe_stored(&mut self, now: Instant, id: EventId, event: &Event) {
        if self.note_membership(id, event) {
            self.resettle(now);
        }
    }

    /// Remembers a membership event (and any key it gives this device); true if it was one.
    fn note_membership(&mut self, id: EventId, event: &Event) -> bool {
        let EventBody::Membership { parents, op } = &event.body else {
            return false;
        };
        if self.membership.ops.len() >= MEMBERSHIP_EVENTS_MAX {
            self.stats.drop("membership_events_over_bound");
            return false;
        }
        if let Some(key) = unwrap_key(&self.config.keys, op) {
            if self.membership.keys.insert(key) {
                self.config.community = self
                    .config
                    .community
                    .clone()
                    .with_epoch_keys(self.membership.keys.clone());
                self.emit(NodeEvent::KeyEpoch { epoch: key.epoch });
            }
        }
        self.membership.ops.insert(
            id,
            OpRecord {
                author: event.author.clone(),
                created_at: event.created_at,
                parents: parents.clone(),
                op: op.as_ref().clone(),
            },
        );
        true
    }

    /// Settles the roster again and acts on what changed.
    fn resettle(&mut self, now: Instant) {
        let community_id = *self.config.community.id();
        let genesis = self.config.community.genesis();
        let roster = settle(&community_id, &genesis, &self.membership.ops);
        let before = std::mem::replace(&mut self.membership.roster, roster);
        let after = &self.membership.roster;

        let everyone: BTreeMap<DeviceId, PublicKey> = after
            .members
            .iter()
            .map(|(d, m)| (d.clone(), m.key))
            .collect();
        self.config.community = self.config.community.clone().with_members(everyone);
        let active: BTreeMap<DeviceId, PublicKey> =
            after.active().map(|(d, m)| (d.clone(), m.key)).collect();
        self.wire
            .keyring_mut()
            .set_members(std::sync::Arc::new(active));

        let mut changes = Vec::new();
        for (device, info) in &after.members {
            let was = before.members.get(device).map(|m| (m.status, m.role));
            if was != Some((info.status, info.role)) {
                changes.push((device.clone(), info.status, info.role));
            }
        }
        for (device, status, role) in changes {
            if status == Status::Removed && self.peers.contains_key(&device) {
                self.membership.leaving.insert(device.clone());
            }
            self.emit(NodeEvent::MemberChanged {
                device,
                status,
                role,
            });
        }
        self.maintain_keys(now);
    }

    /// An admin's duties after the roster changed: a new epoch if a removed device holds the
    /// current key, the current key for any active member without it.
    fn maintain_keys(&mut self, now: Instant) {
        let me = self.config.keys.device.clone();
        if !self.membership.roster.is_admin(&me) {
            return;
        }
        let roster = &self.membership.roster;
        let epoch_max = roster.epoch_max();
        // Who holds the newest epoch, as the log tells it. Epoch 0 (the community key): every
        // device that was ever a member.
        let holders: BTreeSet<[u8; 8]> = if epoch_max == 0 {
            roster
                .members
                .values()
                .map(|m| recipient_id(&m.key))
                .collect()
        } else {
            roster
                .epochs
                .values()
                .filter(|e| e.epoch == epoch_max)
                .flat_map(|e| e.recipients.iter().copied())
                .collect()
        };
        let leaked = roster
            .members
            .values()
            .any(|m| m.status == Status::Removed && holders.contains(&recipient_id(&m.key)));
        if leaked {
            let _ = self.start_epoch(now);
            return;
        }
        // Share the key this device seals with, if it is the newest, with whoever lacks it.
        let Some((key_id, current)) = self.config.community.sealing_key() else {
            return;
        };
        let current = *current;
        if current.epoch != epoch_max {
            return;
        }
        let given = &roster.epochs[&key_id].recipients;
        let lacking: Vec<PublicKey> = roster
            .active()
            .filter(|(_, m)| !given.contains(&recipient_id(&m.key)))
            .map(|(_, m)| m.key)
            .collect();
        if !lacking.is_empty() {
            let _ = self.share(now, current, &lacking);
        }
    }

    /// Starts a new epoch: a fresh key for every active member (this device included).
    fn start_epoch(&mut self, now: Instant) -> Result<u32, MemberError> {
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let epoch = self.membership.roster.epoch_max() + 1;
        let everyone: Vec<PublicKey> = self
            .membership
            .roster
            .active()
            .map(|(_, m)| m.key)
            .collect();
        self.share(now, EpochKey { epoch, key }, &everyone)?;
        Ok(epoch)
    }

    fn share(&mut self, now: Instant, key: EpochKey, to: &[PublicKey]) -> Result<(), MemberError> {
        let mut ephemeral = [0u8; 32];
        self.rng.fill_bytes(&mut ephemeral);
        let ops = share_key(key.epoch, &key.key, to, ephemeral);
        self.append_ops(now, ops)?;
        Ok(())
    }

    /// Appends membership events naming the current heads; the roster settles as each is
    /// stored (`observe_stored`).
    pub(super) fn append_ops(
        &mut self,
        now: Instant,
        ops: Vec<MemberOp>,
    ) -> Result<Vec<EventId>, MemberError> {
        let heads = &self.membership.roster.heads;
        let parents: Vec<EventId> = heads[heads.len().saturating_sub(PARENTS_MAX)..].to_vec();
        let bodies = ops
            .into_iter()
            .map(|op| EventBody::Membership {
                parents: parents.clone(),
                op: Box::new(op),
            })
            .collect();
        let ids = self.append_all(now, bodies)?;
        self.drop_leaving_peers();
        Ok(ids)
    }

    fn require_admin(&self) -> Result<(), MemberError> {
        let me = &self.config.keys.device;
        if !self.membership.roster.is_active(me) {
            return Err(MemberError::Removed);
        }
        if !self.membership.roster.is_admin(me) {
            return Err(MemberError::NotAnAdmin);
        }
        Ok(())
    }

    /// Removes `device` (admins only); a new key epoch follows in the same call.
    pub fn remove_member(&mut self, now: Instant, device: &DeviceId) -> Result<u32, MemberError> {
        self.require_admin()?;
        let roster = &self.membership.roster;
        if !roster.is_active(device) {
            return Err(MemberError::NotAMember(device.to_string()));
        }
        if roster.is_admin(device)
            && roster
                .active()
                .filter(|(_, m)| m.role == Role::Admin)
                .count()
                == 1
        {
            return Err(MemberError::LastAdmin);
        }
        self.append_ops(
            now,
            vec![MemberOp::Remove {
                device: device.clone(),
            }],
        )?;
        // `observe_stored` saw the removal and, this device being an admin, started the epoch.
        Ok(self.key_epoch())
    }

    /// Adds a device whose key an admin already knows.
    pub fn add_member(
        &mut self,
        now: Instant,
        device: &DeviceId,
        key: PublicKey,
        role: Role,
    ) -> Result<(), MemberError> {
        self.require_admin()?;
        if self.membership.roster.members.contains_key(device) {
            return Err(MemberError::NameTaken(device.to_string()));
        }
        self.append_ops(
            now,
            vec![MemberOp::Add {
                device: device.clone(),
                key,
                role,
            }],
        )?;
        Ok(())
    }

    pub fn set_role(
        &mut self,
        now: Instant,
        device: &DeviceId,
        role: Role,
    ) -> Result<(), MemberError> {
        self.require_admin()?;
        let roster = &self.membership.roster;
        if !roster.is_active(device) {
            return Err(MemberError::NotAMember(device.to_string()));
        }
        let admins = roster
            .active()
            .filter(|(_, m)| m.role == Role::Admin)
            .count();
        if roster.is_admin(device) && role != Role::Admin && admins == 1 {
            return Err(MemberError::LastAdmin);
        }
        self.append_ops(
            now,
            vec![MemberOp::SetRole {
                device: device.clone(),
                role,
            }],
        )?;
        Ok(())
    }

    /// Starts a new key epoch on demand (admins only).
    pub fn rotate_keys(&mut self, now: Instant) -> Result<u32, MemberError> {
        self.require_admin()?;
        self.start_epoch(now)?;
        self.drop_leaving_peers();
        Ok(self.key_epoch())
    }

    /// An invite signed by this device (admins only), valid for `valid_for` from `now` on
    /// this device's clock. `address` tells the new device where to find this one.
    pub fn create_invite(
        &mut self,
        now: Instant,
        role: Role,
        valid_for: Duration,
        uses: u16,
        address: String,
    ) -> Result<Invite, MemberError> {
        self.require_admin()?;
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let now = self.advance(now);
        let expires_at = Instant::from_micros(
            self.clock
                .last()
                .max(now)
                .as_micros()
                .saturating_add(valid_for.as_micros()),
        );
        Ok(Invite::new(
            &self.config.keys,
            *self.config.community.id(),
            role,
            expires_at,
            uses,
            secret,
            address,
        )?)
    }

    /// Drops the peers the roster removed: their keys, links and anything not yet sealed for them.
    pub(super) fn drop_leaving_peers(&mut self) {
        for peer in std::mem::take(&mut self.membership.leaving) {
            self.wire.forget(&peer);
            self.peers.remove(&peer);
            self.links.remove(&peer);
            // Datagrams already sealed for it stay queued: the removal itself is among them,
            // and the removed device should learn of it.
            self.outbox.remove(&peer);
        }
    }
}
