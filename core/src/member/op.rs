//! Membership operations: what a `Membership` event says, and its canonical encoding.

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::PublicKey;
use crate::id::{DeviceId, EventId};

use super::invite::Grant;
use super::person::Certificate;
use super::KeyId;

/// Most parents a membership event names: the membership heads its author held. More heads
/// than this at once means more than eight concurrent changes; the rest count as concurrent.
pub const PARENTS_MAX: usize = 8;
/// Most wraps in one rotation event: what fits one datagram beside the event's framing.
pub const WRAPS_PER_EVENT_MAX: usize = 12;
/// A wrapped epoch key: the 32-byte key sealed to one member.
pub const WRAPPED_KEY_LEN: usize = 32 + crate::crypto::sealed_box::SEALED_BOX_OVERHEAD;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Changes the roster, rotates keys, makes invites.
    Admin,
    /// Reads and writes; may admit a device that holds a valid invite.
    Member,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
    fn code(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::Member => 2,
        }
    }
    fn from_code(code: u8) -> Result<Role, DecodeError> {
        match code {
            1 => Ok(Role::Admin),
            2 => Ok(Role::Member),
            other => Err(DecodeError::invalid("role", format!("{other}"))),
        }
    }
}

/// One member's copy of an epoch key, sealed to its device key (`crypto::sealed_box`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrap {
    /// `recipient_id` of the member's public key.
    pub recipient: [u8; 8],
    pub sealed: [u8; WRAPPED_KEY_LEN],
}

/// A device's admission: the invite's grant and the device's proof that it holds the invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub grant: Grant,
    pub device: DeviceId,
    pub key: PublicKey,
    /// The joining device's proof: the invite's key signed `(community, device, key)`.
    pub proof: [u8; 64],
}

/// What a membership event does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// An admin adds a device it knows the key of.
    Add {
        device: DeviceId,
        key: PublicKey,
        role: Role,
    },
    /// An admin removes a device (and, in the same append, starts a new key epoch).
    Remove { device: DeviceId },
    /// An admin changes a member's role.
    SetRole { device: DeviceId, role: Role },
    /// Any member admits a device that proved it holds an admin's invite.
    Admit(Box<Admission>),
    /// A member publishes a fresh X25519 key that the next epoch keys are sealed to, and
    /// deletes the secret of the one before once its retention passes: what makes an epoch key
    /// unreadable later even to whoever steals the device's long-term key (forward secrecy).
    ReceiveKey { key: [u8; 32] },
    /// A device says whose it is: a person's certificate for it (`member::person`), published
    /// by the device itself.
    Certify(Box<Certificate>),
    /// An admin removes a person: every device certified for them, now or later.
    RemovePerson { person: DeviceId },
    /// An admin shares an epoch key: a new epoch (a rotation), or an existing one with members
    /// who lack it. A rotation for many members is several of these with the same key id.
    Keys {
        epoch: u32,
        key_id: KeyId,
        ephemeral: [u8; 32],
        wraps: Vec<Wrap>,
    },
}

