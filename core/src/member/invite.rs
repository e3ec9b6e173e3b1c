//! Invites: capability tokens an admin signs, which let a new device join.
//!
//! ```text
//! grant  = community id | invite key (Ed25519 public) | role | expires_at_us | uses | admin
//!          | admin's signature over all of it
//! token  = "meshlog-invite-1." base64url( grant | invite secret | inviter name | inviter address )
//! proof  = invite secret's signature over (domain | community id | device | device key)
//! ```
//!
//! The token is a bearer capability: whoever holds it may join, as often as `uses` allows.
//! The secret never enters the log. The joining device proves it holds the secret by signing
//! its own name and key with it, so an eavesdropper who sees a join request cannot admit a
//! different key with it; the admission event carries the grant and that proof, so every
//! member checks both signatures itself. Expiry is checked against the admitting member's
//! clock; the use count against every admission it knows (`roster.rs` settles admissions made
//! concurrently on both sides of a partition).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{DeviceKeys, PublicKey, SIGNATURE_LEN};
use crate::id::DeviceId;
use crate::time::Instant;

use super::op::Role;

const GRANT_DOMAIN: &[u8] = b"meshlog invite grant v1";
const PROOF_DOMAIN: &[u8] = b"meshlog join proof v1";
const TOKEN_PREFIX: &str = "meshlog-invite-1.";
/// Longest inviter address a token carries ("[v6 address]:port" fits).
pub const ADDRESS_LEN_MAX: usize = 64;
/// Most uses one invite may grant.
pub const INVITE_USES_MAX: u16 = 1000;
/// Longest token text: bounds what a handler parses.
pub const TOKEN_LEN_MAX: usize = 1024;

/// The signed, public part of an invite: what an admission event carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub community: [u8; 16],
    pub invite_key: PublicKey,
    pub role: Role,
    pub expires_at: Instant,
    pub uses: u16,
    pub admin: DeviceId,
    pub signature: [u8; SIGNATURE_LEN],
}

/// An invite as the admin hands it over: the grant, the secret that proves holding it, and
/// where to find the inviter.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    pub grant: Grant,
    secret: [u8; 32],
    pub inviter: DeviceId,
    /// Free text for the driver (a `host:port`); the core never reads it.
    pub address: String,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("grant", &self.grant)
            .field("inviter", &self.inviter)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InviteError {
    #[error("not an invite token: {0}")]
    Malformed(String),
    #[error("the invite is for another community")]
    WrongCommunity,
    #[error("the invite's signature does not verify")]
    Forged,
    #[error("the invite expired")]
    Expired,
    #[error("the invite is used up")]
    UsedUp,
    #[error("the invite was signed by {0}, who is not an admin")]
    NotAnAdmin(String),
    #[error("the join proof does not verify")]
    BadProof,
    #[error("{0} is already a member")]
    AlreadyMember(String),
    #[error("{0} was removed from this community")]
    Removed(String),
}

impl InviteError {
    /// Stable snake_case name for counters and the API.
    pub fn code(&self) -> &'static str {
        match self {
            InviteError::Malformed(_) => "malformed",
            InviteError::WrongCommunity => "wrong_community",
            InviteError::Forged => "forged",
            InviteError::Expired => "expired",
            InviteError::UsedUp => "used_up",
            InviteError::NotAnAdmin(_) => "not_an_admin",
            InviteError::BadProof => "bad_proof",
            InviteError::AlreadyMember(_) => "already_member",
            InviteError::Removed(_) => "removed",
        }
    }
}

