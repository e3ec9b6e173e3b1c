//! `meshlog demo`: the whole demo from one command, on embedded defaults.
//!
//! Creates keys on first run, starts alice (HTTP 3001, UDP 8001), bob (3002, 8002) and the
//! simulation service (3005) as child processes of this same binary, and serves the built
//! page from `frontend/dist` on 5173 (building it with npm first if it is missing).
//! With `--sim SCENARIO` there are no device processes: the simulation service hosts the
//! scenario's devices in a simulated world, their APIs on 3001, 3002, ...
//!
//! Access: the demo keeps one API token in `DATA/api-token` and writes it into each device's
//! data directory, so its servers share it. The page server hands it to the browser as an
//! HttpOnly, SameSite=Strict cookie: cookies are not port-scoped, so the page's requests to
//! :3001, :3002 and :3005 (made with credentials) carry it, while the page's script never
//! sees the token and no other site's requests carry it. The servers accept the page's
//! origin only because the demo passes it (`--allow-origin`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use thiserror::Error;
use tokio::process::{Child, Command};
use tower_http::services::{ServeDir, ServeFile};

use crate::api::access::{private_dir, AccessError, Guard, Token, TOKEN_COOKIE, TOKEN_FILE};
use crate::http::ApiError;
use crate::keys::{self, KeysError};

#[derive(Debug, Error)]
pub enum DemoError {
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("binding the page server on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} exited; stopping the demo")]
    ChildExited(String),
    #[error("page server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Access(#[from] AccessError),
}

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub frontend_dir: PathBuf,
    pub web_addr: SocketAddr,
    /// Start generating messages at once.
    pub start_simulation: bool,
    /// Simulated mode: this scenario's devices in a meshlog-sim world, not real devices.
    pub sim_scenario: Option<PathBuf>,
}

/// (name, http port, udp port) of the demo's devices, as the seed had them.
pub const DEVICES: [(&str, u16, u16); 2] = [("alice", 3001, 8001), ("bob", 3002, 8002)];
pub const SIM_SERVICE_PORT: u16 = 3005;

/// Runs until Ctrl-C or until a child process dies; children are killed on the way out.
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "meshlog (finding own executable)".into(),
        source,
    })?;
    let token = Token::load_or_create(&options.data_dir)?;
    let mut children: Vec<(String, Child)> = Vec::new();
    match &options.sim_scenario {
        None => spawn_real(&options, &exe, &token, &mut children)?,
        Some(scenario) => {
            let mut sim = server_command(&exe, &options, "sim-service");
            sim.args(["--http", &format!("127.0.0.1:{SIM_SERVICE_PORT}")])
                .arg("--data")
                .arg(&options.data_dir)
                .arg("--sim")
                .arg(scenario);
            if options.start_simulation {
                sim.arg("--start");
            }
            children.push(("sim-service".into(), spawn(sim, "sim-service")?));
        }
    }

    let page = serve_page(&options, token).await?;
    let devices = match options.sim_scenario {
        None => "alice http://127.0.0.1:3001, bob http://127.0.0.1:3002".to_owned(),
        Some(_) => "simulated devices from http://127.0.0.1:3001 on".to_owned(),
    };
    println!(
        "meshlog demo: open http://{}  ({devices}, simulation http://127.0.0.1:{SIM_SERVICE_PORT}); \
         Ctrl-C stops everything",
        options.web_addr
    );

    let outcome = tokio::select! {
        () = shutdown_signal() => Ok(()),
        exited = first_exit(&mut children) => Err(DemoError::ChildExited(exited)),
        served = page => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(DemoError::Serve(err)),
            Err(join) => Err(DemoError::Serve(std::io::Error::other(join))),
        },
    };
    for (_, child) in &mut children {
        let _ = child.kill().await;
    }
    outcome
}

/// Keys on first run, alice and bob, and the simulation service pointed at them.
fn spawn_real(
    options: &DemoOptions,
    exe: &Path,
    token: &Token,
    children: &mut Vec<(String, Child)>,
) -> Result<(), DemoError> {
    let keys_dir = options.data_dir.join("keys");
    if !keys::exists(&keys_dir) {
        let names: Vec<String> = DEVICES.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        keys::create_community(&keys_dir, &names)?;
        println!("created community keys in {}", keys_dir.display());
    }
    for (name, http, udp) in DEVICES {
        share_token(&options.data_dir.join(name), token)?;
        let mut command = server_command(exe, options, "device");
        command
            .args(["--name", name])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--udp", &format!("127.0.0.1:{udp}")])
            .arg("--data")
            .arg(options.data_dir.join(name))
            .arg("--keys")
            .arg(&keys_dir);
        for (peer, _, peer_udp) in DEVICES.iter().filter(|(p, _, _)| *p != name) {
            command.args(["--peer", &format!("{peer}@127.0.0.1:{peer_udp}")]);
        }
        children.push((name.to_owned(), spawn(command, name)?));
    }
    // Without --device-token, the service calls the devices with its own token: the shared one.
    let mut sim = server_command(exe, options, "sim-service");
    sim.args(["--http", &format!("127.0.0.1:{SIM_SERVICE_PORT}")])
        .arg("--data")
        .arg(&options.data_dir);
    for (name, http, _) in DEVICES {
        sim.args(["--device", &format!("{name}=http://127.0.0.1:{http}")]);
    }
    if options.start_simulation {
        sim.arg("--start");
    }
    children.push(("sim-service".into(), spawn(sim, "sim-service")?));
    Ok(())
}

