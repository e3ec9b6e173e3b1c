//! Sealing a secret to one device: how an epoch key reaches each member, and how a welcome
//! reaches a device that joins.
//!
//! ```text
//! ephemeral  = X25519 key pair from the caller's seeded RNG (one per rotation or welcome)
//! shared     = X25519(ephemeral secret, recipient's Ed25519 key in Montgomery form)
//! key        = BLAKE3-derive_key("meshlog sealed box v1",
//!                  shared | ephemeral public | recipient's public key | context)
//! box        = XChaCha20-Poly1305(key, nonce = 0, plaintext)
//! ```
//!
//! HPKE's base mode (RFC 9180) in the shape the rest of the crate already uses: the recipient's
//! static key is its Ed25519 device key in Montgomery form (`DeviceKeys::agree`), BLAKE3 is
//! the KDF. A zero nonce is sound because the key is never used twice: it binds a fresh
//! ephemeral key, the recipient and a context naming what is sealed (an epoch's key id, a
//! welcome's invite). One ephemeral key may serve many recipients (a rotation's wraps): each
//! recipient's `shared` differs, so each key differs.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;

use super::{DeviceKeys, PublicKey};

const KEY_CONTEXT: &str = "meshlog sealed box v1";
/// Bytes a box adds to what it seals (the Poly1305 tag).
pub const SEALED_BOX_OVERHEAD: usize = 16;

/// An ephemeral X25519 key pair: made from 32 bytes of the caller's seeded RNG, used for one
/// rotation or one welcome, then dropped.
pub struct Ephemeral {
    secret: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ephemeral({:02x?}.., <secret>)", &self.public[..4])
    }
}

impl Ephemeral {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Ephemeral { secret, public }
    }
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Seals `plaintext` to `recipient` under `context`. `None` if the recipient's key has
    /// small order (no secret stands behind it).
    pub fn seal(&self, recipient: &PublicKey, context: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        // X25519 computed on the Edwards form, which the vectorised backend multiplies in
        // about 58% of the Montgomery ladder's time (a rekey seals to every member): the
        // same bytes, since the map to Montgomery form commits to the group law.
        let shared = recipient.edwards().mul_clamped(self.secret).to_montgomery();
        self.seal_with(shared, &recipient.to_bytes(), context, plaintext)
    }

    /// Seals to a bare X25519 public key (a member's receive key, `member::op`).
    pub fn seal_to_x25519(
        &self,
        recipient: &[u8; 32],
        context: &[u8],
        plaintext: &[u8],
    ) -> Option<Vec<u8>> {
        let point = MontgomeryPoint(*recipient);
        // The Edwards form, as in `seal`, where there is one: a u-coordinate on the curve's
        // twist (no honest key is one) has none and takes the ladder. Both sign choices give
        // the same u-coordinate of the product.
        let shared = match point.to_edwards(0) {
            Some(edwards) => edwards.mul_clamped(self.secret).to_montgomery(),
            None => point.mul_clamped(self.secret),
        };
        self.seal_with(shared, recipient, context, plaintext)
    }

    fn seal_with(
        &self,
        shared: MontgomeryPoint,
        recipient: &[u8; 32],
        context: &[u8],
        plaintext: &[u8],
    ) -> Option<Vec<u8>> {
        let shared = shared.to_bytes();
        if shared == [0; 32] {
            return None;
        }
        let cipher = cipher(&shared, &self.public, recipient, context);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&[0; 24]),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        Some(sealed)
    }
}

/// Opens a box sealed to `me` with the sender's ephemeral public key `ephemeral`; `None` if it
/// was not sealed to this device, under this context, or was changed on the way.
pub fn open_box(
    me: &DeviceKeys,
    ephemeral: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let shared = me.agree_montgomery(ephemeral)?;
    decrypt(&shared, ephemeral, &me.public().to_bytes(), context, sealed)
}

/// Opens a box sealed to the X25519 key pair whose secret is `secret`.
pub fn open_box_x25519(
    secret: &[u8; 32],
    ephemeral: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let public = x25519_public(secret);
    let shared = MontgomeryPoint(*ephemeral).mul_clamped(*secret).to_bytes();
    if shared == [0; 32] {
        return None;
    }
    decrypt(&shared, ephemeral, &public, context, sealed)
}

