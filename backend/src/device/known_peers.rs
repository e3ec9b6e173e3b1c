//! Where the peers this device met through an invite listen, kept in its data directory so a
//! restart reaches them again without `--peer`.
//!
//! ```text
//! DATA/peers.json   {"peers": [{"name": "dave", "address": "127.0.0.1:8010"}, ...]}   (0600)
//! ```
//!
//! An inviter learns a joined device's address from its join request; a joined device knows
//! its inviter's from the invite. Either is written here when it is learned, and at start the
//! file is read back beside the `--peer` flags (a flag wins for the same name). Once the node
//! has settled the roster, the file keeps only the node's peers, so a removed device is
//! forgotten here as well as by the node. Rewritten whole, atomically, like `epoch-keys.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshlog_core::DeviceId;
use serde::{Deserialize, Serialize};

use super::epoch_keys::replace_private;
use crate::keys::KeysError;

const FILE_NAME: &str = "peers.json";

/// Peers remembered at most; a node has at most `PEERS_MAX` peers, so more is a damaged file.
const KNOWN_PEERS_MAX: usize = meshlog_core::config::PEERS_MAX;

#[derive(Serialize, Deserialize)]
struct PeersFile {
    peers: Vec<PeerEntry>,
}

#[derive(Serialize, Deserialize)]
struct PeerEntry {
    name: String,
    address: SocketAddr,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The peers kept in `data_dir`; none if the file is not there.
pub fn load(data_dir: &Path) -> Result<BTreeMap<DeviceId, SocketAddr>, KeysError> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(KeysError::Io { path, source }),
    };
    let invalid = |detail: String| KeysError::Invalid {
        path: path.clone(),
        detail,
    };
    let file: PeersFile = serde_json::from_str(&text).map_err(|err| invalid(err.to_string()))?;
    if file.peers.len() > KNOWN_PEERS_MAX {
        return Err(invalid(format!(
            "{} peers, at most {KNOWN_PEERS_MAX}",
            file.peers.len()
        )));
    }
    let mut peers = BTreeMap::new();
    for entry in file.peers {
        let device = DeviceId::new(&entry.name)
            .ok_or_else(|| invalid(format!("{:?} is not a device name", entry.name)))?;
        peers.insert(device, entry.address);
    }
    Ok(peers)
}

/// Replaces the file in `data_dir` with `peers`, atomically.
pub fn save(data_dir: &Path, peers: &BTreeMap<DeviceId, SocketAddr>) -> Result<(), KeysError> {
    let file = PeersFile {
        peers: peers
            .iter()
            .map(|(device, address)| PeerEntry {
                name: device.to_string(),
                address: *address,
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).expect("peers serialize");
    replace_private(data_dir, FILE_NAME, &text)
}

/// Adds (or moves) one peer in the file.
pub fn remember(data_dir: &Path, device: DeviceId, address: SocketAddr) -> Result<(), KeysError> {
    let mut peers = load(data_dir)?;
    if peers.get(&device) == Some(&address) {
        return Ok(());
    }
    peers.insert(device, address);
    save(data_dir, &peers)
}

/// Drops from the file every peer `keep` says no to; writes only if something went.
pub fn retain(data_dir: &Path, keep: impl Fn(&DeviceId) -> bool) -> Result<(), KeysError> {
    let mut peers = load(data_dir)?;
    let before = peers.len();
    peers.retain(|device, _| keep(device));
    if peers.len() == before {
        return Ok(());
    }
    save(data_dir, &peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> DeviceId {
        DeviceId::new(name).unwrap()
    }

    #[test]
    fn peers_come_back_as_remembered_and_a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let dave: SocketAddr = "127.0.0.1:8010".parse().unwrap();
        let erin: SocketAddr = "127.0.0.1:8011".parse().unwrap();
        remember(dir.path(), id("dave"), dave).unwrap();
        remember(dir.path(), id("erin"), erin).unwrap();
        let peers = load(dir.path()).unwrap();
        assert_eq!(peers.get(&id("dave")), Some(&dave));
        assert_eq!(peers.get(&id("erin")), Some(&erin));
        retain(dir.path(), |d| d.as_str() != "erin").unwrap();
        let peers = load(dir.path()).unwrap();
        assert_eq!(
            peers.keys().map(DeviceId::as_str).collect::<Vec<_>>(),
            ["dave"]
        );
        // The file's mode (0600) is `replace_private`'s, tested with the epoch keys.
        // A damaged file is an error, not an empty set.
        std::fs::write(
            path(dir.path()),
            r#"{"peers": [{"name": "dave", "address": "x"}]}"#,
        )
        .unwrap();
        assert!(load(dir.path()).is_err());
    }
}