/// `meshlog VERB --allow-origin PAGE...`: a server the demo's page may call.
fn server_command(exe: &Path, options: &DemoOptions, verb: &str) -> Command {
    let mut command = Command::new(exe);
    command.arg(verb);
    for origin in page_origins(options.web_addr) {
        command.args(["--allow-origin", &origin]);
    }
    command
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

/// Ctrl-C, or SIGTERM on Unix (what `kill` and service managers send): either way the
/// children are killed before the demo exits, instead of being left running.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn spawn(mut command: Command, what: &str) -> Result<Child, DemoError> {
    command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DemoError::Spawn {
            what: what.to_owned(),
            source,
        })
}

async fn first_exit(children: &mut [(String, Child)]) -> String {
    let waits = children.iter_mut().map(|(name, child)| {
        Box::pin(async move {
            let _ = child.wait().await;
            name.clone()
        })
    });
    futures_util::future::select_all(waits).await.0
}

/// Serves the page's built files, building them first if `dist` is missing. Unknown paths
/// get `index.html`, so the page's own routes work on reload.
async fn serve_page(
    options: &DemoOptions,
    token: Token,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, DemoError> {
    let frontend = frontend_dir(&options.frontend_dir);
    let dist = frontend.join("dist");
    if !dist.join("index.html").exists() {
        build_frontend(&frontend).await;
    }
    if !dist.join("index.html").exists() {
        eprintln!(
            "warning: {} has no index.html; the devices and simulation run, the page does not",
            dist.display()
        );
    }
    let index = ServeFile::new(dist.join("index.html"));
    let listener = tokio::net::TcpListener::bind(options.web_addr)
        .await
        .map_err(|source| DemoError::Bind {
            addr: options.web_addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| DemoError::Bind {
        addr: options.web_addr,
        source,
    })?;
    let cookie = HeaderValue::try_from(format!(
        "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        token.as_str()
    ))
    .expect("a hex token makes a valid header");
    let page = PageAccess {
        guard: Guard::new(token, local, Vec::new()),
        cookie,
    };
    let app = Router::new()
        .fallback_service(ServeDir::new(&dist).fallback(index))
        .layer(from_fn_with_state(page, hand_over_token));
    Ok(tokio::spawn(
        async move { axum::serve(listener, app).await },
    ))
}

#[derive(Clone, Debug)]
struct PageAccess {
    guard: Guard,
    cookie: HeaderValue,
}

/// Serves the page only under a Host that names it (so a DNS-rebinding site cannot get the
/// cookie for its own name), and gives the browser the token cookie with it.
async fn hand_over_token(State(page): State<PageAccess>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !page.guard.host_allowed(host) {
        return ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("Host {host:?} is not this page's"),
        }
        .into_response();
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, page.cookie.clone());
    response
}

/// The given directory if it exists; otherwise this checkout's `frontend/` (the binary was
/// built from it), so `meshlog demo` works from any working directory.
fn frontend_dir(given: &Path) -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend");
    if given.exists() || !checkout.exists() {
        given.to_owned()
    } else {
        checkout
    }
}

/// `npm ci && npm run build` in the frontend directory; failures are reported, not fatal.
async fn build_frontend(frontend: &Path) {
    if !frontend.join("package.json").exists() {
        eprintln!(
            "warning: no {}; cannot build the page",
            frontend.join("package.json").display()
        );
        return;
    }
    println!(
        "building the page in {} (npm ci && npm run build)...",
        frontend.display()
    );
    for args in [&["ci"][..], &["run", "build"][..]] {
        let status = Command::new("npm")
            .args(args)
            .current_dir(frontend)
            .status()
            .await;
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("warning: npm {} failed ({status})", args.join(" "));
                return;
            }
            Err(err) => {
                eprintln!("warning: could not run npm: {err}");
                return;
            }
        }
    }
}