impl MemberOp {
    pub fn name(&self) -> &'static str {
        match self {
            MemberOp::Add { .. } => "add",
            MemberOp::Remove { .. } => "remove",
            MemberOp::SetRole { .. } => "set_role",
            MemberOp::Admit { .. } => "admit",
            MemberOp::Keys { .. } => "keys",
            MemberOp::ReceiveKey { .. } => "receive_key",
            MemberOp::Certify(_) => "certify",
            MemberOp::RemovePerson { .. } => "remove_person",
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            MemberOp::Add { device, key, role } => {
                w.u8(1)
                    .bytes_u8(device.as_str().as_bytes())
                    .raw(&key.to_bytes())
                    .u8(role.code());
            }
            MemberOp::Remove { device } => {
                w.u8(2).bytes_u8(device.as_str().as_bytes());
            }
            MemberOp::SetRole { device, role } => {
                w.u8(3).bytes_u8(device.as_str().as_bytes()).u8(role.code());
            }
            MemberOp::Admit(admission) => {
                let Admission {
                    grant,
                    device,
                    key,
                    proof,
                } = admission.as_ref();
                w.u8(4);
                grant.encode(w);
                w.bytes_u8(device.as_str().as_bytes())
                    .raw(&key.to_bytes())
                    .raw(proof);
            }
            MemberOp::ReceiveKey { key } => {
                w.u8(6).raw(key);
            }
            MemberOp::Certify(cert) => {
                w.u8(7);
                cert.encode(w);
            }
            MemberOp::RemovePerson { person } => {
                w.u8(8).bytes_u8(person.as_str().as_bytes());
            }
            MemberOp::Keys {
                epoch,
                key_id,
                ephemeral,
                wraps,
            } => {
                let count =
                    u8::try_from(wraps.len()).expect("validated: at most WRAPS_PER_EVENT_MAX");
                w.u8(5).u32(*epoch).raw(&key_id.0).raw(ephemeral).u8(count);
                for wrap in wraps {
                    w.raw(&wrap.recipient).raw(&wrap.sealed);
                }
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("membership op")? {
            1 => MemberOp::Add {
                device: device(r)?,
                key: public_key(r)?,
                role: Role::from_code(r.u8("role")?)?,
            },
            2 => MemberOp::Remove { device: device(r)? },
            3 => MemberOp::SetRole {
                device: device(r)?,
                role: Role::from_code(r.u8("role")?)?,
            },
            4 => MemberOp::Admit(Box::new(Admission {
                grant: Grant::decode(r)?,
                device: device(r)?,
                key: public_key(r)?,
                proof: r.array("join proof")?,
            })),
            5 => {
                let epoch = r.u32("epoch")?;
                let key_id = KeyId(r.array("key id")?);
                let ephemeral = r.array("ephemeral key")?;
                let count = r.u8("wrap count")? as usize;
                if count == 0 || count > WRAPS_PER_EVENT_MAX {
                    return Err(DecodeError::invalid(
                        "wrap count",
                        format!("{count}, 1..={WRAPS_PER_EVENT_MAX}"),
                    ));
                }
                let mut wraps = Vec::with_capacity(count);
                for _ in 0..count {
                    wraps.push(Wrap {
                        recipient: r.array("wrap recipient")?,
                        sealed: r.array("wrapped key")?,
                    });
                }
                MemberOp::Keys {
                    epoch,
                    key_id,
                    ephemeral,
                    wraps,
                }
            }
            6 => MemberOp::ReceiveKey {
                key: r.array("receive key")?,
            },
            7 => MemberOp::Certify(Box::new(Certificate::decode(r)?)),
            8 => MemberOp::RemovePerson { person: device(r)? },
            other => {
                return Err(DecodeError::invalid(
                    "membership op",
                    format!("unknown op {other}"),
                ))
            }
        })
    }

    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        if let MemberOp::Keys { wraps, epoch, .. } = self {
            if wraps.is_empty() || wraps.len() > WRAPS_PER_EVENT_MAX {
                return Err(DecodeError::invalid(
                    "wrap count",
                    format!("{}, 1..={WRAPS_PER_EVENT_MAX}", wraps.len()),
                ));
            }
            if *epoch == 0 {
                return Err(DecodeError::invalid(
                    "epoch",
                    "0 is the community's own key",
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn encode_parents(parents: &[EventId], w: &mut Writer) {
    let count = u8::try_from(parents.len()).expect("validated: at most PARENTS_MAX");
    w.u8(count);
    for parent in parents {
        w.raw(&parent.0);
    }
}

pub(crate) fn decode_parents(r: &mut Reader<'_>) -> Result<Vec<EventId>, DecodeError> {
    let count = r.u8("parent count")? as usize;
    if count > PARENTS_MAX {
        return Err(DecodeError::invalid(
            "parent count",
            format!("{count}, at most {PARENTS_MAX}"),
        ));
    }
    (0..count).map(|_| r.array("parent").map(EventId)).collect()
}

fn device(r: &mut Reader<'_>) -> Result<DeviceId, DecodeError> {
    DeviceId::new(r.str_u8("device")?)
        .ok_or_else(|| DecodeError::invalid("device", "not a device name"))
}

fn public_key(r: &mut Reader<'_>) -> Result<PublicKey, DecodeError> {
    let bytes: [u8; 32] = r.array("public key")?;
    let key = PublicKey::from_bytes(&bytes)
        .ok_or_else(|| DecodeError::invalid("public key", "not a curve point"))?;
    if key.is_weak() {
        return Err(DecodeError::invalid("public key", "small order"));
    }
    Ok(key)
}
