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

mod verbs;

use super::{AppendError, Node, NodeEvent};
use crate::config::ConfigError;
use crate::crypto::sealed_box::x25519_public;
use crate::crypto::PublicKey;
use crate::event::{Event, EventBody};
use crate::id::{DeviceId, EventId};
use crate::member::roster::settle;
use crate::member::{
    recipient_id, share_key, unwrap_key, EpochKey, EpochKeys, InviteError, KeyId, MemberInfo,
    MemberOp, OpRecord, Recipient, Role, Roster, Status, PARENTS_MAX,
};
use crate::store::{Store, StoreError};
use crate::time::Instant;

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
    #[error("{0} is not a person the roster knows (or was removed)")]
    NotAPerson(String),
    #[error("this device is already certified as {0}'s")]
    Certified(String),
    #[error("the roster knows {0} under another person key")]
    PersonKeyMismatch(String),
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
    /// When each held key was replaced by a newer epoch's: its retention runs from then.
    superseded: BTreeMap<KeyId, Instant>,
    /// This device's receive-key secrets, the newest last (`retired_at` None); each kept until
    /// its retention passes after it was retired. Persisted in the store.
    receive: Vec<ReceiveSecret>,
    /// A new epoch key arrived: publish a fresh receive key for the next one.
    receive_rotation_due: bool,
    /// Peers removed while an input was handled: dropped before anything is sent.
    leaving: BTreeSet<DeviceId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReceiveSecret {
    secret: [u8; 32],
    retired_at: Option<Instant>,
}

/// Receive secrets kept at once: one current, and those retired within the retention (one
/// per epoch seen in that time).
const RECEIVE_SECRETS_MAX: usize = 64;

fn encode_secrets(secrets: &[ReceiveSecret]) -> Vec<u8> {
    let mut out = Vec::with_capacity(secrets.len() * 40);
    for s in secrets {
        out.extend_from_slice(&s.secret);
        let at = s.retired_at.map_or(u64::MAX, Instant::as_micros);
        out.extend_from_slice(&at.to_le_bytes());
    }
    out
}