impl Grant {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(GRANT_DOMAIN);
        self.encode_unsigned(&mut w);
        w.bytes
    }
    fn encode_unsigned(&self, w: &mut Writer) {
        w.raw(&self.community)
            .raw(&self.invite_key.to_bytes())
            .u8(match self.role {
                Role::Admin => 1,
                Role::Member => 2,
            })
            .u64(self.expires_at.as_micros())
            .u16(self.uses)
            .bytes_u8(self.admin.as_str().as_bytes());
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.signature);
    }
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let community = r.array("invite community")?;
        let invite_key = PublicKey::from_bytes(&r.array("invite key")?)
            .ok_or_else(|| DecodeError::invalid("invite key", "not a curve point"))?;
        let role = match r.u8("invite role")? {
            1 => Role::Admin,
            2 => Role::Member,
            other => return Err(DecodeError::invalid("invite role", format!("{other}"))),
        };
        let expires_at = Instant::from_micros(r.u64("invite expiry")?);
        let uses = r.u16("invite uses")?;
        if uses == 0 || uses > INVITE_USES_MAX {
            return Err(DecodeError::invalid(
                "invite uses",
                format!("{uses}, 1..={INVITE_USES_MAX}"),
            ));
        }
        let admin = DeviceId::new(r.str_u8("invite admin")?)
            .ok_or_else(|| DecodeError::invalid("invite admin", "not a device name"))?;
        let signature = r.array("invite signature")?;
        Ok(Grant {
            community,
            invite_key,
            role,
            expires_at,
            uses,
            admin,
            signature,
        })
    }
    /// Whether `admin_key` signed this grant (the caller checks the signer is an admin).
    pub fn verify(&self, admin_key: &PublicKey) -> bool {
        admin_key.verify(&self.signed_bytes(), &self.signature)
    }
    /// An id for counting uses: the invite key, which is fresh per invite.
    pub fn id(&self) -> [u8; 32] {
        self.invite_key.to_bytes()
    }
}

/// What the joining device signs with the invite secret.
pub(crate) fn proof_bytes(community: &[u8; 16], device: &DeviceId, key: &PublicKey) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(PROOF_DOMAIN)
        .raw(community)
        .bytes_u8(device.as_str().as_bytes())
        .raw(&key.to_bytes());
    w.bytes
}

/// Checks that whoever made `proof` held the grant's invite secret, for this device and key.
pub fn verify_proof(grant: &Grant, device: &DeviceId, key: &PublicKey, proof: &[u8; 64]) -> bool {
    grant
        .invite_key
        .verify(&proof_bytes(&grant.community, device, key), proof)
}

