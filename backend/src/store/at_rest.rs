//! Encryption at rest: the whole database is SQLCipher-encrypted under a 256-bit key.
//!
//! Every page SQLite writes, to the file and to its write-ahead log, is encrypted and
//! authenticated (AES-256 and an HMAC per page; SQLCipher's defaults), so the decrypted views
//! (`messages.text`, the search index, attachment bytes) never reach the disk in the clear.
//! The key comes from one of two places ([`KeySource`]):
//!
//! - **a key file**: 32 random bytes as hex, made 0600 on first start. By default it sits in
//!   the data directory (`db.key`), which is what the demo does: it then protects a copied
//!   database or a backup of it, not a stolen disk that holds both. Put it elsewhere
//!   (`--db-key-file` on a removable drive or another volume) and a disk image without it
//!   reads nothing.
//! - **a passphrase**, read from an environment variable (never a flag: flags show in `ps`),
//!   stretched with Argon2id and a random salt kept beside the database (`db.salt`; a salt is
//!   not a secret). Nothing on disk then opens the database.
//!
//! A database written by a version before encryption is re-encrypted on first open
//! ([`encrypt_in_place`]): copied into an encrypted file that then replaces it, so a crash
//! halfway leaves the old file whole. `docs/SECURITY.md` has the threat model.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore};
use rusqlite::{Connection, OpenFlags};
use thiserror::Error;
use zeroize::Zeroizing;

use super::error::DbError;

/// The database file inside a device's data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("meshlog.sqlite3")
}

/// The key file's name in the data directory, when none is given.
pub const KEY_FILE: &str = "db.key";
/// The passphrase's salt, beside the database.
const SALT_FILE: &str = "db.salt";
const SALT_LEN: usize = 16;
/// What every plaintext SQLite file starts with; an encrypted one starts with random bytes.
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Argon2id's cost: 64 MiB and three passes (above OWASP's floor of 19 MiB and two), about
/// a third of a second once per start: cheap for the owner, dear for a guesser.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
/// A passphrase shorter than this is refused: Argon2id slows guessing, it cannot make a
/// four-letter word strong.
pub const PASSPHRASE_LEN_MIN: usize = 12;

#[derive(Debug, Error)]
pub enum AtRestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a database key (64 hex digits expected)")]
    BadKeyFile(PathBuf),
    #[error(
        "{db} is encrypted, but its key file {key} is missing: start with the --db-key-file \
         or --passphrase-env it was made with"
    )]
    KeyMissing { db: PathBuf, key: PathBuf },
    #[error("the environment variable {0} is not set (it should hold the database passphrase)")]
    PassphraseUnset(String),
    #[error("the passphrase is shorter than {PASSPHRASE_LEN_MIN} characters")]
    PassphraseShort,
    #[error("deriving the key from the passphrase: {0}")]
    Derive(String),
}

/// Where the database key comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeySource {
    /// `DATA/db.key`, made on first start.
    #[default]
    DataDir,
    /// A key file the user keeps elsewhere; made there on first start if missing.
    File(PathBuf),
    /// A passphrase in the named environment variable.
    PassphraseEnv(String),
}

/// The database's key. Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey(..)")
    }
}

impl DbKey {
    /// A fresh key from the OS: for databases that live as long as a process (the
    /// simulator's SQLite worlds) and for tests.
    pub fn random() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        DbKey(key)
    }

    /// A key for one other secret kept at rest (the epoch keys' file), derived from this one,
    /// so the one key protects everything in the data directory; `purpose` keeps the uses apart.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(purpose, self.0.as_ref()))
    }

    /// SQLCipher's raw-key form, `x'<64 hex>'`: used as given, without SQLCipher's own
    /// PBKDF2 (the key is already random, or stretched by Argon2id).
    fn pragma_value(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("x'{}'", hex::encode(self.0.as_ref())))
    }

    /// The key of the database in `data_dir`, from `source`; made if this is the first start.
    pub fn load(data_dir: &Path, source: &KeySource) -> Result<Self, AtRestError> {
        let db = db_path(data_dir);
        match source {
            KeySource::DataDir => key_file(&db, &data_dir.join(KEY_FILE)),
            KeySource::File(path) => key_file(&db, path),
            KeySource::PassphraseEnv(var) => {
                let passphrase = Zeroizing::new(
                    std::env::var(var).map_err(|_| AtRestError::PassphraseUnset(var.clone()))?,
                );
                if passphrase.chars().count() < PASSPHRASE_LEN_MIN {
                    return Err(AtRestError::PassphraseShort);
                }
                let salt = salt(&data_dir.join(SALT_FILE))?;
                derive(passphrase.as_bytes(), &salt)
            }
        }
    }
}

