//! The epoch keys a device holds, kept in its data directory so a restart opens every event
//! it could open before.
//!
//! ```text
//! DATA/epoch-keys.json   {"keys": [{"epoch": 1, "key_hex": "..."}, ...]}   (0600)
//! ```
//!
//! Keys from rotations are re-derived from the log at start, but the keys a join's welcome
//! gives cannot be found again in it: all of them are kept. The file is rewritten whole on
//! every `NodeEvent::KeyEpoch` (a temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use meshlog_core::member::{EpochKey, EpochKeys};
use serde::{Deserialize, Serialize};

use crate::keys::KeysError;

const FILE_NAME: &str = "epoch-keys.json";

#[derive(Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    epoch: u32,
    key_hex: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The keys kept in `data_dir`; none if the file is not there (a device that never held one).
pub fn load(data_dir: &Path) -> Result<EpochKeys, KeysError> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(EpochKeys::default()),
        Err(source) => return Err(KeysError::Io { path, source }),
    };
    let invalid = |detail: String| KeysError::Invalid {
        path: path.clone(),
        detail,
    };
    let file: KeysFile = serde_json::from_str(&text).map_err(|err| invalid(err.to_string()))?;
    let mut keys = EpochKeys::default();
    for entry in file.keys {
        let key: [u8; 32] = hex::decode(&entry.key_hex)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| invalid(format!("bad key for epoch {}", entry.epoch)))?;
        keys.insert(EpochKey {
            epoch: entry.epoch,
            key,
        });
    }
    Ok(keys)
}

/// Replaces the file in `data_dir` with `keys`, atomically; the file is the owner's only.
pub fn save(data_dir: &Path, keys: &EpochKeys) -> Result<(), KeysError> {
    let file = KeysFile {
        keys: keys
            .iter()
            .map(|(_, key)| KeyEntry {
                epoch: key.epoch,
                key_hex: hex::encode(key.key),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).expect("epoch keys serialize");
    replace_private(data_dir, FILE_NAME, &text)
}

/// Replaces `data_dir/file_name` with `text` so that a crash leaves the old file or the new
/// one, never half of one (a temporary file, fsync, rename, fsync of the directory); the file
/// is the owner's only (0600). Also for `peers.json` (`known_peers.rs`).
pub(crate) fn replace_private(
    data_dir: &Path,
    file_name: &str,
    text: &str,
) -> Result<(), KeysError> {
    let path = data_dir.join(file_name);
    let temporary = data_dir.join(format!("{file_name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeysError::Io { path, source }
    };
    // A temporary file left by a crash is stale: start it afresh.
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary).map_err(io(&temporary))?;
    out.write_all(text.as_bytes()).map_err(io(&temporary))?;
    out.sync_all().map_err(io(&temporary))?;
    drop(out);
    std::fs::rename(&temporary, &path).map_err(io(&path))?;
    // The rename itself is durable once the directory is.
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(epoch: u32, byte: u8) -> EpochKey {
        EpochKey {
            epoch,
            key: [byte; 32],
        }
    }

    #[test]
    fn no_file_is_no_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn keys_come_back_as_saved_and_the_file_is_the_owners() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = EpochKeys::default();
        keys.insert(key(1, 7));
        save(dir.path(), &keys).unwrap();
        keys.insert(key(2, 9));
        keys.insert(key(2, 3)); // concurrent rotations: two keys of one epoch
        save(dir.path(), &keys).unwrap();
        assert_eq!(load(dir.path()).unwrap(), keys);
        assert!(!dir.path().join(format!("{FILE_NAME}.tmp")).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            path(dir.path()),
            "{\"keys\": [{\"epoch\": 1, \"key_hex\": \"zz\"}]}",
        )
        .unwrap();
        assert!(load(dir.path()).is_err());
    }
}
