//! Keys: each device's Ed25519 signing key, the community's pre-shared key and its roster.
//! Packets are authenticated with pairwise keys derived from the same Ed25519 keys
//! ([`pairwise`]); events keep their Ed25519 author signatures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::id::DeviceId;
use crate::member::{EpochKey, EpochKeys, KeyId, Role};

pub mod pairwise;
pub mod sealed_box;

pub use pairwise::{Keyring, PairKey, Tagger, MAC_LEN};

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
    /// Deterministic keys for tests and simulations: the secret is blake3-derived from a seed
    /// (feature `testing`: a device's keys are never guessable from a name and a seed).
    #[cfg(any(test, feature = "testing"))]
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
    /// X25519 Diffie-Hellman with a peer, both sides' keys taken from their Ed25519 keys (the
    /// birational map to Montgomery form; the secret scalar is the Ed25519 one), so a roster
    /// of Ed25519 keys needs no second key per device. `None` if the result is all zeros: the
    /// peer's key has small order and the "secret" would be public.
    pub fn agree(&self, peer: &PublicKey) -> Option<[u8; 32]> {
        let shared = peer
            .0
            .to_montgomery()
            .mul_clamped(self.signing.to_scalar_bytes());
        (shared.0 != [0; 32]).then_some(shared.0)
    }
    /// X25519 with a bare Montgomery public key (a sealed box's ephemeral key); `None` if
    /// the result is all zeros.
    pub fn agree_montgomery(&self, public: &[u8; 32]) -> Option<[u8; 32]> {
        let shared = curve25519_dalek::montgomery::MontgomeryPoint(*public)
            .mul_clamped(self.signing.to_scalar_bytes());
        (shared.0 != [0; 32]).then_some(shared.0)
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
    /// A small-order point: no secret key stands behind it, and Diffie-Hellman with it yields
    /// a value anyone can compute. A roster must not hold one.
    pub fn is_weak(&self) -> bool {
        self.0.is_weak()
    }
    /// The same point in Montgomery form, for X25519.
    pub(crate) fn edwards(self) -> curve25519_dalek::edwards::EdwardsPoint {
        self.0.to_edwards()
    }
    /// The protocol's one signature rule (`docs/PROTOCOL.md`, "Events"): ZIP-215
    /// (`ed25519-zebra`: canonical s, the cofactored equation, any encoding of R and the key),
    /// by a key not of small order. Chosen over the strict check because under it a batch
    /// check ([`SignatureClaim::verify_all`]) gives every signature the same answer as this
    /// one, so a device may check in batches and everyone else one by one.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        // A small-order key has no secret behind it: anyone could sign for it.
        if self.is_weak() {
            return false;
        }
        // The key decoded again (a square root, a few percent of a check): keeping a second
        // decoded form in every `PublicKey` would double its size, and the checks that are
        // many (a catch-up's) go through batches, which decode each key once.
        let Ok(key) = ed25519_zebra::VerificationKey::try_from(self.to_bytes()) else {
            return false;
        };
        key.verify(&ed25519_zebra::Signature::from_bytes(signature), message)
            .is_ok()
    }
}

/// Most checks a [`SignatureMemo`] remembers before it starts afresh (about 30 bytes each,
/// 120 MiB at most). It must outlast the largest simulated backlog: a device back online after
/// a million events checks the oldest of them last, and a memo cleared meanwhile checks each
/// again (the million-event catch-up spent 60% of its time in curve arithmetic).
pub const SIGNATURE_MEMO_LEN_MAX: usize = 1 << 22;
/// Most checks a device's [`SignatureMemo::prechecks`] holds before it starts afresh. Its
/// checker runs one driver batch ahead of the node (at most 256 datagrams of at most about 60
/// small events each, 15,360 checks) and the node takes each answer as it uses it, so only
/// checks of events the node never opens (duplicates that arrived together) stay behind; a
/// clear costs at most one batch's checks made again by the node.
pub const SIGNATURE_PRECHECKS_LEN_MAX: usize = 1 << 16;

