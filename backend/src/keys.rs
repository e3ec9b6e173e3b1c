//! Key files: a community's pre-shared key and roster, and each device's Ed25519 key pair.
//!
//! ```text
//! DIR/community.json     {"community_key_hex": "...", "roster": {"alice": "<public hex>", ...}}
//! DIR/alice.device.json  {"device": "alice", "secret_key_hex": "...", "public_key_hex": "..."}
//! ```
//! Made once from OS randomness by `meshlog community new`; nothing is hard-coded. The files
//! hold secrets, so they are written owner-readable only (on Unix).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

#[derive(Serialize, Deserialize)]
struct CommunityFile {
    community_key_hex: String,
    roster: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct DeviceFile {
    device: String,
    secret_key_hex: String,
    public_key_hex: String,
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

/// Makes a new community of `names` in `dir`: one community key and one key pair per device.
pub fn create_community(dir: &Path, names: &[String]) -> Result<Community, KeysError> {
    if names.is_empty() {
        return Err(KeysError::NoDevices);
    }
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
        },
    )?;
    Ok(Community::new(key, roster))
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
    Ok(Community::new(key, roster))
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
}
