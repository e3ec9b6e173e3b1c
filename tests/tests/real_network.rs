//! Real `meshlog device` processes on a real network: each in a network namespace of its own,
//! joined by Linux bridges, with nftables loss, cuts and NAT (`netns_support`): the harness's
//! own checks, NAT and faults (the rings are in `real_network_ring.rs`). Needs root;
//! elsewhere every test prints why it is skipped and passes. See docs/REAL_NETWORK.md.
#![cfg(target_os = "linux")]

mod backend_support;
mod netns_support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netns_support::{say, NatKind, Needs, Net};

/// For the plain UDP exchanges of the NAT and fault tests (no loss on their paths).
const UDP_WAIT: Duration = Duration::from_secs(5);

// --- the harness's own building blocks ---

/// Sends from `socket` to each of `targets` (listeners on port 9000 of those hosts) until each
/// has heard it, and returns the source address each one saw.
fn sources_seen(net: &Net, socket: &UdpSocket, targets: &[&str]) -> Result<Vec<SocketAddr>> {
    let mut seen = Vec::new();
    for target in targets {
        let listener = net.udp_socket(target, "0.0.0.0:9000".parse()?)?;
        listener.set_read_timeout(Some(Duration::from_millis(100)))?;
        let to = SocketAddr::from((net.ip(target), 9000));
        let deadline = Instant::now() + UDP_WAIT;
        let from = loop {
            socket.send_to(b"hello", to)?;
            let mut buf = [0u8; 64];
            if let Ok((_, from)) = listener.recv_from(&mut buf) {
                break from;
            }
            if Instant::now() > deadline {
                bail!("{target} never heard from the socket");
            }
        };
        seen.push(from);
    }
    Ok(seen)
}

/// A LAN with two public hosts and a router of `kind` with one home host behind it.
fn nat_net(test: &str, kind: NatKind) -> Result<Option<Net>> {
    let Some(mut net) = Net::start(test, Needs::Nftables) else {
        return Ok(None);
    };
    let lan = net.lan()?;
    net.add_host("pub1", lan)?;
    net.add_host("pub2", lan)?;
    let home = net.add_nat("router", lan, kind)?;
    net.add_host("home", home)?;
    Ok(Some(net))
}

#[test]
fn endpoint_independent_nat_keeps_one_port_for_every_destination() -> Result<()> {
    let test = "endpoint_independent_nat_keeps_one_port_for_every_destination";
    let Some(net) = nat_net(test, NatKind::EndpointIndependent)? else {
        return Ok(());
    };
    let socket = net.udp_socket("home", "0.0.0.0:40000".parse()?)?;
    let seen = sources_seen(&net, &socket, &["pub1", "pub2"])?;
    let public = net.public_ip("router");
    assert_eq!(seen[0].ip(), public, "masqueraded to the router's address");
    assert_eq!(seen[0], seen[1], "one mapping for both destinations");
    say(&format!(
        "real_network: endpoint-independent NAT maps home:40000 to {} for pub1 and pub2",
        seen[0]
    ));

    // A reply comes back through the mapping; an unsolicited packet to it from another port
    // of a host the home host never sent to from there does not (address-and-port-dependent
    // filtering, conntrack's). The unsolicited one is sent first on the same path, so had it
    // passed it would have arrived first.
    let stranger = net.udp_socket("pub2", "0.0.0.0:9001".parse()?)?;
    stranger.send_to(b"unsolicited", seen[0])?;
    // pub1:9000 is where the home host sent to (the listener there is gone; bind it again).
    let pub1 = net.udp_socket("pub1", "0.0.0.0:9000".parse()?)?;
    pub1.send_to(b"reply", seen[0])?;
    socket.set_read_timeout(Some(UDP_WAIT))?;
    let mut buf = [0u8; 64];
    let (len, from) = socket.recv_from(&mut buf).context("the reply never came")?;
    assert_eq!(&buf[..len], b"reply", "the unsolicited packet was filtered");
    assert_eq!(from, SocketAddr::from((net.ip("pub1"), 9000)));
    Ok(())
}

