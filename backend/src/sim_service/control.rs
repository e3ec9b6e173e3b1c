//! Partitions, cuts, crashes and restarts: made to hold in the world (simulated mode) or by
//! the devices themselves (real mode: each device blocks peers on its own UDP socket, and the
//! demo's supervisor kills and starts device processes).

use std::sync::OnceLock;
use std::time::Duration;

use meshlog_net::Blocked;
use serde_json::json;

use super::error::SimServiceError;
use super::service::ServiceState;
use super::state::Liveness;

/// A device that is up answers control requests at once; one that does not is retried when
/// it comes back.
const CONTROL_TIMEOUT_MS: u64 = 3_000;
/// How long a restarted device may take to answer its health check before it is told its
/// blocks anyway (the attempt is then logged as failed).
const HEALTHY_WITHIN_MS: u64 = 30_000;

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(CONTROL_TIMEOUT_MS))
            .build()
            .expect("an http client without TLS always builds")
    })
}

/// Makes the world, or every device that is up, match the service's groups and cuts.
pub(super) async fn apply_faults(state: &ServiceState) -> Result<(), SimServiceError> {
    let (names, faults, live) = {
        let sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
        (sim.device_names(), sim.faults.clone(), sim.liveness.clone())
    };
    if let Some(world) = &state.world {
        let gone = |err| SimServiceError::Conflict(format!("the simulated world: {err}"));
        world
            .set_groups(faults.group_numbers(&names))
            .await
            .map_err(gone)?;
        for (i, from) in names.iter().enumerate() {
            for (j, to) in names.iter().enumerate().filter(|(j, _)| *j != i) {
                world
                    .set_cut(i, j, faults.is_cut(from, to))
                    .await
                    .map_err(gone)?;
            }
        }
        return Ok(());
    }
    let up = names
        .iter()
        .filter(|n| live.get(*n).copied().unwrap_or_default().up);
    let tells = up.map(|name| tell_blocks(state, name));
    futures_util::future::join_all(tells).await;
    Ok(())
}

/// Tells one real device what to block of each of its peers now.
async fn tell_blocks(state: &ServiceState, device: &str) {
    let (url, peers) = {
        let sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
        let url = sim
            .generator
            .devices()
            .iter()
            .find(|d| d.name == device)
            .map(|d| d.url.clone());
        let peers: Vec<(String, Blocked)> = sim
            .peers_of(device)
            .into_iter()
            .map(|peer| {
                let blocked = sim.faults.blocked(device, &peer);
                (peer, blocked)
            })
            .collect();
        (url, peers)
    };
    let (Some(url), Some(token)) = (url, state.device_tokens.get(device)) else {
        return;
    };
    for (peer, blocked) in peers {
        let sent = client()
            .post(format!("{url}/api/peers/{peer}/blocked"))
            .bearer_auth(token.as_str())
            .json(&json!({ "inbound": blocked.inbound, "outbound": blocked.outbound }))
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {}
            Ok(answer) => {
                tracing::warn!(device, peer, status = %answer.status(), "device refused a block")
            }
            Err(err) => tracing::warn!(device, peer, %err, "could not tell a device its blocks"),
        }
    }
}

pub(super) async fn crash(state: &ServiceState, device: &str) -> Result<(), SimServiceError> {
    set_running(state, device, false).await
}

pub(super) async fn restart(state: &ServiceState, device: &str) -> Result<(), SimServiceError> {
    set_running(state, device, true).await
}

/// Crash (`up` false: the world's crash fault, or SIGKILL of the process) or restart.
async fn set_running(state: &ServiceState, device: &str, up: bool) -> Result<(), SimServiceError> {
    let index = state
        .sim
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check_device(device)?;
    if let Some(world) = &state.world {
        let done = if up {
            world.restart(index).await
        } else {
            world.crash(index).await
        };
        done.map_err(|err| SimServiceError::Conflict(err.to_string()))?;
    } else {
        let processes = processes(state)?;
        let done = if up {
            processes.restart(device).await
        } else {
            processes.crash(device).await
        };
        done.map_err(SimServiceError::Conflict)?;
    }
    state.update(|sim| {
        sim.liveness.entry(device.to_owned()).or_default().up = up;
        Ok(())
    })?;
    Ok(())
}

fn processes(
    state: &ServiceState,
) -> Result<&crate::demo::supervisor::Supervisor, SimServiceError> {
    state.processes.as_ref().ok_or_else(|| {
        SimServiceError::Conflict(
            "this service does not run the device processes: crash and restart need meshlog demo"
                .into(),
        )
    })
}

/// Real mode under the demo: shows each device process's state, and tells a device that
/// (re)started what to block once it answers.
pub(super) async fn follow_processes(state: ServiceState) {
    let Some(processes) = state.processes.clone() else {
        return;
    };
    let mut changes = processes.subscribe();
    loop {
        let status = match changes.recv().await {
            Ok(status) => status,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let _ = state.update(|sim| {
            sim.liveness.insert(
                status.name.clone(),
                Liveness {
                    up: status.up,
                    restarts: status.restarts,
                },
            );
            Ok(())
        });
        if status.up {
            let state = state.clone();
            tokio::spawn(async move {
                wait_healthy(&state, &status.name).await;
                tell_blocks(&state, &status.name).await;
            });
        }
    }
}

/// Until the device answers `GET /api/health`, for at most `HEALTHY_WITHIN_MS`.
async fn wait_healthy(state: &ServiceState, device: &str) {
    let url = {
        let sim = state.sim.lock().unwrap_or_else(|p| p.into_inner());
        sim.generator
            .devices()
            .iter()
            .find(|d| d.name == device)
            .map(|d| format!("{}/api/health", d.url))
    };
    let Some(url) = url else { return };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(HEALTHY_WITHIN_MS);
    while tokio::time::Instant::now() < deadline {
        if let Ok(answer) = client().get(&url).send().await {
            if answer.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
