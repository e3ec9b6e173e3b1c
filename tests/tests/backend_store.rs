//! The SQLite store: idempotent, durable across reopen, views kept in step with `events`.

mod backend_support;

use std::os::unix::fs::PermissionsExt;

use backend_support::{pair, post, wait_for, DeviceProcess, STARTUP_TIMEOUT};
use base64::Engine;

use meshlog_backend::paging::{PageError, PageRequest, Search};
use meshlog_backend::store::{Durability, FileContent, SqliteStore, StoreReader};
use meshlog_core::testing::{community_of, keys};
use meshlog_core::{
    chunk_file, seal, DeviceId, Event, EventBody, EventId, Instant, OpenedEvent, Store,
};

fn first_page(limit: usize) -> PageRequest {
    PageRequest {
        before: None,
        limit,
        search: None,
    }
}

fn sealed(author: &str, n: u8, body: EventBody) -> OpenedEvent {
    sealed_at(author, 1_000 + u64::from(n), [n; 24], body)
}

fn sealed_at(author: &str, at_ms: u64, nonce: [u8; 24], body: EventBody) -> OpenedEvent {
    let event = Event {
        author: DeviceId::new(author).unwrap(),
        created_at: Instant::from_millis(at_ms),
        body,
    };
    seal(
        &event,
        &keys(author, 3),
        &community_of(&["alice", "bob"], 3),
        nonce,
    )
    .unwrap()
}

fn text(body: &str) -> EventBody {
    EventBody::Message {
        text: body.into(),
        attachment: None,
        auto: false,
    }
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
    let page = reader.page(&first_page(10)).unwrap();
    let texts: Vec<&str> = page.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["file", "hello"], "newest first");
    assert_eq!(page.next, None, "one page holds both");
    assert_eq!(page.messages[0].attachment.as_ref().unwrap().chunks_have, 3);
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

/// `n` messages by bob, three to a millisecond (so ties are broken by id), nonce from `i`.
fn many_messages(n: u32) -> Vec<OpenedEvent> {
    (0..n)
        .map(|i| {
            let mut nonce = [0u8; 24];
            nonce[..4].copy_from_slice(&i.to_le_bytes());
            sealed_at(
                "bob",
                5_000 + u64::from(i / 3),
                nonce,
                text(&format!("note {i}")),
            )
        })
        .collect()
}

#[test]
fn pages_walk_every_message_once_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let alice = DeviceId::new("alice").unwrap();
    let mut store = SqliteStore::open_with(&path, Durability::FullForOwn(alice)).unwrap();
    let events = many_messages(250);
    for event in &events {
        store.insert(event, 1).unwrap();
    }
    store.commit().unwrap();
    let mut want: Vec<(u64, EventId)> = events
        .iter()
        .map(|e| (e.event.created_at.as_micros(), e.id))
        .collect();
    want.sort();
    want.reverse();

    let reader = StoreReader::open(&path).unwrap();
    let mut seen = Vec::new();
    let mut request = first_page(7);
    let mut pages = 0;
    loop {
        let page = reader.page(&request).unwrap();
        assert!(page.messages.len() <= 7, "a page holds at most its limit");
        pages += 1;
        seen.extend(page.messages.iter().map(|m| (m.created_at_us, m.id)));
        match page.next {
            Some(next) => request.before = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 250usize.div_ceil(7));
    assert_eq!(seen, want, "every message once, newest first");
}

#[test]
fn received_events_wait_for_the_batch_commit_own_events_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let alice = DeviceId::new("alice").unwrap();
    let mut store = SqliteStore::open_with(&path, Durability::FullForOwn(alice)).unwrap();
    let reader = StoreReader::open(&path).unwrap();
    let received = message("bob", 1, "from bob");
    assert!(store.insert(&received, 1).unwrap());
    assert!(
        store.get(&received.id).unwrap().is_some(),
        "the writer sees its batch"
    );
    assert_eq!(
        reader.counts("alice").unwrap().events,
        0,
        "not committed yet"
    );
    // An own event commits at once, and the open batch with it (WAL keeps commit order).
    let own = message("alice", 2, "mine");
    store.insert_all(std::slice::from_ref(&own), 2).unwrap();
    assert_eq!(reader.counts("alice").unwrap().events, 2);
    let later = message("bob", 3, "later");
    store.insert(&later, 3).unwrap();
    store.commit().unwrap();
    assert_eq!(reader.counts("alice").unwrap().events, 3);
}

