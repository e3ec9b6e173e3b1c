//! A message that refers to a file of the blob store by `file_id`, on a real device: the
//! message's attachment is a blob of the stored size, complete, served under the message's
//! name and type (whole and by `Range`); a file that is not there, not complete, or not an id
//! at all is refused with a JSON 4xx, and nothing is posted.

mod backend_support;

use anyhow::{Context, Result};
use backend_support::{error_of, get_with, lone_alice, post, post_bytes, DeviceProcess};
use serde_json::json;

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_message_refers_to_an_uploaded_file() -> Result<()> {
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    // Over the inline limit, and not a whole number of groups.
    let content: Vec<u8> = (0..2_000_003u32)
        .map(|i| (i * 13 + (i >> 10)) as u8)
        .collect();
    let (status, uploaded) = post_bytes(&alice.url("/api/files"), content.clone())?;
    assert_eq!(status, 201, "{uploaded}");
    let id = uploaded["file_id"].as_str().context("file_id")?;

    let body = json!({"text": "a big one", "file_id": id, "name": "big.png", "mime": "IMAGE/PNG"});
    let (status, message) = post(&alice.url("/api/messages"), &body)?;
    assert_eq!(status, 201, "{message}");
    let attachment = &message["attachment"];
    assert_eq!(attachment["blob"], true, "{message}");
    assert_eq!(attachment["file_id"], id);
    assert_eq!(attachment["size"], content.len() as u64);
    assert_eq!(attachment["mime"], "image/png");
    assert_eq!(attachment["complete"], true);
    let groups = content.len().div_ceil(16 * 1024) as u64;
    assert_eq!(attachment["chunks_total"], groups);
    assert_eq!(attachment["chunks_have"], groups);

    // The page's view agrees, and the attachment route serves the blob under its own name.
    let listed = alice.messages()?;
    let shown = listed
        .iter()
        .find(|m| m["text"] == "a big one")
        .context("listed")?;
    assert_eq!(shown["attachment"], *attachment);
    let url = alice.url(attachment["url"].as_str().context("url")?);
    let whole = get_with(&url, &[])?;
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(header(&whole, "content-type"), "image/png");
    assert!(header(&whole, "content-disposition").starts_with("inline; filename=\"big.png\""));
    assert_eq!(header(&whole, "x-content-type-options"), "nosniff");
    assert!(whole.bytes()?.as_ref() == &content[..]);
    let prefix = get_with(&url, &[("range", "bytes=0-99999")])?;
    assert_eq!(prefix.status().as_u16(), 206);
    assert!(prefix.bytes()?.as_ref() == &content[..100_000]);
    Ok(())
}

#[test]
fn a_file_id_that_is_not_a_complete_file_here_is_refused() -> Result<()> {
    use meshlog_backend::files::{tree, BlobId, BlobStore, GROUP_LEN_BYTES};
    let root = tempfile::tempdir()?;
    let alice = lone_alice(root.path(), &[])?;
    // A partial file: made with the store's own API while the device is down.
    let spec = alice.spec.clone();
    alice.kill();
    let partial: Vec<u8> = (0..5 * GROUP_LEN_BYTES as u32)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut outboard = Vec::new();
    let hash = tree::outboard_of(&partial[..], partial.len() as u64, &mut outboard)?;
    let partial_id = BlobId(*hash.as_bytes());
    {
        let store = BlobStore::open(&spec.data.join("files"), 1 << 30)?;
        store.create_partial(partial_id, partial.len() as u64, &outboard)?;
        store.insert_group(&partial_id, 0, &partial[..GROUP_LEN_BYTES as usize])?;
        store.flush()?;
    }
    let alice = DeviceProcess::start(&spec)?;
    let (status, uploaded) = post_bytes(&alice.url("/api/files"), vec![7; 1000])?;
    assert_eq!(status, 201, "{uploaded}");
    let good = uploaded["file_id"].as_str().context("file_id")?.to_owned();

    let messages = alice.url("/api/messages");
    let with = |file_id: &str| json!({"text": "x", "file_id": file_id, "name": "a.bin", "mime": "application/octet-stream"});
    let cases = [
        (with("xyz"), 400, "64 hex"),
        (with(&"ab".repeat(32)), 404, "not in this device's store"),
        (with(&partial_id.to_hex()), 409, "not complete"),
        (
            json!({"text": "x", "file_id": good, "mime": "text/plain"}),
            400,
            "name",
        ),
        (
            json!({"text": "x", "file_id": good, "name": "a"}),
            400,
            "mime",
        ),
        (
            json!({"text": "x", "file_id": good, "name": "a", "mime": "text/html"}),
            400,
            "text/html",
        ),
        (
            json!({"text": "x", "file_id": good, "name": "a", "mime": "text/plain",
                   "attachment": {"name": "a", "mime": "text/plain", "data_base64": "eA=="}}),
            400,
            "one or the other",
        ),
        (
            json!({"text": "x", "name": "a", "mime": "text/plain"}),
            400,
            "only with file_id",
        ),
    ];
    for (body, want, words) in cases {
        let (status, error) = error_of(post(&messages, &body)?);
        assert!(
            status == want && error.contains(words),
            "{body}: {status} {error}"
        );
    }
    assert!(alice.messages()?.is_empty(), "nothing was posted");
    Ok(())
}