impl Invite {
    /// Makes an invite signed by `admin`. `secret` comes from the caller's seeded RNG.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        admin: &DeviceKeys,
        community: [u8; 16],
        role: Role,
        expires_at: Instant,
        uses: u16,
        secret: [u8; 32],
        address: String,
    ) -> Result<Self, InviteError> {
        if uses == 0 || uses > INVITE_USES_MAX {
            return Err(InviteError::Malformed(format!(
                "uses = {uses}, 1..={INVITE_USES_MAX}"
            )));
        }
        if address.len() > ADDRESS_LEN_MAX {
            return Err(InviteError::Malformed(format!(
                "address of {} bytes, at most {ADDRESS_LEN_MAX}",
                address.len()
            )));
        }
        let invite_key = DeviceKeys::from_secret(admin.device.clone(), secret).public();
        let mut grant = Grant {
            community,
            invite_key,
            role,
            expires_at,
            uses,
            admin: admin.device.clone(),
            signature: [0; SIGNATURE_LEN],
        };
        grant.signature = admin.sign(&grant.signed_bytes());
        Ok(Invite {
            grant,
            secret,
            inviter: admin.device.clone(),
            address,
        })
    }

    /// The joining device's proof that it holds this invite, bound to its name and key.
    pub fn prove(&self, device: &DeviceId, key: &PublicKey) -> [u8; 64] {
        let signer = DeviceKeys::from_secret(self.grant.admin.clone(), self.secret);
        signer.sign(&proof_bytes(&self.grant.community, device, key))
    }

    /// The copy-pasteable text.
    pub fn to_token(&self) -> String {
        let mut w = Writer::new();
        self.grant.encode(&mut w);
        w.raw(&self.secret)
            .bytes_u8(self.inviter.as_str().as_bytes())
            .bytes_u8(self.address.as_bytes());
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&w.bytes))
    }

    /// Reads a token back. Checks its shape and the admin's signature over the grant can be
    /// checked only against a roster, so that is left to the admitting member.
    pub fn from_token(token: &str) -> Result<Self, InviteError> {
        let token = token.trim();
        if token.len() > TOKEN_LEN_MAX {
            return Err(InviteError::Malformed(format!(
                "{} characters, at most {TOKEN_LEN_MAX}",
                token.len()
            )));
        }
        let body = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| InviteError::Malformed(format!("does not start with {TOKEN_PREFIX}")))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| InviteError::Malformed(format!("not base64url: {e}")))?;
        let mut r = Reader::new(&bytes);
        let parse = |r: &mut Reader<'_>| -> Result<Invite, DecodeError> {
            let grant = Grant::decode(r)?;
            let secret = r.array("invite secret")?;
            let inviter = DeviceId::new(r.str_u8("inviter")?)
                .ok_or_else(|| DecodeError::invalid("inviter", "not a device name"))?;
            let address = r.str_u8("inviter address")?.to_owned();
            r.finish()?;
            Ok(Invite {
                grant,
                secret,
                inviter,
                address,
            })
        };
        let invite = parse(&mut r).map_err(|e| InviteError::Malformed(e.to_string()))?;
        let derived = DeviceKeys::from_secret(invite.grant.admin.clone(), invite.secret).public();
        if derived != invite.grant.invite_key {
            return Err(InviteError::Malformed(
                "the secret does not match the invite key".into(),
            ));
        }
        Ok(invite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::keys;

    fn invite() -> Invite {
        Invite::new(
            &keys("alice", 1),
            [3; 16],
            Role::Member,
            Instant::from_millis(60_000),
            2,
            [9; 32],
            "127.0.0.1:8001".into(),
        )
        .unwrap()
    }

    #[test]
    fn a_token_reads_back_to_the_same_invite() {
        let invite = invite();
        let token = invite.to_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(token.len() < TOKEN_LEN_MAX);
        assert_eq!(Invite::from_token(&token).unwrap(), invite);
        assert!(invite.grant.verify(&keys("alice", 1).public()));
        assert!(!invite.grant.verify(&keys("bob", 1).public()));
    }

    #[test]
    fn a_changed_grant_no_longer_verifies() {
        let mut grant = invite().grant;
        grant.uses = 3;
        assert!(!grant.verify(&keys("alice", 1).public()));
        let mut grant = invite().grant;
        grant.role = Role::Admin;
        assert!(!grant.verify(&keys("alice", 1).public()));
    }

    #[test]
    fn the_proof_binds_the_device_and_its_key() {
        let invite = invite();
        let dave = keys("dave", 1);
        let proof = invite.prove(&dave.device, &dave.public());
        assert!(verify_proof(
            &invite.grant,
            &dave.device,
            &dave.public(),
            &proof
        ));
        let eve = keys("eve", 1);
        assert!(!verify_proof(
            &invite.grant,
            &dave.device,
            &eve.public(),
            &proof
        ));
        assert!(!verify_proof(
            &invite.grant,
            &eve.device,
            &dave.public(),
            &proof
        ));
    }

    #[test]
    fn bad_tokens_say_why() {
        for bad in ["", "hello", "meshlog-invite-1.!!!", "meshlog-invite-1.AAAA"] {
            assert!(
                matches!(Invite::from_token(bad), Err(InviteError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = format!("{TOKEN_PREFIX}{}", "A".repeat(2000));
        assert!(matches!(
            Invite::from_token(&long),
            Err(InviteError::Malformed(_))
        ));
        let mut token = invite().to_token();
        token.push('A');
        assert!(Invite::from_token(&token).is_err());
    }
}