#[test]
fn a_message_and_its_chunks_store_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let mut store = SqliteStore::open(&path).unwrap();
    let small = message("alice", 1, "fits");
    store.insert_all(std::slice::from_ref(&small), 1).unwrap();
    let used = std::fs::metadata(&path).unwrap().len();
    // A little room left: enough for a line of text, not for 300 KB.
    store.limit_pages(60).unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (file, chunks) = chunk_file("big.bin", "application/octet-stream", &bytes).unwrap();
    let mut events: Vec<OpenedEvent> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| sealed_at("alice", 2_000, [i as u8; 24], c))
        .collect();
    events.push(sealed(
        "alice",
        200,
        EventBody::Message {
            text: "with a big file".into(),
            attachment: Some(file.clone()),
            auto: false,
        },
    ));
    let err = store.insert_all(&events, 2).unwrap_err();
    assert!(
        err.to_string().contains("full"),
        "{err} (used {used} bytes)"
    );
    assert_eq!(store.len().unwrap(), 1, "no chunk, no message");
    let reader = StoreReader::open(&path).unwrap();
    assert_eq!(reader.file(&file.file).unwrap(), None);
    assert_eq!(reader.counts("alice").unwrap().events, 1);
    // Still writable: the failure left no transaction open.
    store
        .insert_all(&[message("alice", 3, "after")], 3)
        .unwrap();
    assert_eq!(reader.counts("alice").unwrap().events, 2);
}

#[test]
fn search_finds_words_and_attachment_names_and_refuses_an_open_quote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let mut store = SqliteStore::open(&path).unwrap();
    let (file, _) = chunk_file("Quarterly-Report.pdf", "application/pdf", &[1u8; 10]).unwrap();
    let events = [
        message("alice", 1, "Lunch at the café?"),
        message("bob", 2, "the deploy went fine"),
        sealed(
            "bob",
            3,
            EventBody::Message {
                text: "numbers attached".into(),
                attachment: Some(file),
                auto: false,
            },
        ),
        message("alice", 4, "another deploy tomorrow"),
    ];
    for e in &events {
        store.insert(e, 1).unwrap();
    }
    let reader = StoreReader::open(&path).unwrap();
    let search = |q: &str, limit: usize| {
        let request = PageRequest {
            before: None,
            limit,
            search: Some(Search::parse(q).unwrap()),
        };
        reader.page(&request)
    };
    let texts = |q: &str| -> Vec<String> {
        search(q, 10)
            .unwrap()
            .messages
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert_eq!(
        texts("deploy"),
        ["another deploy tomorrow", "the deploy went fine"]
    );
    assert_eq!(texts("cafe"), ["Lunch at the café?"], "diacritics folded");
    assert_eq!(texts("quarterly"), ["numbers attached"], "attachment name");
    assert_eq!(texts("\"report.pdf\""), ["numbers attached"]);
    assert_eq!(
        texts("depl*"),
        ["another deploy tomorrow", "the deploy went fine"]
    );
    assert!(texts("nothing").is_empty());
    // Search pages like the list does.
    let first = search("deploy", 1).unwrap();
    assert_eq!(first.messages.len(), 1);
    let second = reader
        .page(&PageRequest {
            before: first.next,
            limit: 1,
            search: Some(Search::parse("deploy").unwrap()),
        })
        .unwrap();
    assert_eq!(second.messages[0].text, "the deploy went fine");
    assert_eq!(second.next, None);
    // FTS5's operators and columns are plain words under the one rule (`paging`), so a
    // simulated device can answer the same; only an open quote is refused.
    assert_eq!(texts("(deploy"), texts("deploy"));
    assert!(texts("AND").is_empty());
    assert!(texts("nosuchcolumn: x").is_empty());
    assert_eq!(Search::parse("\"unterminated"), Err(PageError::Unclosed));
}

