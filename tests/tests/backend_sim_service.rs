//! The simulation service: rates, pause and speed take effect on virtual time (no sleeping
//! to assert), and generated messages arrive through a real device's `POST /api/messages`.

use std::time::Duration;

use meshlog_backend::api::access::Token;
use meshlog_backend::api::serve::ServerOptions;
use meshlog_backend::sim_service::{self, DeviceLink, Simulation};
use serde_json::{json, Value};

const SECOND_US: u64 = 1_000_000;

fn two_devices() -> Simulation {
    Simulation::new(vec![
        ("alice".into(), "http://127.0.0.1:1".into()),
        ("bob".into(), "http://127.0.0.1:2".into()),
    ])
}

fn generated(sim: &Simulation) -> Vec<u64> {
    sim.state().devices.iter().map(|d| d.generated).collect()
}

#[test]
fn paused_time_generates_nothing() {
    let mut sim = two_devices();
    sim.set_message_rate(3_600.0).unwrap();
    assert!(sim.tick(600 * SECOND_US).is_empty(), "not started");
    assert_eq!(sim.state().virtual_time_ms, 0);
    sim.time.start();
    assert_eq!(sim.tick(10 * SECOND_US).len(), 10);
    sim.time.pause();
    assert!(sim.tick(600 * SECOND_US).is_empty());
    assert_eq!(sim.state().virtual_time_ms, 10_000);
}

#[test]
fn rate_is_split_across_enabled_devices() {
    let mut sim = two_devices();
    sim.set_message_rate(360.0).unwrap(); // 6 a minute overall, 3 each
    sim.step(60.0).unwrap();
    assert_eq!(generated(&sim), [3, 3]);
    sim.set_enabled("bob", false).unwrap();
    let posts = sim.step(60.0).unwrap();
    assert!(posts.iter().all(|p| p.device == "alice"));
    assert_eq!(
        generated(&sim),
        [9, 3],
        "alice alone carries the whole rate"
    );
    sim.set_message_rate(0.0).unwrap();
    assert!(sim.step(3_600.0).unwrap().is_empty());
}

#[test]
fn speed_scales_virtual_time() {
    let mut sim = two_devices();
    sim.set_message_rate(720.0).unwrap(); // each device every 10 virtual s
    sim.time.set_speed(10.0).unwrap();
    sim.time.start();
    let posts = sim.tick(2 * SECOND_US); // two wall seconds = twenty virtual seconds
    assert_eq!(sim.state().virtual_time_ms, 20_000);
    assert_eq!(posts.len(), 4);
    sim.time.set_speed(0.1).unwrap();
    for _ in 0..100 {
        sim.tick(SECOND_US / 10); // ten wall seconds in small ticks = one virtual second
    }
    assert_eq!(sim.state().virtual_time_ms, 21_000);
}

#[test]
fn attachment_percent_decides_attachments() {
    let mut sim = two_devices();
    sim.set_message_rate(36_000.0).unwrap();
    sim.generator.set_attachment_percent(100.0).unwrap();
    assert!(sim.step(10.0).unwrap().iter().all(|p| p.picture.is_some()));
    sim.generator.set_attachment_percent(0.0).unwrap();
    assert!(sim.step(10.0).unwrap().iter().all(|p| p.picture.is_none()));
    sim.generator.set_attachment_percent(30.0).unwrap();
    let posts = sim.step(100.0).unwrap();
    let with = posts.iter().filter(|p| p.picture.is_some()).count();
    assert!((200..400).contains(&with), "{with} of {}", posts.len());
}

#[test]
fn out_of_range_settings_are_refused_and_change_nothing() {
    let mut sim = two_devices();
    let before = sim.state();
    assert!(sim.set_message_rate(36_001.0).is_err());
    assert!(sim.set_message_rate(-1.0).is_err());
    assert!(sim.generator.set_attachment_percent(101.0).is_err());
    assert!(sim.time.set_speed(0.05).is_err());
    assert!(sim.time.set_speed(f64::NAN).is_err());
    assert!(sim.step(0.0).is_err());
    assert!(sim.step(3_601.0).is_err());
    assert!(sim.set_enabled("mallory", true).is_err());
    assert_eq!(sim.state(), before);
}

