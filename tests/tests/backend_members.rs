//! Membership on real `meshlog device` processes over loopback UDP: an admin removes a
//! device, which is then refused at every door and given nothing new, not even on its disk.

mod backend_support;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use backend_support::{
    community, error_of, free_udp_addr, get, post, post_raw, request, wait_for, DeviceProcess,
    DeviceSpec,
};
use meshlog_backend::device::epoch_keys;
use meshlog_backend::store::{Database, KeySource};
use meshlog_core::member::Invite;
use serde_json::{json, Value};

const CONVERGE: Duration = Duration::from_secs(30);

/// alice, bob and carol, each peered with the other two; alice is the admin (the first named).
fn three(root: &Path) -> Result<Vec<DeviceSpec>> {
    mesh(root, &["alice", "bob", "carol"])
}

/// A community of `names`, each peered with all the others; the first named is the admin.
fn mesh(root: &Path, names: &[&str]) -> Result<Vec<DeviceSpec>> {
    let keys = root.join("keys");
    community(&keys, names)?;
    let udp: Vec<_> = names.iter().map(|_| free_udp_addr()).collect();
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, name)| DeviceSpec {
            name: (*name).into(),
            udp: udp[i],
            peers: names
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, peer)| ((*peer).into(), udp[j]))
                .collect(),
            data: root.join(name),
            keys: keys.clone(),
            sync_interval_ms: 500,
        })
        .collect())
}

/// `method` on `device` with its token (and nothing else).
fn call(
    device: &DeviceProcess,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let bearer = format!("Bearer {}", device.token);
    request(
        method,
        &device.url(path),
        &[("Authorization", &bearer)],
        body,
    )
}

fn members(device: &DeviceProcess) -> Result<Vec<Value>> {
    let (status, body) = get(&device.url("/api/members"))?;
    if status != 200 {
        bail!("GET /api/members: {status} {body}");
    }
    Ok(body.as_array().cloned().unwrap_or_default())
}

/// (role, status) of `name` in `device`'s roster.
fn member(device: &DeviceProcess, name: &str) -> Result<Option<(String, String)>> {
    Ok(members(device)?
        .into_iter()
        .find(|m| m["name"] == name)
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["status"].as_str().unwrap_or_default().to_owned(),
            )
        }))
}

fn key_epoch(device: &DeviceProcess) -> Result<u64> {
    device.stats()?["key_epoch"]
        .as_u64()
        .context("stats.key_epoch")
}

fn has_text(device: &DeviceProcess, text: &str) -> Result<bool> {
    Ok(device.messages()?.iter().any(|m| m["text"] == text))
}

/// The next sequence number of `device`'s network log.
fn log_next(device: &DeviceProcess) -> Result<u64> {
    let (_, body) = get(&device.url("/api/network-events?since=0"))?;
    body["next"].as_u64().context("next")
}

/// Datagrams from `from` that `device` dropped or rejected since `since`.
fn refused_from(device: &DeviceProcess, from: &str, since: u64) -> Result<usize> {
    let (_, body) = get(&device.url(&format!("/api/network-events?since={since}")))?;
    Ok(body["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| {
            e["from"] == from && (e["direction"] == "dropped" || e["direction"] == "rejected")
        })
        .count())
}

/// The files under `dir`, holding `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> Result<Vec<String>> {
    let files = files_under(dir)?;
    assert!(
        files.len() >= 2,
        "{} holds the database and the token",
        dir.display()
    );
    let mut found = Vec::new();
    for name in files {
        let bytes = std::fs::read(dir.join(&name))?;
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(name);
        }
    }
    Ok(found)
}

/// Whether the device whose data directory is `dir` holds `text` in a message, read from its
/// database opened with its key: the files themselves are encrypted (`store/at_rest.rs`), so
/// this, not a search of their bytes, says what the device has.
fn database_holds(dir: &Path, text: &str) -> Result<bool> {
    let db = Database::in_data_dir(dir, &KeySource::DataDir)?;
    let count: i64 = db.read_only_connection()?.query_row(
        "SELECT COUNT(*) FROM messages WHERE instr(text, ?1) > 0",
        [text],
        |row| row.get(0),
    )?;
    Ok(count > 0)
}