#[test]
fn search_index_is_built_for_a_database_from_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    {
        let mut store = SqliteStore::open(&path).unwrap();
        store
            .insert(&message("alice", 1, "older words"), 1)
            .unwrap();
    }
    // What a database written before the index looks like.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch("DROP TABLE messages_fts;").unwrap();
    drop(old);
    drop(SqliteStore::open(&path).unwrap());
    let reader = StoreReader::open(&path).unwrap();
    let found = reader
        .page(&PageRequest {
            before: None,
            limit: 10,
            search: Some(Search::parse("older").unwrap()),
        })
        .unwrap();
    assert_eq!(found.messages.len(), 1);
}

#[test]
fn the_database_and_its_wal_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    // A file an older version left world-readable is narrowed on open.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut store = SqliteStore::open(&path).unwrap();
    store.insert(&message("alice", 1, "secret"), 1).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("db.sqlite3{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// GET `path` on `device`, status and JSON.
fn get_json(device: &DeviceProcess, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    backend_support::get(&device.url(path))
}

#[test]
fn http_pages_walk_in_order_bound_their_limit_and_refuse_bad_queries() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, _) = pair(root.path(), 60_000)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let mut posted = Vec::new();
    for i in 0..12 {
        posted.push(alice.post_message(&format!("hello number{i}"))?);
    }
    // Newest page first; each page is oldest first, as the page shows it.
    let mut walked: Vec<String> = Vec::new();
    let mut path = "/api/messages?limit=5".to_owned();
    loop {
        let (status, body) = get_json(&alice, &path)?;
        assert_eq!(status, 200, "{body}");
        let page: Vec<String> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(page.len() <= 5);
        walked.splice(0..0, page);
        match body["next"].as_str() {
            Some(next) => path = format!("/api/messages?limit=5&before={next}"),
            None => break,
        }
    }
    assert_eq!(walked, posted, "every message once, in order");

    let (status, body) = get_json(&alice, "/api/messages?limit=500")?;
    assert_eq!(
        (status, body["messages"].as_array().unwrap().len()),
        (200, 12)
    );
    let (status, body) = get_json(&alice, "/api/messages?q=number3")?;
    assert_eq!(status, 200);
    assert_eq!(body["messages"][0]["text"], "hello number3");
    for bad in [
        "limit=0",
        "limit=501",
        "limit=many",
        "before=yesterday",
        "q=%22unterminated",
    ] {
        let (status, body) = get_json(&alice, &format!("/api/messages?{bad}"))?;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    Ok(())
}

#[test]
fn a_post_that_does_not_fit_stores_nothing_and_sends_nothing() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 300)?;
    // Room for the schema and a few lines of text, not for a 300 KB file.
    let alice = DeviceProcess::start_with(&alice_spec, &["--db-pages-max", "60"])?;
    let bob = DeviceProcess::start(&bob_spec)?;
    alice.post_message("fits")?;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, body) = post(
        &alice.url("/api/messages"),
        &serde_json::json!({"text": "too big", "attachment": {"name": "big.bin",
            "mime": "application/octet-stream",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}}),
    )?;
    assert!((500..600).contains(&status), "{status} {body}");
    assert!(body["error"].is_string(), "{body}");
    // Sent after the failure, so once bob has it, anything pushed before it has arrived too.
    let after = alice.post_message("after")?;
    wait_for(STARTUP_TIMEOUT, || {
        Ok(bob.messages()?.iter().any(|m| m["id"] == after.as_str()))
    })?;
    for device in [&alice, &bob] {
        let texts: Vec<String> = device
            .messages()?
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, ["fits", "after"]);
        assert_eq!(device.stats()?["events"], 2, "no chunk stored");
    }
    Ok(())
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

#[test]
fn the_newest_event_time_survives_a_reopen_for_the_hybrid_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.created_at_max().unwrap(), 0, "an empty store");
    let old = sealed_at("alice", 5_000, [1; 24], text("old"));
    store.insert_all(std::slice::from_ref(&old), 0).unwrap();
    // A reaction stamped after every message: the newest time is a reaction's.
    let late = sealed_at(
        "bob",
        9_000,
        [2; 24],
        EventBody::Reaction {
            message: old.id,
            emoji: "👍".into(),
            remove: false,
        },
    );
    store.insert_all(&[late], 0).unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.created_at_max().unwrap(), 9_000_000);
}
