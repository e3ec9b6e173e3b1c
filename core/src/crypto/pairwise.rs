//! Pairwise packet keys: every two members of a community share a key that authenticates the
//! packets between them, at the cost of an HMAC instead of an Ed25519 signature.
//!
//! ```text
//! shared = X25519(my Ed25519 secret scalar, peer's Ed25519 key in Montgomery form)
//! key    = BLAKE3-derive_key("meshlog pairwise packet key v5",
//!              shared | community key | community id
//!              | len:u8 | lower device id | len:u8 | higher device id
//!              | lower device's public key | higher device's public key)
//! tag    = first MAC_LEN bytes of HMAC-SHA256(key, what the packet's tag covers)
//! ```
//!
//! Why HMAC-SHA256 and not keyed BLAKE3 (packet v3 and v4): a full datagram's tag covers about
//! 1,184 bytes, one BLAKE3 chunk and a bit, which BLAKE3 hashes one block after another (its
//! SIMD works across chunks, so it needs several KiB to help): 1.3 µs per tag here, 2.7 µs to
//! seal and open. SHA-256 runs on the CPU's SHA extensions (x86 since 2017, ARMv8), 0.78 µs
//! per tag. HMAC is a PRF like keyed BLAKE3, with no nonce to misuse (Poly1305 or GMAC would
//! need a never-repeating nonce, and lose every tag under a key to one repeat); its keyed
//! state is made once per peer and copied per packet, so a tag costs the message's blocks
//! and one more. `cargo bench -p meshlog-core` prints both.
//!
//! Both sides compute the same key: Diffie-Hellman is symmetric and the ids go in name order.
//! The roster's Ed25519 keys are the static keys (the Ed25519 secret scalar and the Montgomery
//! form of its public point make an X25519 pair), so community files made for signatures work
//! unchanged. Mixing in the community key means a tag takes both a member's device secret and
//! the community secret; mixing in both ids and public keys binds the key to this pair. One key
//! serves both directions: the packet header names source and target under the tag, so a
//! datagram reflected back to its sender fails as `wrong_target`.
//!
//! A key is computed once per peer (one curve multiplication, about 40 µs) when a node starts,
//! never per packet.

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Community, DeviceKeys, PublicKey};
use crate::id::DeviceId;

/// Bytes of a packet's tag. 128 bits: a forger's chance per try is 2^-128; HMAC truncated to
/// half its output is still a PRF (RFC 2104 §5 allows down to half).
pub const MAC_LEN: usize = 16;
/// v5: the key is an HMAC-SHA256 key now, so it is not the key v3 and v4 used for BLAKE3.
const KEY_CONTEXT: &str = "meshlog pairwise packet key v5";
const CIPHER_CONTEXT: &str = "meshlog pairwise payload cipher v1";

/// The key two devices share for the packets between them, kept as HMAC's keyed state (the
/// key's two padded blocks already hashed), which every tag starts from.
#[derive(Clone)]
pub struct PairKey {
    /// The derived key, for equality and nothing else.
    key: [u8; 32],
    keyed: Hmac<Sha256>,
    /// The key of the stream cipher that hides confidential payloads (BLOB packets: file
    /// bytes), derived from `key` under its own context.
    cipher: [u8; 32],
}

impl PartialEq for PairKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PairKey {}

impl std::fmt::Debug for PairKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairKey(<secret>)")
    }
}

