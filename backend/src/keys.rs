//! Key files: a community's pre-shared key and roster, and each device's Ed25519 key pair.
//!
//! ```text
//! DIR/community.json     {"community_key_hex": "...", "roster": {"alice": "<public hex>", ...},
//!                         "admins": ["alice"]}
//! DIR/alice.device.json  {"device": "alice", "secret_key_hex": "...", "public_key_hex": "..."}
//! DIR/ann.person.json    {"person": "ann", "secret_key_hex": "...", "public_key_hex": "..."}
//! ```
//! Made once from OS randomness by `meshlog community new`; nothing is hard-coded. The files
//! hold secrets, so they are written owner-readable only (on Unix). `admins` are the genesis
//! admins; a file written before they existed has none, and loads with the first device (by
//! name) as the admin, as core's `Community::new` chooses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshlog_core::member::PersonKeys;
use meshlog_core::{Community, DeviceKeys, PublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::names::{device_id, BadDeviceName};

#[derive(Debug, Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("{0} already exists; refusing to overwrite keys")]
    Exists(PathBuf),
    #[error(transparent)]
    BadName(#[from] BadDeviceName),
    #[error("no devices given")]
    NoDevices,
    #[error("admin {0:?} is not one of the devices")]
    AdminNotADevice(String),
}

#[derive(Serialize, Deserialize)]
struct CommunityFile {
    community_key_hex: String,
    roster: BTreeMap<String, String>,
    /// The genesis admins; absent in files written before roles existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    admins: Vec<String>,
    /// Every member's key as a join's welcome gave them (the genesis and those added since,
    /// this device among them); absent in a community made by `community new`, whose members
    /// are its roster. A restart settles the rest from the membership events in the store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    members: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct DeviceFile {
    device: String,
    secret_key_hex: String,
    public_key_hex: String,
}

/// A person's identity key (`member::PersonKeys`): the same file on each of their devices.
#[derive(Serialize, Deserialize)]
struct PersonFile {
    person: String,
    secret_key_hex: String,
    public_key_hex: String,
}

pub fn person_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.person.json"))
}

/// Makes a person key for `name` in `dir` (`DIR/NAME.person.json`, owner-readable only), from
/// OS randomness; never overwrites.
pub fn create_person(dir: &Path, name: &str) -> Result<(PathBuf, PersonKeys), KeysError> {
    let person = PersonKeys::from_secret(device_id(name)?, random_32());
    let path = person_path(dir, name);
    if path.exists() {
        return Err(KeysError::Exists(path));
    }
    std::fs::create_dir_all(dir).map_err(|source| KeysError::Io {
        path: dir.to_owned(),
        source,
    })?;
    write_json(
        &path,
        &PersonFile {
            person: name.to_owned(),
            secret_key_hex: hex::encode(person.secret()),
            public_key_hex: hex::encode(person.public().to_bytes()),
        },
    )?;
    Ok((path, person))
}

/// Reads a person key file; its public key must be the secret's.
pub fn load_person(path: &Path) -> Result<PersonKeys, KeysError> {
    let file: PersonFile = read_json(path)?;
    let invalid = |detail: &str| KeysError::Invalid {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let secret = hex32(&file.secret_key_hex).ok_or_else(|| invalid("bad secret key"))?;
    let person = PersonKeys::from_secret(device_id(&file.person)?, secret);
    if hex32(&file.public_key_hex) != Some(person.public().to_bytes()) {
        return Err(invalid("the public key is not the secret key's"));
    }
    Ok(person)
}

pub fn community_path(dir: &Path) -> PathBuf {
    dir.join("community.json")
}

pub fn device_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.device.json"))
}

/// Whether `dir` already holds a community.
pub fn exists(dir: &Path) -> bool {
    community_path(dir).exists()
}

/// Makes a new community of `names` in `dir`: one community key and one key pair per device,
/// the first of `names` its admin.
pub fn create_community(dir: &Path, names: &[String]) -> Result<Community, KeysError> {
    create_community_with_admins(dir, names, &[])
}

