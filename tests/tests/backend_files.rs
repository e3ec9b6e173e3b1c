//! The blob store's HTTP API on a real device: `POST /api/files` streams a file in and
//! names it by its BLAKE3 root; `GET /api/files/:id` gives it back whole or by `Range`; bad
//! input (a lying length, a range past the end, a bad id, no token) is refused and leaves
//! nothing behind; an upload survives a restart.

mod backend_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use backend_support::{
    error_of, get, get_with, lone_alice, post_bytes, raw_http, request, wait_for, DeviceProcess,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// `len` pseudo-random bytes, the same for a seed every run.
fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// Names in `DATA/files/` and in its `tmp/`.
fn store_contents(data: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let names = |dir: &Path| -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_>>()?;
        names.sort();
        Ok(names)
    };
    let files = data.join("files");
    Ok((names(&files)?, names(&files.join("tmp"))?))
}

fn upload(device: &DeviceProcess, bytes: &[u8]) -> Result<String> {
    let (status, body) = post_bytes(&device.url("/api/files"), bytes.to_vec())?;
    anyhow::ensure!(status == 201, "POST /api/files: {status} {body}");
    Ok(body["file_id"].as_str().context("file_id")?.to_owned())
}

#[test]
fn an_upload_comes_back_byte_exact_whole_and_by_range() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    let content = seeded_bytes(3 * 1024 * 1024 + 12_345, 26);
    let files = alice.url("/api/files");

    let (status, body) = post_bytes(&files, content.clone())?;
    assert_eq!(status, 201, "{body}");
    let id = body["file_id"].as_str().context("file_id")?.to_owned();
    assert_eq!(
        id,
        blake3::hash(&content).to_hex().as_str(),
        "the id is the BLAKE3 root"
    );
    assert_eq!(body["size"], content.len() as u64);
    assert_eq!(body["chunks"], content.len().div_ceil(16 * 1024) as u64);

    // The same bytes again: the same answer, no second copy.
    let (status, again) = post_bytes(&files, content.clone())?;
    assert!(status == 200 || status == 201, "{status} {again}");
    assert_eq!(again, body);

    let url = alice.url(&format!("/api/files/{id}"));
    let whole = get_with(&url, &[])?;
    assert_eq!(whole.status().as_u16(), 200);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(&whole, "x-content-type-options"), "nosniff");
    assert_eq!(header(&whole, "content-type"), "application/octet-stream");
    assert!(header(&whole, "content-disposition").starts_with("attachment;"));
    assert_eq!(whole.bytes()?.as_ref(), &content[..], "byte-exact");

    let part = get_with(&url, &[("range", "bytes=1000000-1099999")])?;
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 1000000-1099999/{}", content.len())
    );
    assert_eq!(part.bytes()?.as_ref(), &content[1_000_000..1_100_000]);

    let tail = get_with(&url, &[("range", "bytes=-10")])?;
    assert_eq!(tail.status().as_u16(), 206);
    assert_eq!(tail.bytes()?.as_ref(), &content[content.len() - 10..]);

    let past = format!("bytes={}-", content.len());
    let response = get_with(&url, &[("range", &past)])?;
    assert_eq!(response.status().as_u16(), 416, "a range past the end");
    assert_eq!(
        header(&response, "content-range"),
        format!("bytes */{}", content.len())
    );

    let (status, progress) = get(&alice.url(&format!("/api/files/{id}/progress")))?;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["complete"], true);
    assert_eq!(progress["chunks_have"], progress["chunks_total"]);
    assert_eq!(progress["size"], content.len() as u64);
    Ok(())
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &["--file-size-max", "2000000"])?;
    let data = root.path().join("alice");
    let bearer = format!("Bearer {}", alice.token);

    // Over --file-size-max: 413 from the head alone; the body is never sent.
    let head = format!(
        "POST /api/files HTTP/1.1\r\nhost: {}\r\nauthorization: {bearer}\r\n\
         content-type: application/octet-stream\r\ncontent-length: 5000000000\r\n\r\n",
        alice.http_addr()
    );
    let (status, _, body) = raw_http(alice.http_addr(), head.as_bytes())?;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().is_some(), "{body}");

    // 1 MB declared, 100 KB sent, then the client closes: 400 (if it is still there to
    // hear it) and nothing stored.
    let head = format!(
        "POST /api/files HTTP/1.1\r\nhost: {}\r\nauthorization: {bearer}\r\n\
         content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n",
        alice.http_addr()
    );
    let mut stream = TcpStream::connect(alice.http_addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(&seeded_bytes(100_000, 1))?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    wait_for(Duration::from_secs(10), || {
        let (files, tmp) = store_contents(&data)?;
        Ok(files == ["tmp"] && tmp.is_empty())
    })
    .context("the store holds nothing after a truncated upload")?;

    let (status, error) = error_of(get(&alice.url("/api/files/xyz"))?);
    assert!(
        status == 400 && error.contains("64 hex"),
        "{status} {error}"
    );
    let (status, error) = error_of(get(&alice.url("/api/files/xyz/progress"))?);
    assert_eq!(status, 400, "{error}");
    let unknown = "ab".repeat(32);
    let (status, error) = error_of(get(&alice.url(&format!("/api/files/{unknown}")))?);
    assert_eq!(status, 404, "{error}");

    // No token: refused as every other route is, and nothing stored.
    let id = blake3::hash(b"x").to_hex();
    let (status, _) = error_of(request("POST", &alice.url("/api/files"), &[], None)?);
    assert_eq!(status, 401);
    let (status, _) = error_of(request(
        "GET",
        &alice.url(&format!("/api/files/{id}")),
        &[],
        None,
    )?);
    assert_eq!(status, 401);
    let evil = [
        ("authorization", bearer.as_str()),
        ("origin", "http://evil.example"),
    ];
    let (status, _) = error_of(request("POST", &alice.url("/api/files"), &evil, None)?);
    assert_eq!(status, 403, "another origin, with the token");
    let (files, _) = store_contents(&data)?;
    assert_eq!(files, ["tmp"]);
    Ok(())
}