#[test]
fn symmetric_nat_maps_each_destination_to_its_own_port() -> Result<()> {
    let test = "symmetric_nat_maps_each_destination_to_its_own_port";
    let Some(net) = nat_net(test, NatKind::Symmetric)? else {
        return Ok(());
    };
    let socket = net.udp_socket("home", "0.0.0.0:40000".parse()?)?;
    let seen = sources_seen(&net, &socket, &["pub1", "pub2"])?;
    let public = net.public_ip("router");
    assert!(seen.iter().all(|s| s.ip() == public), "{seen:?}");
    // Random ports (1 in ~64,000 that two draws coincide).
    assert_ne!(seen[0].port(), seen[1].port(), "one port per destination");
    say(&format!(
        "real_network: symmetric NAT maps home:40000 to {} for pub1, {} for pub2",
        seen[0], seen[1]
    ));
    Ok(())
}

#[test]
fn a_host_changes_address_and_network() -> Result<()> {
    let Some(mut net) = Net::start("a_host_changes_address_and_network", Needs::Nftables) else {
        return Ok(());
    };
    let lan = net.lan()?;
    let first = net.add_host("roamer", lan)?;
    net.add_host("server", lan)?;
    let home = net.add_nat("router", lan, NatKind::EndpointIndependent)?;
    // Bound to every address, as a device must be to survive the moves.
    let socket = net.udp_socket("roamer", "0.0.0.0:41000".parse()?)?;
    assert_eq!(
        sources_seen(&net, &socket, &["server"])?[0],
        (first, 41000).into()
    );

    let second = net.readdress("roamer")?;
    assert_ne!(second, first);
    assert_eq!(net.ip("roamer"), second);
    assert_eq!(
        sources_seen(&net, &socket, &["server"])?[0],
        (second, 41000).into()
    );

    let behind = net.move_host("roamer", home)?;
    assert_eq!(net.segment_of("roamer"), home);
    let seen = sources_seen(&net, &socket, &["server"])?[0];
    assert_eq!(
        seen.ip(),
        net.public_ip("router"),
        "now behind the NAT ({behind})"
    );
    say(&format!(
        "real_network: roamer {first} -> {second} -> {behind} (seen as {seen} behind the NAT)"
    ));
    Ok(())
}