/// The public half of an X25519 secret.
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

fn decrypt(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    cipher(shared, ephemeral, recipient, context)
        .decrypt(
            XNonce::from_slice(&[0; 24]),
            Payload {
                msg: sealed,
                aad: context,
            },
        )
        .ok()
}

/// `recipient`: the bytes of the key sealed to (an Ed25519 device key, or an X25519 key).
fn cipher(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    context: &[u8],
) -> XChaCha20Poly1305 {
    let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    hasher
        .update(shared)
        .update(ephemeral)
        .update(recipient)
        .update(context);
    XChaCha20Poly1305::new(hasher.finalize().as_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::keys;

    #[test]
    fn only_the_recipient_opens_and_only_under_the_same_context() {
        let bob = keys("bob", 1);
        let carol = keys("carol", 1);
        let ephemeral = Ephemeral::from_secret([7; 32]);
        let sealed = ephemeral
            .seal(&bob.public(), b"epoch 1", b"the key")
            .unwrap();
        assert_eq!(sealed.len(), 7 + SEALED_BOX_OVERHEAD);
        let public = ephemeral.public();
        assert_eq!(
            open_box(&bob, &public, b"epoch 1", &sealed).as_deref(),
            Some(&b"the key"[..])
        );
        assert_eq!(open_box(&carol, &public, b"epoch 1", &sealed), None);
        assert_eq!(open_box(&bob, &public, b"epoch 2", &sealed), None);
        let mut changed = sealed.clone();
        changed[0] ^= 1;
        assert_eq!(open_box(&bob, &public, b"epoch 1", &changed), None);
        let other = Ephemeral::from_secret([8; 32]).public();
        assert_eq!(open_box(&bob, &other, b"epoch 1", &sealed), None);
    }

    #[test]
    fn a_receive_key_opens_what_was_sealed_to_it_and_the_device_key_does_not() {
        let secret = [5; 32];
        let public = x25519_public(&secret);
        let ephemeral = Ephemeral::from_secret([7; 32]);
        let sealed = ephemeral
            .seal_to_x25519(&public, b"c", b"epoch key")
            .unwrap();
        let e = ephemeral.public();
        assert_eq!(
            open_box_x25519(&secret, &e, b"c", &sealed).as_deref(),
            Some(&b"epoch key"[..])
        );
        assert_eq!(open_box_x25519(&[6; 32], &e, b"c", &sealed), None);
        assert_eq!(open_box(&keys("bob", 1), &e, b"c", &sealed), None);
    }

    /// The Edwards shortcut gives the ladder's bytes on the curve (the tests above open with
    /// the ladder), and a u-coordinate on the twist, which has no Edwards form, still seals
    /// as the ladder would rather than being skipped.
    #[test]
    fn a_key_on_the_twist_is_sealed_to_as_the_ladder_would() {
        let twist = (2u8..)
            .map(|b| [b; 32])
            .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
            .unwrap();
        let ephemeral = Ephemeral::from_secret([7; 32]);
        let ladder = MontgomeryPoint(twist).mul_clamped([7; 32]);
        assert_eq!(
            ephemeral.seal_to_x25519(&twist, b"c", b"k"),
            ephemeral.seal_with(ladder, &twist, b"c", b"k")
        );
        let on_curve = x25519_public(&[5; 32]);
        let ladder = MontgomeryPoint(on_curve).mul_clamped([7; 32]);
        assert_eq!(
            ephemeral.seal_to_x25519(&on_curve, b"c", b"k"),
            ephemeral.seal_with(ladder, &on_curve, b"c", b"k")
        );
    }

    #[test]
    fn one_ephemeral_key_seals_differently_to_each_recipient() {
        let ephemeral = Ephemeral::from_secret([7; 32]);
        let to_bob = ephemeral
            .seal(&keys("bob", 1).public(), b"c", b"same")
            .unwrap();
        let to_carol = ephemeral
            .seal(&keys("carol", 1).public(), b"c", b"same")
            .unwrap();
        assert_ne!(to_bob, to_carol);
    }
}
