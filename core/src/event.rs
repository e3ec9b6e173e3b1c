//! Events: what devices write, sign, encrypt and exchange.
//!
//! Wire and stored form (the same bytes, so the id verifies anywhere):
//!
//! ```text
//! sealed    = 1 | nonce:[u8; 24] | XChaCha20-Poly1305(community key, plaintext)       (epoch 0)
//!           | 2 | key_id:[u8; 8] | nonce:[u8; 24] | XChaCha20-Poly1305(epoch key, plaintext)
//! plaintext = 1 | author:str8 | created_at_us:u64 | kind:u8 | body | signature:[u8; 64]
//! id        = blake3(sealed)
//! ```
//!
//! The author signs `domain | community id | plaintext-without-signature` with Ed25519, so
//! authorship survives relaying. The AEAD's associated data binds the format version, the
//! community id and (format 2) the key id, so an event cannot be moved into another community
//! or relabelled with another epoch. Format 1 is sealed under the community's pre-shared key
//! (epoch 0) and is what a community that never rotated writes; format 2 names the epoch key
//! ([`crate::member::KeyId`]) it is sealed under (`member`: a removal starts a new epoch).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{Community, DeviceKeys, SignatureClaim, SIGNATURE_LEN};
use crate::id::{DeviceId, EventId, FileId};
use crate::member::KeyId;
use crate::time::Instant;

mod body;

use body::check_len;
pub use body::{Carrier, EventBody, FileRef};

pub const EVENT_FORMAT_VERSION: u8 = 1;
/// Sealed under an epoch key, named in the header.
pub const EVENT_FORMAT_EPOCH: u8 = 2;
const KEY_ID_LEN: usize = 8;
pub const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Largest sealed event: what is left of a 1200-byte datagram after the largest packet header
/// and the event's length prefix.
pub const EVENT_LEN_MAX: usize = crate::packet::DATAGRAM_SIZE_MAX
    - crate::packet::PACKET_OVERHEAD_MAX
    - crate::packet::EVENT_FRAMING_LEN;
/// Text of one message. Longer texts would not fit one datagram.
pub const TEXT_LEN_MAX: usize = 700;
/// Bytes of file content per `FileChunk` event, so each chunk fits one datagram.
pub const FILE_CHUNK_LEN_MAX: usize = 800;
/// Largest attachment sent as chunks: bounds the chunk events a single message can ask peers
/// to carry. Larger files go as blobs.
pub const FILE_SIZE_MAX: usize = 1024 * 1024;
/// Largest file a message may refer to as a blob: 1 TiB. A device keeps its own, lower
/// limit (`--file-size-max`); this one only bounds what a message may claim, so that a
/// size times anything stays far inside a `u64`.
pub const BLOB_SIZE_MAX: u64 = 1 << 40;
pub const FILE_NAME_LEN_MAX: usize = 64;
pub const MIME_LEN_MAX: usize = 64;
pub const EMOJI_LEN_MAX: usize = 32;

const SIGNATURE_DOMAIN: &[u8] = b"meshlog event signature v1";
const AEAD_DOMAIN: &[u8] = b"meshlog event v1";

/// An event in the clear: who wrote what, when (in the author's `Instant`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub author: DeviceId,
    pub created_at: Instant,
    pub body: EventBody,
}

/// An event as stored and sent: its id and its sealed bytes, plus what they open to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedEvent {
    pub id: EventId,
    pub sealed: Vec<u8>,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    #[error("invalid event body: {0}")]
    InvalidBody(DecodeError),
    #[error("sealed event would be {len} bytes, more than one datagram allows ({EVENT_LEN_MAX})")]
    TooLarge { len: usize },
}

/// Why a received or stored event was refused. Never stored, always counted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RejectReason {
    #[error("bad encoding: {0}")]
    BadEncoding(DecodeError),
    #[error("does not decrypt under the community key")]
    WrongKey,
    #[error("author {0} is not in the roster")]
    UnknownAuthor(String),
    #[error("author signature does not verify")]
    BadSignature,
    #[error("sealed under epoch key {0}, which this device does not hold")]
    UnknownEpoch(String),
    #[error("content does not hash to the claimed id")]
    IdMismatch,
    #[error("{len} bytes, more than {EVENT_LEN_MAX}")]
    TooLarge { len: usize },
}

impl RejectReason {
    /// Stable snake_case name for counters, traces and the API.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::BadEncoding(_) => "bad_encoding",
            RejectReason::WrongKey => "wrong_key",
            RejectReason::UnknownAuthor(_) => "unknown_author",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::UnknownEpoch(_) => "unknown_epoch",
            RejectReason::IdMismatch => "id_mismatch",
            RejectReason::TooLarge { .. } => "too_large",
        }
    }
}