impl PairKey {
    /// The key `me` shares with `peer` (whose roster key is `peer_key`) in `community`; `None`
    /// if the peer's key has small order (see [`DeviceKeys::agree`]).
    pub fn derive(
        me: &DeviceKeys,
        peer: &DeviceId,
        peer_key: &PublicKey,
        community: &Community,
    ) -> Option<Self> {
        let shared = me.agree(peer_key)?;
        let mine = (&me.device, me.public());
        let theirs = (peer, *peer_key);
        let (low, high) = if mine.0 <= theirs.0 {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        hasher
            .update(&shared)
            .update(community.key())
            .update(community.id());
        for (device, _) in [&low, &high] {
            let name = device.as_str().as_bytes();
            let len = u8::try_from(name.len()).expect("device names are at most 32 bytes");
            hasher.update(&[len]).update(name);
        }
        for (_, key) in [&low, &high] {
            hasher.update(&key.to_bytes());
        }
        let key = *hasher.finalize().as_bytes();
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key");
        let cipher = blake3::derive_key(CIPHER_CONTEXT, &key);
        Some(PairKey { key, keyed, cipher })
    }

    /// A tag under construction: feed it what the tag covers, in order.
    pub fn tagger(&self) -> Tagger {
        Tagger(self.keyed.clone())
    }

    pub fn mac(&self, message: &[u8]) -> [u8; MAC_LEN] {
        self.tagger().update(message).tag()
    }

    pub fn verify(&self, message: &[u8], tag: &[u8; MAC_LEN]) -> bool {
        self.tagger().update(message).verify(tag)
    }

    /// Encrypts or decrypts (the same XOR) a confidential payload: XChaCha20 under the pair's
    /// cipher key, the nonce the packet's `(epoch, counter)` and its direction. A sender never
    /// repeats `(epoch, counter)` towards a peer (`packet::wire`), and the direction byte keeps
    /// the two ends' counters apart, so no nonce repeats under a key. The packet's tag covers
    /// the ciphertext (encrypt, then MAC), so nothing is decrypted before it is authentic.
    pub fn apply_cipher(&self, from_lower: bool, epoch: u64, counter: u64, payload: &mut [u8]) {
        use chacha20::cipher::{KeyIvInit, StreamCipher};
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&epoch.to_le_bytes());
        nonce[8..16].copy_from_slice(&counter.to_le_bytes());
        nonce[16] = u8::from(from_lower);
        let mut cipher = chacha20::XChaCha20::new(&self.cipher.into(), &nonce.into());
        cipher.apply_keystream(payload);
    }
}

/// HMAC-SHA256 over the parts of a message, fed one after another.
#[derive(Clone)]
pub struct Tagger(Hmac<Sha256>);

impl std::fmt::Debug for Tagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tagger(<keyed>)")
    }
}

impl Tagger {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    pub fn tag(&self) -> [u8; MAC_LEN] {
        // A copy of the state (about 200 bytes) finishes, so `verify` and `tag` can borrow.
        let full = self.0.clone().finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }

    /// Compares in constant time, so the time taken leaks nothing of the right tag.
    pub fn verify(&self, tag: &[u8; MAC_LEN]) -> bool {
        self.tag()
            .iter()
            .zip(tag)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }
}

/// One device's pairwise keys, for the peers it exchanges packets with. Bounded by the peer
/// list (at most `PEERS_MAX`), computed once.
#[derive(Clone, Debug)]
pub struct Keyring {
    me: DeviceId,
    /// Every roster member, to tell a stranger (`unknown_source`) from a member that is not
    /// one of our peers (`not_a_peer`): the community's roster, shared, not a copy per node.
    members: Arc<BTreeMap<DeviceId, PublicKey>>,
    keys: BTreeMap<DeviceId, PairKey>,
}