/// Signature checks already made. Two uses:
/// - the simulator, one process that plays many devices on one CPU: ten devices check the
///   same author signature ten times ([`SignatureMemo::default`], kept until full);
/// - a real device that checks its received events' signatures (in batches, same answers) on every
///   core before its node opens them (`meshlog-net`'s driver; [`SignatureMemo::prechecks`]): the
///   node then finds each answer here, once, and the node itself stays single-threaded.
///
/// (Packets carry pairwise MACs, which no two receivers share, so they never go through the
/// memo.) A check is a pure function of (key, message, signature), so remembering its answer
/// changes no result, only the time taken.
#[derive(Debug)]
pub struct SignatureMemo {
    /// The first 16 bytes of blake3 of (key, signature, message) → whether it verified
    /// (16 bytes: a collision needs about 2^64 checks, and halves the memo's memory).
    checked: Mutex<BTreeMap<[u8; 16], bool>>,
    /// Checks held at most; at the bound the memo starts afresh.
    len_max: usize,
    /// An answer is used once and forgotten (prechecks: each event is opened once).
    forget_on_use: bool,
}

impl Default for SignatureMemo {
    fn default() -> Self {
        SignatureMemo {
            checked: Mutex::default(),
            len_max: SIGNATURE_MEMO_LEN_MAX,
            forget_on_use: false,
        }
    }
}

/// What checking one event's author signature takes: the key, the signed message and the
/// signature (`event::signature_claim`), so the check can be made away from the node.
#[derive(Clone, Debug)]
pub struct SignatureClaim {
    key: PublicKey,
    message: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl SignatureClaim {
    pub(crate) fn new(key: PublicKey, message: Vec<u8>, signature: [u8; SIGNATURE_LEN]) -> Self {
        SignatureClaim {
            key,
            message,
            signature,
        }
    }

    /// The same check the node makes (`PublicKey::verify`).
    pub fn verify(&self) -> bool {
        self.key.verify(&self.message, &self.signature)
    }

    /// Whether every claim verifies, in one Ed25519 batch check: a multi-scalar multiplication
    /// over all of them, two to three times cheaper per signature than one check each.
    /// `false` says only that at least one fails: check those one by one
    /// ([`SignatureClaim::verify`]).
    ///
    /// The same answer as [`SignatureClaim::verify`] on each, which is why a device may use
    /// it: ZIP-215's batch equation is the cofactored one its single check uses, so a
    /// signature no single check accepts fails the batch too, except with probability about
    /// 2^-128 over `rng`'s weights (`ed25519-zebra`), and a weak key is refused here as there.
    /// `rng` is the caller's: core draws no randomness of its own, and the node and the
    /// simulator never batch (a real device's driver does, `meshlog-net`).
    pub fn verify_all(
        claims: &[SignatureClaim],
        rng: impl rand_core::RngCore + rand_core::CryptoRng,
    ) -> bool {
        if claims.iter().any(|claim| claim.key.is_weak()) {
            return false;
        }
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for claim in claims {
            batch.queue((
                ed25519_zebra::VerificationKeyBytes::from(claim.key.to_bytes()),
                ed25519_zebra::Signature::from_bytes(&claim.signature),
                &claim.message,
            ));
        }
        batch.verify(rng).is_ok()
    }
}

impl SignatureMemo {
    /// For a device whose received events' signatures are checked ahead of its node: bounded
    /// by [`SIGNATURE_PRECHECKS_LEN_MAX`], each answer used once.
    pub fn prechecks() -> Self {
        SignatureMemo {
            checked: Mutex::default(),
            len_max: SIGNATURE_PRECHECKS_LEN_MAX,
            forget_on_use: true,
        }
    }

