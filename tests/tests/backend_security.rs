//! Only the owner gets in: a request without the API token, with a wrong one, from another
//! origin or under another Host name (DNS rebinding) is refused with a JSON 401/403 and
//! changes nothing. Attachments cannot carry a page. Every error is JSON, slow headers are
//! cut off, connections and streams are capped, and the data directory is private.

mod backend_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use anyhow::Result;
use backend_support::{
    error_of, get, get_response, lone_alice, post, raw_http, request, DeviceProcess, RawAnswer,
    SimModeRun,
};
use base64::Engine;
use serde_json::{json, Value};

const PAGE: &str = "http://127.0.0.1:5173";

/// Alice, allowing the demo page's origin.
fn alice(root: &std::path::Path, extra: &[&str]) -> Result<DeviceProcess> {
    let mut args = vec!["--allow-origin", PAGE];
    args.extend_from_slice(extra);
    lone_alice(root, &args)
}

#[test]
fn strangers_are_refused_and_change_nothing() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = alice(root.path(), &[])?;
    let port = alice.http_addr().port();
    let bearer = format!("Bearer {}", alice.token);
    let wrong = format!("Bearer {}", "0".repeat(64));
    let evil_host = format!("evil.example:{port}");
    let message = json!({"text": "posted by a stranger"});
    let offline = json!({"online": false});

    // (what, path, headers, body, status wanted)
    type Attempt<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a Value, u16);
    let attempts: Vec<Attempt> = vec![
        ("no token", "/api/messages", vec![], &message, 401),
        (
            "wrong token",
            "/api/messages",
            vec![("authorization", &wrong)],
            &message,
            401,
        ),
        (
            "wrong cookie",
            "/api/device-status",
            vec![("cookie", "meshlog_token=abc")],
            &offline,
            401,
        ),
        (
            "another origin, with the token",
            "/api/device-status",
            vec![
                ("authorization", &bearer),
                ("origin", "http://evil.example"),
            ],
            &offline,
            403,
        ),
        (
            "DNS rebinding: the attacker's name as Host",
            "/api/device-status",
            vec![
                ("authorization", &bearer),
                ("host", &evil_host),
                ("origin", "http://evil.example:4001"),
            ],
            &offline,
            403,
        ),
        (
            "DNS rebinding, same-origin form",
            "/api/messages",
            vec![("cookie", "meshlog_token=x"), ("host", &evil_host)],
            &message,
            403,
        ),
        (
            "cross-site without Origin",
            "/api/device-status",
            vec![("authorization", &bearer), ("sec-fetch-site", "cross-site")],
            &offline,
            403,
        ),
        (
            "origin null (sandboxed frame)",
            "/api/device-status",
            vec![("authorization", &bearer), ("origin", "null")],
            &offline,
            403,
        ),
    ];
    for (what, path, headers, body, want) in attempts {
        let (status, error) = error_of(request("POST", &alice.url(path), &headers, Some(body))?);
        assert_eq!(status, want, "{what}: {error}");
    }
    let (status, _) = error_of(request("GET", &alice.url("/api/messages"), &[], None)?);
    assert_eq!(status, 401, "reading needs the token too");
    let (status, _) = error_of(request("GET", &alice.url("/api/stream"), &[], None)?);
    assert_eq!(status, 401, "so does the live stream");

    // A preflight from another origin is refused; from the page, answered for it alone.
    let preflight = |origin: &str| {
        request(
            "OPTIONS",
            &alice.url("/api/messages"),
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            None,
        )
    };
    assert_eq!(error_of(preflight("http://evil.example")?).0, 403);
    let answer = reqwest::blocking::Client::new()
        .request(reqwest::Method::OPTIONS, alice.url("/api/messages"))
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .send()?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], PAGE);
    assert_eq!(answer.headers()["access-control-allow-credentials"], "true");

    // Nothing changed: no message, still online.
    assert!(alice.messages()?.is_empty());
    assert_eq!(alice.stats()?["online"], true);
    assert_eq!(alice.stats()?["events"], 0);

    // The owner's ways in: the bearer header, the custom header, the page's cookie.
    let cookie = format!("meshlog_token={}", alice.token);
    for header in [
        ("authorization", bearer.as_str()),
        ("x-meshlog-token", alice.token.as_str()),
        ("cookie", cookie.as_str()),
    ] {
        let (status, body) = request(
            "POST",
            &alice.url("/api/messages"),
            &[header, ("origin", PAGE)],
            Some(&json!({"text": format!("via {}", header.0)})),
        )?;
        assert_eq!(status, 201, "{}: {body}", header.0);
    }
    assert_eq!(alice.messages()?.len(), 3);
    // Health is open, and says nothing about the device.
    assert_eq!(
        request("GET", &alice.url("/api/health"), &[], None)?,
        (200, json!({"ok": true}))
    );
    Ok(())
}

