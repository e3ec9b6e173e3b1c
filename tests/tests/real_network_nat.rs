//! NAT traversal with real processes (`core/src/node/punch.rs`): alice and bob each behind a
//! NAT router of their own, configured with carol's address only; carol on the shared LAN
//! with a public address and no address for either (she learns them from their packets).
//! Carol introduces them; behind endpoint-independent NATs they punch through and talk
//! directly. Needs root; elsewhere each test prints why it is skipped and passes.
#![cfg(target_os = "linux")]

mod backend_support;
mod netns_support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use backend_support::{community, DeviceProcess, DeviceSpec};
use netns_support::{say, NatKind, Needs, Net};
use serde_json::Value;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];
/// Every wait here; each test stays well under a minute.
const WAIT: Duration = Duration::from_secs(20);
const PORT: u16 = 7000;

/// Fields drop in order: the devices are killed before their namespaces go.
struct Setup {
    devices: Vec<DeviceProcess>,
    net: Net,
    _root: tempfile::TempDir,
}

/// Carol on the LAN; alice behind router `ra`, bob behind `rb`, both of kind `kind`.
fn start(test: &str, kind: NatKind) -> Result<Option<Setup>> {
    let Some(mut net) = Net::start(test, Needs::Nftables) else {
        return Ok(None);
    };
    let lan = net.lan()?;
    net.add_host("carol", lan)?;
    let home_a = net.add_nat("ra", lan, kind)?;
    let home_b = net.add_nat("rb", lan, kind)?;
    net.add_host("alice", home_a)?;
    net.add_host("bob", home_b)?;
    let root = tempfile::tempdir()?;
    let keys = root.path().join("keys");
    community(&keys, &NAMES)?;
    let carol_at = SocketAddr::from((net.ip("carol"), PORT));
    let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, PORT).into();
    let mut devices = Vec::new();
    for name in NAMES {
        let peers = match name {
            "carol" => Vec::new(),
            _ => vec![("carol".to_owned(), carol_at)],
        };
        let spec = DeviceSpec {
            name: name.into(),
            udp: any,
            peers,
            data: root.path().join(name),
            keys: keys.clone(),
            sync_interval_ms: 500,
        };
        devices.push(net.device(name, &spec, &[])?);
    }
    Ok(Some(Setup {
        net,
        devices,
        _root: root,
    }))
}

fn peer_view(device: &DeviceProcess, peer: &str) -> Result<Option<Value>> {
    let stats = device.stats()?;
    Ok(stats["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == peer)
        .cloned())
}

/// `device`'s view of `peer` once `done` holds for it, or an error with the last view.
fn wait_peer(device: &DeviceProcess, peer: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = peer_view(device, peer)?;
        if let Some(view) = &view {
            if done(view) {
                return Ok(view.clone());
            }
        }
        if Instant::now() > deadline {
            let stats = device.stats()?;
            bail!(
                "{} sees {peer} as {view:?} after {WAIT:?} (its peers: {}; drops: {})",
                device.spec.name,
                stats["peers"],
                stats["drops"]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn texts(device: &DeviceProcess) -> Result<BTreeSet<String>> {
    Ok(device
        .messages()?
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect())
}

fn converge(devices: &[DeviceProcess], want: &BTreeSet<String>) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut lacking = Vec::new();
        for d in devices {
            if !want.is_subset(&texts(d)?) {
                lacking.push(d.spec.name.clone());
            }
        }
        if lacking.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > WAIT {
            bail!("not converged within {WAIT:?}: {lacking:?} lack messages");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn confirmed_at(ip: Ipv4Addr) -> impl Fn(&Value) -> bool {
    move |view: &Value| {
        view["address_source"] == "packet"
            && view["address"]
                .as_str()
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .is_some_and(|a| a.ip() == ip)
    }
}

#[test]
fn devices_behind_endpoint_independent_nats_connect_directly_after_an_introduction() -> Result<()> {
    let test = "devices_behind_endpoint_independent_nats_connect_directly_after_an_introduction";
    let Some(setup) = start(test, NatKind::EndpointIndependent)? else {
        return Ok(());
    };
    let started = Instant::now();
    let [alice, bob, _carol] = &setup.devices[..] else {
        unreachable!("three devices")
    };
    let (ra, rb) = (setup.net.public_ip("ra"), setup.net.public_ip("rb"));
    let seen_by_alice = wait_peer(alice, "bob", confirmed_at(rb))?;
    let alice_direct = started.elapsed();
    let seen_by_bob = wait_peer(bob, "alice", confirmed_at(ra))?;
    assert!(seen_by_alice["relayed_via"].is_null() && seen_by_bob["relayed_via"].is_null());
    let both_direct = started.elapsed();

    let want: BTreeSet<String> = ["from alice", "from bob"].map(str::to_owned).into();
    alice.post_message("from alice")?;
    bob.post_message("from bob")?;
    let converged = converge(&setup.devices, &want)?;
    let punches = alice.stats()?["drops"].clone();
    let unsolicited = [setup.net.unsolicited("ra")?, setup.net.unsolicited("rb")?];
    let relayed = &setup.devices[2].stats()?["relayed_datagrams"];
    say(&format!(
        "real_network_nat: endpoint-independent NATs: alice reached bob directly at {} {:?} \
         after the devices started, bob alice at {} {:?}; messages everywhere {converged:?} \
         after posting (alice's drops: {punches}; carol relayed {relayed} datagrams; the \
         routers' firewalls dropped {unsolicited:?} unsolicited packets, ra and rb)",
        seen_by_alice["address"], alice_direct, seen_by_bob["address"], both_direct
    ));
    Ok(())
}

#[test]
fn devices_behind_symmetric_nats_fall_back_to_the_relay_of_the_member_both_reach() -> Result<()> {
    let test = "devices_behind_symmetric_nats_fall_back_to_the_relay_of_the_member_both_reach";
    let Some(setup) = start(test, NatKind::Symmetric)? else {
        return Ok(());
    };
    let [alice, bob, _carol] = &setup.devices[..] else {
        unreachable!("three devices")
    };
    // Carol introduces them; the punch cannot get through a symmetric NAT (each destination
    // gets its own port, not the one carol saw), so bob stays an introduced, unconfirmed peer
    // and, once the punch is over, reached through carol.
    let view = wait_peer(alice, "bob", |v| {
        v["address_source"] == "introduced" && v["relayed_via"] == "carol"
    })?;
    wait_peer(bob, "alice", |v| v["relayed_via"] == "carol")?;
    let want: BTreeSet<String> = ["from alice", "from bob"].map(str::to_owned).into();
    alice.post_message("from alice")?;
    bob.post_message("from bob")?;
    let converged = converge(&setup.devices, &want)?;
    let still = peer_view(alice, "bob")?.unwrap_or_default();
    assert_eq!(
        still["address_source"], "introduced",
        "no packet of bob's reached alice directly through symmetric NATs: {still}"
    );
    assert_eq!(still["relayed_via"], "carol");
    let carol = setup.devices[2].stats()?;
    let relayed = &carol["relayed_datagrams"];
    say(&format!(
        "real_network_nat: symmetric NATs: alice was introduced to bob at {}, no direct link, \
         relayed through carol ({relayed} datagrams, {} bytes so far); messages everywhere \
         {converged:?} after posting",
        view["address"], carol["relayed_bytes"]
    ));
    Ok(())
}