    fn entry(key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> [u8; 16] {
        let mut hasher = blake3::Hasher::new_derive_key("meshlog signature memo v1");
        hasher
            .update(&key.to_bytes())
            .update(signature)
            .update(message);
        let mut entry = [0u8; 16];
        entry.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        entry
    }

    fn remember(&self, entry: [u8; 16], verified: bool) {
        // The lock is never held across a check or anything that can panic, so a poisoned
        // lock still holds sound answers.
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= self.len_max {
            checked.clear();
        }
        checked.insert(entry, verified);
    }

    /// Remembers the outcome of checking `claim` (`verified`: whether it verified), for the
    /// node to find when it opens the event.
    pub fn remember_checked(&self, claim: &SignatureClaim, verified: bool) {
        let entry = Self::entry(&claim.key, &claim.message, &claim.signature);
        self.remember(entry, verified);
    }

    fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let entry = Self::entry(key, message, signature);
        let known = {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            if self.forget_on_use {
                checked.remove(&entry)
            } else {
                checked.get(&entry).copied()
            }
        };
        if let Some(verified) = known {
            return verified;
        }
        let verified = key.verify(message, signature);
        if !self.forget_on_use {
            self.remember(entry, verified);
        }
        verified
    }

    /// Checks remembered now.
    pub fn len(&self) -> usize {
        self.checked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The community: a pre-shared symmetric key (epoch 0), the keys of every device whose events
/// verify, the genesis roster with its admins, and the later epoch keys this device holds.
/// A node keeps its own copy current as membership events arrive (`node/membership.rs`).
#[derive(Clone)]
pub struct Community {
    key: [u8; 32],
    id: [u8; 16],
    /// Every device ever admitted: genesis and later. Removed devices stay, so their earlier
    /// events still verify; who may send is the node's roster's business.
    /// Shared by every clone: each node's config holds the community, so a private copy
    /// cost devices² entries (a simulated world of 300 devices, 90,000 keys of 192 bytes).
    roster: Arc<BTreeMap<DeviceId, PublicKey>>,
    /// The devices of `community new`, from which every device settles the roster.
    genesis: Arc<BTreeMap<DeviceId, PublicKey>>,
    /// Genesis devices that are admins (at least one).
    admins: Arc<BTreeSet<DeviceId>>,
    /// Epoch keys after epoch 0 that this device holds; the newest seals.
    epochs: Arc<EpochKeys>,
    /// Shared by every clone: see [`Community::with_signature_memo`].
    memo: Option<Arc<SignatureMemo>>,
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
    /// A community whose genesis roster is `roster`, with its first device (by name) as the
    /// admin; see [`Community::with_admins`].
    pub fn new(key: [u8; 32], roster: BTreeMap<DeviceId, PublicKey>) -> Self {
        let derived = blake3::derive_key("meshlog community id v1", &key);
        let mut id = [0u8; 16];
        id.copy_from_slice(&derived[..16]);
        let admins = roster.keys().take(1).cloned().collect();
        let roster = Arc::new(roster);
        Community {
            key,
            id,
            genesis: Arc::clone(&roster),
            roster,
            admins: Arc::new(admins),
            epochs: Arc::new(EpochKeys::default()),
            memo: None,
        }
    }

    /// The genesis admins: those of `admins` in the genesis roster (if none is, the first
    /// device stays the admin, so a community always has one).
    pub fn with_admins(mut self, admins: impl IntoIterator<Item = DeviceId>) -> Self {
        let chosen: BTreeSet<DeviceId> = admins
            .into_iter()
            .filter(|a| self.genesis.contains_key(a))
            .collect();
        if !chosen.is_empty() {
            self.admins = Arc::new(chosen);
        }
        self
    }
    pub fn admins(&self) -> &BTreeSet<DeviceId> {
        &self.admins
    }
    /// The genesis roster with each device's role.
    pub fn genesis(&self) -> BTreeMap<DeviceId, (PublicKey, Role)> {
        self.genesis
            .iter()
            .map(|(d, k)| {
                let role = if self.admins.contains(d) {
                    Role::Admin
                } else {
                    Role::Member
                };
                (d.clone(), (*k, role))
            })
            .collect()
    }
    /// This community with `members` as every device whose events verify (genesis included).
    pub fn with_members(mut self, members: BTreeMap<DeviceId, PublicKey>) -> Self {
        if *self.roster != members {
            self.roster = Arc::new(members);
        }
        self
    }
    /// This community holding `epochs` (keys after epoch 0).
    pub fn with_epoch_keys(mut self, epochs: EpochKeys) -> Self {
        if *self.epochs != epochs {
            self.epochs = Arc::new(epochs);
        }
        self
    }
    pub fn epoch_keys(&self) -> &EpochKeys {
        &self.epochs
    }
    /// The key new events are sealed under: `None` for the community key (epoch 0).
    pub fn sealing_key(&self) -> Option<(KeyId, &EpochKey)> {
        self.epochs.current()
    }
    /// The key named by `id`, if this device holds it.
    pub fn epoch_key(&self, id: &KeyId) -> Option<&EpochKey> {
        self.epochs.get(id)
    }

    /// Remembers the checks that many receivers repeat (event signatures) across every clone of this community: for the simulator's many devices in
    /// one process. Production leaves it off.
    pub fn with_signature_memo(mut self) -> Self {
        self.memo = Some(Arc::new(SignatureMemo::default()));
        self
    }

    /// A memo of event signatures checked ahead of the node, on other threads
    /// ([`SignatureMemo::prechecks`]): for a real device's driver. Shared by every clone, so
    /// the driver keeps one and the node's copy (kept current as membership changes) answers
    /// from it.
    pub fn with_signature_prechecks(mut self) -> Self {
        self.memo = Some(Arc::new(SignatureMemo::prechecks()));
        self
    }

    pub fn signature_memo(&self) -> Option<&SignatureMemo> {
        self.memo.as_deref()
    }

    /// Checks a signature that many receivers check alike, through the memo if there is one.
    pub fn verify_shared(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> bool {
        match &self.memo {
            Some(memo) => memo.verify(key, message, signature),
            None => key.verify(message, signature),
        }
    }
    /// [`Community::verify_shared`] of a claim.
    pub(crate) fn verify_claim(&self, claim: &SignatureClaim) -> bool {
        self.verify_shared(&claim.key, &claim.message, &claim.signature)
    }
    /// Signs `message` as `author`; with a memo, remembers that the signature verifies under
    /// `author`'s key (the signer made it with the key's secret, so the check would pass), and
    /// no receiver in the process checks it again.
    pub fn sign_shared(&self, author: &DeviceKeys, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let signature = author.sign(message);
        // A device's prechecks are for what it receives; it never opens its own events.
        // No check of our own signature here, even in debug builds: it was a sixth of a large
        // world's time, and `the_shared_signature_memo_changes_no_digest` (tests/) runs every
        // scenario with and without the memo and finds the same trace.
        if let Some(memo) = self.memo.as_ref().filter(|m| !m.forget_on_use) {
            memo.remember(
                SignatureMemo::entry(&author.public(), message, &signature),
                true,
            );
        }
        signature
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
    /// The roster itself, shared (not copied) by whoever keeps it.
    pub(crate) fn roster(&self) -> Arc<BTreeMap<DeviceId, PublicKey>> {
        Arc::clone(&self.roster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signature;

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
    fn the_memo_answers_as_the_check_does() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        let bob = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"seed");
        let plain = Community::new([1; 32], BTreeMap::new());
        let memo = plain.clone().with_signature_memo();
        let clone = memo.clone();
        let sig = alice.sign(b"hello");
        let mut bad_sig = sig;
        bad_sig[3] ^= 1;
        let cases = [
            (alice.public(), &b"hello"[..], sig),
            (alice.public(), &b"hellp"[..], sig),
            (bob.public(), &b"hello"[..], sig),
            (alice.public(), &b"hello"[..], bad_sig),
        ];
        for _ in 0..2 {
            for (key, message, signature) in &cases {
                let truth = key.verify(message, signature);
                assert_eq!(plain.verify_shared(key, message, signature), truth);
                assert_eq!(memo.verify_shared(key, message, signature), truth);
                assert_eq!(clone.verify_shared(key, message, signature), truth);
            }
        }
        assert_eq!(memo.signature_memo().map(SignatureMemo::len), Some(4));
        assert!(plain.signature_memo().is_none());
    }

    #[test]
    fn a_signature_made_through_the_memo_is_known_good_and_no_other() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        let bob = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"seed");
        let memo = Community::new([1; 32], BTreeMap::new()).with_signature_memo();
        let sig = memo.sign_shared(&alice, b"hello");
        assert_eq!(
            sig,
            alice.sign(b"hello"),
            "the same signature as without a memo"
        );
        assert_eq!(memo.signature_memo().map(SignatureMemo::len), Some(1));
        assert!(memo.verify_shared(&alice.public(), b"hello", &sig));
        assert!(!memo.verify_shared(&bob.public(), b"hello", &sig));
        assert!(!memo.verify_shared(&alice.public(), b"hellp", &sig));
        assert_eq!(memo.signature_memo().map(SignatureMemo::len), Some(3));
    }

    fn claim(keys: &DeviceKeys, message: &[u8], signature: [u8; SIGNATURE_LEN]) -> SignatureClaim {
        SignatureClaim::new(keys.public(), message.to_vec(), signature)
    }

    #[test]
    fn a_batch_verifies_when_every_claim_does_and_prechecks_answer_once() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        let bob = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"seed");
        let sound: Vec<SignatureClaim> = (0..100u32)
            .map(|i| {
                let (keys, message) = (if i % 2 == 0 { &alice } else { &bob }, i.to_le_bytes());
                claim(keys, &message, keys.sign(&message))
            })
            .collect();
        assert!(SignatureClaim::verify_all(&sound, rng(1)));
        let mut forged = sound.clone();
        forged[57] = claim(&alice, b"forged", bob.sign(b"forged"));
        assert!(!SignatureClaim::verify_all(&forged, rng(1)));
        assert!(!forged[57].verify());

        // Checked ahead, each answer is found once by the node's own check, then forgotten.
        let community = Community::new([1; 32], BTreeMap::new()).with_signature_prechecks();
        let memo = community.signature_memo().unwrap();
        memo.remember_checked(&forged[57], true);
        assert!(community.verify_claim(&forged[57]), "the memo answered");
        assert!(memo.is_empty());
        assert!(
            !community.verify_claim(&forged[57]),
            "then the check itself"
        );
        assert!(memo.is_empty(), "and a node's own checks are not kept");
        let sig = community.sign_shared(&alice, b"own");
        assert!(memo.is_empty(), "nor its own signatures");
        assert!(community.verify_shared(&alice.public(), b"own", &sig));
    }