#[test]
fn attachments_cannot_carry_a_page() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = alice(root.path(), &[])?;
    let messages = alice.url("/api/messages");
    let data = base64::engine::general_purpose::STANDARD.encode(b"<script>alert(1)</script>");
    for mime in [
        "text/html",
        "text/plain\r\nx-evil: 1",
        "image/svg+xml",
        "text/html; x",
    ] {
        let body =
            json!({"text": "x", "attachment": {"name": "a", "mime": mime, "data_base64": data}});
        let (status, error) = error_of(post(&messages, &body)?);
        assert!(
            status == 400 && error.contains("mime"),
            "{mime:?}: {status} {error}"
        );
    }
    assert!(alice.messages()?.is_empty(), "nothing stored");

    // The same bytes in two messages: each is served under its own name and type.
    let post_file = |name: &str, mime: &str| -> Result<Value> {
        let body =
            json!({"text": name, "attachment": {"name": name, "mime": mime, "data_base64": data}});
        let (status, created) = post(&messages, &body)?;
        assert_eq!(status, 201, "{created}");
        Ok(created)
    };
    let picture = post_file("picture.png", "image/png")?;
    let notes = post_file("notes \"1\".txt", "text/plain")?;
    for (created, mime, disposition) in [
        (&picture, "image/png", "inline; filename=\"picture.png\""),
        (
            &notes,
            "text/plain",
            "attachment; filename=\"notes__1_.txt\"",
        ),
    ] {
        let url = created["attachment"]["url"].as_str().unwrap();
        assert_eq!(
            url,
            format!(
                "/api/messages/{}/attachment",
                created["id"].as_str().unwrap()
            )
        );
        let response = get_response(&alice.url(url))?;
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["content-type"], mime);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-security-policy"], "sandbox");
        let served = headers["content-disposition"].to_str()?;
        assert!(served.starts_with(disposition), "{served}");
        assert_eq!(response.bytes()?.as_ref(), b"<script>alert(1)</script>");
    }
    let (status, error) = error_of(get(
        &alice.url(&format!("/api/messages/{}/attachment", "ab".repeat(32)))
    )?);
    assert_eq!(status, 404, "{error}");
    Ok(())
}

