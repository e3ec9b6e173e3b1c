//! LAN discovery between real processes on loopback (issue 25, item 1): devices started with
//! no `--peer` find each other by their announcements (sent to 127.255.255.255 on a shared
//! discovery port) and converge; a device of another community on the same port learns no
//! member; `--no-discover` devices find nobody.
//!
//! Each test uses a discovery port of its own (a free one), so tests running at once, and
//! other devices on the default port, do not hear each other.

mod backend_support;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use backend_support::{community, drop_count, free_udp_addr, wait_for, DeviceProcess, DeviceSpec};

/// The bound: devices on one link converge within this of starting.
const CONVERGE_WITHIN: Duration = Duration::from_secs(5);

fn spec(root: &Path, keys: &Path, name: &str) -> DeviceSpec {
    DeviceSpec {
        name: name.into(),
        udp: free_udp_addr(),
        peers: Vec::new(),
        data: root.join(name),
        keys: keys.to_path_buf(),
        sync_interval_ms: 5_000,
    }
}

#[test]
fn three_devices_with_no_peer_find_each_other_and_converge_a_stranger_learns_nobody() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let keys = root.join("keys");
    community(&keys, &["alice", "bob", "carol"])?;
    let strangers = root.join("stranger-keys");
    community(&strangers, &["mallory"])?;
    let port = free_udp_addr().port().to_string();
    let discover = ["--discover", "--discovery-port", port.as_str()];

    // The stranger first, so it hears every member's first announcements.
    let mallory = DeviceProcess::start_with(&spec(root, &strangers, "mallory"), &discover)?;
    let started = Instant::now();
    let names = ["alice", "bob", "carol"];
    let mut devices = Vec::new();
    for name in names {
        devices.push(DeviceProcess::start_with(
            &spec(root, &keys, name),
            &discover,
        )?);
    }
    let all_started = started.elapsed();
    for device in &devices {
        device.post_message(&format!("hello from {}", device.spec.name))?;
    }
    wait_for(CONVERGE_WITHIN, || {
        for device in &devices {
            let others: Vec<String> = names
                .iter()
                .filter(|n| **n != device.spec.name)
                .map(|n| (*n).to_owned())
                .collect();
            if device.peer_names()? != others || device.messages()?.len() != names.len() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .with_context(|| {
        let seen: Vec<String> = devices
            .iter()
            .map(|d| format!("{}: {:?}", d.spec.name, d.stats().ok()))
            .collect();
        format!("not converged: {seen:?}")
    })?;
    let took = started.elapsed();
    println!(
        "three devices found each other and converged {:.2} s after the first started ({:.2} s to start all three)",
        took.as_secs_f64(),
        all_started.as_secs_f64()
    );
    assert!(took <= CONVERGE_WITHIN + all_started);

    // The stranger heard every member's announcements and opened none.
    let stats = mallory.stats()?;
    println!(
        "mallory (another community): peers {:?}, drops {}",
        mallory.peer_names()?,
        stats["drops"]
    );
    assert!(mallory.peer_names()?.is_empty());
    assert!(drop_count(&stats, "announce_unreadable") >= 3);
    assert_eq!(mallory.messages()?.len(), 0);
    // And the members opened none of the stranger's. They may have converged before its
    // next announcement (it announces at 0, 1, 2 and 4 s): wait for one to reach each.
    wait_for(Duration::from_secs(8), || {
        for device in &devices {
            if drop_count(&device.stats()?, "announce_unreadable") < 1 {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .context("every member heard the stranger's announcement and could not open it")?;
    for device in &devices {
        assert_eq!(drop_count(&device.stats()?, "announce_forged"), 0);
    }
    Ok(())
}

#[test]
fn no_discover_devices_do_not_find_each_other() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let keys = root.join("keys");
    community(&keys, &["alice", "bob", "carol"])?;
    let port = free_udp_addr().port().to_string();
    // `DeviceProcess` passes `--no-discover` unless told `--discover`.
    let off = ["--discovery-port", port.as_str()];
    let on = ["--discover", "--discovery-port", port.as_str()];
    let alice = DeviceProcess::start_with(&spec(root, &keys, "alice"), &off)?;
    let bob = DeviceProcess::start_with(&spec(root, &keys, "bob"), &off)?;
    // carol listens on the same port: with discovery off, nobody announces to her.
    let carol = DeviceProcess::start_with(&spec(root, &keys, "carol"), &on)?;
    alice.post_message("alone")?;
    // Past the announcements at start, 1, 2 and 4 s.
    std::thread::sleep(Duration::from_secs(5));
    assert!(alice.peer_names()?.is_empty());
    assert!(bob.peer_names()?.is_empty());
    assert!(carol.peer_names()?.is_empty());
    assert_eq!(bob.messages()?.len(), 0);
    let stats = carol.stats()?;
    assert!(
        stats["drops"].as_object().is_none_or(|d| d.is_empty()),
        "carol heard nothing: {stats}"
    );
    Ok(())
}
