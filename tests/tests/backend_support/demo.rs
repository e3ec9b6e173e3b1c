//! `meshlog demo` as a process for the `backend_demo` tests: on free ports, with a built page
//! stand-in (so no npm runs), its token registered for every server.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{get, meshlog_bin, post, read_token, register_token, wait_for, STARTUP_TIMEOUT};

/// Ports for one demo: the service, then the devices' HTTP and UDP ports, all free now.
#[derive(Clone, Copy, Debug)]
pub struct DemoPorts {
    pub web: u16,
    pub service: u16,
    pub http_base: u16,
    pub udp_base: u16,
}

/// Finds `span` consecutive ports free for TCP and UDP starting at a base derived from the
/// test's pid and `salt`, trying further bases if taken.
fn free_span(span: u16, salt: u16) -> Result<u16> {
    let start = 20_000 + (std::process::id() as u16 % 2_000) * 10 + salt * 500;
    for attempt in 0..200u16 {
        let base = start.wrapping_add(attempt * 37) % 40_000 + 20_000;
        let free = (base..base + span).all(|p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return Ok(base);
        }
    }
    bail!("no {span} free consecutive ports")
}

impl DemoPorts {
    pub fn find(salt: u16) -> Result<Self> {
        let http = free_span(12, salt)?;
        let udp = free_span(10, salt + 1)?;
        Ok(DemoPorts {
            web: http,
            service: http + 1,
            http_base: http + 2,
            udp_base: udp,
        })
    }
}

/// A running `meshlog demo`; killed (SIGKILL to it, SIGTERM first) when dropped.
pub struct Demo {
    pub child: Child,
    pub service: String,
    /// Device name -> base URL, from the service's state.
    pub devices: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

/// A frontend directory with a built page, so the demo serves it without npm.
pub fn built_frontend(root: &Path) -> Result<PathBuf> {
    let frontend = root.join("frontend");
    std::fs::create_dir_all(frontend.join("dist"))?;
    std::fs::write(
        frontend.join("dist/index.html"),
        "<!doctype html><title>t</title>",
    )?;
    Ok(frontend)
}

/// The demo's command on `ports`, its data and frontend in `root`.
pub fn demo_command(root: &Path, frontend: &Path, ports: DemoPorts, args: &[&str]) -> Command {
    let mut command = Command::new(meshlog_bin());
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--frontend")
        .arg(frontend)
        .args(["--web", &format!("127.0.0.1:{}", ports.web)])
        .args(["--service-port", &ports.service.to_string()])
        .args(["--device-port-base", &ports.http_base.to_string()])
        .args(["--udp-port-base", &ports.udp_base.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

impl Demo {
    /// Starts `meshlog demo ARGS` and waits until the service and every device answer.
    pub fn start(args: &[&str], salt: u16) -> Result<Demo> {
        let dir = tempfile::tempdir()?;
        let frontend = built_frontend(dir.path())?;
        let ports = DemoPorts::find(salt)?;
        let child = demo_command(dir.path(), &frontend, ports, args)
            .spawn()
            .context("spawning meshlog demo")?;
        let service = format!("http://127.0.0.1:{}", ports.service);
        let mut demo = Demo {
            child,
            service: service.clone(),
            devices: Vec::new(),
            dir,
        };
        let data = demo.dir.path().join("data");
        wait_for(STARTUP_TIMEOUT, || Ok(read_token(&data).is_ok()))?;
        let token = read_token(&data)?;
        register_token(&service, &token);
        wait_for(STARTUP_TIMEOUT, || {
            Ok(get(&demo.url("/api/simulation"))?.0 == 200)
        })?;
        let state = demo.state()?;
        for device in state["devices"].as_array().context("devices")? {
            let name = device["name"].as_str().context("name")?.to_owned();
            let url = device["url"].as_str().context("url")?.to_owned();
            register_token(&url, &token);
            demo.devices.push((name, url));
        }
        for (_, url) in &demo.devices {
            wait_for(STARTUP_TIMEOUT, || {
                Ok(get(&format!("{url}/api/health"))?.0 == 200)
            })?;
        }
        Ok(demo)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service)
    }

    pub fn device(&self, name: &str) -> &str {
        &self
            .devices
            .iter()
            .find(|(n, _)| n == name)
            .expect("a device of this demo")
            .1
    }

    pub fn state(&self) -> Result<Value> {
        let (status, state) = get(&self.url("/api/simulation"))?;
        anyhow::ensure!(status == 200, "state: {status} {state}");
        Ok(state)
    }

    /// POSTs to the service and expects 200; answers the new state.
    pub fn control(&self, path: &str, body: &Value) -> Result<Value> {
        let (status, state) = post(&self.url(path), body)?;
        anyhow::ensure!(status == 200, "{path}: {status} {state}");
        Ok(state)
    }

    pub fn post_message(&self, device: &str, text: &str) -> Result<()> {
        let (status, body) = post(
            &format!("{}/api/messages", self.device(device)),
            &json!({ "text": text }),
        )?;
        anyhow::ensure!(status == 201, "post at {device}: {status} {body}");
        Ok(())
    }

    /// The texts `device` holds (its newest 500).
    pub fn texts(&self, device: &str) -> Result<Vec<String>> {
        let (status, page) = get(&format!("{}/api/messages?limit=500", self.device(device)))?;
        anyhow::ensure!(status == 200, "messages at {device}: {status}");
        Ok(page["messages"]
            .as_array()
            .context("messages")?
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect())
    }

    pub fn has(&self, device: &str, text: &str) -> Result<bool> {
        Ok(self.texts(device)?.iter().any(|t| t == text))
    }

    /// Waits until `device` holds `text`.
    pub fn wait_has(&self, device: &str, text: &str) -> Result<()> {
        wait_for(Duration::from_secs(30), || self.has(device, text))
            .with_context(|| format!("{device} never got {text:?}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// SIGTERM, then waits (bounded) for the demo to stop its children and exit.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = wait_for(Duration::from_secs(10), || Ok(child.try_wait()?.is_some()));
    let _ = child.kill();
    let _ = child.wait();
}

/// Pids whose parent is `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| parent_of(*p) == Some(pid))
        .collect()
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Running (not gone, not a zombie waiting to be reaped).
pub fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z"))
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}