/// Sends `count` datagrams from `from` to `to`:9000 and returns how many arrived. Sent in
/// batches of 50, each awaited until the counters account for every datagram (lost on the
/// bridge, or seen at `to`'s input) and the reader holds every one the input let through, so
/// a slow reader never overflows its socket's buffer and only the faults decide the count.
/// Needs `to`'s fault table (any fault set on it since the start) and no other UDP to `to`.
fn blast(net: &Net, from: &str, to: &str, count: usize) -> Result<u64> {
    let listener = net.udp_socket(to, "0.0.0.0:9000".parse()?)?;
    listener.set_read_timeout(Some(Duration::from_millis(50)))?;
    let got = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (got, done) = (got.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !done.load(Ordering::SeqCst) {
                if listener.recv_from(&mut buf).is_ok() {
                    got.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let segment = net.segment_of(to);
    let (host_before, switch_before) = (net.host_counters(to)?, net.switch_counters(segment)?);
    let socket = net.udp_socket(from, "0.0.0.0:0".parse()?)?;
    let target = SocketAddr::from((net.ip(to), 9000));
    for batch in 0..count.div_ceil(50) {
        let sent = count.min((batch + 1) * 50);
        for _ in (batch * 50)..sent {
            socket.send_to(b"data", target)?;
        }
        backend_support::wait_for(UDP_WAIT, || {
            let (host, switch) = (net.host_counters(to)?, net.switch_counters(segment)?);
            // Every datagram sent was lost on the bridge or reached `to`'s input ...
            let reached = host.seen - host_before.seen;
            let accounted = reached + (switch.lost - switch_before.lost) == sent as u64;
            // ... and the reader holds every one the input let through.
            let through = reached - (host.lost - host_before.lost) - (host.cut - host_before.cut);
            Ok(accounted && got.load(Ordering::SeqCst) == through)
        })?;
    }
    done.store(true, Ordering::SeqCst);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(got.load(Ordering::SeqCst))
}

#[test]
fn loss_cut_and_heal_do_what_they_say() -> Result<()> {
    let Some(mut net) = Net::start("loss_cut_and_heal_do_what_they_say", Needs::Nftables) else {
        return Ok(());
    };
    let lan = net.lan()?;
    net.add_host("a", lan)?;
    net.add_host("b", lan)?;
    let count = 1_000;

    net.set_loss("b", 50)?;
    let arrived = blast(&net, "a", "b", count)?;
    let counted = net.host_counters("b")?;
    assert_eq!(counted.seen, count as u64);
    assert_eq!(arrived, counted.seen - counted.lost);
    assert!(
        (300..=700).contains(&arrived),
        "50% host loss let {arrived} of {count} through"
    );

    net.heal()?;
    net.set_switch_loss(lan, 50)?;
    let arrived_switch = blast(&net, "a", "b", count)?;
    let counted = net.switch_counters(lan)?;
    assert_eq!(counted.seen, count as u64);
    assert_eq!(arrived_switch, counted.seen - counted.lost);
    net.heal()?;
    assert!(
        (300..=700).contains(&arrived_switch),
        "50% switch loss let {arrived_switch} of {count} through"
    );

    // One way: a -> b is cut, b -> a is not. The cut's counter shows the drops.
    net.cut("a", "b")?;
    let a_to_b = net.udp_socket("a", "0.0.0.0:0".parse()?)?;
    for _ in 0..10 {
        a_to_b.send_to(b"cut", (net.ip("b"), 9000))?;
    }
    let b_to_a = net.udp_socket("b", "0.0.0.0:0".parse()?)?;
    assert_eq!(sources_seen(&net, &b_to_a, &["a"])?[0].ip(), net.ip("b"));
    backend_support::wait_for(UDP_WAIT, || Ok(net.host_counters("b")?.cut >= 10))?;
    let counted = net.host_counters("b")?;
    assert_eq!(counted.lost, 0);
    net.heal()?;
    let healed = sources_seen(&net, &a_to_b, &["b"])?;
    assert_eq!(healed[0].ip(), net.ip("a"));
    say(&format!(
        "real_network: 50% loss at a host let {arrived}/{count} through, at the switch \
         {arrived_switch}/{count}; a cut dropped {} of 10, heal let a through again",
        counted.cut
    ));
    Ok(())
}

#[test]
fn namespaces_are_removed_on_drop_panic_and_next_start() -> Result<()> {
    let Some(mut net) = Net::start(
        "namespaces_are_removed_on_drop_panic_and_next_start",
        Needs::Namespaces,
    ) else {
        return Ok(());
    };
    let listed = || -> Result<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let lan = net.lan()?;
    net.add_host("h", lan)?;
    let names = net.namespaces().to_vec();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| listed().unwrap().contains(n.as_str())));
    drop(net);
    let now = listed()?;
    assert!(names.iter().all(|n| !now.contains(n.as_str())), "{now}");

    // A test that panics still removes its namespaces (Drop runs while unwinding).
    let (tx, rx) = mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let mut net = Net::start("(panicking thread)", Needs::Namespaces).expect("probed above");
        let lan = net.lan().expect("lan");
        net.add_host("h", lan).expect("host");
        tx.send(net.namespaces().to_vec()).expect("send");
        panic!("on purpose, with the namespaces made");
    })
    .join();
    assert!(panicked.is_err());
    let names = rx.recv()?;
    let now = listed()?;
    assert!(names.iter().all(|n| !now.contains(n.as_str())), "{now}");

    // Left by a process that is gone (a pid above pid_max never runs): removed at start.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")?
        .trim()
        .parse()?;
    let stale = format!("{}-{}-0-sw0", netns_support::PREFIX, pid_max + 1);
    let status = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()?;
    assert!(status.success());
    let removed = netns_support::remove_stale()?;
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!listed()?.contains(&stale));
    Ok(())
}
