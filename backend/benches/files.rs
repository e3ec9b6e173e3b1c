//! The blob store over HTTP on loopback: `POST /api/files` and `GET /api/files/:id`
//! throughput in MB/s of file bytes, and the device's peak RSS (`VmHWM`) while it takes the
//! upload. The device is the real `meshlog` binary in its own process, so its RSS is its own.
//!
//! ```text
//! cargo bench -p meshlog-backend --bench files            # 256 MiB
//! FILES_BENCH_MIB=1024 cargo bench -p meshlog-backend --bench files
//! ```
//!
//! Printed, not asserted (issue 26's targets: ≥ 300 MB/s, < 100 MiB RSS for 1 GiB).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Bytes the client writes per call: the body is made as it is sent, never held whole.
const WRITE_BYTES: usize = 1 << 20;

struct Device {
    child: Child,
    addr: SocketAddr,
    token: String,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp() -> Result<SocketAddr> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
}

fn start(root: &Path) -> Result<Device> {
    meshlog_backend::keys::create_community(&root.join("keys"), &["alice".into(), "bob".into()])?;
    let data = root.join("alice");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshlog"))
        .args([
            "device",
            "--name",
            "alice",
            "--http",
            "127.0.0.1:0",
            "--no-discover",
        ])
        .args(["--sync-interval-ms", "60000", "--udp"])
        .arg(free_udp()?.to_string())
        .arg("--peer")
        .arg(format!("bob@{}", free_udp()?))
        .arg("--data")
        .arg(&data)
        .arg("--keys")
        .arg(root.join("keys"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning meshlog device")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!("the device exited before printing its address")
        };
        if let Some(rest) = line?.split("http=").nth(1) {
            let base = rest.split_whitespace().next().unwrap_or_default();
            break base.trim_start_matches("http://").parse()?;
        }
    };
    let token = std::fs::read_to_string(data.join("api-token"))?
        .trim()
        .to_owned();
    Ok(Device { child, addr, token })
}

/// `VmHWM` (peak resident set) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads an answer's head; answers its status and the stream positioned at the body.
fn read_head(stream: &mut TcpStream) -> Result<(u16, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            bail!("connection closed in the answer's head");
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("status")?;
    Ok((status, text))
}

/// Uploads `size` bytes made on the fly; answers the file id.
fn upload(device: &Device, size: u64) -> Result<String> {
    let mut stream = TcpStream::connect(device.addr)?;
    write!(
        stream,
        "POST /api/files HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {size}\r\n\
         connection: close\r\n\r\n",
        device.addr, device.token
    )?;
    // Seeded, and different in every MiB (a counter in its first bytes).
    let mut block = vec![0u8; WRITE_BYTES];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in block.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let mut sent = 0u64;
    let mut counter = 0u64;
    while sent < size {
        block[..8].copy_from_slice(&counter.to_le_bytes());
        counter += 1;
        let n = (size - sent).min(WRITE_BYTES as u64) as usize;
        stream.write_all(&block[..n])?;
        sent += n as u64;
    }
    let (status, _) = read_head(&mut stream)?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    if status != 201 && status != 200 {
        bail!("upload: {status} {body}");
    }
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    Ok(answer["file_id"].as_str().context("file_id")?.to_owned())
}

/// Downloads `id` whole; answers the bytes received.
fn download(device: &Device, id: &str) -> Result<u64> {
    let mut stream = TcpStream::connect(device.addr)?;
    write!(
        stream,
        "GET /api/files/{id} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         connection: close\r\n\r\n",
        device.addr, device.token
    )?;
    let (status, head) = read_head(&mut stream)?;
    if status != 200 {
        bail!("download: {status} {head}");
    }
    let mut buf = vec![0u8; WRITE_BYTES];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(received);
        }
        received += n as u64;
    }
}

/// The disk's own rate, the limit to compare with: `size` bytes written to a file in `dir`
/// in 1 MiB writes, then synced (what `dd bs=1M conv=fdatasync` measures).
fn disk_write(dir: &Path, size: u64) -> Result<Duration> {
    let path = dir.join("disk-baseline");
    let block = vec![0x5au8; WRITE_BYTES];
    let started = Instant::now();
    let mut file = std::fs::File::create(&path)?;
    let mut written = 0u64;
    while written < size {
        let n = (size - written).min(WRITE_BYTES as u64) as usize;
        file.write_all(&block[..n])?;
        written += n as u64;
    }
    file.sync_all()?;
    let took = started.elapsed();
    std::fs::remove_file(&path)?;
    Ok(took)
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; a test run of benches (`cargo test --benches`) does not.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let mib: u64 = std::env::var("FILES_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let size = mib << 20;
    let root = tempfile::tempdir()?;
    let device = start(root.path())?;
    // Wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(device.addr).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = device.child.id();
    let rss_before = peak_rss_kib(pid);

    let started = Instant::now();
    let id = upload(&device, size)?;
    let upload_took = started.elapsed();
    let rss_upload = peak_rss_kib(pid);

    let started = Instant::now();
    let received = download(&device, &id)?;
    let download_took = started.elapsed();
    if received != size {
        bail!("downloaded {received} of {size} bytes");
    }
    let rss_after = peak_rss_kib(pid);
    let disk_took = disk_write(root.path(), size)?;

    let mib_of = |kib: Option<u64>| {
        kib.map_or("n/a".to_owned(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    println!("files: {mib} MiB over loopback HTTP, one client, the device in its own process");
    println!(
        "  upload   {:>8.1} MB/s  ({:.2} s; written to disk, hashed, outboard built, fsynced)",
        mb_per_s(size, upload_took),
        upload_took.as_secs_f64()
    );
    println!(
        "  download {:>8.1} MB/s  ({:.2} s; streamed from the data file)",
        mb_per_s(size, download_took),
        download_took.as_secs_f64()
    );
    println!(
        "  disk     {:>8.1} MB/s  (the limit: the same bytes written and synced by this process)",
        mb_per_s(size, disk_took)
    );
    println!(
        "  device peak RSS (VmHWM): {} at start, {} after the upload, {} after the download",
        mib_of(rss_before),
        mib_of(rss_upload),
        mib_of(rss_after)
    );
    Ok(())
}
