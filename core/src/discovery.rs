//! LAN discovery: a device announces itself on the local link, and members that hear it
//! make it a peer (issue 25). What goes on the air is readable by the community only:
//!
//! ```text
//! key          = BLAKE3-derive_key("meshlog lan announcement key v1", epoch key)
//! announcement = nonce:[u8; 24] | XChaCha20-Poly1305(key, nonce, plaintext,
//!                                   aad = "meshlog announcement v1" | community id)
//! plaintext    = version:u8 (1) | name_len:u8 | name:[u8; 32] (zero-padded)
//!              | port_count:u8 | ports:[u16; 4] (zero-padded) | issued_at:u64 (µs)
//!              | signature:[u8; 64]
//! signature    = Ed25519(device key, "meshlog announcement signature v1" | community id
//!                                    | plaintext without the signature)
//! ```
//!
//! Every announcement is `ANNOUNCEMENT_LEN` bytes, whatever the name, and nothing in it is in
//! clear but the nonce, fresh from the node's seeded RNG each time: a stranger on the link
//! sees same-sized random-looking datagrams and cannot tell a device's two announcements
//! from two devices'. The key is derived from the epoch key new events are sealed under, so
//! a removed member, given no copy of the new epoch's key, opens none sealed after its
//! removal. The signature is the device's own: a member gone bad, who holds the epoch key,
//! can read and seal announcements but cannot speak for another member.
//!
//! A receiver tries at most `ANNOUNCE_KEYS_TRIED_MAX` keys, its newest, so the work one
//! datagram costs is bounded before any signature is checked (only a datagram that opened
//! under a community key gets one check). The rest of the receiver's rules (rate, age, the
//! roster) are the node's (`node/discover.rs`).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use thiserror::Error;

use crate::crypto::{Community, DeviceKeys, PublicKey, SIGNATURE_LEN};
use crate::id::{DeviceId, DEVICE_NAME_LEN_MAX};
use crate::time::{Duration, Instant};

const KEY_CONTEXT: &str = "meshlog lan announcement key v1";
const AEAD_DOMAIN: &[u8] = b"meshlog announcement v1";
const SIGNATURE_DOMAIN: &[u8] = b"meshlog announcement signature v1";
const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// When a device announces itself (every driver: the real backend's discovery task and the
/// simulator's LAN): at start, then after each of these delays in turn (a device starting
/// beside others is heard at once even if its first announcement is lost), then every
/// `ANNOUNCE_INTERVAL`; at once again when its address changes.
pub const ANNOUNCE_FIRST_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// The steady interval between a device's announcements (Syncthing announces every 30–60 s).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(30);

/// Sync ports one announcement names at most (one per socket a device syncs on; one today).
pub const ANNOUNCE_PORTS_MAX: usize = 4;
/// Keys a receiver tries on one announcement: its newest held, so a sender one rotation behind
/// (or ahead) is still heard, and a datagram costs at most this many AEAD openings.
pub const ANNOUNCE_KEYS_TRIED_MAX: usize = 3;

const UNSIGNED_LEN: usize = 1 + 1 + DEVICE_NAME_LEN_MAX + 1 + 2 * ANNOUNCE_PORTS_MAX + 8;
const PLAINTEXT_LEN: usize = UNSIGNED_LEN + SIGNATURE_LEN;
/// The size of every announcement on the wire.
pub const ANNOUNCEMENT_LEN: usize = NONCE_LEN + PLAINTEXT_LEN + TAG_LEN;

/// What a device says of itself on the local link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub device: DeviceId,
    /// Where its sync socket listens (at the address the announcement came from): 1 to
    /// `ANNOUNCE_PORTS_MAX` ports, none of them 0.
    pub ports: Vec<u16>,
    /// The sender's clock when it sealed it; receivers refuse ones too old or too new.
    pub issued_at: Instant,
}

/// An announcement that opened under a community key; its signature is not checked yet.
#[derive(Clone, Debug)]
pub struct Opened {
    pub announcement: Announcement,
    unsigned: [u8; UNSIGNED_LEN],
    signature: [u8; SIGNATURE_LEN],
}

/// Why an announcement was not used; `code` is its drop reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AnnounceError {
    /// Not `ANNOUNCEMENT_LEN` bytes, or no held key opens it: a stranger's, a removed
    /// member's from before, noise.
    #[error("not an announcement this device can open")]
    Unreadable,
    /// Opened, but what it says does not decode: a bug or a member gone bad.
    #[error("announcement malformed: {0}")]
    Malformed(&'static str),
    /// The signature is not the named device's.
    #[error("announcement signature does not verify")]
    Forged,
}

