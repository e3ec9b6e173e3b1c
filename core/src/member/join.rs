//! The new device's side of joining: a small sans-IO state machine that sends the join
//! request to the inviter until a welcome arrives, then hands over what the device needs to
//! start its node (the community and the membership events to store first).
//!
//! ```text
//!   Joiner::new(keys, invite) ─> poll_transmit(now) ─> datagram for invite.address
//!   handle_datagram(bytes) ─────> Some(Welcomed)   (then: store its events, start a Node)
//! ```

use std::collections::BTreeMap;

use thiserror::Error;

use crate::crypto::{Community, DeviceKeys};
use crate::event::{open, EventBody, OpenedEvent};
use crate::id::DeviceId;
use crate::time::{Duration, Instant};

use super::invite::Invite;
use super::roster::{settle, OpRecord};
use super::welcome::{open_welcome, JoinDatagram, JoinRequest};

/// How often the request is sent again while no welcome has come.
pub const JOIN_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Requests sent before giving up: a minute of trying.
pub const JOIN_ATTEMPTS_MAX: u32 = 60;
/// Welcomes (by ephemeral key) assembled at once: a re-sent welcome has a fresh ephemeral key,
/// so its parts do not mix with the first one's.
const WELCOMES_ASSEMBLED_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JoinError {
    #[error("the welcome is for another community")]
    WrongCommunity,
    #[error("the welcome does not admit this device (the invite may be used up or expired)")]
    NotAdmitted,
    #[error("no welcome after {0} requests")]
    GaveUp(u32),
}

/// What a welcome gave: start a node with this community over a store holding these events.
#[derive(Debug)]
pub struct Welcomed {
    pub community: Community,
    pub events: Vec<OpenedEvent>,
    pub inviter: DeviceId,
}

#[derive(Debug)]
pub struct Joiner {
    keys: DeviceKeys,
    invite: Invite,
    request: Vec<u8>,
    next_send_at: Instant,
    attempts: u32,
    /// Parts received, per welcome (its ephemeral key).
    assembling: BTreeMap<[u8; 32], Assembly>,
}

/// A welcome's parts as they arrive: how many there are, and those received, by index.
type Assembly = (u8, BTreeMap<u8, Vec<u8>>);

impl Joiner {
    pub fn new(keys: DeviceKeys, invite: Invite) -> Self {
        let proof = invite.prove(&keys.device, &keys.public());
        let request = JoinRequest {
            grant: invite.grant.clone(),
            device: keys.device.clone(),
            key: keys.public(),
            proof,
        }
        .encode();
        Joiner {
            keys,
            invite,
            request,
            next_send_at: Instant::ZERO,
            attempts: 0,
            assembling: BTreeMap::new(),
        }
    }

    pub fn invite(&self) -> &Invite {
        &self.invite
    }

    /// The request, when one is due; `Err` once it has been sent `JOIN_ATTEMPTS_MAX` times.
    pub fn poll_transmit(&mut self, now: Instant) -> Result<Option<Vec<u8>>, JoinError> {
        if now < self.next_send_at {
            return Ok(None);
        }
        if self.attempts >= JOIN_ATTEMPTS_MAX {
            return Err(JoinError::GaveUp(self.attempts));
        }
        self.attempts += 1;
        self.next_send_at = now + JOIN_RETRY_INTERVAL;
        Ok(Some(self.request.clone()))
    }

    /// When to call `poll_transmit` again.
    pub fn poll_timeout(&self) -> Instant {
        self.next_send_at
    }

    /// A datagram from anywhere: a welcome part for this device is kept; a complete welcome
    /// is opened and checked. Anything else is ignored (`Ok(None)`).
    pub fn handle_datagram(&mut self, bytes: &[u8]) -> Result<Option<Welcomed>, JoinError> {
        let Ok(JoinDatagram::Welcome(part)) = JoinDatagram::decode(bytes) else {
            return Ok(None);
        };
        if part.device != self.keys.device
            || part.invite_key != self.invite.grant.invite_key.to_bytes()
        {
            return Ok(None);
        }
        if !self.assembling.contains_key(&part.ephemeral)
            && self.assembling.len() >= WELCOMES_ASSEMBLED_MAX
        {
            return Ok(None);
        }
        let (parts, chunks) = self
            .assembling
            .entry(part.ephemeral)
            .or_insert((part.parts, BTreeMap::new()));
        if *parts != part.parts {
            return Ok(None);
        }
        chunks.insert(part.part, part.chunk);
        if chunks.len() < usize::from(*parts) {
            return Ok(None);
        }
        let sealed: Vec<u8> = chunks.values().flatten().copied().collect();
        let ephemeral = part.ephemeral;
        self.assembling.remove(&ephemeral);
        let Some(content) = open_welcome(
            &self.keys,
            &self.invite.grant.invite_key.to_bytes(),
            &ephemeral,
            &sealed,
        ) else {
            return Ok(None); // not sealed to us: someone else's, or forged
        };
        let community = content.community();
        if community.id() != &self.invite.grant.community {
            return Err(JoinError::WrongCommunity);
        }
        // The membership events settle the roster; this device must be in it.
        let mut events = Vec::new();
        let mut ops = BTreeMap::new();
        let mut pending = content.events;
        let mut community = community;
        loop {
            let before = pending.len();
            pending.retain(|sealed| match open(sealed, &community) {
                Ok(opened) => {
                    if let EventBody::Membership { parents, op } = &opened.event.body {
                        ops.insert(
                            opened.id,
                            OpRecord {
                                author: opened.event.author.clone(),
                                created_at: opened.event.created_at,
                                parents: parents.clone(),
                                op: op.as_ref().clone(),
                            },
                        );
                        events.push(opened);
                    }
                    false
                }
                Err(_) => true,
            });
            let roster = settle(community.id(), &community.genesis(), &ops);
            community = community.with_members(
                roster
                    .members
                    .iter()
                    .map(|(d, m)| (d.clone(), m.key))
                    .collect(),
            );
            if pending.len() == before {
                if !roster.is_active(&self.keys.device)
                    || roster.members[&self.keys.device].key != self.keys.public()
                {
                    return Err(JoinError::NotAdmitted);
                }
                break;
            }
        }
        Ok(Some(Welcomed {
            community,
            events,
            inviter: content.inviter,
        }))
    }
}