    /// A batch's weights, seeded: the test's answers do not depend on luck.
    fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
        use rand_core::SeedableRng;
        rand_chacha::ChaCha20Rng::seed_from_u64(seed)
    }

    /// A signature by `secret` over `message` whose R is `r`·B plus `torsion` (a point of
    /// small order; the identity for an ordinary signature), with `s` made to satisfy the
    /// equation for that R: what only the key's holder can make.
    fn signed_with_torsion(
        secret: [u8; 32],
        message: &[u8],
        r: u64,
        torsion: curve25519_dalek::EdwardsPoint,
    ) -> [u8; SIGNATURE_LEN] {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::{Digest, Sha512};
        let signing = SigningKey::from_bytes(&secret);
        let r = Scalar::from(r);
        let big_r = (EdwardsPoint::mul_base(&r) + torsion).compress();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(signing.verifying_key().as_bytes())
                .chain_update(message),
        );
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice((r + k * signing.to_scalar()).as_bytes());
        signature
    }

    /// Adds ℓ, the group's order, to a little-endian scalar below it: the same s modulo ℓ,
    /// in a non-canonical form.
    fn add_group_order(s: &mut [u8]) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in s.iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "s + ℓ fits in 32 bytes");
    }

    /// The reason for the rule (`docs/PROTOCOL.md`): the forms the strict check refused, which
    /// a batch could pass or not by its random weights, now get one answer alone and in any
    /// batch, whatever the weights.
    #[test]
    fn single_and_batch_checks_agree_on_torsion_and_small_order_forms() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::EdwardsPoint;
        use ed25519_dalek::Verifier;
        let keys = DeviceKeys::from_secret(DeviceId::new("alice").unwrap(), [5; 32]);
        let strict = |message: &[u8], signature: &[u8; SIGNATURE_LEN]| {
            let signature = Signature::from_bytes(signature);
            keys.public().0.verify_strict(message, &signature).is_ok()
        };
        let plain = |message: &[u8], signature: &[u8; SIGNATURE_LEN]| {
            let signature = Signature::from_bytes(signature);
            keys.public().0.verify(message, &signature).is_ok()
        };
        let ordinary = signed_with_torsion([5; 32], b"ordinary", 7, EdwardsPoint::default());
        assert!(
            strict(b"ordinary", &ordinary),
            "the helper makes real signatures"
        );
        let mut cases: Vec<(&str, SignatureClaim, bool)> = Vec::new();
        cases.push((
            "an honest signature",
            claim(&keys, b"honest", keys.sign(b"honest")),
            true,
        ));
        // R of order 8 added: cofactorless (strict, plain) refuse, cofactored accepts.
        let torsion = signed_with_torsion([5; 32], b"torsion", 7, EIGHT_TORSION[1]);
        assert!(!strict(b"torsion", &torsion) && !plain(b"torsion", &torsion));
        cases.push((
            "R with a torsion component",
            claim(&keys, b"torsion", torsion),
            true,
        ));
        // R itself of small order (r = 0): the strict check refuses it, ZIP-215 does not.
        let small_r = signed_with_torsion([5; 32], b"small R", 0, EIGHT_TORSION[2]);
        assert!(!strict(b"small R", &small_r));
        cases.push(("a small-order R", claim(&keys, b"small R", small_r), true));
        // The same with s one off: no rule accepts it.
        let mut off = torsion;
        off[32] ^= 1;
        cases.push(("s one off", claim(&keys, b"torsion", off), false));
        // s not canonical (s + ℓ): refused by both rules.
        let mut wide = keys.sign(b"wide");
        add_group_order(&mut wide[32..]);
        assert!(!plain(b"wide", &wide));
        cases.push(("s past the group order", claim(&keys, b"wide", wide), false));
        // A key of small order (the identity) with R the identity and s = 0: the equation
        // holds for any message, so the rule refuses the key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey::from_bytes(&identity).expect("decodes");
        let mut any = [0u8; SIGNATURE_LEN];
        any[..32].copy_from_slice(&identity);
        cases.push((
            "a small-order key",
            SignatureClaim::new(weak, b"anything".to_vec(), any),
            false,
        ));

        let honest = claim(&keys, b"fine", keys.sign(b"fine"));
        for (what, case, expected) in &cases {
            assert_eq!(case.verify(), *expected, "{what}, alone");
            for seed in 0..16 {
                let batch = [honest.clone(), case.clone(), honest.clone()];
                assert_eq!(
                    SignatureClaim::verify_all(&batch, rng(seed)),
                    *expected,
                    "{what}, in a batch with weights from seed {seed}"
                );
            }
        }
    }

    #[test]
    fn both_sides_agree_and_strangers_do_not() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        let bob = DeviceKeys::derived(DeviceId::new("bob").unwrap(), b"seed");
        let carol = DeviceKeys::derived(DeviceId::new("carol").unwrap(), b"seed");
        let ab = alice.agree(&bob.public()).unwrap();
        assert_eq!(bob.agree(&alice.public()), Some(ab));
        assert_ne!(carol.agree(&bob.public()), Some(ab));
        assert_ne!(carol.agree(&alice.public()), Some(ab));
    }

    #[test]
    fn a_small_order_key_agrees_on_nothing() {
        let alice = DeviceKeys::derived(DeviceId::new("alice").unwrap(), b"seed");
        // The Edwards identity (y = 1): a valid encoding of a point of order one.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey::from_bytes(&identity).expect("decodes");
        assert!(weak.is_weak());
        assert!(!alice.public().is_weak());
        assert_eq!(alice.agree(&weak), None);
    }

    #[test]
    fn community_id_depends_on_key() {
        let a = Community::new([1; 32], BTreeMap::new());
        let b = Community::new([2; 32], BTreeMap::new());
        assert_ne!(a.id(), b.id());
    }
}
