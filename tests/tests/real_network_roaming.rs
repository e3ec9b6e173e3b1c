//! Finding each other on a real network (issue 25, item 6): `meshlog device` processes in
//! network namespaces of their own (`netns_support`), on one bridged LAN.
//!
//! - LAN discovery with a stranger present: three members with no `--peer` find each other by
//!   their broadcast announcements and converge within 5 s; a device of another community on
//!   the same LAN opens none of them, and a listener on the café link (a plain socket on the
//!   discovery port) hears only same-sized, never-repeated datagrams with no member's name or
//!   public key in them.
//! - Roaming: a device whose address changes (a new DHCP lease, then a move behind a NAT
//!   router) keeps syncing without a restart, its peer following its newest authenticated
//!   packet.
//!
//! Needs root; elsewhere every test prints why it is skipped and passes. See
//! docs/REAL_NETWORK.md.
#![cfg(target_os = "linux")]

mod backend_support;
mod netns_support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use backend_support::{community, drop_count, wait_for, DeviceProcess, DeviceSpec};
use meshlog_core::discovery::ANNOUNCEMENT_LEN;
use netns_support::{say, NatKind, Needs, Net};
use serde_json::Value;

/// The bound: devices on one link converge within this of starting.
const CONVERGE_WITHIN: Duration = Duration::from_secs(5);
/// The discovery port: the default, as a user's devices would use it.
const DISCOVERY_PORT: u16 = 21047;
/// How long a device that moved may take to be heard and answered again. Generous for a
/// loaded machine: the exchanges it waits for take milliseconds (figures printed).
const RECONNECT_WITHIN: Duration = Duration::from_secs(10);

fn spec(root: &Path, keys: &Path, name: &str, udp: SocketAddr) -> DeviceSpec {
    DeviceSpec {
        name: name.into(),
        udp,
        peers: Vec::new(),
        data: root.join(name),
        keys: keys.to_path_buf(),
        sync_interval_ms: 5_000,
    }
}

