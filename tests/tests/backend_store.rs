//! The SQLite store: idempotent, durable across reopen, views kept in step with `events`.

use meshlog_backend::store::{FileContent, SqliteStore, StoreReader};
use meshlog_core::testing::{community_of, keys};
use meshlog_core::{
    chunk_file, seal, DeviceId, Event, EventBody, EventId, Instant, OpenedEvent, Store,
};

fn sealed(author: &str, n: u8, body: EventBody) -> OpenedEvent {
    let event = Event {
        author: DeviceId::new(author).unwrap(),
        created_at: Instant::from_millis(1_000 + u64::from(n)),
        body,
    };
    seal(
        &event,
        &keys(author, 3),
        &community_of(&["alice", "bob"], 3),
        [n; 24],
    )
    .unwrap()
}

fn message(author: &str, n: u8, text: &str) -> OpenedEvent {
    let body = EventBody::Message {
        text: text.into(),
        attachment: None,
        auto: false,
    };
    sealed(author, n, body)
}

fn reaction(author: &str, n: u8, target: EventId, remove: bool) -> OpenedEvent {
    let body = EventBody::Reaction {
        message: target,
        emoji: "👍".into(),
        remove,
    };
    sealed(author, n, body)
}

#[test]
fn insert_is_idempotent_and_reopen_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let hello = message("alice", 1, "hello");
    let (file, chunks) = chunk_file("a.txt", "text/plain", &[7u8; 2_000]).unwrap();
    let with_file = sealed(
        "bob",
        2,
        EventBody::Message {
            text: "file".into(),
            attachment: Some(file.clone()),
            auto: true,
        },
    );
    {
        let mut store = SqliteStore::open(&path).unwrap();
        assert!(store.insert(&hello, 5).unwrap());
        assert!(
            !store.insert(&hello, 6).unwrap(),
            "second insert is a no-op"
        );
        assert!(store.insert(&with_file, 7).unwrap());
        // Two of three chunks: the file is partial.
        for (i, body) in chunks.iter().take(2).enumerate() {
            store
                .insert(&sealed("bob", 10 + i as u8, body.clone()), 8)
                .unwrap();
        }
        assert_eq!(store.len().unwrap(), 4);
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(
            reader.file(&file.file).unwrap(),
            Some(FileContent::Partial {
                chunks_have: 2,
                chunks_total: 3
            })
        );
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.len().unwrap(), 4);
    assert_eq!(store.get(&hello.id).unwrap(), Some(hello.sealed.clone()));
    let mut ids = store.ids().unwrap();
    ids.sort();
    let mut want = vec![hello.id, with_file.id];
    want.extend(
        chunks
            .iter()
            .take(2)
            .enumerate()
            .map(|(i, b)| sealed("bob", 10 + i as u8, b.clone()).id),
    );
    want.sort();
    assert_eq!(ids, want);
    store
        .insert(&sealed("bob", 12, chunks[2].clone()), 9)
        .unwrap();
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(
        reader.file(&file.file).unwrap(),
        Some(FileContent::Complete {
            mime: "text/plain".into(),
            bytes: vec![7u8; 2_000]
        })
    );
    let messages = reader.messages().unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello", "file"], "oldest first");
    assert_eq!(messages[1].attachment.as_ref().unwrap().chunks_have, 3);
}

#[test]
fn reactions_fold_in_time_order_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let mut store = SqliteStore::open(&path).unwrap();
    let hello = message("alice", 1, "hello");
    store.insert(&hello, 1).unwrap();
    store
        .insert(&reaction("alice", 2, hello.id, false), 1)
        .unwrap();
    store
        .insert(&reaction("bob", 3, hello.id, false), 1)
        .unwrap();
    store
        .insert(&reaction("alice", 4, hello.id, true), 1)
        .unwrap();
    let reader = StoreReader::open(&path).unwrap();
    let folded = reader.message(&hello.id).unwrap().unwrap().reactions;
    assert_eq!(folded["👍"].iter().collect::<Vec<_>>(), ["bob"]);
    let counts = reader.counts("alice").unwrap();
    assert_eq!(
        (counts.events, counts.messages, counts.reactions),
        (4, 1, 3)
    );
    assert_eq!(counts.events_authored_by, 3);
    assert_eq!(reader.message(&EventId([9; 32])).unwrap(), None);
}

#[test]
fn the_epoch_grows_across_reopens_and_respects_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let first = SqliteStore::open(&path).unwrap().next_epoch(0).unwrap();
    assert_eq!(first, 1);
    assert_eq!(SqliteStore::open(&path).unwrap().next_epoch(0).unwrap(), 2);
    assert_eq!(
        SqliteStore::open(&path)
            .unwrap()
            .next_epoch(1_700_000_000)
            .unwrap(),
        1_700_000_000
    );
    assert_eq!(
        SqliteStore::open(&path).unwrap().next_epoch(5).unwrap(),
        1_700_000_001,
        "a clock gone back does not reuse an epoch"
    );
}
