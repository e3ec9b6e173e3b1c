//! Several devices per person: a person's identity key certifies each of their devices.
//!
//! A person is a name and an Ed25519 key that lives outside the community's roster (a key
//! file the person keeps, copied to each device of theirs). A device joins as any device does
//! (genesis, add or invite); then it publishes a [`Certificate`] in a `Certify` event it signs
//! itself: the person's key over `(community, person, device, device key)`. Both keys agree:
//! the person's signature says "this device is mine", the event's author signature says "I
//! am theirs", so nobody can pin a device on a person, or a person on a device, alone.
//!
//! What it gives: the roster knows each device's person (the page shows the person, with the
//! device in small print), and an admin removes a person with one `RemovePerson` event, which
//! removes every device certified for them and starts one key epoch. A device that certifies
//! itself for a removed person later (one the remover had not seen) is removed as it does.
//!
//! The first counted certificate binds a person's name to its key: a later one naming the same
//! person under another key does not count (`person_key_mismatch`), so a member cannot take
//! over a name to have someone else's devices removed.

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{DeviceKeys, PublicKey, SIGNATURE_LEN};
use crate::id::DeviceId;
use crate::time::Instant;

use super::op::Role;
use super::roster::{OpRecord, Roster, Status};

/// What a certificate signature covers, so it can never be replayed as another signature.
const CERT_DOMAIN: &[u8] = b"meshlog person certificate v1";

/// A person's identity: a name (spelled like a device name) and their signing key.
#[derive(Clone, Debug)]
pub struct PersonKeys {
    keys: DeviceKeys,
}

impl PersonKeys {
    /// From 32 secret bytes (read from the person's key file, made by the caller's RNG).
    pub fn from_secret(person: DeviceId, secret: [u8; 32]) -> Self {
        PersonKeys {
            keys: DeviceKeys::from_secret(person, secret),
        }
    }
    pub fn name(&self) -> &DeviceId {
        &self.keys.device
    }
    pub fn public(&self) -> PublicKey {
        self.keys.public()
    }
    pub fn secret(&self) -> [u8; 32] {
        self.keys.secret()
    }
    /// Certifies `device` (holding `device_key`) as this person's, in `community`.
    pub fn certify(
        &self,
        community: &[u8; 16],
        device: &DeviceId,
        device_key: &PublicKey,
    ) -> Certificate {
        let person_key = self.public();
        let signed = cert_bytes(community, self.name(), &person_key, device, device_key);
        Certificate {
            person: self.name().clone(),
            person_key,
            signature: self.keys.sign(&signed),
        }
    }
}

/// A person's statement that a device is theirs; published by that device (its author).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub person: DeviceId,
    pub person_key: PublicKey,
    pub signature: [u8; SIGNATURE_LEN],
}

impl Certificate {
    /// Whether the person's key signed this for `device` holding `device_key`.
    pub fn verify(&self, community: &[u8; 16], device: &DeviceId, device_key: &PublicKey) -> bool {
        let signed = cert_bytes(
            community,
            &self.person,
            &self.person_key,
            device,
            device_key,
        );
        self.person_key.verify(&signed, &self.signature)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes_u8(self.person.as_str().as_bytes())
            .raw(&self.person_key.to_bytes())
            .raw(&self.signature);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let person = DeviceId::new(r.str_u8("person")?)
            .ok_or_else(|| DecodeError::invalid("person", "not a name"))?;
        let key: [u8; 32] = r.array("person key")?;
        let person_key = PublicKey::from_bytes(&key)
            .filter(|k| !k.is_weak())
            .ok_or_else(|| DecodeError::invalid("person key", "not a usable curve point"))?;
        Ok(Certificate {
            person,
            person_key,
            signature: r.array("person signature")?,
        })
    }
}

/// A person as the roster knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonInfo {
    /// The key of the first counted certificate naming them.
    pub key: PublicKey,
    pub status: Status,
    /// The counted `RemovePerson`: who and when.
    pub removed: Option<(DeviceId, Instant)>,
}

