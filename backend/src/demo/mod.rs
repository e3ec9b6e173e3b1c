//! `meshlog demo`: the whole demo from one command, on embedded defaults.
//!
//! Creates keys on first run, starts each device (alice, bob, ... : HTTP 3001, 3002, ...,
//! skipping the service's 3005; UDP 8001, 8002, ...) as a child process of this same binary,
//! kept running by a [`supervisor::Supervisor`]; runs the simulation service (3005) in this
//! process; and serves the built page from `frontend/dist` on 5173 (building it with npm
//! first if it is missing). With `--sim SCENARIO` there are no device processes: the service
//! hosts the devices in a simulated world, their APIs on the same ports.
//!
//! Every child is in a process group of its own and is killed with its group when the demo
//! stops (Ctrl-C, SIGTERM, at any moment: the signals are caught before anything starts).
//!
//! Access: the demo keeps one API token in `DATA/api-token` and writes it into each device's
//! data directory, so its servers share it. The page server hands it to the browser as an
//! HttpOnly, SameSite=Strict cookie: cookies are not port-scoped, so the page's requests to
//! the devices and :3005 (made with credentials) carry it, while the page's script never
//! sees the token and no other site's requests carry it. The servers accept the page's
//! origin only because the demo passes it (`--allow-origin`).

mod error;
mod options;
mod page;
pub mod process;
pub mod supervisor;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use meshlog_sim::scenario::Topology;

use crate::api::access::{private_dir, AccessError, Token, TOKEN_FILE};
use crate::api::serve::ServerOptions;
use crate::keys;
use crate::layout::{device_http_port, links};
use crate::names::device_id;
use crate::sim_mode::{self, SimModeOptions};
use crate::sim_service::{self, Simulation};
pub use error::DemoError;
pub use options::DemoOptions;
use supervisor::Supervisor;

pub const DEFAULT_DEVICES: [&str; 2] = ["alice", "bob"];
pub const DEVICES_MIN: usize = 2;
pub const DEVICES_MAX: usize = 8;
/// The key files' directory inside the data directory.
const KEYS_DIR: &str = "keys";

/// Checks the demo's devices: 2..=8 distinct device names ([`crate::names`], core's rule).
///
/// On top of that rule the demo needs only this: each device's data directory is `DATA/NAME`,
/// beside the demo's own `DATA/keys/` and `DATA/api-token`, so those two names are taken.
/// (In simulated mode nothing is kept per device, but the rule is the same, so a data
/// directory serves both modes.) The count bounds the ports (3001..3009 around 3005) and the
/// page's layout.
pub fn check_devices(names: &[String]) -> Result<(), DemoError> {
    if !(DEVICES_MIN..=DEVICES_MAX).contains(&names.len()) {
        return Err(DemoError::Devices(format!(
            "{} devices; give {DEVICES_MIN} to {DEVICES_MAX}",
            names.len()
        )));
    }
    for (i, name) in names.iter().enumerate() {
        device_id(name).map_err(|err| DemoError::Devices(err.to_string()))?;
        if [KEYS_DIR, TOKEN_FILE].contains(&name.as_str()) {
            return Err(DemoError::Devices(format!(
                "{name:?} is taken: the data directory holds the demo's {name} beside each \
                 device's directory"
            )));
        }
        if names[..i].contains(name) {
            return Err(DemoError::Devices(format!("{name:?} is given twice")));
        }
    }
    Ok(())
}

/// Runs until Ctrl-C or SIGTERM; every child process is killed on the way out, whenever the
/// signal comes (also during the page's first build).
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let mut stop = Stop::install().map_err(|source| DemoError::Spawn {
        what: "signal handlers".into(),
        source,
    })?;
    let mut processes: Option<Supervisor> = None;
    let outcome = tokio::select! {
        biased;
        () = stop.wait() => Ok(()),
        served = serve(&options, &mut processes) => served,
    };
    if let Some(processes) = processes {
        processes.stop_all().await;
    }
    outcome
}