/// The store's blob back; `None` if it is not one this code wrote (then the node starts
/// without receive keys and says so, rather than trusting odd bytes).
fn decode_secrets(bytes: &[u8]) -> Option<Vec<ReceiveSecret>> {
    if bytes.len() % 40 != 0 || bytes.len() / 40 > RECEIVE_SECRETS_MAX {
        return None;
    }
    Some(
        bytes
            .chunks(40)
            .map(|c| {
                let at = u64::from_le_bytes(c[32..].try_into().expect("8 bytes"));
                ReceiveSecret {
                    secret: c[..32].try_into().expect("32 bytes"),
                    retired_at: (at != u64::MAX).then_some(Instant::from_micros(at)),
                }
            })
            .collect(),
    )
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
    /// Removed by the roster since this input began; dropped as a peer at its end.
    pub(super) fn is_leaving(&self, device: &DeviceId) -> bool {
        self.leaving.contains(device)
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

    /// Reads the membership events of a store that already holds events (a restart), and the
    /// receive secrets they may be sealed to.
    pub(super) fn load_membership(&mut self) -> Result<(), StoreError> {
        if let Some(bytes) = self.store.secrets()? {
            match decode_secrets(&bytes) {
                Some(secrets) => self.membership.receive = secrets,
                None => self.stats.drop("receive_secrets_unreadable"),
            }
        }
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
        // The roster this start settles to is not news: no `MemberChanged` for it.
        self.membership.roster = settle(
            self.config.community.id(),
            &self.config.community.genesis(),
            &self.membership.ops,
        );
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
        let secrets: Vec<[u8; 32]> = self.membership.receive.iter().map(|r| r.secret).collect();
        if let Some(key) = unwrap_key(&self.config.keys, &secrets, op) {
            let id = KeyId::of(&key.key);
            let forgotten = self.membership.superseded.contains_key(&id)
                && self.membership.keys.get(&id).is_none();
            if !forgotten && self.membership.keys.insert(key) {
                let now = self.now;
                let older: Vec<KeyId> = self
                    .membership
                    .keys
                    .iter()
                    .filter(|(_, k)| k.epoch < key.epoch)
                    .map(|(id, _)| *id)
                    .collect();
                for old in older {
                    self.membership.superseded.entry(old).or_insert(now);
                }
                // A key that arrives after a newer one (its share was lost, or came late) is
                // replaced on arrival: its retention runs from now, not from a newer key
                // that may never come.
                if self
                    .membership
                    .keys
                    .iter()
                    .any(|(_, k)| k.epoch > key.epoch)
                {
                    self.membership.superseded.entry(id).or_insert(now);
                }
                // The sealing key is chosen again once the roster has settled this event.
                self.config.community = self
                    .config
                    .community
                    .clone()
                    .with_epoch_keys(self.membership.keys.clone());
                self.membership.receive_rotation_due = true;
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

    /// Chooses the sealing key among the counted epochs held, and hands the community the keys.
    fn refresh_keys(&mut self) {
        let roster = &self.membership.roster;
        self.membership
            .keys
            .choose_sealing(|id| roster.epochs.contains_key(id));
        self.config.community = self
            .config
            .community
            .clone()
            .with_epoch_keys(self.membership.keys.clone());
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
        self.refresh_keys();
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
        self.maintain_receive_key(now);
    }

    /// With a `key_retention`: a receive key from the start, and a fresh one after every new
    /// epoch key, for the next epoch key to be sealed to; the one before is retired (its
    /// secret kept for `key_retention`, for rotations already on their way to it).
    fn maintain_receive_key(&mut self, now: Instant) {
        // Receive keys exist for forward secrecy, which needs keys to be forgotten: a device
        // that keeps every key for ever is served as well by its device key.
        if self.config.key_retention.is_none() {
            return;
        }
        let me = self.config.keys.device.clone();
        let Some(info) = self.membership.roster.members.get(&me) else {
            return;
        };
        if info.status != Status::Active {
            return;
        }
        let published = info.receive_key;
        let current = self
            .membership
            .receive
            .last()
            .filter(|r| r.retired_at.is_none());
        let current_published =
            current.map(|r| x25519_public(&r.secret)) == published && published.is_some();
        if current_published && !self.membership.receive_rotation_due {
            return;
        }
        self.membership.receive_rotation_due = false;
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let mut receive = self.membership.receive.clone();
        if current_published {
            if let Some(last) = receive.last_mut() {
                last.retired_at = Some(now);
            }
        } else {
            // Never published (or lost): nothing was sealed to it, drop it.
            receive.retain(|r| r.retired_at.is_some());
        }
        receive.push(ReceiveSecret {
            secret,
            retired_at: None,
        });
        while receive.len() > RECEIVE_SECRETS_MAX {
            receive.remove(0);
        }
        // Written before it is published: a key others seal to must survive a crash here.
        match self.store.set_secrets(&encode_secrets(&receive)) {
            Ok(true) => {}
            Ok(false) => return, // the store keeps no secrets: stay with the device key
            Err(_) => return self.stats.drop("receive_secrets_store_failed"),
        }
        self.membership.receive = receive;
        let _ = self.append_ops(
            now,
            vec![MemberOp::ReceiveKey {
                key: x25519_public(&secret),
            }],
        );
    }

    /// Forgets what `key_retention` no longer covers: epoch keys replaced that long ago, and
    /// receive secrets retired that long ago. Called every round.
    pub(super) fn expire_keys(&mut self, now: Instant) {
        let Some(retention) = self.config.key_retention else {
            return;
        };
        let due = |since: Instant| since + retention <= now;
        let expired: Vec<KeyId> = self
            .membership
            .superseded
            .iter()
            .filter(|(id, since)| due(**since) && self.membership.keys.get(id).is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.membership.keys.remove(id);
        }
        if !expired.is_empty() {
            self.refresh_keys();
            self.emit(NodeEvent::KeysForgotten {
                count: u32::try_from(expired.len()).unwrap_or(u32::MAX),
            });
        }
        let before = self.membership.receive.len();
        let kept: Vec<ReceiveSecret> = self
            .membership
            .receive
            .iter()
            .filter(|r| !r.retired_at.is_some_and(due))
            .copied()
            .collect();
        if kept.len() != before && self.store.set_secrets(&encode_secrets(&kept)).is_ok() {
            self.membership.receive = kept;
        }
    }

    /// An admin's duties after the roster changed: a new epoch if a removed device holds the
    /// current key, the current key for any active member without it.
    fn maintain_keys(&mut self, now: Instant) {
        let me = self.config.keys.device.clone();
        if !self.membership.roster.is_active(&me) {
            return;
        }
        if !self.membership.roster.is_admin(&me) {
            return self.share_with_those_lacking(now);
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
        self.share_with_those_lacking(now);
    }

    /// Every key this device holds goes to each active member that was never given it: a
    /// member admitted while a rotation was on its way, or one on the other side of a partition
    /// whose events it could not read. Admins pass keys on; a member does only for a key no
    /// active admin holds (the keys of a voided rotation, which only its side has).
    fn share_with_those_lacking(&mut self, now: Instant) {
        let me = self.config.keys.device.clone();
        let roster = &self.membership.roster;
        let i_am_admin = roster.is_admin(&me);
        let mut given: BTreeMap<KeyId, BTreeSet<[u8; 8]>> = roster
            .epochs
            .iter()
            .map(|(id, e)| (*id, e.recipients.clone()))
            .collect();
        for record in self.membership.ops.values() {
            if let MemberOp::Keys { key_id, wraps, .. } = &record.op {
                given
                    .entry(*key_id)
                    .or_default()
                    .extend(wraps.iter().map(|w| w.recipient));
            }
        }
        let mut shares = Vec::new();
        for (id, key) in self.membership.keys.iter() {
            let Some(given) = given.get(id) else { continue };
            let admin_holds = roster
                .active()
                .any(|(_, m)| m.role == Role::Admin && given.contains(&recipient_id(&m.key)));
            if !i_am_admin && admin_holds {
                continue;
            }
            // Not while an event sharing the key waits for its parents: the past it names (a
            // removal, say) is not yet in the roster, which may still show the device it
            // removed as active and the key's own admin as removed.
            let waiting = self.membership.ops.iter().any(|(op_id, record)| {
                matches!(&record.op, MemberOp::Keys { key_id, .. } if key_id == id)
                    && roster.refused.get(op_id) == Some(&"waiting")
            });
            if waiting {
                continue;
            }
            let lacking: Vec<Recipient> = roster
                .active()
                .filter(|(_, m)| !given.contains(&recipient_id(&m.key)))
                .map(|(_, m)| recipient(m))
                .collect();
            if !lacking.is_empty() {
                shares.push((*key, lacking));
            }
        }
        for (key, lacking) in shares {
            let _ = self.share(now, key, &lacking);
        }
    }

    /// Starts a new epoch: a fresh key for every active member (this device included).
    fn start_epoch(&mut self, now: Instant) -> Result<u32, MemberError> {
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let epoch = self.membership.roster.epoch_max() + 1;
        let everyone: Vec<Recipient> = self
            .membership
            .roster
            .active()
            .map(|(_, m)| recipient(m))
            .collect();
        self.share(now, EpochKey { epoch, key }, &everyone)?;
        Ok(epoch)
    }

    fn share(&mut self, now: Instant, key: EpochKey, to: &[Recipient]) -> Result<(), MemberError> {
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
        // No peer is dropped here: this runs inside the handling of a datagram too (a key
        // share answering a stored removal), whose sender may be the device leaving and is
        // still looked up after. `handle_input` drops leaving peers at its end, a verb at its.
        self.append_all(now, bodies).map_err(MemberError::from)
    }

    /// `append_ops` for a verb called from outside: the peers it removed go at once.
    pub(super) fn append_ops_now(
        &mut self,
        now: Instant,
        ops: Vec<MemberOp>,
    ) -> Result<Vec<EventId>, MemberError> {
        let ids = self.append_ops(now, ops)?;
        self.drop_leaving_peers();
        Ok(ids)
    }

    /// What an attacker who takes this device now holds: its device key, the epoch keys it
    /// keeps, and its receive secrets (feature `testing`: the simulator's forward-secrecy
    /// check hands them to an attacker).
    #[cfg(any(test, feature = "testing"))]
    pub fn stolen_keys(
        &self,
    ) -> (
        crate::crypto::DeviceKeys,
        crate::crypto::Community,
        Vec<[u8; 32]>,
    ) {
        (
            self.config.keys.clone(),
            self.config.community.clone(),
            self.membership.receive.iter().map(|r| r.secret).collect(),
        )
    }

    /// The configured peers as the roster settled from the store has them (at start): a device
    /// admitted after genesis becomes a peer, as it did when it was admitted; a removed one is
    /// left out, so it never comes back as a peer with a restart; a name the roster never held
    /// is refused.
    pub(super) fn settle_configured_peers(&mut self) -> Result<(), ConfigError> {
        for peer in self.config.peers.clone() {
            let Some(member) = self.membership.roster.members.get(&peer) else {
                return Err(ConfigError::UnknownPeer(peer.to_string()));
            };
            match member.status {
                Status::Removed => {
                    if self.peers.contains_key(&peer) {
                        self.membership.leaving.insert(peer);
                    }
                }
                Status::Active => {
                    if !self.ensure_peer(&peer) {
                        // `validate` bounded the count: only a small-order key is left.
                        return Err(ConfigError::WeakPeerKey(peer.to_string()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops the peers the roster removed: their keys, links and anything not yet sealed for them.
    pub(super) fn drop_leaving_peers(&mut self) {
        for peer in std::mem::take(&mut self.membership.leaving) {
            self.wire.forget(&peer);
            self.addresses.forget(&peer);
            self.records.forget(&peer);
            self.peers.remove(&peer);
            self.links.remove(&peer);
            self.forward.forget(&peer);
            self.direct_again(&peer);
            // Datagrams already sealed for it stay queued: the removal itself is among them,
            // and the removed device should learn of it.
            self.outbox.remove(&peer);
        }
    }
}

fn recipient(member: &MemberInfo) -> Recipient {
    Recipient {
        device_key: member.key,
        receive_key: member.receive_key,
    }
}