/// The files under `dir` (recursively), by name relative to it.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                let relative = entry.path().strip_prefix(dir)?.display().to_string();
                names.push(relative);
            }
        }
    }
    Ok(names)
}

#[test]
fn a_removed_device_is_refused_and_sees_nothing_new() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = three(root.path())?;
    let alice = DeviceProcess::start(&specs[0])?;
    let bob = DeviceProcess::start(&specs[1])?;
    let carol = DeviceProcess::start(&specs[2])?;
    let all = [&alice, &bob, &carol];

    // Everyone hears everyone before the removal.
    for device in all {
        device.post_message(&format!("hello from {}", device.spec.name))?;
    }
    wait_for(CONVERGE, || {
        for device in all {
            if device.messages()?.len() != 3 {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    for device in all {
        assert_eq!(key_epoch(device)?, 0);
        assert_eq!(
            member(device, "alice")?,
            Some(("admin".into(), "active".into()))
        );
        assert_eq!(
            member(device, "carol")?,
            Some(("member".into(), "active".into()))
        );
    }

    // A member may not remove anyone; unknown names and the last admin are refused too.
    let (status, error) = error_of(call(&bob, "DELETE", "/api/members/carol", None)?);
    assert_eq!(status, 403, "{error}");
    assert!(error.contains("admin"), "{error}");
    let (status, error) = error_of(call(&alice, "DELETE", "/api/members/zed", None)?);
    assert_eq!(status, 404, "{error}");
    let (status, error) = error_of(call(&alice, "DELETE", "/api/members/NOT%20A%20NAME", None)?);
    assert_eq!(status, 404, "{error}");
    let (status, error) = error_of(call(&alice, "DELETE", "/api/members/alice", None)?);
    assert_eq!(status, 409, "{error}");

    // alice removes carol.
    let (status, removed) = call(&alice, "DELETE", "/api/members/carol", None)?;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed, json!({"removed": "carol", "key_epoch": 1}));
    let (status, error) = error_of(call(&alice, "DELETE", "/api/members/carol", None)?);
    assert_eq!(status, 404, "removed already: {error}");

    wait_for(CONVERGE, || {
        Ok(member(&bob, "carol")?.is_some_and(|(_, s)| s == "removed") && key_epoch(&bob)? == 1)
    })
    .context("bob learns of the removal and holds epoch 1")?;
    for device in [&alice, &bob] {
        assert_eq!(
            member(device, "carol")?,
            Some(("member".into(), "removed".into())),
            "{}",
            device.spec.name
        );
        assert_eq!(
            member(device, "bob")?,
            Some(("member".into(), "active".into()))
        );
        assert_eq!(key_epoch(device)?, 1, "{}", device.spec.name);
    }

    // carol's new posts are refused at alice's and bob's doors.
    let (alice_seq, bob_seq) = (log_next(&alice)?, log_next(&bob)?);
    let carol_text = "carol writes after her removal 7f3a";
    let (status, body) = post(&carol.url("/api/messages"), &json!({ "text": carol_text }))?;
    assert!(
        status == 201 || (400..500).contains(&status),
        "carol's own device may store it or refuse it: {status} {body}"
    );
    // bob's new posts: sealed under epoch 1, which carol was never given.
    let bob_text = "bob's secret after the removal 91c2e";
    bob.post_message(bob_text)?;
    wait_for(CONVERGE, || has_text(&alice, bob_text)).context("bob's post reaches alice")?;
    // Several rounds of carol's datagrams (her push, then her summaries every 500 ms) refused
    // by each: she has had her chances to hand over her post and to be handed bob's.
    wait_for(CONVERGE, || {
        Ok(refused_from(&alice, "carol", alice_seq)? >= 6
            && refused_from(&bob, "carol", bob_seq)? >= 6)
    })
    .context("carol's datagrams reach alice and bob, and are refused")?;
    for device in [&alice, &bob] {
        assert!(
            !has_text(device, carol_text)?,
            "{} stored carol's post after her removal",
            device.spec.name
        );
    }
    assert!(
        !has_text(&carol, bob_text)?,
        "carol's store holds bob's post after her removal"
    );
    let found = any_file_holds(&carol.spec.data, bob_text.as_bytes())?;
    assert!(
        found.is_empty(),
        "bob's post text on carol's disk: {found:?}"
    );
    assert!(!database_holds(&carol.spec.data, bob_text)?);
    // ...and it is in bob's database (the check finds what is there).
    assert!(database_holds(&bob.spec.data, bob_text)?);

    // Every member's roster as alice sees it.
    let roster = members(&alice)?;
    assert_eq!(roster.len(), 3);
    for m in &roster {
        assert!(m["added_at_ms"].is_u64(), "{m}");
        assert_eq!(m["added_by"], Value::Null, "genesis members: {m}");
    }

    // A rotation on demand, by the admin only.
    let (status, error) = error_of(call(&bob, "POST", "/api/keys/rotate", None)?);
    assert_eq!(status, 403, "{error}");
    let (status, rotated) = call(&alice, "POST", "/api/keys/rotate", None)?;
    assert_eq!((status, rotated), (200, json!({"key_epoch": 2})));
    wait_for(CONVERGE, || Ok(key_epoch(&bob)? == 2)).context("bob holds epoch 2")?;

    // The epoch keys are kept on disk (0600), and a restarted bob still opens everything.
    let kept = bob.spec.data.join("epoch-keys.json");
    // Sealed under bob's database key: read back the way his device reads it at start.
    let bob_key = Database::in_data_dir(&bob.spec.data, &KeySource::DataDir)?
        .key()
        .clone();
    wait_for(CONVERGE, || {
        let held = epoch_keys::load(&bob.spec.data, &bob_key).unwrap_or_default();
        let epochs: Vec<u32> = held.iter().map(|(_, key)| key.epoch).collect();
        Ok(epochs.contains(&1) && epochs.contains(&2))
    })
    .context("bob keeps epochs 1 and 2")?;
    let text = std::fs::read_to_string(&kept)?;
    assert!(
        text.contains("sealed_hex") && !text.contains("key_hex"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let spec = bob.spec.clone();
    bob.kill();
    let bob = DeviceProcess::start(&spec)?;
    assert_eq!(key_epoch(&bob)?, 2);
    assert!(has_text(&bob, bob_text)?);
    assert_eq!(
        member(&bob, "carol")?,
        Some(("member".into(), "removed".into()))
    );
    drop(carol);
    Ok(())
}

#[test]
fn invites_and_bad_membership_requests() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = three(root.path())?;
    let alice = DeviceProcess::start(&specs[0])?;
    let bob = DeviceProcess::start(&specs[1])?;

    // An admin's invite: a token that parses, naming alice's UDP address.
    let (status, made) = post(
        &alice.url("/api/invites"),
        &json!({"role": "member", "expires_in_s": 3600, "uses": 2}),
    )?;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().context("token")?;
    let invite = Invite::from_token(token).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(invite.address, specs[0].udp.to_string());
    assert_eq!(invite.grant.uses, 2);
    assert_eq!(invite.inviter.as_str(), "alice");
    assert_eq!(made["role"], "member");

    // Not an admin: 403, whatever the body.
    let (status, error) = error_of(post(&bob.url("/api/invites"), &json!({}))?);
    assert_eq!(status, 403, "{error}");

    // Bad bodies: 4xx JSON naming the field, nothing made.
    let url = alice.url("/api/invites");
    for (body, code, field) in [
        (json!({"expires_in_s": 0}), 400, "expires_in_s"),
        (
            json!({"expires_in_s": 30 * 86_400 + 1}),
            400,
            "expires_in_s",
        ),
        (json!({"uses": 0}), 400, "uses"),
        (json!({"uses": 1001}), 400, "uses"),
        (json!({"role": "owner"}), 400, "role"),
        (json!({"expires_in_s": -1}), 422, "expires_in_s"),
        (json!({"uses": "two"}), 422, "uses"),
        (json!({"colour": "red"}), 422, "colour"),
    ] {
        let (status, error) = error_of(post(&url, &body)?);
        assert_eq!(status, code, "{body}: {error}");
        assert!(error.contains(field), "{body}: {error}");
    }
    let (status, error) = error_of(post_raw(&url, b"{\"role\": ".to_vec())?);
    assert_eq!(status, 400, "{error}");
    let (status, _) = error_of(request(
        "POST",
        &url,
        &[
            ("Authorization", &format!("Bearer {}", alice.token)),
            ("Content-Type", "text/plain"),
        ],
        None,
    )?);
    assert_eq!(status, 415);

    // The same access checks as every route: a token, and no foreign Origin.
    let (status, _) = error_of(request("GET", &alice.url("/api/members"), &[], None)?);
    assert_eq!(status, 401);
    let bearer = format!("Bearer {}", alice.token);
    let (status, _) = error_of(request(
        "DELETE",
        &alice.url("/api/members/bob"),
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        None,
    )?);
    assert_eq!(status, 403);
    assert_eq!(
        member(&alice, "bob")?,
        Some(("member".into(), "active".into())),
        "the refused DELETE removed nobody"
    );
    let (status, _) = error_of(call(&alice, "PUT", "/api/members/bob", None)?);
    assert_eq!(status, 405);
    Ok(())
}

/// Simulated mode answers the roster and the key epoch from the world's nodes; the admins'
/// verbs answer 501 (the simulator offers the service appends, not membership verbs).
#[test]
fn simulated_devices_answer_the_roster_and_refuse_admin_verbs_with_501() -> Result<()> {
    let run = backend_support::SimModeRun::start(
        r#"
name = "members-sim"
seed = 3
duration = "1m"
devices = ["alice", "bob"]
"#,
    )?;
    let alice = &run.devices[0];
    let (status, roster) = get(&format!("{alice}/api/members"))?;
    assert_eq!(status, 200, "{roster}");
    let names: Vec<(&str, &str, &str)> = roster
        .as_array()
        .context("an array")?
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default(),
                m["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("alice", "admin", "active"), ("bob", "member", "active")]
    );
    let (_, stats) = get(&format!("{alice}/api/stats"))?;
    assert_eq!(stats["key_epoch"], 0);
    let bearer = format!("Bearer {}", run.token.as_str());
    for (method, path) in [
        ("DELETE", "/api/members/bob"),
        ("POST", "/api/keys/rotate"),
        ("POST", "/api/invites"),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, error) = error_of(request(
            method,
            &format!("{alice}{path}"),
            &[("Authorization", &bearer)],
            body.as_ref(),
        )?);
        assert_eq!(status, 501, "{method} {path}: {error}");
        assert!(error.contains("simulated mode"), "{error}");
    }
    Ok(())
}

/// A one-use invite from `alice`, and dave's spec (his own keys directory, no peers: the
/// invite names alice's address) to join with it.
fn invite_dave(alice: &DeviceProcess, root: &Path) -> Result<(DeviceSpec, String)> {
    let (status, made) = post(
        &alice.url("/api/invites"),
        &json!({"role": "member", "expires_in_s": 600, "uses": 1}),
    )?;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().context("token")?.to_owned();
    let spec = DeviceSpec {
        name: "dave".into(),
        udp: free_udp_addr(),
        peers: Vec::new(),
        data: root.join("dave"),
        keys: root.join("dave-keys"),
        sync_interval_ms: 500,
    };
    Ok((spec, token))
}

/// Whether every one of `devices` holds every one of `texts`.
fn all_hold(devices: &[&DeviceProcess], texts: &[String]) -> Result<bool> {
    for device in devices {
        for text in texts {
            if !has_text(device, text)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A new device joins with an invite alice made: it asks alice at the invite's address, is
/// admitted and welcomed, and then syncs both ways (with bob through alice). The same command
/// starts it again after it is killed.
#[test]
fn a_new_device_joins_with_an_invite() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = three(root.path())?;
    let alice = DeviceProcess::start(&specs[0])?;
    let bob = DeviceProcess::start(&specs[1])?;
    alice.post_message("before dave")?;

    let (dave_spec, token) = invite_dave(&alice, root.path())?;
    let dave = DeviceProcess::start_with(&dave_spec, &["--join", token.as_str()])?;
    wait_for(CONVERGE, || {
        Ok(member(&alice, "dave")?
            .is_some_and(|(role, status)| role == "member" && status == "active"))
    })
    .context("alice counts dave")?;
    let added_by = members(&alice)?
        .into_iter()
        .find(|m| m["name"] == "dave")
        .map(|m| m["added_by"].clone());
    assert_eq!(added_by, Some(json!("alice")));

    // Both ways: alice's old post reaches dave, dave's post reaches alice and (relayed) bob.
    wait_for(CONVERGE, || has_text(&dave, "before dave")).context("dave catches up")?;
    dave.post_message("hello from dave")?;
    wait_for(CONVERGE, || {
        Ok(has_text(&alice, "hello from dave")? && has_text(&bob, "hello from dave")?)
    })
    .context("dave's post reaches alice and bob")?;
    wait_for(CONVERGE, || {
        Ok(member(&bob, "dave")?.is_some_and(|(_, status)| status == "active"))
    })
    .context("bob counts dave")?;

    // dave restarts with the same command: already joined, it starts and still syncs.
    let dave_data = dave_spec.data.clone();
    assert!(dave_spec.keys.join("community.json").exists());
    dave.kill();
    let dave = DeviceProcess::start_with(&dave_spec, &["--join", token.as_str()])?;
    assert!(has_text(&dave, "hello from dave")?);
    bob.post_message("bob to everyone")?;
    wait_for(CONVERGE, || has_text(&dave, "bob to everyone"))
        .context("after its restart dave still hears bob (through alice)")?;
    assert!(dave_data.join("epoch-keys.json").exists());
    Ok(())
}

/// An inviter that restarts still reaches the device it admitted: alice learns dave's address
/// from his join request and keeps it (`peers.json` in her data directory), so after a
/// restart with the same flags (no `--peer dave`) dave's post reaches her and hers reaches
/// him.
#[test]
fn an_inviter_restarted_without_peer_flags_still_reaches_the_joined_device() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = mesh(root.path(), &["alice", "bob"])?;
    let alice = DeviceProcess::start(&specs[0])?;
    let _bob = DeviceProcess::start(&specs[1])?;
    let (dave_spec, token) = invite_dave(&alice, root.path())?;
    let dave = DeviceProcess::start_with(&dave_spec, &["--join", token.as_str()])?;
    wait_for(CONVERGE, || {
        Ok(member(&alice, "dave")?.is_some_and(|(_, status)| status == "active"))
    })
    .context("alice admits dave")?;
    dave.post_message("dave before alice restarts")?;
    wait_for(CONVERGE, || has_text(&alice, "dave before alice restarts"))
        .context("dave's first post reaches alice")?;

    alice.kill();
    assert!(!specs[0].peers.iter().any(|(name, _)| name == "dave"));
    let alice = DeviceProcess::start(&specs[0])?;
    dave.post_message("dave after alice restarted")?;
    alice.post_message("alice after her restart")?;
    wait_for(CONVERGE, || has_text(&alice, "dave after alice restarted"))
        .context("dave's post reaches the restarted alice")?;
    wait_for(CONVERGE, || has_text(&dave, "alice after her restart"))
        .context("the restarted alice's post reaches dave")?;
    Ok(())
}

/// Issue 23 end to end on four processes: alice, bob and carol write a history; dave joins
/// with alice's invite and gets all of it. alice then removes carol. carol's new post is
/// refused (counted in alice's and bob's logs, stored by nobody), and what alice, bob and dave
/// write after the removal reaches each other but not carol: neither her store nor any byte
/// of her data directory (the SQLite file, its WAL and shm, the keys) holds it.
#[test]
fn a_fourth_device_joins_then_a_removed_one_reads_nothing_written_after() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = three(root.path())?;
    let alice = DeviceProcess::start(&specs[0])?;
    let bob = DeviceProcess::start(&specs[1])?;
    let carol = DeviceProcess::start(&specs[2])?;
    let history: Vec<String> = [&alice, &bob, &carol]
        .iter()
        .map(|d| format!("history from {} before dave", d.spec.name))
        .collect();
    for (device, text) in [&alice, &bob, &carol].iter().zip(&history) {
        device.post_message(text)?;
    }
    wait_for(CONVERGE, || all_hold(&[&alice, &bob, &carol], &history))
        .context("the three hold the whole history")?;

    // dave joins with alice's invite; he knows only alice, and gets everyone's history.
    let (dave_spec, token) = invite_dave(&alice, root.path())?;
    let dave = DeviceProcess::start_with(&dave_spec, &["--join", token.as_str()])?;
    wait_for(CONVERGE, || all_hold(&[&dave], &history)).context("dave gets the whole history")?;
    wait_for(CONVERGE, || {
        for device in [&alice, &bob, &carol, &dave] {
            if member(device, "dave")?.map(|(_, status)| status).as_deref() != Some("active") {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .context("every device counts dave")?;

    // alice removes carol; the three others move to epoch 1.
    let (status, removed) = call(&alice, "DELETE", "/api/members/carol", None)?;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["key_epoch"], 1);
    let others = [&alice, &bob, &dave];
    wait_for(CONVERGE, || {
        for device in others {
            if key_epoch(device)? != 1
                || member(device, "carol")?
                    .map(|(_, status)| status)
                    .as_deref()
                    != Some("removed")
            {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .context("alice, bob and dave see carol removed and hold epoch 1")?;

    // carol's post after her removal: refused at alice's and bob's doors, stored by nobody.
    let (alice_seq, bob_seq) = (log_next(&alice)?, log_next(&bob)?);
    let carol_text = "carol after removal zq4vyt";
    let (status, body) = post(&carol.url("/api/messages"), &json!({ "text": carol_text }))?;
    assert!(
        status == 201 || (400..500).contains(&status),
        "carol's own device may store it or refuse it: {status} {body}"
    );

    // What the others write now: each reaches the other two.
    let after: Vec<String> = others
        .iter()
        .map(|d| format!("{} after removal kx7wq{}", d.spec.name, d.spec.name.len()))
        .collect();
    for (device, text) in others.iter().zip(&after) {
        device.post_message(text)?;
    }
    wait_for(CONVERGE, || all_hold(&others, &after))
        .context("alice, bob and dave hold each other's posts")?;
    // carol has had her chances: several rounds of her datagrams refused by each.
    wait_for(CONVERGE, || {
        Ok(refused_from(&alice, "carol", alice_seq)? >= 6
            && refused_from(&bob, "carol", bob_seq)? >= 6)
    })
    .context("carol's datagrams reach alice and bob, and are refused")?;

    for device in others {
        assert!(
            !has_text(device, carol_text)?,
            "{} stored carol's post after her removal",
            device.spec.name
        );
    }
    // carol still holds what was written before (nothing is taken back)...
    for text in &history {
        assert!(has_text(&carol, text)?, "carol lost {text:?}");
    }
    // ...and nothing after: not in her store, not a byte on her disk.
    for text in &after {
        assert!(!has_text(&carol, text)?, "carol's store holds {text:?}");
        let found = any_file_holds(&carol.spec.data, text.as_bytes())?;
        assert!(found.is_empty(), "{text:?} on carol's disk: {found:?}");
        assert!(
            !database_holds(&carol.spec.data, text)?,
            "{text:?} in carol's database"
        );
        // The check finds what is there: bob's database holds it.
        assert!(database_holds(&bob.spec.data, text)?);
    }
    let files = files_under(&carol.spec.data)?;
    for name in ["meshlog.sqlite3", "meshlog.sqlite3-wal", "api-token"] {
        assert!(files.iter().any(|f| f == name), "{name} in {files:?}");
    }
    // Killed without a chance to flush, her files say the same.
    let carol_data = carol.spec.data.clone();
    carol.kill();
    for text in &after {
        let found = any_file_holds(&carol_data, text.as_bytes())?;
        assert!(found.is_empty(), "{text:?} on carol's disk: {found:?}");
        assert!(
            !database_holds(&carol_data, text)?,
            "{text:?} in carol's database"
        );
    }
    Ok(())
}

/// Ann's laptop and phone certify themselves with her person key (`meshlog community person`,
/// `--person-key`); the roster shows her on both, and carol, the admin, removes her: both
/// devices go, with one new key epoch.
#[test]
fn removing_a_person_removes_each_of_their_devices() -> Result<()> {
    let root = tempfile::tempdir()?;
    let specs = mesh(root.path(), &["carol", "ann-laptop", "ann-phone", "bob"])?;
    let keys = root.path().join("keys");
    let made = std::process::Command::new(backend_support::meshlog_bin())
        .args(["community", "person", "--name", "ann", "--out"])
        .arg(&keys)
        .output()?;
    assert!(made.status.success(), "{made:?}");
    let ann_key = keys.join("ann.person.json");
    let ann_key = ann_key.to_str().context("utf-8 path")?;
    let carol = DeviceProcess::start(&specs[0])?;
    let laptop = DeviceProcess::start_with(&specs[1], &["--person-key", ann_key])?;
    let phone = DeviceProcess::start_with(&specs[2], &["--person-key", ann_key])?;
    let bob = DeviceProcess::start(&specs[3])?;
    let all = [&carol, &laptop, &phone, &bob];

    let person_of = |device: &DeviceProcess, name: &str| -> Result<Value> {
        Ok(members(device)?
            .into_iter()
            .find(|m| m["name"] == name)
            .map(|m| m["person"].clone())
            .unwrap_or(Value::Null))
    };
    wait_for(CONVERGE, || {
        for device in all {
            for name in ["ann-laptop", "ann-phone"] {
                if person_of(device, name)? != "ann" {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })
    .context("every device learns both certificates")?;
    assert_eq!(person_of(&carol, "bob")?, Value::Null);

    let (status, error) = error_of(call(&bob, "DELETE", "/api/people/ann", None)?);
    assert_eq!(status, 403, "{error}");
    let (status, error) = error_of(call(&carol, "DELETE", "/api/people/zed", None)?);
    assert_eq!(status, 404, "{error}");
    let (status, removed) = call(&carol, "DELETE", "/api/people/ann", None)?;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed, json!({"removed_person": "ann", "key_epoch": 1}));

    wait_for(CONVERGE, || {
        Ok(key_epoch(&bob)? == 1
            && ["ann-laptop", "ann-phone"].iter().all(|name| {
                member(&bob, name)
                    .ok()
                    .flatten()
                    .is_some_and(|(_, s)| s == "removed")
            }))
    })
    .context("bob learns both removals and holds the one new epoch")?;
    for device in [&laptop, &phone] {
        assert_eq!(
            key_epoch(device)?,
            0,
            "{} is given no new key",
            device.spec.name
        );
    }
    Ok(())
}
