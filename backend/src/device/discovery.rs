//! LAN discovery on real sockets (issue 25): a device announces itself on its local link and
//! hands what it hears to its node, which makes a member it hears a peer
//! (`meshlog_core::discovery` has the format, `meshlog_core::node`'s `discover.rs` the rules).
//!
//! One UDP socket per device on the discovery port (`DISCOVERY_PORT_DEFAULT`), bound to the
//! wildcard address with SO_REUSEADDR and SO_REUSEPORT, so several devices on one host (the
//! demo, the tests) each hold one and each hears every broadcast (the kernel hands a
//! broadcast to every socket bound to the port; only unicast is spread between them), and
//! SO_BROADCAST to send.
//!
//! Where it sends: the IPv4 broadcast address of the network the sync socket is bound on
//! (127.0.0.1 → 127.255.255.255, which Linux delivers on loopback; a wildcard bind → every
//! directly connected network's, from the routing table, and loopback's). For a sync socket
//! bound to IPv6, an IPv6 socket also joins the link-local multicast group
//! `DISCOVERY_GROUP_V6` and announces there (best effort: on the default interface only).
//! When: at start, then 1, 2 and 4 s later (a device starting beside others is heard at once
//! even if the first is lost), then every `ANNOUNCE_INTERVAL` (core's), and at once when the
//! destinations change (the host's networks changed; checked every `NETWORKS_CHECK_INTERVAL`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use meshlog_core::discovery;
use meshlog_net::{DriverError, DriverHandle};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The discovery port when `--discovery-port` is not given.
pub const DISCOVERY_PORT_DEFAULT: u16 = 21047;
/// The IPv6 group announcements go to: transient (`ff1x`), link-local scope (`ffx2`).
pub const DISCOVERY_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0x6d65, 0x7368);
/// How often the host's networks are read again, to announce at once on a change.
const NETWORKS_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Datagrams handed to the node per second at most; the node opens at most 20 a second
/// (`ANNOUNCE_OPENS_PER_SECOND_MAX`) and counts the rest, and this keeps a flood on the link
/// from filling the driver's command queue, which the HTTP API's appends share. Beyond it
/// datagrams are read and dropped here (logged at debug level).
const FORWARDS_PER_SECOND_MAX: u32 = 64;
/// Bigger than an announcement, so a wrong-sized datagram is seen whole and counted.
const RECEIVE_BUFFER_LEN: usize = 2048;

/// The discovery task and what it sends to (for the log line at start).
#[derive(Debug)]
pub struct Discovery {
    pub task: JoinHandle<()>,
    pub destinations: Vec<SocketAddr>,
}

/// Binds the discovery socket(s) on `port` and starts announcing this device, whose sync
/// socket is bound at `udp_addr`, and listening.
pub fn start(handle: DriverHandle, udp_addr: SocketAddr, port: u16) -> std::io::Result<Discovery> {
    let v4 = bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
    let v6 = match udp_addr.ip() {
        // Best effort: a host without IPv6, or without multicast on its default interface,
        // still discovers over IPv4.
        IpAddr::V6(_) => match bind_v6_group(port) {
            Ok(socket) => Some(socket),
            Err(err) => {
                tracing::warn!(%err, "LAN discovery over IPv6 multicast is off");
                None
            }
        },
        IpAddr::V4(_) => None,
    };
    let destinations = destinations(udp_addr, port, v6.is_some());
    let task = tokio::spawn(run(handle, udp_addr, port, v4, v6));
    Ok(Discovery { task, destinations })
}

