//! The SQLite store: idempotent, durable across reopen, views kept in step with `events`.

mod backend_support;

use std::os::unix::fs::PermissionsExt;

use backend_support::{pair, post, wait_for, DeviceProcess, STARTUP_TIMEOUT};
use base64::Engine;

use meshlog_backend::paging::{PageError, PageRequest, Search};
use meshlog_backend::store::{
    Database, DbKey, Durability, FileContent, KeySource, SqliteStore, StoreReader,
};
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
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
        let mut store = SqliteStore::open(&db).unwrap();
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
        let reader = StoreReader::open(&db).unwrap();
        assert_eq!(
            reader.file(&file.file).unwrap(),
            Some(FileContent::Partial {
                chunks_have: 2,
                chunks_total: 3
            })
        );
    }
    let mut store = SqliteStore::open(&db).unwrap();
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
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let mut store = SqliteStore::open(&db).unwrap();
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
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let alice = DeviceId::new("alice").unwrap();
    let mut store = SqliteStore::open_with(&db, Durability::FullForOwn(alice)).unwrap();
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

    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let alice = DeviceId::new("alice").unwrap();
    let mut store = SqliteStore::open_with(&db, Durability::FullForOwn(alice)).unwrap();
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let mut store = SqliteStore::open(&db).unwrap();
    let small = message("alice", 1, "fits");
    store.insert_all(std::slice::from_ref(&small), 1).unwrap();
    let used = std::fs::metadata(db.path()).unwrap().len();
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
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let mut store = SqliteStore::open(&db).unwrap();
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
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    {
        let mut store = SqliteStore::open(&db).unwrap();
        store
            .insert(&message("alice", 1, "older words"), 1)
            .unwrap();
    }
    // What a database written before the index looks like.
    let old = db.connection().unwrap();
    old.execute_batch("DROP TABLE messages_fts;").unwrap();
    drop(old);
    drop(SqliteStore::open(&db).unwrap());
    let reader = StoreReader::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    // A file an older version left world-readable is narrowed on open.
    std::fs::write(db.path(), b"").unwrap();
    std::fs::set_permissions(db.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut store = SqliteStore::open(&db).unwrap();
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
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let first = SqliteStore::open(&db).unwrap().next_epoch(0).unwrap();
    assert_eq!(first, 1);
    assert_eq!(SqliteStore::open(&db).unwrap().next_epoch(0).unwrap(), 2);
    assert_eq!(
        SqliteStore::open(&db)
            .unwrap()
            .next_epoch(1_700_000_000)
            .unwrap(),
        1_700_000_000
    );
    assert_eq!(
        SqliteStore::open(&db).unwrap().next_epoch(5).unwrap(),
        1_700_000_001,
        "a clock gone back does not reuse an epoch"
    );
}

#[test]
fn the_newest_event_time_survives_a_reopen_for_the_hybrid_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::new(dir.path().join("db.sqlite3"), DbKey::random());
    let mut store = SqliteStore::open(&db).unwrap();
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
    let reopened = SqliteStore::open(&db).unwrap();
    assert_eq!(reopened.created_at_max().unwrap(), 9_000_000);
}

