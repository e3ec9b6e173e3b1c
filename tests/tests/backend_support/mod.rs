//! Shared by the `backend_*` tests: real `meshlog` processes on loopback, and HTTP helpers.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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
}

impl DeviceProcess {
    /// Starts the process on a free HTTP port and waits until `/api/health` answers.
    pub fn start(spec: &DeviceSpec) -> Result<Self> {
        Self::start_with(spec, &[])
    }

    /// `start`, with more `meshlog device` arguments.
    pub fn start_with(spec: &DeviceSpec, extra_args: &[&str]) -> Result<Self> {
        let mut command = Command::new(meshlog_bin());
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
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, addr) in &spec.peers {
            command.arg("--peer").arg(format!("{name}@{addr}"));
        }
        command.args(extra_args);
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
        let base = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                bail!("device {} did not report its address", spec.name);
            }
        };
        let device = DeviceProcess {
            child,
            base,
            spec: spec.clone(),
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
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn answer(response: reqwest::blocking::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

pub fn get(url: &str) -> Result<(u16, Value)> {
    answer(client().get(url).send()?)
}

pub fn post(url: &str, body: &Value) -> Result<(u16, Value)> {
    answer(client().post(url).json(body).send()?)
}

/// POSTs raw bytes with a JSON content type (for malformed bodies).
pub fn post_raw(url: &str, body: Vec<u8>) -> Result<(u16, Value)> {
    answer(
        client()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()?,
    )
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
