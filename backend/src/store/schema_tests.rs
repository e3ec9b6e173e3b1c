//! Migrations, seen from the outside: a database an older or newer layout wrote, opened by
//! `SqliteStore` (which runs `schema::migrate`) and read back.

use meshlog_core::{EventId, Store};
use rusqlite::{params, Connection};

use super::at_rest::{db_path, AtRestError, Database, DbKey, KeySource, KEY_FILE};
use super::error::DbError;
use super::query::StoreReader;
use super::schema::SCHEMA_VERSION;
use super::sqlite::SqliteStore;
use crate::paging::PageRequest;

/// The tables as layout 1 wrote them (before `seq`), with its search trigger.
const LAYOUT_1: &str = "
CREATE TABLE events (event_id BLOB PRIMARY KEY, account_id TEXT NOT NULL,
    received_ts INTEGER NOT NULL, encrypted BLOB NOT NULL, kind TEXT NOT NULL);
CREATE TABLE messages (event_id BLOB PRIMARY KEY REFERENCES events(event_id),
    author TEXT NOT NULL, created_at_us INTEGER NOT NULL, text TEXT NOT NULL,
    auto INTEGER NOT NULL, file_id BLOB, file_name TEXT, file_mime TEXT, file_size INTEGER,
    file_chunks INTEGER);
CREATE INDEX messages_by_time ON messages(created_at_us, event_id);
CREATE VIRTUAL TABLE messages_fts USING fts5(text, file_name, content='messages',
    content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text, file_name) VALUES (new.rowid, new.text, new.file_name);
END;
CREATE INDEX messages_by_file ON messages(file_id);
CREATE TABLE reactions (event_id BLOB PRIMARY KEY REFERENCES events(event_id),
    message_id BLOB NOT NULL, author TEXT NOT NULL, emoji TEXT NOT NULL,
    remove INTEGER NOT NULL, created_at_us INTEGER NOT NULL);
CREATE INDEX reactions_by_message ON reactions(message_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE file_chunks (file_id BLOB NOT NULL, chunk_index INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (file_id, chunk_index));
INSERT INTO meta VALUES ('epoch', 41);
";

fn search(reader: &StoreReader, q: &str) -> Vec<String> {
    let request = PageRequest {
        before: None,
        limit: 10,
        search: Some(crate::paging::Search::parse(q).unwrap()),
    };
    let page = reader.page(&request).unwrap();
    page.messages.into_iter().map(|m| m.text).collect()
}

#[test]
fn a_layout_1_database_is_rewritten_with_everything_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let (old, older, like) = (EventId([3; 32]), EventId([1; 32]), EventId([2; 32]));
    {
        let conn = Connection::open(db.path()).unwrap();
        conn.execute_batch(LAYOUT_1).unwrap();
        for (id, kind) in [(old, "message"), (older, "message"), (like, "reaction")] {
            conn.execute(
                "INSERT INTO events VALUES (?1, 'alice', 5, ?2, ?3)",
                params![&id.0[..], vec![id.0[0]; 40], kind],
            )
            .unwrap();
        }
        for (id, at, text) in [(old, 20, "harbor lights"), (older, 10, "quiet harbor")] {
            conn.execute(
                "INSERT INTO messages (event_id, author, created_at_us, text, auto)
                 VALUES (?1, 'alice', ?2, ?3, 0)",
                params![&id.0[..], at, text],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO reactions VALUES (?1, ?2, 'bob', 'x', 0, 30)",
            params![&like.0[..], &old.0[..]],
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.len().unwrap(), 3);
    assert_eq!(store.get(&older).unwrap(), Some(vec![1; 40]));
    let mut ids = store.ids().unwrap();
    ids.sort();
    assert_eq!(ids, [older, like, old]);
    // The epoch survives, so the next run is still above the last one.
    assert_eq!(store.next_epoch(0).unwrap(), 42);
    drop(store);

    let conn = db.connection().unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let leftovers: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1' OR type = 'trigger'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    let reader = StoreReader::open(&db).unwrap();
    let message = reader.message(&old).unwrap().unwrap();
    assert_eq!(message.text, "harbor lights");
    assert!(message.reactions["x"].contains("bob"));
    assert_eq!(search(&reader, "harbor"), ["harbor lights", "quiet harbor"]);
    assert_eq!(search(&reader, "quiet"), ["quiet harbor"]);
}

#[test]
fn a_database_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    drop(SqliteStore::open(&db).unwrap());
    let conn = db.connection().unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(&db) {
        Err(err @ DbError::NewerLayout { .. }) => {
            assert!(err.to_string().contains("move the data directory aside"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn receive_secrets_survive_a_reopen_and_are_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::new(dir.path().join("meshlog.db"), DbKey::random());
    let mut store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.secrets().unwrap(), None);
    assert!(store.set_secrets(&[1; 40]).unwrap());
    assert!(store.set_secrets(&[2; 80]).unwrap());
    drop(store);
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.secrets().unwrap(), Some(vec![2; 80]));
}

#[test]
fn a_missing_key_for_an_encrypted_database_is_refused_not_remade() {
    let dir = tempfile::tempdir().unwrap();
    let key = DbKey::load(dir.path(), &KeySource::DataDir).unwrap();
    let db = Database::new(db_path(dir.path()), key);
    drop(SqliteStore::open(&db).unwrap());
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    match DbKey::load(dir.path(), &KeySource::DataDir) {
        Err(AtRestError::KeyMissing { .. }) => {}
        other => panic!("expected KeyMissing, got {other:?}"),
    }
    assert!(!dir.path().join(KEY_FILE).exists());
}

#[test]
fn the_wrong_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    drop(SqliteStore::open(&Database::new(path.clone(), DbKey::random())).unwrap());
    match SqliteStore::open(&Database::new(path, DbKey::random())) {
        Err(DbError::WrongKey(_)) => {}
        other => panic!("expected WrongKey, got {other:?}"),
    }
}
