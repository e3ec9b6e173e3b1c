//! Shared by the `backend_*` tests: real `meshlog` processes on loopback, and HTTP helpers.
//!
//! Every server needs its API token. A test registers a server's token once
//! ([`register_token`]; [`DeviceProcess::start`] does it), and [`get`], [`post`] and
//! [`post_raw`] then send it to that server as the page's owner would. [`request`] and
//! [`raw_http`] send exactly what they are given, for the attacks.
#![allow(dead_code)] // each test file uses a different part

pub mod demo;
pub mod report;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// How long a device may take to come up, and how long convergence may take in tests.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `meshlog` binary of this build. Cargo builds a dependency's library for the tests, not
/// its binaries, so this asks cargo to build it (a no-op when fresh) once per test process.
pub fn meshlog_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("MESHLOG_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/meshlog
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "meshlog-backend",
            "--bin",
            "meshlog",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target_dir) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target_dir);
        }
        let status = build
            .status()
            .expect("running cargo build for the meshlog binary");
        assert!(status.success(), "cargo build of the meshlog binary failed");
        let bin = profile_dir.join(format!("meshlog{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
}

/// A UDP port nobody holds right now (bind port 0, read it, let it go).
pub fn free_udp_addr() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral udp port");
    socket.local_addr().expect("local addr")
}

/// Writes a community of `names` into `dir` with the real CLI.
pub fn community(dir: &Path, names: &[&str]) -> Result<()> {
    let status = Command::new(meshlog_bin())
        .args(["community", "new", "--devices", &names.join(","), "--out"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("meshlog community new failed: {status}");
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct DeviceSpec {
    pub name: String,
    pub udp: SocketAddr,
    pub peers: Vec<(String, SocketAddr)>,
    pub data: PathBuf,
    pub keys: PathBuf,
    pub sync_interval_ms: u64,
}

/// A running `meshlog device` process; killed when dropped.
#[derive(Debug)]
pub struct DeviceProcess {
    pub child: Child,
    pub base: String,
    pub spec: DeviceSpec,
    /// Its API token, from `api-token` in its data directory.
    pub token: String,
}

impl DeviceProcess {
    /// Starts the process on a free HTTP port and waits until `/api/health` answers.
    pub fn start(spec: &DeviceSpec) -> Result<Self> {
        Self::start_with(spec, &[])
    }

    /// As [`DeviceProcess::start`], with more flags (`--allow-origin`, limits, ...).
    pub fn start_with(spec: &DeviceSpec, extra_args: &[&str]) -> Result<Self> {
        Self::start_launched(spec, extra_args, &Launch::default())
    }

    /// As [`DeviceProcess::start_with`], run the way `launch` says (under a command prefix such
    /// as `ip netns exec NS`, its API reached through an address of the test's choosing).
    pub fn start_launched(spec: &DeviceSpec, extra_args: &[&str], launch: &Launch) -> Result<Self> {
        let mut command = match launch.prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(meshlog_bin());
                command
            }
            None => Command::new(meshlog_bin()),
        };
        command
            .args(["device", "--name", &spec.name, "--http", "127.0.0.1:0"])
            .arg("--udp")
            .arg(spec.udp.to_string())
            .arg("--data")
            .arg(&spec.data)
            .arg("--keys")
            .arg(&spec.keys)
            .arg("--sync-interval-ms")
            .arg(spec.sync_interval_ms.to_string())
            // Tests name their peers; discovery on the shared default port would have every
            // test's devices (other communities') hear each other. `--discover` in
            // `extra_args` comes later and wins (backend_discovery.rs).
            .arg("--no-discover")
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, addr) in &spec.peers {
            command.arg("--peer").arg(format!("{name}@{addr}"));
        }
        let mut child = command.spawn().context("spawning meshlog device")?;
        let stdout = child.stdout.take().expect("piped stdout");
        // The device prints one line with its bound HTTP address; read it on a thread so a
        // device that never prints cannot hang the test past the deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http=").nth(1) {
                    let base = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(base);
                }
            }
        });
        let printed = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                bail!("device {} did not report its address", spec.name);
            }
        };
        let base = match &launch.reach {
            Some(reach) => match reach(&printed) {
                Ok(base) => base,
                Err(err) => {
                    let _ = child.kill();
                    return Err(err.context(format!("reaching {} at {printed}", spec.name)));
                }
            },
            None => printed,
        };
        let token = read_token(&spec.data)?;
        register_token(&base, &token);
        let device = DeviceProcess {
            child,
            base,
            spec: spec.clone(),
            token,
        };
        wait_for(STARTUP_TIMEOUT, || {
            Ok(get(&device.url("/api/health"))?.1["ok"] == Value::Bool(true))
        })
        .context("health")?;
        Ok(device)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn messages(&self) -> Result<Vec<Value>> {
        let (status, body) = get(&self.url("/api/messages"))?;
        if status != 200 {
            bail!("GET /api/messages: {status} {body}");
        }
        Ok(body["messages"].as_array().cloned().unwrap_or_default())
    }

    pub fn post_message(&self, text: &str) -> Result<String> {
        let (status, body) = post(
            &self.url("/api/messages"),
            &serde_json::json!({ "text": text }),
        )?;
        if status != 201 {
            bail!("POST /api/messages: {status} {body}");
        }
        Ok(body["id"].as_str().context("id")?.to_owned())
    }

    pub fn stats(&self) -> Result<Value> {
        Ok(get(&self.url("/api/stats"))?.1)
    }

    /// The names of its peers, sorted.
    pub fn peer_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.stats()?["peers"]
            .as_array()
            .context("peers")?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// `host:port` of its HTTP server.
    pub fn http_addr(&self) -> SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("the device prints http://IP:PORT")
    }
}

