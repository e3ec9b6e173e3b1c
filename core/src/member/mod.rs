//! Membership: who is in the community, with which role, and which key epoch seals events.
//!
//! Everything here is carried by the log itself. A roster change is a `Membership` event an
//! admin signs; it names the membership heads its author held (`parents`), so the changes form
//! a graph that every device orders alike. [`roster::settle`] turns the genesis roster (the
//! devices of `community new`) and the membership events held into the roster and the key
//! epochs: a pure function of the set of events, so every device converges on the same roster
//! with no server.
//!
//! - [`op`]: the changes (add, remove, set role, admit with an invite, share an epoch key) and
//!   their encoding.
//! - [`roster`]: the merge rule, for concurrent changes too.
//! - [`person`]: a person's identity key certifying each of their devices.
//! - [`invite`]: capability tokens an admin signs; the proof a joining device makes.
//! - [`welcome`]: what the admitting member sends the new device (keys, genesis, the log's
//!   membership events), sealed to the new device's key.
//!
//! Keys: epoch 0 is the community's pre-shared key. A removal (or an admin on demand) starts
//! epoch n+1: a fresh random key, sealed to each remaining member's device key
//! (`crypto::sealed_box`) in `Keys` events. Events are sealed under the newest epoch key a
//! device holds, and name it by [`KeyId`], so a removed device, which is given no copy, opens
//! nothing sealed after its removal.

use std::collections::BTreeMap;

use crate::crypto::sealed_box::{open_box, open_box_x25519, Ephemeral};
use crate::crypto::{DeviceKeys, PublicKey};

pub mod invite;
pub mod join;
pub mod op;
pub mod person;
pub mod roster;
pub mod welcome;

pub use invite::{Grant, Invite, InviteError};
pub use op::{Admission, MemberOp, Role, Wrap, PARENTS_MAX, WRAPS_PER_EVENT_MAX};
pub use person::PersonInfo;
pub use person::{Certificate, PersonKeys};
pub use roster::{EpochInfo, MemberInfo, OpRecord, Roster, Status};

/// Names an epoch key in a sealed event's header: the first 8 bytes of its BLAKE3 hash under
/// a context of its own (so the id reveals nothing of the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn of(key: &[u8; 32]) -> Self {
        let hash = blake3::derive_key("meshlog epoch key id v1", key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&hash[..8]);
        KeyId(id)
    }
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An epoch key this device holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EpochKey {
    pub epoch: u32,
    pub key: [u8; 32],
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EpochKey({}, {})",
            self.epoch,
            KeyId::of(&self.key).to_hex()
        )
    }
}

/// Which wrap is a member's: 8 bytes of the hash of its public key.
pub fn recipient_id(key: &PublicKey) -> [u8; 8] {
    let hash = blake3::derive_key("meshlog wrap recipient v1", &key.to_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[..8]);
    id
}

fn wrap_context(epoch: u32, key_id: &KeyId) -> Vec<u8> {
    let mut context = b"meshlog epoch key v1".to_vec();
    context.extend_from_slice(&epoch.to_be_bytes());
    context.extend_from_slice(&key_id.0);
    context
}

/// Where a member's copy of an epoch key is sealed to: its newest receive key if it published
/// one (forward secrecy: that key's secret is deleted later), else its device key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub device_key: PublicKey,
    pub receive_key: Option<[u8; 32]>,
}

/// The `Keys` operations that give `key` (epoch `epoch`) to each of `recipients`, at most
/// [`WRAPS_PER_EVENT_MAX`] per event. `ephemeral_secret` comes from the caller's seeded RNG.
pub fn share_key(
    epoch: u32,
    key: &[u8; 32],
    recipients: &[Recipient],
    ephemeral_secret: [u8; 32],
) -> Vec<MemberOp> {
    let key_id = KeyId::of(key);
    let ephemeral = Ephemeral::from_secret(ephemeral_secret);
    let context = wrap_context(epoch, &key_id);
    let wraps: Vec<Wrap> = recipients
        .iter()
        .filter_map(|recipient| {
            let sealed = match &recipient.receive_key {
                Some(receive) => ephemeral.seal_to_x25519(receive, &context, key)?,
                None => ephemeral.seal(&recipient.device_key, &context, key)?,
            };
            Some(Wrap {
                recipient: recipient_id(&recipient.device_key),
                sealed: sealed
                    .try_into()
                    .expect("32 bytes sealed is WRAPPED_KEY_LEN"),
            })
        })
        .collect();
    wraps
        .chunks(WRAPS_PER_EVENT_MAX)
        .map(|chunk| MemberOp::Keys {
            epoch,
            key_id,
            ephemeral: ephemeral.public(),
            wraps: chunk.to_vec(),
        })
        .collect()
}

/// This device's copy of the key a `Keys` operation shares, if it holds a wrap for it that
/// opens with its device key or one of its receive secrets, and the key opened is the one the
/// operation names.
pub fn unwrap_key(
    me: &DeviceKeys,
    receive_secrets: &[[u8; 32]],
    op: &MemberOp,
) -> Option<EpochKey> {
    let MemberOp::Keys {
        epoch,
        key_id,
        ephemeral,
        wraps,
    } = op
    else {
        return None;
    };
    let mine = recipient_id(&me.public());
    let wrap = wraps.iter().find(|w| w.recipient == mine)?;
    let context = wrap_context(*epoch, key_id);
    let opened = receive_secrets
        .iter()
        .find_map(|secret| open_box_x25519(secret, ephemeral, &context, &wrap.sealed))
        .or_else(|| open_box(me, ephemeral, &context, &wrap.sealed))?;
    let key: [u8; 32] = opened.try_into().ok()?;
    (KeyId::of(&key) == *key_id).then_some(EpochKey { epoch: *epoch, key })
}

/// The keys a device holds, by id, and the one it seals with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochKeys {
    keys: BTreeMap<KeyId, EpochKey>,
    /// Chosen by the node among the keys the roster counts (`choose_sealing`): a key any
    /// member can hand this device is good for opening, never for sealing.
    sealing: Option<KeyId>,
}

impl EpochKeys {
    pub fn insert(&mut self, key: EpochKey) -> bool {
        self.keys.insert(KeyId::of(&key.key), key).is_none()
    }
    pub fn get(&self, id: &KeyId) -> Option<&EpochKey> {
        self.keys.get(id)
    }
    /// Seals with the newest held key that `counted` accepts (a key an admin's counted event
    /// started): the highest epoch, the lowest id among concurrent rotations of it.
    pub fn choose_sealing(&mut self, counted: impl Fn(&KeyId) -> bool) {
        self.sealing = self
            .keys
            .iter()
            .filter(|(id, _)| counted(id))
            .max_by(|(a_id, a), (b_id, b)| a.epoch.cmp(&b.epoch).then(b_id.cmp(a_id)))
            .map(|(id, _)| *id);
    }
    /// The key new events are sealed under; `None` for the community key (epoch 0).
    pub fn current(&self) -> Option<(KeyId, &EpochKey)> {
        let id = self.sealing?;
        self.keys.get(&id).map(|key| (id, key))
    }
    pub fn epoch(&self) -> u32 {
        self.current().map_or(0, |(_, k)| k.epoch)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, &EpochKey)> {
        self.keys.iter()
    }
    /// Forgets a key (its retention passed): what it sealed is unreadable here from now on.
    pub fn remove(&mut self, id: &KeyId) -> Option<EpochKey> {
        if self.sealing == Some(*id) {
            self.sealing = None;
        }
        self.keys.remove(id)
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
