//! Sends generated messages through the devices' own `POST /api/messages`, as a person would:
//! one task per device, each posting its device's messages in order (so order per author
//! holds), the devices in parallel (so one slow device does not hold back the others).

use std::collections::BTreeMap;

use base64::Engine;
use meshlog_core::EventBody;
use serde_json::json;
use tokio::sync::mpsc;

use super::generator::Post;
use super::image::picture;
use crate::api::access::Token;
use crate::api::handlers::{message_bodies, NewMessage};

/// Per request; a device that does not answer in time is skipped, not waited on.
const POST_TIMEOUT_MS: u64 = 5_000;
/// Posts waiting for one device; beyond this they are dropped (and logged), not queued
/// forever: at 100× and the highest rate a device is due 500 a second.
const DEVICE_QUEUE_LEN: usize = 1_024;

/// One queue per device, by name.
#[derive(Clone, Debug, Default)]
pub struct Posters(BTreeMap<String, mpsc::Sender<Post>>);

impl Posters {
    /// Starts a poster for each device, calling it with its API token.
    pub fn start(tokens: BTreeMap<String, Token>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(POST_TIMEOUT_MS))
            .build()
            .expect("an http client without TLS always builds");
        let queues = tokens
            .into_iter()
            .map(|(name, token)| {
                let (queue, posts) = mpsc::channel(DEVICE_QUEUE_LEN);
                tokio::spawn(run(posts, client.clone(), token));
                (name, queue)
            })
            .collect();
        Posters(queues)
    }

    pub fn queue(&self, post: Post) {
        match self.0.get(&post.device) {
            Some(queue) if queue.try_send(post).is_ok() => {}
            _ => tracing::warn!("post queue full; a generated message was dropped"),
        }
    }
}

async fn run(mut posts: mpsc::Receiver<Post>, client: reqwest::Client, token: Token) {
    while let Some(post) = posts.recv().await {
        let url = format!("{}/api/messages", post.device_url.trim_end_matches('/'));
        let request = client
            .post(&url)
            .json(&body(&post))
            .bearer_auth(token.as_str());
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "device refused a generated message")
            }
            // A crashed device is normal in the demo: it makes nothing until restarted.
            Err(err) => tracing::debug!(%url, %err, "posting a generated message failed"),
        }
    }
}

/// The JSON body, with a small generated picture as the attachment when there is one.
pub fn body(post: &Post) -> serde_json::Value {
    let attachment = post.picture.map(|seed| {
        json!({
            "name": format!("photo-{}-{}.png", post.device, post.number),
            "mime": "image/png",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(picture(&seed)),
        })
    });
    json!({ "text": post.text, "auto": true, "attachment": attachment })
}

/// The events a post becomes, exactly as `POST /api/messages` makes them (simulated mode
/// appends them straight into the world, at the post's own virtual time).
pub fn bodies(post: &Post) -> Vec<EventBody> {
    let message: NewMessage =
        serde_json::from_value(body(post)).expect("a generated body has the API's shape");
    message_bodies(message).expect("generated messages are valid")
}