impl AnnounceError {
    pub fn code(&self) -> &'static str {
        match self {
            AnnounceError::Unreadable => "announce_unreadable",
            AnnounceError::Malformed(_) => "announce_malformed",
            AnnounceError::Forged => "announce_forged",
        }
    }
}

fn cipher(epoch_key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new((&blake3::derive_key(KEY_CONTEXT, epoch_key)).into())
}

fn aad(community_id: &[u8; 16]) -> [u8; AEAD_DOMAIN.len() + 16] {
    let mut aad = [0u8; AEAD_DOMAIN.len() + 16];
    aad[..AEAD_DOMAIN.len()].copy_from_slice(AEAD_DOMAIN);
    aad[AEAD_DOMAIN.len()..].copy_from_slice(community_id);
    aad
}

fn signed_message(community_id: &[u8; 16], unsigned: &[u8]) -> Vec<u8> {
    [SIGNATURE_DOMAIN, community_id, unsigned].concat()
}

/// The key announcements are sealed under now: the newest epoch's (the community key before
/// any rotation), as events are.
pub fn sealing_key(community: &Community) -> [u8; 32] {
    match community.sealing_key() {
        Some((_, epoch)) => epoch.key,
        None => *community.key(),
    }
}

/// The keys a receiver tries, newest epoch first, at most `ANNOUNCE_KEYS_TRIED_MAX`; the
/// sealing key always among them.
pub fn opening_keys(community: &Community) -> Vec<[u8; 32]> {
    let mut held: Vec<(u32, [u8; 32])> = community
        .epoch_keys()
        .iter()
        .map(|(_, k)| (k.epoch, k.key))
        .collect();
    held.push((0, *community.key()));
    // Highest epoch first; ties (concurrent rotations) by key bytes, so the order is fixed.
    held.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let sealing = sealing_key(community);
    let mut keys = vec![sealing];
    for (_, key) in held {
        if keys.len() >= ANNOUNCE_KEYS_TRIED_MAX {
            break;
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Signs and seals `announcement` by `author` under `epoch_key`. `nonce` comes from the
/// caller's seeded RNG. Panics if the announcement names another device or breaks the port
/// bounds: the caller builds it from its own config.
pub fn seal_announcement(
    announcement: &Announcement,
    author: &DeviceKeys,
    community_id: &[u8; 16],
    epoch_key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    assert_eq!(
        announcement.device, author.device,
        "a device announces itself"
    );
    assert!(
        (1..=ANNOUNCE_PORTS_MAX).contains(&announcement.ports.len())
            && !announcement.ports.contains(&0),
        "1 to ANNOUNCE_PORTS_MAX ports, none 0"
    );
    let mut unsigned = [0u8; UNSIGNED_LEN];
    let name = announcement.device.as_str().as_bytes();
    unsigned[0] = FORMAT_VERSION;
    unsigned[1] = name.len() as u8;
    unsigned[2..2 + name.len()].copy_from_slice(name);
    let mut at = 2 + DEVICE_NAME_LEN_MAX;
    unsigned[at] = announcement.ports.len() as u8;
    at += 1;
    for (i, port) in announcement.ports.iter().enumerate() {
        unsigned[at + 2 * i..at + 2 * i + 2].copy_from_slice(&port.to_be_bytes());
    }
    at += 2 * ANNOUNCE_PORTS_MAX;
    unsigned[at..at + 8].copy_from_slice(&announcement.issued_at.as_micros().to_be_bytes());
    debug_assert_eq!(at + 8, UNSIGNED_LEN);
    let signature = author.sign(&signed_message(community_id, &unsigned));
    let plaintext = [&unsigned[..], &signature].concat();
    let ciphertext = cipher(epoch_key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad(community_id),
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let sealed = [&nonce[..], &ciphertext].concat();
    assert_eq!(sealed.len(), ANNOUNCEMENT_LEN);
    sealed
}

/// Opens `bytes` with the first of `keys` that opens it (at most `ANNOUNCE_KEYS_TRIED_MAX`
/// are tried) and decodes it. The signature is checked by [`Opened::verify`], against the
/// roster's key for the device it names. Never panics on any input.
pub fn open_announcement(
    bytes: &[u8],
    community_id: &[u8; 16],
    keys: &[[u8; 32]],
) -> Result<Opened, AnnounceError> {
    if bytes.len() != ANNOUNCEMENT_LEN {
        return Err(AnnounceError::Unreadable);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let aad = aad(community_id);
    let plaintext = keys
        .iter()
        .take(ANNOUNCE_KEYS_TRIED_MAX)
        .find_map(|key| {
            cipher(key)
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .ok()
        })
        .ok_or(AnnounceError::Unreadable)?;
    if plaintext.len() != PLAINTEXT_LEN {
        return Err(AnnounceError::Malformed("length"));
    }
    let (unsigned, signature) = plaintext.split_at(UNSIGNED_LEN);
    if unsigned[0] != FORMAT_VERSION {
        return Err(AnnounceError::Malformed("version"));
    }
    let name_len = usize::from(unsigned[1]);
    if name_len == 0 || name_len > DEVICE_NAME_LEN_MAX {
        return Err(AnnounceError::Malformed("name length"));
    }
    let name = std::str::from_utf8(&unsigned[2..2 + name_len])
        .map_err(|_| AnnounceError::Malformed("name"))?;
    let device = DeviceId::new(name).ok_or(AnnounceError::Malformed("name"))?;
    let mut at = 2 + DEVICE_NAME_LEN_MAX;
    let port_count = usize::from(unsigned[at]);
    if port_count == 0 || port_count > ANNOUNCE_PORTS_MAX {
        return Err(AnnounceError::Malformed("port count"));
    }
    at += 1;
    let ports: Vec<u16> = (0..port_count)
        .map(|i| u16::from_be_bytes([unsigned[at + 2 * i], unsigned[at + 2 * i + 1]]))
        .collect();
    if ports.contains(&0) {
        return Err(AnnounceError::Malformed("port"));
    }
    at += 2 * ANNOUNCE_PORTS_MAX;
    let issued: [u8; 8] = unsigned[at..at + 8].try_into().expect("8 bytes");
    Ok(Opened {
        announcement: Announcement {
            device,
            ports,
            issued_at: Instant::from_micros(u64::from_be_bytes(issued)),
        },
        unsigned: unsigned.try_into().expect("UNSIGNED_LEN bytes"),
        signature: signature.try_into().expect("SIGNATURE_LEN bytes"),
    })
}

impl Opened {
    /// Whether `key` (the roster's key for the device named) signed it.
    pub fn verify(&self, community_id: &[u8; 16], key: &PublicKey) -> bool {
        key.verify(
            &signed_message(community_id, &self.unsigned),
            &self.signature,
        )
    }

    /// The same announcement with its signature replaced: for tests of forgery.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_signature(mut self, signature: [u8; SIGNATURE_LEN]) -> Self {
        self.signature = signature;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{community_of, device, keys};

    fn alice_says(nonce: u8, community: &Community) -> Vec<u8> {
        let announcement = Announcement {
            device: device("alice"),
            ports: vec![8001],
            issued_at: Instant::from_micros(1_000_000),
        };
        seal_announcement(
            &announcement,
            &keys("alice", 1),
            community.id(),
            &sealing_key(community),
            [nonce; NONCE_LEN],
        )
    }

    #[test]
    fn members_open_what_a_member_seals() {
        let community = community_of(&["alice", "bob"], 1);
        let bytes = alice_says(7, &community);
        assert_eq!(bytes.len(), ANNOUNCEMENT_LEN);
        let opened =
            open_announcement(&bytes, community.id(), &opening_keys(&community)).expect("opens");
        assert_eq!(opened.announcement.device, device("alice"));
        assert_eq!(opened.announcement.ports, vec![8001]);
        assert!(opened.verify(community.id(), &keys("alice", 1).public()));
        assert!(!opened.verify(community.id(), &keys("bob", 1).public()));
    }

    #[test]
    fn a_stranger_opens_nothing_and_sees_no_name() {
        let community = community_of(&["alice", "bob"], 1);
        let other = community_of(&["alice", "bob"], 2);
        let bytes = alice_says(7, &community);
        assert_eq!(
            open_announcement(&bytes, other.id(), &opening_keys(&other)).unwrap_err(),
            AnnounceError::Unreadable
        );
        assert!(!bytes.windows(5).any(|w| w == b"alice"), "no name in clear");
    }

    #[test]
    fn a_long_name_and_a_short_one_make_the_same_size() {
        let long = "a".repeat(DEVICE_NAME_LEN_MAX);
        let community = community_of(&["b", &long], 1);
        let sizes: Vec<usize> = ["b", long.as_str()]
            .iter()
            .map(|name| {
                let announcement = Announcement {
                    device: device(name),
                    ports: [1u16, 2, 3, 4][..if name.len() == 1 { 1 } else { 4 }].to_vec(),
                    issued_at: Instant::from_micros(5),
                };
                seal_announcement(
                    &announcement,
                    &keys(name, 1),
                    community.id(),
                    &sealing_key(&community),
                    [0; NONCE_LEN],
                )
                .len()
            })
            .collect();
        assert_eq!(sizes, vec![ANNOUNCEMENT_LEN, ANNOUNCEMENT_LEN]);
    }
}