impl Keyring {
    /// Keys shared with each of `peers` that is in the roster (a node's config is validated
    /// first, so all are). A peer with a small-order roster key gets no key: its packets fail.
    pub fn new<'a>(
        keys: &DeviceKeys,
        community: &Community,
        peers: impl IntoIterator<Item = &'a DeviceId>,
    ) -> Self {
        let keys_by_peer = peers
            .into_iter()
            .filter(|peer| **peer != keys.device)
            .filter_map(|peer| {
                let public = community.member(peer)?;
                Some((
                    peer.clone(),
                    PairKey::derive(keys, peer, public, community)?,
                ))
            })
            .collect();
        Keyring {
            me: keys.device.clone(),
            members: community.roster(),
            keys: keys_by_peer,
        }
    }

    /// Keys shared with every other member of the roster: for tests, benches and fuzzing.
    pub fn for_roster(keys: &DeviceKeys, community: &Community) -> Self {
        let everyone: Vec<DeviceId> = community.members().map(|(id, _)| id.clone()).collect();
        Self::new(keys, community, &everyone)
    }

    pub fn me(&self) -> &DeviceId {
        &self.me
    }
    /// Replaces who counts as a member (the roster changed): a device left out is a stranger
    /// at the door from now on.
    pub(crate) fn set_members(&mut self, members: Arc<BTreeMap<DeviceId, PublicKey>>) {
        self.members = members;
    }
    /// Derives and keeps the key shared with `peer`; false if its key has small order.
    #[allow(dead_code)] // the join path (next) adds the admitted device as a peer
    pub(crate) fn add_peer(
        &mut self,
        keys: &DeviceKeys,
        peer: &DeviceId,
        peer_key: &PublicKey,
        community: &Community,
    ) -> bool {
        match PairKey::derive(keys, peer, peer_key, community) {
            Some(key) => {
                self.keys.insert(peer.clone(), key);
                true
            }
            None => false,
        }
    }
    /// Forgets the key shared with `peer`: its packets fail at the door.
    pub(crate) fn remove_peer(&mut self, peer: &DeviceId) {
        self.keys.remove(peer);
    }
    pub fn is_member(&self, device: &DeviceId) -> bool {
        self.members.contains_key(device)
    }
    pub fn key(&self, peer: &DeviceId) -> Option<&PairKey> {
        self.keys.get(peer)
    }
    pub fn peers(&self) -> impl Iterator<Item = &DeviceId> {
        self.keys.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{community_of, keys};

    fn id(name: &str) -> DeviceId {
        DeviceId::new(name).unwrap()
    }

    #[test]
    fn both_ends_derive_the_same_key_and_no_one_else_does() {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let at_alice = Keyring::for_roster(&keys("alice", 1), &community);
        let at_bob = Keyring::for_roster(&keys("bob", 1), &community);
        let at_carol = Keyring::for_roster(&keys("carol", 1), &community);
        let ab = at_alice.key(&id("bob")).unwrap();
        assert_eq!(at_bob.key(&id("alice")), Some(ab));
        assert_ne!(at_carol.key(&id("alice")), Some(ab));
        assert_ne!(at_carol.key(&id("bob")), Some(ab));
        assert_eq!(at_alice.key(&id("alice")), None, "no key with oneself");
    }

    #[test]
    fn the_key_depends_on_the_community() {
        let one = community_of(&["alice", "bob"], 1);
        // Same device keys, another community key.
        let other = Community::new(
            [9; 32],
            one.members().map(|(d, k)| (d.clone(), *k)).collect(),
        );
        let alice = keys("alice", 1);
        assert_ne!(
            Keyring::for_roster(&alice, &one).key(&id("bob")),
            Keyring::for_roster(&alice, &other).key(&id("bob"))
        );
    }

    #[test]
    fn tags_verify_only_for_their_message_and_key() {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let alice = Keyring::for_roster(&keys("alice", 1), &community);
        let ab = alice.key(&id("bob")).unwrap();
        let ac = alice.key(&id("carol")).unwrap();
        let tag = ab.mac(b"hello");
        assert!(ab.verify(b"hello", &tag));
        assert!(!ab.verify(b"hellp", &tag));
        assert!(!ac.verify(b"hello", &tag));
        let mut bad = tag;
        bad[MAC_LEN - 1] ^= 0x80;
        assert!(!ab.verify(b"hello", &bad));
    }

    #[test]
    fn a_keyring_knows_members_and_peers_apart() {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let ring = Keyring::new(&keys("alice", 1), &community, &[id("bob")]);
        assert!(ring.key(&id("bob")).is_some());
        assert!(ring.key(&id("carol")).is_none());
        assert!(ring.is_member(&id("carol")));
        assert!(!ring.is_member(&id("mallory")));
        assert_eq!(ring.peers().collect::<Vec<_>>(), vec![&id("bob")]);
    }
}