fn signed_message(community: &Community, unsigned_plaintext: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 16 + unsigned_plaintext.len());
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(community.id());
    m.extend_from_slice(unsigned_plaintext);
    m
}

/// Version, domain, community id and (format 2) key id: fixed-size, so on the stack (every
/// event opened makes one). Format 1 uses the first `AAD_LEN` bytes, unchanged from before
/// epochs existed.
fn associated_data(
    community: &Community,
    key_id: Option<&KeyId>,
) -> ([u8; AAD_LEN + KEY_ID_LEN], usize) {
    let mut aad = [0u8; AAD_LEN + KEY_ID_LEN];
    aad[0] = if key_id.is_some() {
        EVENT_FORMAT_EPOCH
    } else {
        EVENT_FORMAT_VERSION
    };
    aad[1..1 + AEAD_DOMAIN.len()].copy_from_slice(AEAD_DOMAIN);
    aad[1 + AEAD_DOMAIN.len()..AAD_LEN].copy_from_slice(community.id());
    match key_id {
        Some(id) => {
            aad[AAD_LEN..].copy_from_slice(&id.0);
            (aad, AAD_LEN + KEY_ID_LEN)
        }
        None => (aad, AAD_LEN),
    }
}

const AAD_LEN: usize = 1 + AEAD_DOMAIN.len() + 16;

/// Signs with the author's key and encrypts under the community key. `nonce` comes from the
/// caller's RNG (the node's seeded ChaCha), which keeps the core free of OS randomness.
pub fn seal(
    event: &Event,
    author: &DeviceKeys,
    community: &Community,
    nonce: [u8; NONCE_LEN],
) -> Result<OpenedEvent, SealError> {
    assert_eq!(
        event.author, author.device,
        "an event is sealed by its own author"
    );
    event.body.validate().map_err(SealError::InvalidBody)?;
    let mut w = Writer::new();
    w.u8(EVENT_FORMAT_VERSION)
        .bytes_u8(event.author.as_str().as_bytes())
        .u64(event.created_at.as_micros());
    event.body.encode(&mut w);
    let sealed = seal_plaintext(&w.bytes, author, community, nonce)?;
    Ok(OpenedEvent {
        id: EventId::of_bytes(&sealed),
        sealed,
        event: event.clone(),
    })
}