#[test]
fn every_error_is_json() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = alice(
        root.path(),
        &["--streams-max", "1", "--connections-max", "8"],
    )?;
    let addr = alice.http_addr();
    let auth = format!("authorization: Bearer {}\r\n", alice.token);
    let raw = |head: String| raw_http(addr, head.as_bytes());
    let checks: Vec<(u16, &str, RawAnswer)> = vec![
        (404, "unknown path", raw(format!("GET /api/nothing HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"))?),
        (405, "wrong method", raw(format!("GET /api/device-status HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"))?),
        (414, "target too long", raw(format!("GET /api/messages?{} HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n", "a".repeat(9_000)))?),
        (415, "not JSON", raw(format!("POST /api/messages HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"))?),
        (422, "wrong field type", raw(format!("POST /api/device-status HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{{\"online\":\"no\"}}"))?),
        (400, "malformed JSON", raw(format!("POST /api/device-status HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: 5\r\nconnection: close\r\n\r\n{{\"on\""))?),
        (400, "bad query", raw(format!("GET /api/network-events?since=soon HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"))?),
        (431, "too many headers", raw(format!("GET /api/health HTTP/1.1\r\nhost: {addr}\r\n{}\r\n", "x-filler: 1\r\n".repeat(100)))?),
        (431, "headers too large", raw(format!("GET /api/health HTTP/1.1\r\nhost: {addr}\r\nx-big: {}\r\n\r\n", "a".repeat(70_000)))?),
        (400, "garbage request line", raw("\x16\x03\x01 not http at all\r\n\r\n".to_owned())?),
        (401, "no token", raw(format!("GET /api/stats HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"))?),
        (403, "bad host", raw(format!("GET /api/stats HTTP/1.1\r\nhost: evil.example:{}\r\n{auth}connection: close\r\n\r\n", addr.port()))?),
    ];
    for (want, what, (status, headers, body)) in checks {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            headers
                .iter()
                .any(|h| h == "content-type: application/json"),
            "{what}: {headers:?}"
        );
        assert!(body["error"].is_string(), "{what}: {body}");
    }

    // A whole oversized body (the raw request above would wait for bytes never sent).
    let big = json!({"text": "x", "attachment": {"name": "a", "mime": "text/plain", "data_base64": "A".repeat(600_000)}});
    let bearer = format!("Bearer {}", alice.token);
    let (status, error) = error_of(request(
        "POST",
        &alice.url("/api/messages"),
        &[("authorization", &bearer)],
        Some(&big),
    )?);
    assert_eq!(status, 413, "{error}");

    // One live stream at most here: the second is a JSON 503 while the first is open.
    let mut first = TcpStream::connect(addr)?;
    first
        .write_all(format!("GET /api/stream HTTP/1.1\r\nhost: {addr}\r\n{auth}\r\n").as_bytes())?;
    let mut hello = [0u8; 256];
    first.set_read_timeout(Some(Duration::from_secs(10)))?;
    let n = first.read(&mut hello)?;
    assert!(String::from_utf8_lossy(&hello[..n]).starts_with("HTTP/1.1 200"));
    let (status, _, body) = raw(format!(
        "GET /api/stream HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"
    ))?;
    assert_eq!((status, body["error"].is_string()), (503, true), "{body}");
    drop(first);

    // Eight connections at most: with eight idle ones open, the ninth is served, and the
    // oldest idle one is closed (evicted to make room, or timed out as slots run short);
    // backend_connections tests the 503 of a server whose every connection is busy.
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(addr))
        .collect::<Result<_, _>>()?;
    let (status, _, body) = raw(format!(
        "GET /api/health HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    ))?;
    assert_eq!(status, 200, "{body}");
    idle[0].set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 64];
    let read = idle[0].read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the oldest idle connection was closed: {read:?}"
    );
    Ok(())
}

#[test]
fn slow_headers_are_cut_off() -> Result<()> {
    const SLOW_CLIENTS: usize = 50;
    let root = tempfile::tempdir()?;
    let alice = alice(root.path(), &["--header-timeout-ms", "1000"])?;
    let addr = alice.http_addr();
    // Each sends a request line, then a header line now and then, never the blank line.
    let mut slow: Vec<Option<TcpStream>> = (0..SLOW_CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr)?;
            s.write_all(format!("GET /api/health HTTP/1.1\r\nhost: {addr}\r\n").as_bytes())?;
            s.set_nonblocking(true)?;
            Ok(Some(s))
        })
        .collect::<Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while slow.iter().any(Option::is_some) && Instant::now() < deadline {
        for slot in slow.iter_mut() {
            let Some(stream) = slot else { continue };
            let mut buf = [0u8; 64];
            let closed = match stream.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => panic!("a slow client got an answer"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    stream.write_all(b"x-slow: 1\r\n").is_err()
                }
                Err(_) => true,
            };
            if closed {
                *slot = None;
            }
        }
        // Meanwhile the owner is served.
        assert_eq!(get(&alice.url("/api/health"))?.0, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    let open = slow.iter().filter(|s| s.is_some()).count();
    assert_eq!(
        open, 0,
        "{open} of {SLOW_CLIENTS} slow clients still connected"
    );
    Ok(())
}