/// Starts everything and serves the page until it fails.
async fn serve(options: &DemoOptions, processes: &mut Option<Supervisor>) -> Result<(), DemoError> {
    let token = Token::load_or_create(&options.data_dir)?;
    let server = ServerOptions {
        allow_origins: page_origins(options.web_addr),
        ..ServerOptions::default()
    };
    let service_addr = SocketAddr::from(([127, 0, 0, 1], options.ports.service));
    let (devices, _service) = match &options.sim_scenario {
        None => {
            let names = options
                .devices
                .clone()
                .unwrap_or_else(|| DEFAULT_DEVICES.map(String::from).to_vec());
            check_devices(&names)?;
            let topology = options.topology.clone().unwrap_or_default();
            let (supervisor, urls) = start_devices(options, &names, &topology, &token)?;
            *processes = Some(supervisor.clone());
            let mut sim = Simulation::new(urls.clone());
            sim.links = links(&names, &topology, 0);
            if options.start_simulation {
                sim.time.start();
            }
            let setup = sim_service::Setup {
                processes: Some(supervisor),
                device_tokens: names.iter().map(|n| (n.clone(), token.clone())).collect(),
                data_dir: Some(options.data_dir.clone()),
                ..sim_service::Setup::default()
            };
            let service =
                sim_service::start_with(service_addr, sim, setup, &server, token.clone()).await?;
            (urls, service)
        }
        Some(scenario) => {
            if let Some(names) = &options.devices {
                check_devices(names)?;
            }
            let sim = sim_mode::start(SimModeOptions {
                scenario: scenario.clone(),
                seed: None,
                http_addr: service_addr,
                device_port_base: options.ports.device_http_base,
                device_host: service_addr.ip(),
                server: server.clone(),
                token: token.clone(),
                devices: options.devices.clone(),
                topology: options.topology.clone(),
                data_dir: Some(options.data_dir.clone()),
            })
            .await?;
            if options.start_simulation || !options.paused {
                sim.service.state.update(|s| {
                    s.time.start();
                    Ok(())
                })?;
            }
            (sim.devices, sim.service)
        }
    };

    let page = page::serve_page(options, token).await?;
    let list: Vec<String> = devices.iter().map(|(n, u)| format!("{n} {u}")).collect();
    println!(
        "meshlog demo: open http://{}  ({}; simulation http://{service_addr}); \
         Ctrl-C stops everything",
        options.web_addr,
        list.join(", ")
    );
    match page.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(DemoError::Serve(err)),
        Err(join) => Err(DemoError::Serve(std::io::Error::other(join))),
    }
}