/// How [`DeviceProcess::start_launched`] runs a device. The default is what
/// [`DeviceProcess::start`] does: the binary itself, its API at the address it prints.
#[derive(Default)]
pub struct Launch<'a> {
    /// Program and arguments put before the `meshlog` binary, e.g. `ip netns exec NS`. The
    /// prefix must exec the binary (not fork it), so the child is the device and killing it
    /// kills the device.
    pub prefix: Vec<std::ffi::OsString>,
    /// Maps the base URL the device prints (`http://127.0.0.1:PORT`, as it sees it) to one the
    /// test can reach; `None` uses it as printed.
    #[allow(clippy::type_complexity)]
    pub reach: Option<Box<dyn Fn(&str) -> Result<String> + 'a>>,
}

impl std::fmt::Debug for Launch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("prefix", &self.prefix)
            .field("reach", &self.reach.as_ref().map(|_| "fn"))
            .finish()
    }
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alice alone (bob is in the community but never answers), with `extra_args`.
pub fn lone_alice(root: &Path, extra_args: &[&str]) -> Result<DeviceProcess> {
    let keys = root.join("keys");
    community(&keys, &["alice", "bob"])?;
    DeviceProcess::start_with(
        &DeviceSpec {
            name: "alice".into(),
            udp: free_udp_addr(),
            peers: vec![("bob".into(), free_udp_addr())],
            data: root.join("alice"),
            keys,
            sync_interval_ms: 60_000,
        },
        extra_args,
    )
}

/// The answer's status, and its `error` text (which must exist: errors are JSON).
/// How many datagrams `stats` (a device's `/api/stats`) counts as dropped for `code`.
pub fn drop_count(stats: &Value, code: &str) -> u64 {
    stats["drops"][code].as_u64().unwrap_or(0)
}

pub fn error_of((status, body): (u16, Value)) -> (u16, String) {
    let text = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error body is not JSON with an error field: {body}"))
        .to_owned();
    (status, text)
}

/// Two devices, alice and bob, peered with each other on fresh ports and directories.
pub fn pair(root: &Path, sync_interval_ms: u64) -> Result<(DeviceSpec, DeviceSpec)> {
    let keys = root.join("keys");
    community(&keys, &["alice", "bob"])?;
    let (alice_udp, bob_udp) = (free_udp_addr(), free_udp_addr());
    let spec = |name: &str, udp, peer: &str, peer_udp| DeviceSpec {
        name: name.into(),
        udp,
        peers: vec![(peer.into(), peer_udp)],
        data: root.join(name),
        keys: keys.clone(),
        sync_interval_ms,
    };
    Ok((
        spec("alice", alice_udp, "bob", bob_udp),
        spec("bob", bob_udp, "alice", alice_udp),
    ))
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client")
    })
}

/// The token in `dir/api-token`, where a server keeps it.
pub fn read_token(dir: &Path) -> Result<String> {
    let path = dir.join("api-token");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(text.trim().to_owned())
}

fn tokens() -> &'static Mutex<BTreeMap<String, String>> {
    static TOKENS: OnceLock<Mutex<BTreeMap<String, String>>> = OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// `http://host:port` of a URL.
fn origin_of(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("http://{authority}")
}