#[test]
fn data_dir_and_token_are_private() -> Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("alice");
    std::fs::create_dir_all(&data)?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
    let alice = alice(root.path(), &[])?;
    let mode = |p: &std::path::Path| -> Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&data)?, 0o700, "a loose data directory is tightened");
    assert_eq!(mode(&data.join("api-token"))?, 0o600);
    assert_eq!(alice.token.len(), 64);
    // Made once, reused on restart.
    let token = alice.token.clone();
    let spec = alice.spec.clone();
    alice.kill();
    let again = DeviceProcess::start_with(&spec, &[])?;
    assert_eq!(again.token, token);
    Ok(())
}

#[test]
fn non_loopback_needs_a_flag() -> Result<()> {
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    backend_support::community(&keys, &["alice"])?;
    let output = std::process::Command::new(backend_support::meshlog_bin())
        .args([
            "device",
            "--name",
            "alice",
            "--http",
            "0.0.0.0:0",
            "--udp",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(root.path().join("alice"))
        .arg("--keys")
        .arg(&keys)
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    Ok(())
}

/// The simulation service and its simulated devices: same checks.
#[test]
fn simulated_mode_is_owner_only_too() -> Result<()> {
    let run = SimModeRun::start(
        "name = \"s\"\nseed = 1\nduration = \"1m\"\ndevices = [\"alice\", \"bob\"]\n",
    )?;
    let (sim, alice) = (&run.sim, &run.devices[0]);
    let bearer = format!("Bearer {}", run.token.as_str());
    for (base, path) in [
        (sim, "/api/simulation/pause"),
        (alice, "/api/device-status"),
    ] {
        let body = json!({"online": false});
        let url = format!("{base}{path}");
        let host = format!("evil.example:{}", base.rsplit(':').next().unwrap());
        assert_eq!(error_of(request("POST", &url, &[], Some(&body))?).0, 401);
        let evil_origin = [
            ("authorization", bearer.as_str()),
            ("origin", "http://evil.example"),
        ];
        assert_eq!(
            error_of(request("POST", &url, &evil_origin, Some(&body))?).0,
            403
        );
        let evil_host = [("authorization", bearer.as_str()), ("host", host.as_str())];
        assert_eq!(
            error_of(request("POST", &url, &evil_host, Some(&body))?).0,
            403
        );
    }
    // Nothing changed; the owner (registered token) is served.
    assert_eq!(get(&format!("{alice}/api/stats"))?.1["online"], true);
    assert_eq!(get(&format!("{sim}/api/simulation"))?.0, 200);
    Ok(())
}

#[test]
fn a_full_disk_answers_507() -> Result<()> {
    let root = tempfile::tempdir()?;
    // Room for the schema and a few lines of text, not for a 300 KB file.
    let alice = alice(root.path(), &["--db-pages-max", "60"])?;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, error) = error_of(post(
        &alice.url("/api/messages"),
        &json!({"text": "too big", "attachment": {"name": "big.bin",
            "mime": "application/octet-stream",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}}),
    )?);
    assert_eq!(status, 507, "{error}");
    assert!(error.contains("full"), "{error}");
    Ok(())
}

#[test]
fn an_absolute_form_target_must_name_this_server() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = alice(root.path(), &[])?;
    let addr = alice.http_addr();
    let ask = |target: String| {
        raw_http(
            addr,
            format!(
                "GET {target} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
                 connection: close\r\n\r\n",
                alice.token
            )
            .as_bytes(),
        )
    };
    // RFC 9112: the target's host wins over Host, so a rebinding proxy's name is refused.
    let (status, _, body) = ask(format!("http://evil.example:{}/api/stats", addr.port()))?;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    let (status, _, body) = ask("http://evil.example/api/stats".into())?;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = ask(format!("http://{addr}/api/stats"))?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}
