//! Joining over the wire: the request a new device sends its inviter, and the welcome it gets
//! back. Neither is a pairwise-tagged packet (the new device shares no key with anyone yet),
//! so both start with their own magic and are checked by what they carry:
//!
//! ```text
//! request = "MJ" | 1 | kind = 1 | grant | device:str8 | device key:[u8; 32] | proof:[u8; 64]
//! part    = "MJ" | 1 | kind = 2 | device:str8 | invite key:[u8; 32] | ephemeral:[u8; 32]
//!           | part:u8 | parts:u8 | chunk
//! welcome = sealed_box(device key, context = domain | invite key | device,
//!           community key | genesis | epoch keys | membership events | inviter)
//! ```
//!
//! The request is public: the grant and the proof are signatures anyone may check, and the
//! proof binds the device's name and key, so whoever copies a request can only get the same
//! device admitted again. The welcome is one sealed box cut into parts of at most
//! `WELCOME_CHUNK_LEN` bytes: only the device that made the key opens it, and a welcome not
//! from a member cannot give the community key that hashes to the grant's community id.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::sealed_box::{open_box, Ephemeral};
use crate::crypto::{Community, DeviceKeys, PublicKey};
use crate::id::DeviceId;

use super::invite::Grant;
use super::op::Role;
use super::{EpochKey, EpochKeys};

pub const JOIN_MAGIC: &[u8; 2] = b"MJ";
const JOIN_VERSION: u8 = 1;
const KIND_REQUEST: u8 = 1;
const KIND_WELCOME: u8 = 2;
/// Bytes of the sealed welcome per datagram (with its header, under 1,200).
pub const WELCOME_CHUNK_LEN: usize = 1_024;
/// Most parts of one welcome: 64 KiB, about 200 membership events and a genesis of 300. A
/// larger community's welcome is refused (`welcome_too_large`) until the welcome learns to
/// leave the membership events to the sync.
pub const WELCOME_PARTS_MAX: usize = 64;

/// Whether a datagram is a join datagram (rather than a tagged packet).
pub fn is_join_datagram(bytes: &[u8]) -> bool {
    bytes.starts_with(JOIN_MAGIC)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub grant: Grant,
    pub device: DeviceId,
    pub key: PublicKey,
    pub proof: [u8; 64],
}

impl JoinRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(JOIN_MAGIC).u8(JOIN_VERSION).u8(KIND_REQUEST);
        self.grant.encode(&mut w);
        w.bytes_u8(self.device.as_str().as_bytes())
            .raw(&self.key.to_bytes())
            .raw(&self.proof);
        w.bytes
    }
}

/// One part of a welcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomePart {
    pub device: DeviceId,
    pub invite_key: [u8; 32],
    pub ephemeral: [u8; 32],
    pub part: u8,
    pub parts: u8,
    pub chunk: Vec<u8>,
}

impl WelcomePart {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(JOIN_MAGIC).u8(JOIN_VERSION).u8(KIND_WELCOME);
        w.bytes_u8(self.device.as_str().as_bytes())
            .raw(&self.invite_key)
            .raw(&self.ephemeral)
            .u8(self.part)
            .u8(self.parts)
            .bytes_u16(&self.chunk);
        w.bytes
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinDatagram {
    /// Boxed: a request (two keys and two signatures) is five times a part's header.
    Request(Box<JoinRequest>),
    Welcome(WelcomePart),
}

impl JoinDatagram {
    /// Never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > crate::packet::DATAGRAM_SIZE_MAX {
            return Err(DecodeError::invalid("join datagram", "over 1,200 bytes"));
        }
        let mut r = Reader::new(bytes);
        if r.take(2, "join magic")? != JOIN_MAGIC {
            return Err(DecodeError::invalid("join magic", "not MJ"));
        }
        let version = r.u8("join version")?;
        if version != JOIN_VERSION {
            return Err(DecodeError::invalid("join version", format!("{version}")));
        }
        let datagram = match r.u8("join kind")? {
            KIND_REQUEST => {
                let grant = Grant::decode(&mut r)?;
                let device = device(&mut r)?;
                let key = PublicKey::from_bytes(&r.array("device key")?)
                    .filter(|k| !k.is_weak())
                    .ok_or_else(|| DecodeError::invalid("device key", "not a usable key"))?;
                let proof = r.array("join proof")?;
                JoinDatagram::Request(Box::new(JoinRequest {
                    grant,
                    device,
                    key,
                    proof,
                }))
            }
            KIND_WELCOME => {
                let device = device(&mut r)?;
                let invite_key = r.array("invite key")?;
                let ephemeral = r.array("ephemeral key")?;
                let part = r.u8("part")?;
                let parts = r.u8("parts")?;
                if parts == 0 || usize::from(parts) > WELCOME_PARTS_MAX || part >= parts {
                    return Err(DecodeError::invalid(
                        "welcome part",
                        format!("{part} of {parts}"),
                    ));
                }
                let chunk = r.bytes_u16("welcome chunk")?.to_vec();
                if chunk.len() > WELCOME_CHUNK_LEN {
                    return Err(DecodeError::invalid("welcome chunk", "too long"));
                }
                JoinDatagram::Welcome(WelcomePart {
                    device,
                    invite_key,
                    ephemeral,
                    part,
                    parts,
                    chunk,
                })
            }
            other => return Err(DecodeError::invalid("join kind", format!("{other}"))),
        };
        r.finish()?;
        Ok(datagram)
    }
}