/// Signs and encrypts `unsigned`, a plaintext without its signature, whatever it says: the
/// second half of `seal`, and the way to fuzz `open`'s decoder behind the AEAD and signature.
pub fn seal_plaintext(
    unsigned: &[u8],
    author: &DeviceKeys,
    community: &Community,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, SealError> {
    let signature = community.sign_shared(author, &signed_message(community, unsigned));
    let plaintext = [unsigned, &signature].concat();
    let sealing = community.sealing_key();
    let header_len = if sealing.is_some() { 1 + KEY_ID_LEN } else { 1 };
    let len = header_len + NONCE_LEN + plaintext.len() + TAG_LEN;
    if len > EVENT_LEN_MAX {
        return Err(SealError::TooLarge { len });
    }
    let (key, key_id) = match &sealing {
        Some((id, epoch)) => (&epoch.key, Some(id)),
        None => (community.key(), None),
    };
    let cipher = XChaCha20Poly1305::new(key.into());
    let (aad, aad_len) = associated_data(community, key_id);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad[..aad_len],
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut sealed = Vec::with_capacity(len);
    match key_id {
        Some(id) => {
            sealed.push(EVENT_FORMAT_EPOCH);
            sealed.extend_from_slice(&id.0);
        }
        None => sealed.push(EVENT_FORMAT_VERSION),
    }
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    debug_assert_eq!(sealed.len(), len);
    Ok(sealed)
}

/// Decrypts, decodes and verifies a sealed event. Never panics on any input.
pub fn open(sealed: &[u8], community: &Community) -> Result<OpenedEvent, RejectReason> {
    open_hashed(EventId::of_bytes(sealed), sealed, community)
}

/// The epoch key a sealed event names in its header: `None` for the community key (format 1),
/// and for bytes that are not an event at all (the caller has opened them already).
pub(crate) fn sealed_key_id(sealed: &[u8]) -> Option<KeyId> {
    match sealed.split_first() {
        Some((&EVENT_FORMAT_EPOCH, rest)) => rest
            .get(..KEY_ID_LEN)
            .map(|id| KeyId(id.try_into().expect("KEY_ID_LEN bytes"))),
        _ => None,
    }
}

/// [`open`] for bytes whose id the caller already hashed (a packet's events are hashed once,
/// for its tag, and the id travels with them).
pub(crate) fn open_hashed(
    id: EventId,
    sealed: &[u8],
    community: &Community,
) -> Result<OpenedEvent, RejectReason> {
    debug_assert_eq!(
        EventId::of_bytes(sealed),
        id,
        "the caller hashed these bytes"
    );
    let (event, claim) = unseal(sealed, community)?;
    // Every receiver checks the same author signature: shared, so a memo can answer.
    if !community.verify_claim(&claim) {
        return Err(RejectReason::BadSignature);
    }
    Ok(OpenedEvent {
        id,
        sealed: sealed.to_vec(),
        event,
    })
}

/// What checking a sealed event's author signature takes, so a device can check it away
/// from its node (on other threads, in batches) before the node opens the event; `None` if
/// the bytes fail a check that comes before the signature (the node rejects those itself).
pub fn signature_claim(sealed: &[u8], community: &Community) -> Option<SignatureClaim> {
    unseal(sealed, community).ok().map(|(_, claim)| claim)
}

/// Every check of [`open`] but the signature's: decrypts, decodes, finds the author's key.
fn unseal(sealed: &[u8], community: &Community) -> Result<(Event, SignatureClaim), RejectReason> {
    if sealed.len() > EVENT_LEN_MAX {
        return Err(RejectReason::TooLarge { len: sealed.len() });
    }
    let mut r = Reader::new(sealed);
    let version = r
        .u8("event format version")
        .map_err(RejectReason::BadEncoding)?;
    let key_id = match version {
        EVENT_FORMAT_VERSION => None,
        EVENT_FORMAT_EPOCH => Some(KeyId(
            r.array("event key id").map_err(RejectReason::BadEncoding)?,
        )),
        _ => {
            let err = DecodeError::invalid("event format version", format!("{version}"));
            return Err(RejectReason::BadEncoding(err));
        }
    };
    let key = match &key_id {
        None => community.key(),
        Some(id) => match community.epoch_key(id) {
            Some(epoch) => &epoch.key,
            None => return Err(RejectReason::UnknownEpoch(id.to_hex())),
        },
    };
    let nonce: [u8; NONCE_LEN] = r.array("event nonce").map_err(RejectReason::BadEncoding)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let (aad, aad_len) = associated_data(community, key_id.as_ref());
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: r.rest(),
                aad: &aad[..aad_len],
            },
        )
        .map_err(|_| RejectReason::WrongKey)?;
    if plaintext.len() < SIGNATURE_LEN {
        let err = DecodeError::Truncated {
            what: "event signature",
            needed: SIGNATURE_LEN - plaintext.len(),
        };
        return Err(RejectReason::BadEncoding(err));
    }
    let (unsigned, signature) = plaintext.split_at(plaintext.len() - SIGNATURE_LEN);
    let event = decode_plaintext(unsigned).map_err(RejectReason::BadEncoding)?;
    let key = community
        .member(&event.author)
        .ok_or_else(|| RejectReason::UnknownAuthor(event.author.to_string()))?;
    let signature: [u8; SIGNATURE_LEN] = signature.try_into().expect("split at SIGNATURE_LEN");
    let claim = SignatureClaim::new(*key, signed_message(community, unsigned), signature);
    Ok((event, claim))
}

/// `open`, and check the bytes hash to the id they were filed under.
pub fn open_expecting(
    id: &EventId,
    sealed: &[u8],
    community: &Community,
) -> Result<OpenedEvent, RejectReason> {
    if EventId::of_bytes(sealed) != *id {
        return Err(RejectReason::IdMismatch);
    }
    open_hashed(*id, sealed, community)
}

fn decode_plaintext(unsigned: &[u8]) -> Result<Event, DecodeError> {
    let mut r = Reader::new(unsigned);
    let version = r.u8("plaintext version")?;
    if version != EVENT_FORMAT_VERSION {
        return Err(DecodeError::invalid(
            "plaintext version",
            format!("{version}"),
        ));
    }
    let author = r.str_u8("author")?;
    let author =
        DeviceId::new(author).ok_or_else(|| DecodeError::invalid("author", "not a device name"))?;
    let created_at = Instant::from_micros(r.u64("created_at")?);
    let body = EventBody::decode(&mut r)?;
    r.finish()?;
    Ok(Event {
        author,
        created_at,
        body,
    })
}