/// When to announce (`meshlog_core::discovery::ANNOUNCE_FIRST_DELAYS`, then `ANNOUNCE_INTERVAL`:
/// core's, which the simulator's LANs keep too), as tokio's durations.
fn from_core(d: meshlog_core::Duration) -> Duration {
    Duration::from_micros(d.as_micros())
}

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    if addr.is_ipv4() {
        socket.set_broadcast(true)?;
    } else {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

fn bind_v6_group(port: u16) -> std::io::Result<UdpSocket> {
    let socket = bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?;
    socket.join_multicast_v6(&DISCOVERY_GROUP_V6, 0)?;
    Ok(socket)
}

/// Where this device's announcements go, sorted.
fn destinations(udp_addr: SocketAddr, port: u16, v6: bool) -> Vec<SocketAddr> {
    let mut to: BTreeSet<SocketAddr> = broadcast_addresses(udp_addr.ip())
        .into_iter()
        .map(|ip| SocketAddr::from((ip, port)))
        .collect();
    if v6 {
        to.insert(SocketAddr::from((DISCOVERY_GROUP_V6, port)));
    }
    to.into_iter().collect()
}

/// The IPv4 broadcast addresses for a sync socket bound to `bound`.
fn broadcast_addresses(bound: IpAddr) -> BTreeSet<Ipv4Addr> {
    let loopback = Ipv4Addr::new(127, 255, 255, 255);
    let networks = connected_networks();
    match bound {
        IpAddr::V4(ip) if ip.is_loopback() => BTreeSet::from([loopback]),
        IpAddr::V4(ip) if ip.is_unspecified() => {
            let mut all: BTreeSet<Ipv4Addr> =
                networks.iter().map(|(_, broadcast)| *broadcast).collect();
            all.insert(loopback);
            all
        }
        IpAddr::V4(ip) => {
            let matching: BTreeSet<Ipv4Addr> = networks
                .iter()
                .filter(|((net, mask), _)| u32::from(ip) & mask == *net)
                .map(|(_, broadcast)| *broadcast)
                .collect();
            if matching.is_empty() {
                // No route table to read (not Linux): the limited broadcast, which leaves by
                // the default interface.
                BTreeSet::from([Ipv4Addr::BROADCAST])
            } else {
                matching
            }
        }
        // An IPv6 sync socket is reached over IPv6: the multicast group only.
        IpAddr::V6(ip) if ip.is_unspecified() => networks.iter().map(|(_, b)| *b).collect(),
        IpAddr::V6(_) => BTreeSet::new(),
    }
}

/// The directly connected IPv4 networks (network, mask) and their broadcast addresses, from
/// Linux's `/proc/net/route` (routes with no gateway, the default route left out); empty
/// where it cannot be read.
fn connected_networks() -> Vec<((u32, u32), Ipv4Addr)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut networks = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(gateway), Some(mask)) = (fields.get(1), fields.get(2), fields.get(7))
        else {
            continue;
        };
        // The kernel prints each address's bytes (network order) as one native-endian u32
        // in hex: its native bytes are the address's.
        let parse = |hex: &str| {
            u32::from_str_radix(hex, 16)
                .ok()
                .map(|v| u32::from_be_bytes(v.to_ne_bytes()))
        };
        let (Some(dest), Some(gateway), Some(mask)) = (parse(dest), parse(gateway), parse(mask))
        else {
            continue;
        };
        if gateway != 0 || mask == 0 {
            continue;
        }
        networks.push(((dest, mask), Ipv4Addr::from(dest | !mask)));
    }
    networks
}

