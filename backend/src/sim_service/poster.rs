//! Sends generated messages through the devices' own `POST /api/messages`, as a person would.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::json;
use tokio::sync::mpsc;

use super::generator::Post;
use crate::api::access::Token;

/// Per request; a device that does not answer in time is skipped, not waited on.
const POST_TIMEOUT_MS: u64 = 5_000;

/// Posts each message with its device's API token (`tokens`, by device name).
pub async fn run(mut posts: mpsc::Receiver<Post>, tokens: BTreeMap<String, Token>) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(POST_TIMEOUT_MS))
        .build()
        .expect("an http client without TLS always builds");
    while let Some(post) = posts.recv().await {
        let url = format!("{}/api/messages", post.device_url.trim_end_matches('/'));
        let body = body(&post);
        let mut request = client.post(&url).json(&body);
        if let Some(token) = tokens.get(&post.device) {
            request = request.bearer_auth(token.as_str());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "device refused a generated message")
            }
            Err(err) => tracing::warn!(%url, %err, "posting a generated message failed"),
        }
    }
}

/// The JSON body, with a generated text file as the attachment when there is one.
pub fn body(post: &Post) -> serde_json::Value {
    let attachment = post.attachment_bytes.map(|len| {
        let line = format!("{}\n", post.text);
        let content: Vec<u8> = line.bytes().cycle().take(len).collect();
        json!({
            "name": format!("note-{}.txt", post.due_us / 1_000),
            "mime": "text/plain",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(content),
        })
    });
    json!({ "text": post.text, "auto": true, "attachment": attachment })
}