/// Reads the key file at `path`, or makes it if the database is not encrypted yet (new, or
/// from before encryption). A missing key for an encrypted database is an error: a new key
/// would not open it, and overwriting would lose it.
fn key_file(db: &Path, path: &Path) -> Result<DbKey, AtRestError> {
    let io = |source| AtRestError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = Zeroizing::new(
                hex::decode(text.trim()).map_err(|_| AtRestError::BadKeyFile(path.to_owned()))?,
            );
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| AtRestError::BadKeyFile(path.to_owned()))?;
            Ok(DbKey(Zeroizing::new(key)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if is_encrypted(db).map_err(io)? {
                return Err(AtRestError::KeyMissing {
                    db: db.to_owned(),
                    key: path.to_owned(),
                });
            }
            let key = DbKey::random();
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.0.as_ref())));
            write_new_private(path, text.as_bytes()).map_err(io)?;
            tracing::info!(key_file = %path.display(), "made a new database key");
            Ok(key)
        }
        Err(err) => Err(io(err)),
    }
}

/// The passphrase's salt, made on first use.
fn salt(path: &Path) -> Result<[u8; SALT_LEN], AtRestError> {
    let io = |source| AtRestError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| AtRestError::BadKeyFile(path.to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut salt = [0u8; SALT_LEN];
            OsRng.fill_bytes(&mut salt);
            write_new_private(path, format!("{}\n", hex::encode(salt)).as_bytes()).map_err(io)?;
            Ok(salt)
        }
        Err(err) => Err(io(err)),
    }
}

fn derive(passphrase: &[u8], salt: &[u8]) -> Result<DbKey, AtRestError> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(32))
        .map_err(|err| AtRestError::Derive(err.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|err| AtRestError::Derive(err.to_string()))?;
    Ok(DbKey(key))
}

/// Writes a new file, 0600 from the start, and makes it durable: a key that a crash could
/// lose after the database was encrypted under it would lose the database.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether `db` holds an encrypted database: it exists, is not empty, and does not start as
/// a plaintext SQLite file does.
fn is_encrypted(db: &Path) -> std::io::Result<bool> {
    let mut header = [0u8; 16];
    let mut file = match std::fs::File::open(db) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    let read = std::io::Read::read(&mut file, &mut header)?;
    Ok(read > 0 && &header != PLAINTEXT_HEADER)
}

/// A database file and the key it is encrypted under: what opening it takes.
#[derive(Clone, Debug)]
pub struct Database {
    path: PathBuf,
    key: DbKey,
}

impl Database {
    pub fn new(path: PathBuf, key: DbKey) -> Self {
        Database { path, key }
    }

    /// The database of the device whose data directory is `data_dir`, under the key `source`
    /// gives.
    pub fn in_data_dir(data_dir: &Path, source: &KeySource) -> Result<Self, AtRestError> {
        let key = DbKey::load(data_dir, source)?;
        Ok(Database::new(db_path(data_dir), key))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key(&self) -> &DbKey {
        &self.key
    }

    /// A read-write connection with the key applied, for SQL the store does not offer (tests,
    /// an operator's repair). Open the [`SqliteStore`](super::SqliteStore) first: it makes
    /// the tables and encrypts an old plaintext file.
    pub fn connection(&self) -> Result<Connection, DbError> {
        self.connect(OpenFlags::default())
    }

    /// A read-only connection with the key applied, to look inside (tests, an operator); it
    /// changes nothing, and does not checkpoint or remove the log when it closes.
    pub fn read_only_connection(&self) -> Result<Connection, DbError> {
        self.connect(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    }

    /// A connection with the key applied and checked: a wrong key is refused here, with a
    /// clear error, not at the first query.
    pub(super) fn connect(&self, flags: OpenFlags) -> Result<Connection, DbError> {
        let conn = Connection::open_with_flags(&self.path, flags)?;
        apply_key(&conn, "main", &self.key)?;
        // The first read of the header: SQLCipher checks the key's HMAC here.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|err| match err.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => DbError::WrongKey(self.path.clone()),
                _ => DbError::Sqlite(err),
            })?;
        Ok(conn)
    }