async fn run(
    handle: DriverHandle,
    udp_addr: SocketAddr,
    port: u16,
    v4: UdpSocket,
    v6: Option<UdpSocket>,
) {
    let mut to = destinations(udp_addr, port, v6.is_some());
    let mut delays = discovery::ANNOUNCE_FIRST_DELAYS
        .iter()
        .copied()
        .map(from_core);
    let mut next_announce = tokio::time::Instant::now();
    let mut next_check = tokio::time::Instant::now() + NETWORKS_CHECK_INTERVAL;
    let mut buf_v4 = vec![0u8; RECEIVE_BUFFER_LEN];
    let mut buf_v6 = vec![0u8; RECEIVE_BUFFER_LEN];
    let mut window_started = tokio::time::Instant::now();
    let mut forwarded_in_window = 0u32;
    let mut dropped_here = 0u64;
    loop {
        let received = tokio::select! {
            biased;
            () = tokio::time::sleep_until(next_announce) => {
                if announce(&handle, &v4, v6.as_ref(), udp_addr.port(), &to).await.is_err() {
                    return;
                }
                next_announce = tokio::time::Instant::now()
                    + delays.next().unwrap_or(from_core(discovery::ANNOUNCE_INTERVAL));
                continue;
            }
            () = tokio::time::sleep_until(next_check) => {
                next_check = tokio::time::Instant::now() + NETWORKS_CHECK_INTERVAL;
                let now_to = destinations(udp_addr, port, v6.is_some());
                if now_to != to {
                    tracing::info!(?now_to, "networks changed; announcing at once");
                    to = now_to;
                    next_announce = tokio::time::Instant::now();
                }
                continue;
            }
            received = v4.recv_from(&mut buf_v4) => received.map(|(len, from)| (buf_v4[..len].to_vec(), from)),
            received = recv_maybe(v6.as_ref(), &mut buf_v6) => received,
        };
        let (bytes, from) = match received {
            Ok(received) => received,
            Err(err) => {
                tracing::debug!(%err, "discovery receive error");
                continue;
            }
        };
        let now = tokio::time::Instant::now();
        if now.duration_since(window_started) >= Duration::from_secs(1) {
            if dropped_here > 0 {
                tracing::debug!(dropped_here, "discovery datagrams over the rate dropped");
            }
            window_started = now;
            forwarded_in_window = 0;
            dropped_here = 0;
        }
        if forwarded_in_window >= FORWARDS_PER_SECOND_MAX {
            dropped_here += 1;
            continue;
        }
        forwarded_in_window += 1;
        if handle.heard_announcement(from, bytes).await.is_err() {
            return;
        }
    }
}

async fn recv_maybe(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(Vec<u8>, SocketAddr)> {
    match socket {
        Some(socket) => {
            let (len, from) = socket.recv_from(buf).await?;
            Ok((buf[..len].to_vec(), from))
        }
        None => std::future::pending().await,
    }
}

/// Sends a fresh announcement to each destination; `Err` once the device's loop is gone.
async fn announce(
    handle: &DriverHandle,
    v4: &UdpSocket,
    v6: Option<&UdpSocket>,
    sync_port: u16,
    to: &[SocketAddr],
) -> Result<(), DriverError> {
    for dest in to {
        // One fresh announcement per destination: each carries its own nonce.
        let bytes = match handle.announcement(vec![sync_port]).await {
            Ok(Some(bytes)) => bytes,
            // Not an active member (removed): nothing to announce, and nobody could read it.
            Ok(None) => return Ok(()),
            Err(DriverError::Stopped) => return Err(DriverError::Stopped),
            Err(err) => {
                tracing::warn!(%err, "not announcing");
                return Ok(());
            }
        };
        let socket = match (dest.is_ipv4(), v6) {
            (true, _) => v4,
            (false, Some(v6)) => v6,
            (false, None) => continue,
        };
        if let Err(err) = socket.send_to(&bytes, dest).await {
            tracing::debug!(%err, %dest, "announcement not sent");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_announces_to_loopbacks_broadcast() {
        let to = destinations("127.0.0.1:8001".parse().unwrap(), 21047, false);
        assert_eq!(to, vec!["127.255.255.255:21047".parse().unwrap()]);
    }

    #[test]
    fn a_connected_network_gives_its_broadcast_address() {
        // Read from this host's table: every network's broadcast has the host bits set.
        for ((net, mask), broadcast) in connected_networks() {
            assert_eq!(u32::from(broadcast), net | !mask);
            assert_eq!(net & !mask, 0, "{net:x}/{mask:x}");
        }
    }
}