/// The public keys of a community written by `meshlog community new`, as bytes.
fn public_keys(keys: &Path) -> Result<Vec<Vec<u8>>> {
    let community: Value = serde_json::from_slice(&std::fs::read(keys.join("community.json"))?)?;
    let roster = community["roster"].as_object().context("roster")?;
    roster
        .values()
        .map(|hex| {
            let hex = hex.as_str().context("a roster key")?;
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).context("hex"))
                .collect()
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn lan_discovery_with_a_stranger_present() -> Result<()> {
    let test = "lan_discovery_with_a_stranger_present";
    let Some(mut net) = Net::start(test, Needs::Namespaces) else {
        return Ok(());
    };
    let lan = net.lan()?;
    // Names of five letters or more: a shorter one could turn up in random bytes by chance.
    let members = ["alice", "robert", "carol"];
    for host in members.iter().chain(&["mallory", "cafe"]) {
        net.add_host(host, lan)?;
    }
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &members)?;
    let stranger_keys = root.path().join("stranger-keys");
    community(&stranger_keys, &["mallory"])?;

    // Someone on the café Wi-Fi, listening on the discovery port before anyone announces.
    let listener = net.udp_socket("cafe", (Ipv4Addr::UNSPECIFIED, DISCOVERY_PORT).into())?;
    listener.set_read_timeout(Some(Duration::from_millis(200)))?;
    let discover = ["--discover"];
    let mallory = net.device(
        "mallory",
        &spec(root.path(), &stranger_keys, "mallory", net.udp("mallory")),
        &discover,
    )?;
    let started = Instant::now();
    let mut devices = Vec::new();
    for name in members {
        let spec = spec(root.path(), &keys, name, net.udp(name));
        devices.push(net.device(name, &spec, &discover)?);
    }
    let all_started = started.elapsed();
    for device in &devices {
        device.post_message(&format!("hello from {}", device.spec.name))?;
    }
    wait_for(CONVERGE_WITHIN + all_started, || {
        for device in &devices {
            let others: BTreeSet<&str> = members
                .iter()
                .copied()
                .filter(|n| *n != device.spec.name)
                .collect();
            let peers = device.peer_names()?;
            if peers.iter().map(String::as_str).collect::<BTreeSet<_>>() != others
                || device.messages()?.len() != members.len()
            {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .with_context(|| {
        let seen: Vec<String> = devices
            .iter()
            .map(|d| format!("{}: peers {:?}", d.spec.name, d.peer_names().ok()))
            .collect();
        format!("not converged: {seen:?}")
    })?;
    let took = started.elapsed();
    say(&format!(
        "real_network: three devices on one LAN, no --peer, found each other and converged \
         {:.2} s after the first started ({:.2} s to start all three)",
        took.as_secs_f64(),
        all_started.as_secs_f64()
    ));
    // Nobody was told anyone: each link's ends met by an announcement, or by the first packet
    // of the end that heard one.
    for device in &devices {
        let peers = device.stats()?["peers"].clone();
        for peer in peers.as_array().context("peers")? {
            let met_by = peer["met_by"].as_str();
            assert!(
                matches!(met_by, Some("discovered" | "packet")),
                "{}: {peer}",
                device.spec.name
            );
        }
    }

    // What the café heard: the announcements of the first seconds (at 0, 1, 2 and 4 s).
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    let listen_until = started + Duration::from_secs(5);
    while Instant::now() < listen_until {
        if let Ok((len, _)) = listener.recv_from(&mut buf) {
            heard.push(buf[..len].to_vec());
        }
    }
    let names: Vec<&[u8]> = members.iter().map(|n| n.as_bytes()).collect();
    let keys_bytes = public_keys(&keys)?;
    let distinct: BTreeSet<&Vec<u8>> = heard.iter().collect();
    say(&format!(
        "real_network: the café listener heard {} announcements, {} distinct, sizes {:?}",
        heard.len(),
        distinct.len(),
        heard.iter().map(Vec::len).collect::<BTreeSet<_>>()
    ));
    // Four devices, each at least twice in those seconds (the first one may precede the
    // listener's start by nothing: it is bound before any device starts).
    assert!(heard.len() >= 8, "heard only {}", heard.len());
    assert_eq!(
        distinct.len(),
        heard.len(),
        "an announcement went out twice"
    );
    for datagram in &heard {
        assert_eq!(datagram.len(), ANNOUNCEMENT_LEN);
        for secret in names
            .iter()
            .copied()
            .chain(keys_bytes.iter().map(Vec::as_slice))
        {
            assert!(
                !contains(datagram, secret),
                "an announcement carries an identity in clear"
            );
        }
    }

    // The stranger heard every member and opened none; the members opened none of its.
    let stats = mallory.stats()?;
    assert!(mallory.peer_names()?.is_empty(), "{stats}");
    assert!(drop_count(&stats, "announce_unreadable") >= 3, "{stats}");
    assert_eq!(mallory.messages()?.len(), 0);
    for device in &devices {
        let stats = device.stats()?;
        assert!(drop_count(&stats, "announce_unreadable") >= 1, "{stats}");
        assert_eq!(drop_count(&stats, "announce_forged"), 0, "{stats}");
    }
    Ok(())
}

/// Until `device` holds a message with `text`.
fn wait_text(device: &DeviceProcess, text: &str) -> Result<Duration> {
    let started = Instant::now();
    wait_for(RECONNECT_WITHIN, || {
        Ok(device
            .messages()?
            .iter()
            .any(|m| m["text"].as_str() == Some(text)))
    })
    .with_context(|| {
        format!(
            "{} never got {text:?}; its stats: {}",
            device.spec.name,
            device.stats().unwrap_or_default()
        )
    })?;
    Ok(started.elapsed())
}

/// Where `device` holds its peer `name` to be.
fn address_of(device: &DeviceProcess, name: &str) -> Result<Option<SocketAddr>> {
    let stats = device.stats()?;
    let peer = stats["peers"]
        .as_array()
        .context("peers")?
        .iter()
        .find(|p| p["name"] == name)
        .cloned();
    let Some(peer) = peer else {
        bail!("{} has no peer {name}", device.spec.name)
    };
    Ok(peer["address"].as_str().map(str::parse).transpose()?)
}

/// One move of bob's: he posts, alice must get it and follow him to `expect_ip`; then alice
/// posts and bob must get it at his new address. Returns (bob → alice, alice → bob).
fn after_move(
    alice: &DeviceProcess,
    bob: &DeviceProcess,
    step: &str,
    expect_ip: Ipv4Addr,
) -> Result<(Duration, Duration)> {
    let text = format!("bob after {step}");
    bob.post_message(&text)?;
    let there = wait_text(alice, &text)?;
    let followed = address_of(alice, "bob")?.context("alice holds no address for bob")?;
    assert_eq!(
        followed.ip(),
        expect_ip,
        "alice did not follow bob ({step})"
    );
    let text = format!("alice after {step}");
    alice.post_message(&text)?;
    let back = wait_text(bob, &text)?;
    say(&format!(
        "real_network: after {step}, bob's post reached alice in {:.0} ms (alice now sends to \
         {followed}); alice's reached bob in {:.0} ms",
        there.as_secs_f64() * 1e3,
        back.as_secs_f64() * 1e3
    ));
    Ok((there, back))
}

#[test]
fn a_device_that_moves_keeps_syncing() -> Result<()> {
    let test = "a_device_that_moves_keeps_syncing";
    let Some(mut net) = Net::start(test, Needs::Nftables) else {
        return Ok(());
    };
    let lan = net.lan()?;
    net.add_host("alice", lan)?;
    let first = net.add_host("bob", lan)?;
    let home = net.add_nat("router", lan, NatKind::EndpointIndependent)?;
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &["alice", "bob"])?;
    // Both bound to every address, as a roaming laptop's device must be to survive a move.
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, netns_support::DEVICE_PORT));
    let mut alice_spec = spec(root.path(), &keys, "alice", any);
    alice_spec.peers = vec![("bob".into(), net.udp("bob"))];
    let mut bob_spec = spec(root.path(), &keys, "bob", any);
    bob_spec.peers = vec![("alice".into(), net.udp("alice"))];
    let alice = net.device("alice", &alice_spec, &[])?;
    let bob = net.device("bob", &bob_spec, &[])?;
    after_move(&alice, &bob, "the start", first)?;
    let moves_before = alice.stats()?["peer_moves"].as_u64().unwrap_or(0);

    // A new DHCP lease: bob's old address is gone, his socket stays.
    let second = net.readdress("bob")?;
    assert_ne!(second, first);
    after_move(&alice, &bob, "a new lease", second)?;

    // Unplugged and plugged in at home, behind the router: alice now sees the router.
    net.move_host("bob", home)?;
    after_move(&alice, &bob, "a move behind a NAT", net.public_ip("router"))?;

    let moves = alice.stats()?["peer_moves"].as_u64().unwrap_or(0) - moves_before;
    assert!(moves >= 2, "alice followed bob {moves} times");
    Ok(())
}