    /// Re-encrypts a database written before encryption, if this one is. A no-op for a new or
    /// an encrypted file.
    pub(super) fn encrypt_if_plaintext(&self) -> Result<(), DbError> {
        let io = |err| DbError::Io(self.path.clone(), err);
        let mut header = [0u8; 16];
        let read = match std::fs::File::open(&self.path) {
            Ok(mut file) => std::io::Read::read(&mut file, &mut header).map_err(io)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(io(err)),
        };
        if read == 16 && &header == PLAINTEXT_HEADER {
            encrypt_in_place(&self.path, &self.key)?;
        }
        Ok(())
    }
}

fn apply_key(conn: &Connection, schema: &str, key: &DbKey) -> rusqlite::Result<()> {
    // Not a bound parameter: PRAGMA takes none. The value is hex digits we made.
    conn.execute_batch(&format!(
        "PRAGMA {schema}.key = \"{}\";",
        *key.pragma_value()
    ))
}

/// Copies the plaintext database at `path` into an encrypted one beside it and renames that
/// over it. Until the rename the old file is untouched (a crash leaves it, and the next start
/// tries again); after it, the plaintext pages are gone from the file (not from the disk's
/// free blocks, which only overwriting the device clears: `docs/SECURITY.md`).
fn encrypt_in_place(path: &Path, key: &DbKey) -> Result<(), DbError> {
    let io = |err| DbError::Io(path.to_owned(), err);
    let mut temp = path.as_os_str().to_owned();
    temp.push(".encrypting");
    let temp = PathBuf::from(temp);
    match std::fs::remove_file(&temp) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(io(err)),
        _ => {}
    }
    super::schema::make_private(&temp).map_err(io)?;
    tracing::info!(db = %path.display(), "encrypting a database written before encryption");
    {
        let plain = Connection::open(path)?;
        let version: i64 = plain.pragma_query_value(None, "user_version", |row| row.get(0))?;
        plain.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            rusqlite::params![temp.to_string_lossy(), *key.pragma_value()],
        )?;
        plain.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
        plain.pragma_update(
            Some(rusqlite::DatabaseName::Attached("encrypted")),
            "user_version",
            version,
        )?;
        plain.execute_batch("DETACH DATABASE encrypted")?;
        // Closing the last connection checkpoints the plaintext log into the file and
        // deletes it, so no `-wal` of the old file can be replayed onto the new one.
        plain.close().map_err(|(_, err)| err)?;
    }
    std::fs::File::open(&temp)
        .and_then(|file| file.sync_all())
        .map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut stale = path.as_os_str().to_owned();
        stale.push(suffix);
        match std::fs::remove_file(&stale) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(io(err)),
            _ => {}
        }
    }
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_gives_the_same_key_with_its_salt_and_another_with_another() {
        let a = derive(b"correct horse battery", b"0123456789abcdef").unwrap();
        let b = derive(b"correct horse battery", b"0123456789abcdef").unwrap();
        let c = derive(b"correct horse battery", b"fedcba9876543210").unwrap();
        assert_eq!(*a.0, *b.0);
        assert_ne!(*a.0, *c.0);
    }

    #[test]
    fn a_short_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let var = "MESHLOG_TEST_SHORT_PASSPHRASE";
        std::env::set_var(var, "hunter2");
        let source = KeySource::PassphraseEnv(var.into());
        assert!(matches!(
            DbKey::load(dir.path(), &source),
            Err(AtRestError::PassphraseShort)
        ));
        assert!(matches!(
            DbKey::load(
                dir.path(),
                &KeySource::PassphraseEnv("MESHLOG_TEST_UNSET_VAR".into())
            ),
            Err(AtRestError::PassphraseUnset(_))
        ));
    }
}