/// Counts a `Certify` by its author (any active member, for itself); returns the devices it
/// removed (itself, if it certified for a removed person).
pub(super) fn certify(
    community: &[u8; 16],
    roster: &mut Roster,
    record: &OpRecord,
    cert: &Certificate,
) -> Result<Vec<DeviceId>, &'static str> {
    let author = &record.author;
    let member = roster.members.get(author).expect("the author is active");
    if member.person.is_some() {
        return Err("already_certified");
    }
    if !cert.verify(community, author, &member.key) {
        return Err("certificate_forged");
    }
    let removed = match roster.persons.get(&cert.person) {
        Some(known) if known.key != cert.person_key => return Err("person_key_mismatch"),
        Some(known) => known.removed.clone(),
        None => {
            roster.persons.insert(
                cert.person.clone(),
                PersonInfo {
                    key: cert.person_key,
                    status: Status::Active,
                    removed: None,
                },
            );
            None
        }
    };
    // A removed person's devices go with them, this late one too, unless it would leave the
    // community without an admin.
    if removed.is_some() && roster.is_admin(author) && roster.admins() == 1 {
        return Err("last_admin");
    }
    let member = roster
        .members
        .get_mut(author)
        .expect("the author is active");
    member.person = Some(cert.person.clone());
    match removed {
        None => Ok(Vec::new()),
        Some(removed) => {
            member.status = Status::Removed;
            member.removed = Some(removed);
            Ok(vec![author.clone()])
        }
    }
}

/// Counts an admin's `RemovePerson`: every active device certified for `person` is removed.
pub(super) fn remove_person(
    roster: &mut Roster,
    record: &OpRecord,
    person: &DeviceId,
) -> Result<Vec<DeviceId>, &'static str> {
    match roster.persons.get(person) {
        Some(info) if info.status == Status::Active => {}
        _ => return Err("not_a_person"),
    }
    let devices: Vec<DeviceId> = roster
        .active()
        .filter(|(_, m)| m.person.as_ref() == Some(person))
        .map(|(d, _)| d.clone())
        .collect();
    let admins_left = roster
        .active()
        .filter(|(_, m)| m.role == Role::Admin && m.person.as_ref() != Some(person))
        .count();
    if admins_left == 0 {
        return Err("last_admin");
    }
    let removal = Some((record.author.clone(), record.created_at));
    for device in &devices {
        let member = roster.members.get_mut(device).expect("active, so present");
        member.status = Status::Removed;
        member.removed = removal.clone();
    }
    let info = roster.persons.get_mut(person).expect("checked above");
    info.status = Status::Removed;
    info.removed = removal;
    Ok(devices)
}

fn cert_bytes(
    community: &[u8; 16],
    person: &DeviceId,
    person_key: &PublicKey,
    device: &DeviceId,
    device_key: &PublicKey,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(CERT_DOMAIN)
        .raw(community)
        .bytes_u8(person.as_str().as_bytes())
        .raw(&person_key.to_bytes())
        .bytes_u8(device.as_str().as_bytes())
        .raw(&device_key.to_bytes());
    w.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    #[test]
    fn a_certificate_binds_community_person_device_and_key() {
        let alice = PersonKeys::from_secret(name("alice"), [7; 32]);
        let phone = DeviceKeys::from_secret(name("alice-phone"), [1; 32]);
        let other = DeviceKeys::from_secret(name("bob"), [2; 32]);
        let community = [3; 16];
        let cert = alice.certify(&community, &phone.device, &phone.public());
        assert!(cert.verify(&community, &phone.device, &phone.public()));
        assert!(!cert.verify(&[4; 16], &phone.device, &phone.public()));
        assert!(!cert.verify(&community, &other.device, &phone.public()));
        assert!(!cert.verify(&community, &phone.device, &other.public()));
        let mut renamed = cert.clone();
        renamed.person = name("mallory");
        assert!(!renamed.verify(&community, &phone.device, &phone.public()));

        let mut w = Writer::new();
        cert.encode(&mut w);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(Certificate::decode(&mut r).unwrap(), cert);
    }
}