fn device(r: &mut Reader<'_>) -> Result<DeviceId, DecodeError> {
    DeviceId::new(r.str_u8("device")?)
        .ok_or_else(|| DecodeError::invalid("device", "not a device name"))
}

/// What a welcome gives a new device.
#[derive(Clone, Debug)]
pub struct WelcomeContent {
    pub community_key: [u8; 32],
    pub genesis: BTreeMap<DeviceId, (PublicKey, Role)>,
    pub epoch_keys: Vec<EpochKey>,
    /// The sealed bytes of every membership event the inviter held (its admission included).
    pub events: Vec<Vec<u8>>,
    pub inviter: DeviceId,
}

impl WelcomeContent {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.community_key);
        w.u16(u16::try_from(self.genesis.len()).expect("bounded by the welcome's size"));
        for (device, (key, role)) in &self.genesis {
            w.bytes_u8(device.as_str().as_bytes())
                .raw(&key.to_bytes())
                .u8(u8::from(*role == Role::Admin));
        }
        w.u16(u16::try_from(self.epoch_keys.len()).expect("bounded by the welcome's size"));
        for key in &self.epoch_keys {
            w.u32(key.epoch).raw(&key.key);
        }
        w.u16(u16::try_from(self.events.len()).expect("bounded by the welcome's size"));
        for event in &self.events {
            w.bytes_u16(event);
        }
        w.bytes_u8(self.inviter.as_str().as_bytes());
        w.bytes
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let community_key = r.array("community key")?;
        let mut genesis = BTreeMap::new();
        for _ in 0..r.u16("genesis count")? {
            let device = device(&mut r)?;
            let key = PublicKey::from_bytes(&r.array("genesis key")?)
                .ok_or_else(|| DecodeError::invalid("genesis key", "not a curve point"))?;
            let role = if r.bool("admin flag")? {
                Role::Admin
            } else {
                Role::Member
            };
            genesis.insert(device, (key, role));
        }
        let mut epoch_keys = Vec::new();
        for _ in 0..r.u16("epoch key count")? {
            epoch_keys.push(EpochKey {
                epoch: r.u32("epoch")?,
                key: r.array("epoch key")?,
            });
        }
        let mut events = Vec::new();
        for _ in 0..r.u16("event count")? {
            events.push(r.bytes_u16("membership event")?.to_vec());
        }
        let inviter = device(&mut r)?;
        r.finish()?;
        Ok(WelcomeContent {
            community_key,
            genesis,
            epoch_keys,
            events,
            inviter,
        })
    }

    /// The community this welcome describes, as the new device will hold it.
    pub fn community(&self) -> Community {
        let genesis_keys = self
            .genesis
            .iter()
            .map(|(d, (k, _))| (d.clone(), *k))
            .collect();
        let admins = self
            .genesis
            .iter()
            .filter(|(_, (_, role))| *role == Role::Admin)
            .map(|(d, _)| d.clone());
        let mut keys = EpochKeys::default();
        for key in &self.epoch_keys {
            keys.insert(*key);
        }
        Community::new(self.community_key, genesis_keys)
            .with_admins(admins)
            .with_epoch_keys(keys)
    }
}

fn welcome_context(invite_key: &[u8; 32], device: &DeviceId) -> Vec<u8> {
    let mut context = b"meshlog welcome v1".to_vec();
    context.extend_from_slice(invite_key);
    context.extend_from_slice(device.as_str().as_bytes());
    context
}

/// Seals `content` to `key` and cuts it into datagrams; `None` if it needs more than
/// `WELCOME_PARTS_MAX` parts (or the key has small order).
pub fn seal_welcome(
    content: &WelcomeContent,
    device: &DeviceId,
    key: &PublicKey,
    invite_key: [u8; 32],
    ephemeral_secret: [u8; 32],
) -> Option<Vec<Vec<u8>>> {
    let ephemeral = Ephemeral::from_secret(ephemeral_secret);
    let sealed = ephemeral.seal(
        key,
        &welcome_context(&invite_key, device),
        &content.encode(),
    )?;
    let parts = sealed.len().div_ceil(WELCOME_CHUNK_LEN);
    if parts > WELCOME_PARTS_MAX {
        return None;
    }
    let parts = u8::try_from(parts).expect("at most WELCOME_PARTS_MAX");
    Some(
        sealed
            .chunks(WELCOME_CHUNK_LEN)
            .enumerate()
            .map(|(i, chunk)| {
                WelcomePart {
                    device: device.clone(),
                    invite_key,
                    ephemeral: ephemeral.public(),
                    part: i as u8,
                    parts,
                    chunk: chunk.to_vec(),
                }
                .encode()
            })
            .collect(),
    )
}

/// Opens a reassembled welcome: `None` if it is not sealed to `me` for this invite, or does
/// not decode.
pub fn open_welcome(
    me: &DeviceKeys,
    invite_key: &[u8; 32],
    ephemeral: &[u8; 32],
    sealed: &[u8],
) -> Option<WelcomeContent> {
    let plain = open_box(
        me,
        ephemeral,
        &welcome_context(invite_key, &me.device),
        sealed,
    )?;
    WelcomeContent::decode(&plain).ok()
}
