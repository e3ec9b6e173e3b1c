//! The epoch keys a device holds, kept in its data directory so a restart opens every event
//! it could open before.
//!
//! ```text
//! DATA/epoch-keys.json   {"sealed_hex": "<24-byte nonce><XChaCha20-Poly1305 ciphertext>"}  (0600)
//!                        sealed: {"keys": [{"epoch": 1, "key_hex": "..."}, ...]}
//! ```
//!
//! Sealed under a key derived from the database's key (`store/at_rest.rs`), so what opens the
//! database opens this and nothing less does: a data directory taken without its key shows
//! neither messages nor the keys that would open them on the wire. A file from before sealing
//! (`{"keys": ...}` in the clear) still loads; the device seals it at start.
//!
//! Keys from rotations are re-derived from the log at start, but the keys a join's welcome
//! gives cannot be found again in it: all of them are kept. The file is rewritten whole on
//! every `NodeEvent::KeyEpoch` (a temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use meshlog_core::member::{EpochKey, EpochKeys};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::KeysError;
use crate::store::DbKey;

const FILE_NAME: &str = "epoch-keys.json";
/// Separates this use of the database key from any other (`DbKey::derive`).
const SEAL_PURPOSE: &str = "meshlog 2026-12 epoch-keys.json seal";
const NONCE_LEN: usize = 24;

/// The file as stored: sealed, or (written before sealing) in the clear.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredFile {
    Sealed { sealed_hex: String },
    Clear(KeysFile),
}

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
pub fn load(data_dir: &Path, at_rest: &DbKey) -> Result<EpochKeys, KeysError> {
    Ok(load_noting_clear(data_dir, at_rest)?.0)
}

/// The keys, and whether the file held them in the clear (from before sealing).
pub fn load_noting_clear(data_dir: &Path, at_rest: &DbKey) -> Result<(EpochKeys, bool), KeysError> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Zeroizing::new(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((EpochKeys::default(), false))
        }
        Err(source) => return Err(KeysError::Io { path, source }),
    };
    let invalid = |detail: String| KeysError::Invalid {
        path: path.clone(),
        detail,
    };
    let (file, clear): (KeysFile, bool) = match serde_json::from_str(&text)
        .map_err(|err| invalid(err.to_string()))?
    {
        StoredFile::Clear(file) => (file, true),
        StoredFile::Sealed { sealed_hex } => {
            let sealed = hex::decode(sealed_hex).map_err(|err| invalid(err.to_string()))?;
            let opened = open(at_rest, &sealed).ok_or_else(|| {
                invalid(
                    "does not open under this database key (a different key or passphrase?)".into(),
                )
            })?;
            let file = serde_json::from_slice(&opened).map_err(|err| invalid(err.to_string()))?;
            (file, false)
        }
    };
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
    Ok((keys, clear))
}

/// Replaces the file in `data_dir` with `keys`, sealed, atomically; the file is the owner's only.
pub fn save(data_dir: &Path, at_rest: &DbKey, keys: &EpochKeys) -> Result<(), KeysError> {
    let file = KeysFile {
        keys: keys
            .iter()
            .map(|(_, key)| KeyEntry {
                epoch: key.epoch,
                key_hex: hex::encode(key.key),
            })
            .collect(),
    };
    let clear = Zeroizing::new(serde_json::to_vec(&file).expect("epoch keys serialize"));
    let sealed = StoredFile::Sealed {
        sealed_hex: hex::encode(seal(at_rest, &clear)),
    };
    let text = serde_json::to_string(&sealed).expect("a sealed file serializes");
    replace_private(data_dir, FILE_NAME, &text)
}

fn cipher(at_rest: &DbKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(at_rest.derive(SEAL_PURPOSE).as_ref().into())
}

/// Nonce, then ciphertext and tag; the file name is bound in, so the bytes mean nothing
/// elsewhere.
fn seal(at_rest: &DbKey, clear: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: clear,
        aad: FILE_NAME.as_bytes(),
    };
    let sealed = cipher(at_rest)
        .encrypt(XNonce::from_slice(&nonce), payload)
        .expect("sealing in memory cannot fail");
    [&nonce[..], &sealed].concat()
}

fn open(at_rest: &DbKey, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
    let payload = Payload {
        msg: body,
        aad: FILE_NAME.as_bytes(),
    };
    let opened = cipher(at_rest)
        .decrypt(XNonce::from_slice(nonce), payload)
        .ok()?;
    Some(Zeroizing::new(opened))
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
        assert!(load(dir.path(), &DbKey::random()).unwrap().is_empty());
    }

    #[test]
    fn keys_come_back_as_saved_and_the_file_is_the_owners() {
        let dir = tempfile::tempdir().unwrap();
        let at_rest = DbKey::random();
        let mut keys = EpochKeys::default();
        keys.insert(key(1, 7));
        save(dir.path(), &at_rest, &keys).unwrap();
        keys.insert(key(2, 9));
        keys.insert(key(2, 3)); // concurrent rotations: two keys of one epoch
        save(dir.path(), &at_rest, &keys).unwrap();
        assert_eq!(load(dir.path(), &at_rest).unwrap(), keys);
        // Sealed: the key bytes are not in the file, and another key does not open it.
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(!text.contains(&hex::encode([9u8; 32])));
        assert!(load(dir.path(), &DbKey::random()).is_err());
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
        assert!(load(dir.path(), &DbKey::random()).is_err());
    }

    #[test]
    fn a_file_from_before_sealing_loads_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let clear = format!(
            "{{\"keys\": [{{\"epoch\": 1, \"key_hex\": \"{}\"}}]}}",
            hex::encode([7u8; 32])
        );
        std::fs::write(path(dir.path()), clear).unwrap();
        let (keys, was_clear) = load_noting_clear(dir.path(), &DbKey::random()).unwrap();
        assert!(was_clear);
        assert_eq!(keys.iter().count(), 1);
    }
}