/// A client that shows `token` on every request, as the page's owner does.
fn authorized_client(token: &Token) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", token.as_str());
    headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn http_controls_and_generated_messages_reach_a_device() {
    let root = tempfile::tempdir().unwrap();
    let keys = root.path().join("keys");
    meshlog_backend::keys::create_community(&keys, &["alice".into(), "bob".into()]).unwrap();
    let alice = meshlog_backend::device::start(meshlog_backend::device::DeviceOptions {
        name: "alice".into(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        udp_addr: "127.0.0.1:0".parse().unwrap(),
        peers: vec![],
        data_dir: root.path().join("alice"),
        keys_dir: keys,
        sync_interval_ms: 60_000,
        db_pages_max: None,
        server: ServerOptions::default(),
        record: None,
        key_retention: None,
        db_key: Default::default(),
        discovery_port: None,
        peer_exchange: true,
        introductions: true,
        file_size_max_bytes: meshlog_backend::files::FILE_SIZE_MAX_BYTES_DEFAULT,
        blob_serve_rate_bytes_per_s: None,
    })
    .await
    .unwrap();
    let alice_url = format!("http://{}", alice.http_addr);
    // The service has its own token, and calls alice with hers.
    let service_token = Token::generate();
    let service = sim_service::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![DeviceLink {
            name: "alice".into(),
            url: alice_url.clone(),
            token: alice.token.clone(),
        }],
        &ServerOptions::default(),
        service_token.clone(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", service.http_addr);
    let client = authorized_client(&service_token);
    let alice_client = authorized_client(&alice.token);

    let (status, state) = post(
        &client,
        format!("{base}/api/simulation/message-rate"),
        json!({"messages_per_hour": 3600}),
    )
    .await;
    assert_eq!(
        (status, state["messages_per_hour"].clone()),
        (200, json!(3600.0))
    );
    let (status, _) = post(
        &client,
        format!("{base}/api/simulation/attachment-rate"),
        json!({"percent": 0}),
    )
    .await;
    assert_eq!(status, 200);
    // Paused (the default): only the step moves virtual time, by exactly 5 s = 5 messages.
    let (status, state) = post(
        &client,
        format!("{base}/api/simulation/step"),
        json!({"seconds": 5}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state["virtual_time_ms"], 5_000);
    assert_eq!(state["running"], false);
    assert_eq!(state["devices"][0]["generated"], 5);

    // Each refused with the right status and an error naming the field (or the device).
    let refused = [
        (
            "message-rate",
            json!({"messages_per_hour": 50000}),
            400,
            "messages_per_hour",
        ),
        ("speed", json!({"speed": 1000}), 400, "speed"),
        ("speed", json!({"speed": "fast"}), 422, "speed"),
        ("attachment-rate", json!({"percent": 101}), 400, "percent"),
        ("step", json!({"seconds": 0}), 400, "seconds"),
        ("message-rate", json!({}), 422, "messages_per_hour"),
    ];
    for (path, body, want, field) in refused {
        let url = format!("{base}/api/simulation/{path}");
        let (status, answer) = post(&client, url, body.clone()).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            status == want && error.contains(field),
            "{path} {body}: {status} {answer}"
        );
    }
    let url = format!("{base}/api/devices/mallory/enabled");
    let (status, answer) = post(&client, url, json!({"enabled": false})).await;
    assert!(status == 404 && answer["error"].as_str().unwrap().contains("mallory"));
    // A service that does not run the device processes cannot crash them; loss is
    // simulated-mode only; partitions work in real mode too (the devices block each other).
    let url = format!("{base}/api/devices/alice/crash");
    let (status, answer) = post(&client, url, json!({})).await;
    assert!(status == 409 && answer["error"].as_str().unwrap().contains("meshlog demo"));
    let (status, _) = post(&client, format!("{base}/api/network"), json!({"loss": 0.5})).await;
    assert_eq!(status, 409);
    let url = format!("{base}/api/network/partition");
    let (status, answer) = post(&client, url, json!({"groups": [["alice"], ["bob"]]})).await;
    assert!(status == 400 && answer["error"].as_str().unwrap().contains("bob"));
    let state: Value = client
        .get(format!("{base}/api/simulation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["messages_per_hour"], 3600.0,
        "refused changes change nothing"
    );
    assert_eq!(state["speed"], 1.0);

    // The five generated messages arrive on alice through her own API, marked auto.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let messages: Value = alice_client
            .get(format!("{alice_url}/api/messages"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = messages["messages"].as_array().unwrap().clone();
        if messages.len() == 5 {
            assert!(messages.iter().all(|m| m["auto"] == true));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} arrived",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