#[test]
fn an_upload_survives_a_restart() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    let content = seeded_bytes(700_000, 7);
    let id = upload(&alice, &content)?;
    let spec = alice.spec.clone();
    alice.kill();
    let alice = DeviceProcess::start(&spec)?;
    let response = get_with(&alice.url(&format!("/api/files/{id}")), &[])?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes()?.as_ref(), &content[..]);
    Ok(())
}

/// A file arriving from peers (made here with the store's own API while the device is down,
/// as the network half will make it): its verified ranges are served, the rest is `409`, and
/// it is never served whole.
#[test]
fn a_partial_file_serves_only_what_is_verified() -> Result<()> {
    use meshlog_backend::files::{tree, BlobId, BlobStore, GROUP_LEN_BYTES};
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    let spec = alice.spec.clone();
    alice.kill();

    let content = seeded_bytes(10 * GROUP_LEN_BYTES as usize + 99, 9);
    let mut outboard = Vec::new();
    let root_hash = tree::outboard_of(&content[..], content.len() as u64, &mut outboard)?;
    let id = BlobId(*root_hash.as_bytes());
    {
        let store = BlobStore::open(&spec.data.join("files"), 1 << 30)?;
        store.create_partial(id, content.len() as u64, &outboard)?;
        for index in [0u64, 1, 2, 7] {
            let start = (index * GROUP_LEN_BYTES) as usize;
            let group = &content[start..start + GROUP_LEN_BYTES as usize];
            store.insert_group(&id, index, group)?;
        }
        store.flush()?;
    }

    let alice = DeviceProcess::start(&spec)?;
    let url = alice.url(&format!("/api/files/{}", id.to_hex()));
    let (status, progress) = get(&format!("{url}/progress"))?;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["chunks_have"], 4);
    assert_eq!(progress["chunks_total"], 11);
    assert_eq!(progress["complete"], false);

    let verified = get_with(&url, &[("range", "bytes=100-49151")])?;
    assert_eq!(verified.status().as_u16(), 206);
    assert_eq!(verified.bytes()?.as_ref(), &content[100..49_152]);

    let range = format!("bytes=100-{}", 3 * GROUP_LEN_BYTES);
    let (status, error) = error_of(backend_support::answer(get_with(
        &url,
        &[("range", &range)],
    )?)?);
    assert!(
        status == 409 && error.contains("not all verified"),
        "{status} {error}"
    );
    let (status, error) = error_of(backend_support::answer(get_with(&url, &[])?)?);
    assert_eq!(status, 409, "never served whole while partial: {error}");
    Ok(())
}

/// An upload may take longer than `--body-timeout-ms` as long as bytes keep coming (the
/// deadline is between frames for uploads); one that stalls is `408` and leaves nothing.
#[test]
fn a_slow_upload_is_taken_and_a_stalled_one_cut_off() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &["--body-timeout-ms", "1000"])?;
    let data = root.path().join("alice");
    let content = seeded_bytes(600_000, 11);
    let head = |len: usize| {
        format!(
            "POST /api/files HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
             content-type: application/octet-stream\r\ncontent-length: {len}\r\n\r\n",
            alice.http_addr(),
            alice.token
        )
    };

    // 2.4 s in all, a piece every 400 ms: past the 1 s deadline as a whole, never between frames.
    let mut stream = TcpStream::connect(alice.http_addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head(content.len()).as_bytes())?;
    for piece in content.chunks(100_000) {
        std::thread::sleep(Duration::from_millis(400));
        stream.write_all(piece)?;
    }
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer.contains(blake3::hash(&content).to_hex().as_str()),
        "{answer}"
    );

    // Half the body, then nothing (the connection left open): 408 within the deadline.
    let other = seeded_bytes(600_000, 12);
    let mut stream = TcpStream::connect(alice.http_addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head(other.len()).as_bytes())?;
    stream.write_all(&other[..300_000])?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let id = blake3::hash(&other).to_hex();
    let (status, _) = get(&alice.url(&format!("/api/files/{id}")))?;
    assert_eq!(status, 404);
    wait_for(Duration::from_secs(10), || {
        let (_, tmp) = store_contents(&data)?;
        Ok(tmp.is_empty())
    })
    .context("no temporary file left")?;
    Ok(())
}
