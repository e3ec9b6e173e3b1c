//! Keys: each device's Ed25519 signing key, the community's pre-shared key and its roster.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::id::DeviceId;

pub const SIGNATURE_LEN: usize = 64;

/// A device's identity: its name and Ed25519 key pair.
#[derive(Clone)]
pub struct DeviceKeys {
    pub device: DeviceId,
    signing: SigningKey,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKeys({}, <secret>)", self.device)
    }
}

impl DeviceKeys {
    /// From 32 secret bytes (made by the caller's RNG, or read from a key file).
    pub fn from_secret(device: DeviceId, secret: [u8; 32]) -> Self {
        DeviceKeys {
            device,
            signing: SigningKey::from_bytes(&secret),
        }
    }
    /// Deterministic keys for tests and simulations: the secret is blake3-derived from a seed.
    pub fn derived(device: DeviceId, seed: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("meshlog device key v1");
        hasher.update(seed).update(device.as_str().as_bytes());
        Self::from_secret(device, *hasher.finalize().as_bytes())
    }
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// A device's public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// Strict verification: rejects malleable and small-order forms. `verify_strict` does every
    /// check plain `verify` does and more, so one call is enough (each costs a curve multiply).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

/// The community: a pre-shared symmetric key and the roster of member devices.
#[derive(Clone)]
pub struct Community {
    key: [u8; 32],
    id: [u8; 16],
    roster: BTreeMap<DeviceId, PublicKey>,
}

impl std::fmt::Debug for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Community")
            .field("id", &self.id_hex())
            .field("members", &self.roster.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Community {
    pub fn new(key: [u8; 32], roster: BTreeMap<DeviceId, PublicKey>) -> Self {
        let derived = blake3::derive_key("meshlog community id v1", &key);
        let mut id = [0u8; 16];
        id.copy_from_slice(&derived[..16]);
        Community { key, id, roster }
    }
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
    /// Derived from the key, so two communities never share an id by accident; bound into every
    /// event's associated data, so an event cannot be replayed into another community.
    pub fn id(&self) -> &[u8; 16] {
        &self.id
    }
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
    pub fn member(&self, device: &DeviceId) -> Option<&PublicKey> {
        self.roster.get(device)
    }
    pub fn members(&self) -> impl Iterator<Item = (&DeviceId, &PublicKey)> {
        self.roster.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        let bob = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"seed");
        let sig = alice.sign(b"hello");
        assert!(alice.public().verify(b"hello", &sig));
        assert!(!alice.public().verify(b"hellp", &sig));
        assert!(!bob.public().verify(b"hello", &sig));
    }

    #[test]
    fn community_id_depends_on_key() {
        let a = Community::new([1; 32], BTreeMap::new());
        let b = Community::new([2; 32], BTreeMap::new());
        assert_ne!(a.id(), b.id());
    }
}