/// As [`create_community`], with `admins` (each one of `names`) as the genesis admins; none
/// means the first of `names`.
pub fn create_community_with_admins(
    dir: &Path,
    names: &[String],
    admins: &[String],
) -> Result<Community, KeysError> {
    if names.is_empty() {
        return Err(KeysError::NoDevices);
    }
    for admin in admins {
        device_id(admin)?;
        if !names.contains(admin) {
            return Err(KeysError::AdminNotADevice(admin.clone()));
        }
    }
    let admins: Vec<String> = if admins.is_empty() {
        names[..1].to_vec()
    } else {
        let mut admins = admins.to_vec();
        admins.sort();
        admins.dedup();
        admins
    };
    if exists(dir) {
        return Err(KeysError::Exists(community_path(dir)));
    }
    std::fs::create_dir_all(dir).map_err(|source| KeysError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut roster = BTreeMap::new();
    let mut roster_hex = BTreeMap::new();
    for name in names {
        let device = device_id(name)?;
        let keys = DeviceKeys::from_secret(device.clone(), random_32());
        let public = keys.public();
        roster_hex.insert(name.clone(), hex::encode(public.to_bytes()));
        roster.insert(device, public);
        write_json(
            &device_path(dir, name),
            &DeviceFile {
                device: name.clone(),
                secret_key_hex: hex::encode(keys.secret()),
                public_key_hex: hex::encode(public.to_bytes()),
            },
        )?;
    }
    let key = random_32();
    write_json(
        &community_path(dir),
        &CommunityFile {
            community_key_hex: hex::encode(key),
            roster: roster_hex,
            admins: admins.clone(),
            members: BTreeMap::new(),
        },
    )?;
    let admins = admins
        .iter()
        .map(|a| device_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Community::new(key, roster).with_admins(admins))
}

pub fn load_community(dir: &Path) -> Result<Community, KeysError> {
    let path = community_path(dir);
    let file: CommunityFile = read_json(&path)?;
    let invalid = |detail: String| KeysError::Invalid {
        path: path.clone(),
        detail,
    };
    let key = hex32(&file.community_key_hex).ok_or_else(|| invalid("bad community key".into()))?;
    let mut roster = BTreeMap::new();
    for (name, public_hex) in &file.roster {
        let device = device_id(name)?;
        let public = hex32(public_hex)
            .and_then(|bytes| PublicKey::from_bytes(&bytes))
            .ok_or_else(|| invalid(format!("bad public key for {name}")))?;
        roster.insert(device, public);
    }
    let mut admins = Vec::with_capacity(file.admins.len());
    for admin in &file.admins {
        let device = device_id(admin)?;
        if !roster.contains_key(&device) {
            return Err(invalid(format!("admin {admin:?} is not in the roster")));
        }
        admins.push(device);
    }
    let mut members = BTreeMap::new();
    for (name, public_hex) in &file.members {
        let device = device_id(name)?;
        let public = hex32(public_hex)
            .and_then(|bytes| PublicKey::from_bytes(&bytes))
            .ok_or_else(|| invalid(format!("bad public key for member {name}")))?;
        members.insert(device, public);
    }
    // No admins (a file from before roles): `Community::new`'s default, the first device.
    let community = Community::new(key, roster).with_admins(admins);
    if members.is_empty() {
        return Ok(community);
    }
    Ok(community.with_members(members))
}

/// Writes the community a join's welcome gave (`meshlog device --join`) into `dir`: its key,
/// genesis roster and admins, and every member's key known at the welcome. Never overwrites.
pub fn write_joined_community(dir: &Path, community: &Community) -> Result<(), KeysError> {
    if exists(dir) {
        return Err(KeysError::Exists(community_path(dir)));
    }
    std::fs::create_dir_all(dir).map_err(|source| KeysError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let genesis = community.genesis();
    let hex_of = |key: &PublicKey| hex::encode(key.to_bytes());
    write_json(
        &community_path(dir),
        &CommunityFile {
            community_key_hex: hex::encode(community.key()),
            roster: genesis
                .iter()
                .map(|(device, (key, _))| (device.to_string(), hex_of(key)))
                .collect(),
            admins: genesis
                .iter()
                .filter(|(_, (_, role))| *role == meshlog_core::member::Role::Admin)
                .map(|(device, _)| device.to_string())
                .collect(),
            members: community
                .members()
                .map(|(device, key)| (device.to_string(), hex_of(key)))
                .collect(),
        },
    )
}

/// This device's keys in `dir`, made from OS randomness if it has none yet (a device that
/// joins with an invite makes its own).
pub fn load_or_create_device(dir: &Path, name: &str) -> Result<DeviceKeys, KeysError> {
    device_id(name)?;
    if device_path(dir, name).exists() {
        return load_device(dir, name);
    }
    std::fs::create_dir_all(dir).map_err(|source| KeysError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let keys = DeviceKeys::from_secret(device_id(name)?, random_32());
    write_json(
        &device_path(dir, name),
        &DeviceFile {
            device: name.to_owned(),
            secret_key_hex: hex::encode(keys.secret()),
            public_key_hex: hex::encode(keys.public().to_bytes()),
        },
    )?;
    Ok(keys)
}

pub fn load_device(dir: &Path, name: &str) -> Result<DeviceKeys, KeysError> {
    // Checked before it becomes part of a path.
    device_id(name)?;
    let path = device_path(dir, name);
    let file: DeviceFile = read_json(&path)?;
    let device = device_id(&file.device)?;
    let secret = hex32(&file.secret_key_hex).ok_or_else(|| KeysError::Invalid {
        path: path.clone(),
        detail: "bad secret key".into(),
    })?;
    Ok(DeviceKeys::from_secret(device, secret))
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, KeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| KeysError::Invalid {
        path: path.to_owned(),
        detail: err.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), KeysError> {
    let io = |source| KeysError::Io {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(value).expect("key files serialize");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlog_core::Keyring;

    /// Packet keys come from the Ed25519 keys already in these files, so a community made
    /// before packet format v3 works unchanged: both ends of each pair derive the same key.
    #[test]
    fn community_files_give_every_pair_a_shared_packet_key() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["alice".to_owned(), "bob".to_owned(), "carol".to_owned()];
        create_community(dir.path(), &names).unwrap();
        let community = load_community(dir.path()).unwrap();
        let rings: Vec<Keyring> = names
            .iter()
            .map(|n| Keyring::for_roster(&load_device(dir.path(), n).unwrap(), &community))
            .collect();
        for a in &rings {
            for b in &rings {
                if a.me() != b.me() {
                    let key = a.key(b.me()).expect("a key for every other member");
                    assert_eq!(b.key(a.me()), Some(key), "{} and {}", a.me(), b.me());
                }
            }
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn admins_are_kept_in_the_community_file() {
        let dir = tempfile::tempdir().unwrap();
        let made = create_community_with_admins(
            dir.path(),
            &names(&["carol", "alice", "bob"]),
            &names(&["bob", "alice"]),
        )
        .unwrap();
        let loaded = load_community(dir.path()).unwrap();
        let admins: Vec<&str> = loaded.admins().iter().map(|a| a.as_str()).collect();
        assert_eq!(admins, ["alice", "bob"]);
        assert_eq!(made.admins(), loaded.admins());
    }

    /// A person key comes back as written, is never overwritten, and a file whose public key
    /// is not its secret's (hand-edited, or two files spliced) is refused, not trusted.
    #[test]
    fn a_person_key_file_loads_back_and_a_mismatched_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, made) = create_person(dir.path(), "ann").unwrap();
        let loaded = load_person(&path).unwrap();
        assert_eq!(loaded.name().as_str(), "ann");
        assert_eq!(loaded.public(), made.public());
        assert!(matches!(
            create_person(dir.path(), "ann"),
            Err(KeysError::Exists(_))
        ));
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        file["public_key_hex"] = hex::encode([7u8; 32]).into();
        std::fs::write(&path, file.to_string()).unwrap();
        let err = load_person(&path).unwrap_err();
        assert!(matches!(err, KeysError::Invalid { .. }), "{err}");
    }

    #[test]
    fn the_first_device_named_is_the_admin_by_default() {
        let dir = tempfile::tempdir().unwrap();
        create_community(dir.path(), &names(&["carol", "alice"])).unwrap();
        let loaded = load_community(dir.path()).unwrap();
        let admins: Vec<&str> = loaded.admins().iter().map(|a| a.as_str()).collect();
        assert_eq!(admins, ["carol"]);
    }

    #[test]
    fn an_admin_must_be_one_of_the_devices() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_community_with_admins(
            dir.path(),
            &names(&["alice", "bob"]),
            &names(&["mallory"]),
        )
        .unwrap_err();
        assert!(matches!(err, KeysError::AdminNotADevice(_)), "{err}");
        assert!(!exists(dir.path()), "nothing written");
    }

    /// A community file written before roles has no `admins`: it loads, with core's default
    /// (the first device by name) as the admin.
    #[test]
    fn a_community_file_without_admins_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        create_community(dir.path(), &names(&["bob", "alice"])).unwrap();
        let path = community_path(dir.path());
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        file.as_object_mut().unwrap().remove("admins");
        std::fs::write(&path, file.to_string()).unwrap();
        let loaded = load_community(dir.path()).unwrap();
        let admins: Vec<&str> = loaded.admins().iter().map(|a| a.as_str()).collect();
        assert_eq!(admins, ["alice"]);
    }

    /// A joined device's community file gives back the community the welcome described:
    /// the same id, genesis admins, and every member's key (its own among them).
    #[test]
    fn a_joined_community_comes_back_whole() {
        let made = tempfile::tempdir().unwrap();
        let genesis =
            create_community_with_admins(made.path(), &names(&["alice", "bob"]), &[]).unwrap();
        let dave = DeviceKeys::from_secret(device_id("dave").unwrap(), [9; 32]);
        let mut everyone: BTreeMap<_, _> =
            genesis.members().map(|(d, k)| (d.clone(), *k)).collect();
        everyone.insert(dave.device.clone(), dave.public());
        let welcomed = genesis.clone().with_members(everyone);

        let dir = tempfile::tempdir().unwrap();
        write_joined_community(dir.path(), &welcomed).unwrap();
        let loaded = load_community(dir.path()).unwrap();
        assert_eq!(loaded.id(), genesis.id());
        assert_eq!(loaded.admins(), genesis.admins());
        assert_eq!(loaded.genesis(), genesis.genesis());
        assert_eq!(loaded.member(&dave.device), Some(&dave.public()));
        assert!(
            write_joined_community(dir.path(), &welcomed).is_err(),
            "never overwritten"
        );
    }
}