/// Every file under `dir`, recursively, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// What a stolen data directory shows (issue 24): a word and an attachment, posted on one
/// device and received by the other, are in no file under either data directory, the
/// write-ahead log included (the devices are killed, so nothing was checkpointed on exit).
/// Restarted, the device still finds the word.
#[test]
fn no_file_in_a_data_directory_holds_a_posted_word_or_attachment() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 300)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    let bob = DeviceProcess::start(&bob_spec)?;
    let (word, reply) = ("quokkaplenty", "wombatcrossing");
    let marker = b"ATTACHMENT-MARKER-";
    let attachment: Vec<u8> = (0..2_000u32)
        .flat_map(|i| [&marker[..], &i.to_le_bytes()].concat())
        .collect();
    let (status, body) = post(
        &alice.url("/api/messages"),
        &serde_json::json!({"text": format!("the {word} of it"), "attachment": {
            "name": "notes.bin", "mime": "application/octet-stream",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&attachment)}}),
    )?;
    assert_eq!(status, 201, "{body}");
    bob.post_message(&format!("a {reply} here"))?;
    wait_for(STARTUP_TIMEOUT, || {
        let has = |device: &DeviceProcess, text: &str| -> anyhow::Result<bool> {
            Ok(device.messages()?.iter().any(|m| {
                m["text"].as_str().is_some_and(|t| t.contains(text))
                    && (text != word || m["attachment"]["complete"] == true)
            }))
        };
        Ok(has(&bob, word)? && has(&alice, reply)?)
    })?;
    alice.kill();
    bob.kill();

    let mut checked = 0;
    for dir in [&alice_spec.data, &bob_spec.data] {
        for (path, bytes) in files_under(dir) {
            for needle in [word.as_bytes(), reply.as_bytes(), &marker[..]] {
                assert!(
                    !holds(&bytes, needle),
                    "{} holds {:?}",
                    path.display(),
                    String::from_utf8_lossy(needle)
                );
            }
            checked += 1;
        }
    }
    // The database, its log and its index at least, in each directory.
    assert!(checked >= 6, "only {checked} files checked");

    let bob = DeviceProcess::start(&bob_spec)?;
    let (status, body) = get_json(&bob, &format!("/api/messages?q={word}"))?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1), "{body}");
    Ok(())
}

/// A device started under a passphrase does not open with another: it exits with an error
/// that says so, and its database is left as it was (the right passphrase still opens it).
#[test]
fn a_wrong_passphrase_is_refused_with_a_clear_error_and_loses_nothing() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, _) = pair(root.path(), 60_000)?;
    let var = "MESHLOG_TEST_ALICE_PASSPHRASE";
    std::env::set_var(var, "correct horse battery staple");
    let alice = DeviceProcess::start_with(&alice_spec, &["--passphrase-env", var])?;
    alice.post_message("kept under a passphrase")?;
    drop(alice);
    assert!(!alice_spec.data.join("db.key").exists(), "no key is stored");

    let mut wrong = std::process::Command::new(backend_support::meshlog_bin());
    wrong
        .args(["device", "--name", "alice", "--http", "127.0.0.1:0"])
        .args(["--udp", &backend_support::free_udp_addr().to_string()])
        .arg("--data")
        .arg(&alice_spec.data)
        .arg("--keys")
        .arg(&alice_spec.keys)
        .args(["--passphrase-env", var])
        .env(var, "incorrect horse battery staple")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = wrong.spawn()?;
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("a device with the wrong passphrase kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)?;
    assert!(!status.success());
    assert!(
        stderr.contains("the key does not open this database"),
        "{stderr}"
    );

    let alice = DeviceProcess::start_with(&alice_spec, &["--passphrase-env", var])?;
    let texts: Vec<_> = alice
        .messages()?
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, ["kept under a passphrase"]);
    Ok(())
}

/// A database changed under a running device (issue 24): rows deleted behind its back. When
/// a new peer needs them, the device counts `store_missing` and keeps serving, where it used
/// to panic; what the store still holds reaches the peer.
#[test]
fn events_deleted_from_the_database_under_a_device_are_counted_not_a_crash() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let (alice_spec, bob_spec) = pair(root.path(), 300)?;
    let alice = DeviceProcess::start(&alice_spec)?;
    for i in 0..10 {
        alice.post_message(&format!("message {i}"))?;
    }
    let db = Database::in_data_dir(&alice_spec.data, &KeySource::DataDir)?;
    let conn = db.connection()?;
    let deleted = conn.execute_batch(
        "DELETE FROM messages WHERE text IN ('message 3', 'message 7');
         DELETE FROM events WHERE kind = 'message' AND seq NOT IN (SELECT seq FROM messages);",
    );
    deleted?;
    drop(conn);

    let bob = DeviceProcess::start(&bob_spec)?;
    wait_for(STARTUP_TIMEOUT, || {
        Ok(alice.stats()?["drops"]["store_missing"].as_u64() >= Some(2))
    })?;
    wait_for(STARTUP_TIMEOUT, || Ok(bob.messages()?.len() == 8))?;
    assert_eq!(alice.stats()?["drops"]["store_missing"], 2);
    assert_eq!(alice.messages()?.len(), 8, "alice still answers");
    Ok(())
}