/// From now on [`get`], [`post`] and [`post_raw`] show `token` to the server at `base`.
pub fn register_token(base: &str, token: &str) {
    tokens()
        .lock()
        .unwrap()
        .insert(origin_of(base), token.to_owned());
}

fn with_token(
    url: &str,
    request: reqwest::blocking::RequestBuilder,
) -> reqwest::blocking::RequestBuilder {
    match tokens().lock().unwrap().get(&origin_of(url)) {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

pub fn answer(response: reqwest::blocking::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

pub fn get(url: &str) -> Result<(u16, Value)> {
    answer(with_token(url, client().get(url)).send()?)
}

/// GET with the token; the whole response, for headers and bytes.
pub fn get_response(url: &str) -> Result<reqwest::blocking::Response> {
    Ok(with_token(url, client().get(url)).send()?)
}

pub fn post(url: &str, body: &Value) -> Result<(u16, Value)> {
    answer(with_token(url, client().post(url)).json(body).send()?)
}

/// POSTs raw bytes with a JSON content type (for malformed bodies).
pub fn post_raw(url: &str, body: Vec<u8>) -> Result<(u16, Value)> {
    answer(
        with_token(url, client().post(url))
            .header("content-type", "application/json")
            .body(body)
            .send()?,
    )
}

/// POSTs raw bytes as `application/octet-stream`, with the token (`POST /api/files`).
pub fn post_bytes(url: &str, body: Vec<u8>) -> Result<(u16, Value)> {
    answer(
        with_token(url, client().post(url))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()?,
    )
}

/// GET with the token and `headers` (a `Range`, say); the whole response.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Result<reqwest::blocking::Response> {
    let mut builder = with_token(url, client().get(url));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    Ok(builder.send()?)
}

/// Exactly this request (no registered token): `headers` as given, `body` as JSON if any.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut builder = client().request(method.parse()?, url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    if let Some(body) = body {
        builder = builder.json(body);
    }
    answer(builder.send()?)
}

/// Status, lowercase header lines, body (JSON, or the text as a string).
pub type RawAnswer = (u16, Vec<String>, Value);

/// A raw HTTP exchange: writes `bytes`, reads until the server closes or 10 s pass, and
/// splits the answer into status, lowercase header lines and the body as JSON (or a string).
pub fn raw_http(addr: SocketAddr, bytes: &[u8]) -> Result<RawAnswer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(bytes)?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer); // a reset after the answer is fine
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no complete answer: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status line: {head:?}"))?;
    let headers = lines.map(str::to_ascii_lowercase).collect();
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    Ok((status, headers, body))
}

/// `meshlog sim-service --sim` in this process, on ephemeral ports, its token registered.
pub struct SimModeRun {
    /// The simulation service's base URL.
    pub sim: String,
    /// Each simulated device's base URL, in scenario order.
    pub devices: Vec<String>,
    pub token: meshlog_backend::api::access::Token,
    // Keeps the servers and the world thread's callers alive for the test.
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl SimModeRun {
    pub fn start(scenario_toml: &str) -> Result<Self> {
        Self::start_in(scenario_toml, None)
    }

    /// With `data_dir` for the generator settings, as `meshlog demo --sim` gives it one.
    pub fn start_in(scenario_toml: &str, data_dir: Option<&Path>) -> Result<Self> {
        use meshlog_backend::sim_mode::{self, SimModeOptions};
        let dir = tempfile::tempdir()?;
        let scenario = dir.path().join("scenario.toml");
        std::fs::write(&scenario, scenario_toml)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let token = meshlog_backend::api::access::Token::generate();
        let running = runtime.block_on(sim_mode::start(SimModeOptions {
            scenario,
            seed: None,
            http_addr: "127.0.0.1:0".parse()?,
            device_port_base: 0,
            device_host: "127.0.0.1".parse()?,
            server: Default::default(),
            token: token.clone(),
            devices: None,
            topology: None,
            data_dir: data_dir.map(Path::to_path_buf),
        }))?;
        let sim = format!("http://{}", running.service.http_addr);
        let devices: Vec<String> = running.devices.into_iter().map(|(_, url)| url).collect();
        for base in devices.iter().chain([&sim]) {
            register_token(base, token.as_str());
        }
        Ok(SimModeRun {
            sim,
            devices,
            token,
            _runtime: runtime,
            _dir: dir,
        })
    }
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while Instant::now() < deadline {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(err) => last_error = Some(err),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match last_error {
        Some(err) => Err(err.context(format!("condition not met within {timeout:?}"))),
        None => bail!("condition not met within {timeout:?}"),
    }
}