/// Keys on first run, then every device as a supervised process; answers the supervisor and
/// each device's (name, url).
fn start_devices(
    options: &DemoOptions,
    names: &[String],
    topology: &Topology,
    token: &Token,
) -> Result<(Supervisor, Vec<(String, String)>), DemoError> {
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "meshlog (finding own executable)".into(),
        source,
    })?;
    let keys_dir = options.data_dir.join(KEYS_DIR);
    if !keys::exists(&keys_dir) {
        keys::create_community(&keys_dir, names)?;
        println!("created community keys in {}", keys_dir.display());
    }
    if let Some(name) = names
        .iter()
        .find(|n| !keys::device_path(&keys_dir, n).exists())
    {
        return Err(DemoError::Roster {
            dir: options.data_dir.clone(),
            name: name.clone(),
        });
    }
    let ports: Vec<(u16, u16)> = (0..names.len())
        .map(|i| {
            let ports = options.ports;
            let http = device_http_port(ports.device_http_base, i, ports.service);
            let udp = u16::try_from(i)
                .ok()
                .and_then(|i| ports.device_udp_base.checked_add(i));
            http.zip(udp)
                .ok_or_else(|| DemoError::Devices(format!("device {i}'s ports are past 65535")))
        })
        .collect::<Result<_, _>>()?;
    let peer_lists = topology.peer_lists(names, 0);
    let mut argvs = Vec::new();
    let mut urls = Vec::new();
    for (i, name) in names.iter().enumerate() {
        share_token(&options.data_dir.join(name), token)?;
        let (http, udp) = ports[i];
        let mut argv: Vec<OsString> = vec![exe.clone().into(), "device".into()];
        for origin in page_origins(options.web_addr) {
            argv.extend(["--allow-origin".into(), origin.into()]);
        }
        argv.extend(["--parent-pid".into(), std::process::id().to_string().into()]);
        // `--flag=value`: a name may start with `-`.
        argv.push(format!("--name={name}").into());
        argv.extend(["--http".into(), format!("127.0.0.1:{http}").into()]);
        argv.extend(["--udp".into(), format!("127.0.0.1:{udp}").into()]);
        argv.extend(["--data".into(), options.data_dir.join(name).into()]);
        argv.extend(["--keys".into(), keys_dir.clone().into()]);
        if let Some(rate) = options.blob_serve_rate_bytes_per_s {
            argv.push(format!("--blob-serve-rate={rate}").into());
        }
        // A mesh is found, not told: no `--peer`, each device hears the others' LAN
        // announcements on loopback (and a cut set before that holds: a device blocks an
        // active member by name before it is a peer). Any other topology names its peers and
        // turns discovery, peer exchange and introductions off: each would make devices on
        // loopback peers of others they have no link to and undo the topology (an introduced
        // pair's punch gets through on loopback).
        if *topology != Topology::Mesh {
            argv.push("--no-discover".into());
            argv.push("--no-peer-exchange".into());
            argv.push("--no-introductions".into());
            for (j, peer) in names.iter().enumerate() {
                if peer_lists[i].contains(&j) {
                    let peer_udp = ports[j].1;
                    argv.push(format!("--peer={peer}@127.0.0.1:{peer_udp}").into());
                }
            }
        }
        argvs.push((name.clone(), argv));
        urls.push((name.clone(), format!("http://127.0.0.1:{http}")));
    }
    Ok((Supervisor::start(argvs), urls))
}

/// The origins the page has when opened at `web` (and as `localhost` when that is loopback).
fn page_origins(web: SocketAddr) -> Vec<String> {
    let mut origins = vec![format!("http://{web}")];
    if web.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", web.port()));
    }
    origins
}

/// Puts the demo's token in a device's data directory (made 0700), replacing another one, so
/// the one cookie opens every server.
fn share_token(dir: &Path, token: &Token) -> Result<(), DemoError> {
    private_dir(dir)?;
    let path = dir.join(TOKEN_FILE);
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref().and_then(Token::parse).as_ref() == Some(token) {
        return Ok(());
    }
    if current.is_some() {
        std::fs::remove_file(&path).map_err(|err| AccessError::Io(path.clone(), err))?;
    }
    Ok(token.write(&path)?)
}

/// Ctrl-C and SIGTERM, caught from the moment [`Stop::install`] returns: a signal that comes
/// while anything is starting is still handled by killing the children, not by dying first.
struct Stop {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Stop {
    fn install() -> std::io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Stop {
                signals: vec![
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            let waits = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_devices(&names(&["alice", "bob", "carol"])).is_ok());
        assert!(check_devices(&names(&["alice"])).is_err());
        assert!(check_devices(&names(&["alice", "alice"])).is_err());
        assert!(check_devices(&names(&["alice", "Bob"])).is_err());
        assert!(check_devices(&names(&["alice", "a.b"])).is_err());
        assert!(check_devices(&names(&["alice", &"a".repeat(33)])).is_err());
        // Core's rule, the same as a device's own: digits, `_`, `-` and 32 characters.
        assert!(check_devices(&names(&["9lives", "node_7", "-x", &"a".repeat(32)])).is_ok());
        // The demo's own entries in its data directory.
        assert!(check_devices(&names(&["alice", "keys"])).is_err());
        assert!(check_devices(&names(&["alice", "api-token"])).is_err());
        assert!(check_devices(&names(&["a", "b", "c", "d", "e", "f", "g", "h", "i"])).is_err());
    }
}