/// Splits file content into `FileChunk` bodies and the `FileRef` a message carries.
pub fn chunk_file(
    name: &str,
    mime: &str,
    content: &[u8],
) -> Result<(FileRef, Vec<EventBody>), DecodeError> {
    check_len("attachment size", content.len(), FILE_SIZE_MAX)?;
    let file = FileId::of_content(content);
    let chunks: Vec<&[u8]> = if content.is_empty() {
        vec![&[]]
    } else {
        content.chunks(FILE_CHUNK_LEN_MAX).collect()
    };
    let count = u16::try_from(chunks.len()).expect("FILE_SIZE_MAX bounds the chunk count");
    let file_ref = FileRef {
        file,
        size: content.len() as u64,
        name: name.to_owned(),
        mime: mime.to_owned(),
        carrier: Carrier::Chunks { count },
    };
    let bodies = chunks
        .iter()
        .enumerate()
        .map(|(index, bytes)| EventBody::FileChunk {
            file,
            index: index as u16,
            count,
            bytes: bytes.to_vec(),
        })
        .collect();
    Ok((file_ref, bodies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{community_of, keys};

    fn sample(author: &str) -> Event {
        Event {
            author: DeviceId::new(author).unwrap(),
            created_at: Instant::from_millis(1234),
            body: EventBody::Message {
                text: "hi bob".into(),
                attachment: None,
                auto: false,
            },
        }
    }

    #[test]
    fn seal_then_open_round_trips() {
        let community = community_of(&["alice", "bob"], 7);
        let sealed = seal(&sample("alice"), &keys("alice", 7), &community, [3; 24]).unwrap();
        let opened = open(&sealed.sealed, &community).unwrap();
        assert_eq!(opened, sealed);
        assert_eq!(opened.id, EventId::of_bytes(&sealed.sealed));
    }

    #[test]
    fn rejections_say_why() {
        let community = community_of(&["alice", "bob"], 7);
        let sealed = seal(&sample("alice"), &keys("alice", 7), &community, [3; 24]).unwrap();

        let other_key = community_of(&["alice", "bob"], 8);
        assert_eq!(
            open(&sealed.sealed, &other_key),
            Err(RejectReason::WrongKey)
        );

        // Same key, but a roster without alice.
        let without_alice = Community::new(
            *community.key(),
            community_of(&["bob"], 7)
                .members()
                .map(|(d, k)| (d.clone(), *k))
                .collect(),
        );
        assert!(matches!(
            open(&sealed.sealed, &without_alice),
            Err(RejectReason::UnknownAuthor(_))
        ));

        // Alice's name but carol's key: the signature does not verify.
        let impostor =
            DeviceKeys::from_secret(DeviceId::new("alice").unwrap(), keys("carol", 7).secret());
        let forged = seal(&sample("alice"), &impostor, &community, [4; 24]).unwrap();
        assert_eq!(
            open(&forged.sealed, &community),
            Err(RejectReason::BadSignature)
        );

        let wrong_id = EventId([0; 32]);
        assert_eq!(
            open_expecting(&wrong_id, &sealed.sealed, &community),
            Err(RejectReason::IdMismatch)
        );
        assert!(matches!(
            open(&[9, 9], &community),
            Err(RejectReason::BadEncoding(_))
        ));
    }

    #[test]
    fn oversized_bodies_are_refused_before_sealing() {
        let community = community_of(&["alice"], 1);
        let mut event = sample("alice");
        event.body = EventBody::Message {
            text: "x".repeat(TEXT_LEN_MAX + 1),
            attachment: None,
            auto: false,
        };
        assert!(matches!(
            seal(&event, &keys("alice", 1), &community, [0; 24]),
            Err(SealError::InvalidBody(_))
        ));
    }

    #[test]
    fn largest_bodies_still_fit_one_datagram() {
        let community = community_of(&["alice"], 1);
        let long_name = "a".repeat(crate::id::DEVICE_NAME_LEN_MAX);
        let author = keys(&long_name, 1);
        let community = Community::new(
            *community.key(),
            [(author.device.clone(), author.public())].into(),
        );
        let (file_ref, _) = chunk_file(
            &"n".repeat(FILE_NAME_LEN_MAX),
            &"m".repeat(MIME_LEN_MAX),
            &[0; 3000],
        )
        .unwrap();
        for body in [
            EventBody::Message {
                text: "x".repeat(TEXT_LEN_MAX),
                attachment: Some(file_ref),
                auto: true,
            },
            EventBody::FileChunk {
                file: FileId([1; 32]),
                index: 0,
                count: 1,
                bytes: vec![7; FILE_CHUNK_LEN_MAX],
            },
        ] {
            let event = Event {
                author: author.device.clone(),
                created_at: Instant::from_millis(1),
                body,
            };
            let sealed = seal(&event, &author, &community, [0; 24]).unwrap();
            assert!(sealed.sealed.len() <= EVENT_LEN_MAX);
        }
    }

    #[test]
    fn chunking_covers_the_content_exactly() {
        let content: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let (file_ref, bodies) = chunk_file("a.png", "image/png", &content).unwrap();
        assert_eq!(file_ref.chunk_count(), Some(4));
        let mut joined = Vec::new();
        for body in &bodies {
            let EventBody::FileChunk { bytes, .. } = body else {
                panic!("not a chunk")
            };
            joined.extend_from_slice(bytes);
        }
        assert_eq!(joined, content);
        assert_eq!(file_ref.file, FileId::of_content(&content));
    }
}
