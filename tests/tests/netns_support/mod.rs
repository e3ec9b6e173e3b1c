//! Real networks for real processes: Linux network namespaces, bridges, veth pairs and
//! nftables, built and torn down by a test (`tests/tests/real_network.rs`).
//!
//! A [`Net`] owns every namespace it makes, all named `mlnet-<pid>-<n>-<role>` (role `sw<S>`
//! for a segment's switch, `h-<name>` for a host, `r-<name>` for a router) so parallel
//! tests and test processes never collide; dropping it (also while unwinding from a panic)
//! deletes them, and the first `Net` of a process deletes those left by earlier processes
//! that no longer run. Addresses are 10.77.S.0/24, one /24 per segment, inside the
//! namespaces only: nothing is added to the test's own namespace but loopback TCP listeners.
//!
//! - A *segment* ([`Net::lan`]) is a switch namespace holding a bridge `br0`.
//! - A *host* ([`Net::add_host`]) is a namespace joined to a segment by a veth pair (`eth0`
//!   in the host, `pK` on the bridge) with the address 10.77.S.(10+k)/24.
//! - A *NAT router* ([`Net::add_nat`]) joins an upstream segment (`wan`) to a new "home"
//!   segment (`lan`, 10.77.H.1, every home host's default route) with nftables masquerade
//!   and a home router's firewall (nothing new in from `wan`, only replies).
//! - Faults are nftables rules: [`Net::set_loss`] (random UDP loss at a host's input),
//!   [`Net::set_switch_loss`] (random UDP loss on a segment's bridge), [`Net::cut`] (a
//!   one-way cut) and [`Net::heal`]. `tc netem` is not used (not on every kernel).
//! - Control: a device's HTTP API listens on 127.0.0.1 inside its host namespace, and the
//!   test reaches it through a loopback TCP forwarder in the test's namespace whose upstream
//!   socket was opened inside the host's (setns on the forwarder's thread). So the API never
//!   crosses a bridge or `eth0`: faults, cuts, NAT and address changes never touch it, and no
//!   interface, address or route is added to the test's namespace.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip` with `netns`, and for faults and NAT
//! `nft`. [`Net::start`] tries, and where it cannot, prints why and the test passes as skipped.
#![allow(dead_code)] // each test uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::backend_support::{DeviceProcess, DeviceSpec, Launch};

/// Every namespace this harness makes starts with this.
pub const PREFIX: &str = "mlnet";
/// The UDP port devices use inside their namespaces (each has its own port space).
pub const DEVICE_PORT: u16 = 7000;
/// The first host on a segment gets .10, the next .11, and so on.
const FIRST_HOST: u8 = 10;
/// Names of the fault, NAT and firewall tables, in each namespace.
const FAULTS: &str = "meshlog_faults";
const NAT: &str = "meshlog_nat";
/// A NAT router's firewall table (`Net::add_nat`).
const FIREWALL: &str = "meshlog_firewall";

/// Writes past the test harness's output capture, so a skip or a measured figure shows in a
/// plain `cargo test` run.
pub fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// What a test needs of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Namespaces, bridges, veth pairs.
    Namespaces,
    /// Those and nftables (faults, NAT).
    Nftables,
}

/// How a router maps its home hosts' flows onto its public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Plain `masquerade`: a home socket keeps one public port (its own where free) whatever
    /// it sends to. Inbound packets are let in only as replies to a flow (conntrack), so this
    /// is endpoint-independent mapping with address-and-port-dependent filtering.
    EndpointIndependent,
    /// `masquerade random,fully-random`: each new flow (destination) gets a random port.
    Symmetric,
}

/// A segment (a bridge in a switch namespace) of a [`Net`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment(usize);

#[derive(Debug)]
struct SegmentState {
    /// Switch namespace.
    ns: String,
    /// The third octet: 10.77.`subnet`.0/24.
    subnet: u8,
    /// The default route of hosts on it (a NAT router's `lan` address), if any.
    gateway: Option<Ipv4Addr>,
    /// The router whose home this is, if any.
    router: Option<String>,
    /// Next host octet and next bridge port number.
    next_host: u8,
    next_port: u32,
}

#[derive(Debug)]
struct HostState {
    ns: String,
    segment: Segment,
    ip: Ipv4Addr,
}

#[derive(Debug)]
struct RouterState {
    ns: String,
    wan: Segment,
    home: Segment,
    public_ip: Ipv4Addr,
    kind: NatKind,
}

/// The faults in one namespace; the table is rewritten whole on every change.
#[derive(Debug, Default, Clone)]
struct Faults {
    loss_percent: u8,
    cut_from: BTreeSet<Ipv4Addr>,
    /// The table exists (made on the first change).
    installed: bool,
}

/// UDP packets counted by a namespace's fault table since its last change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpCounters {
    /// Every UDP packet that arrived (a host's input from outside) or crossed (a bridge).
    pub seen: u64,
    /// Dropped by the random loss rule.
    pub lost: u64,
    /// Dropped by cuts.
    pub cut: u64,
}

impl UdpCounters {
    pub fn loss_percent(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.seen as f64
        }
    }
}

/// "lost/seen = P%", as the tests print it.
impl std::fmt::Display for UdpCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} = {:.0}%",
            self.lost,
            self.seen,
            self.loss_percent()
        )
    }
}

/// A set of namespaces built for one test; see the module's text.
#[derive(Debug)]
pub struct Net {
    tag: String,
    /// Every namespace made, in order (deleted in reverse).
    namespaces: Vec<String>,
    segments: Vec<SegmentState>,
    hosts: BTreeMap<String, HostState>,
    routers: BTreeMap<String, RouterState>,
    faults: Mutex<BTreeMap<String, Faults>>,
    forwarders: Mutex<Vec<Forwarder>>,
    nft: bool,
}

impl Net {
    /// A new, empty net, or `None` (having printed why, naming `test`) when this machine
    /// cannot make one: not root, no `ip`, `ip netns add` refused, or no `nft` when `needs`
    /// says so. Tried for real once per process, not judged by uid.
    pub fn start(test: &str, needs: Needs) -> Option<Net> {
        let probe = probe();
        let found = match (&probe.namespaces, needs) {
            (Found::Works, Needs::Nftables) => &probe.nftables,
            (found, _) => found,
        };
        match found {
            Found::Works => {}
            Found::Cannot(why) => {
                say(&format!(
                    "SKIPPED real_network::{test}: this machine cannot run it ({why}); it needs \
                     root, iproute2 and nftables"
                ));
                return None;
            }
            Found::Broken(why) => panic!(
                "real_network::{test}: namespaces can be made here, but the harness failed: {why}"
            ),
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        Some(Net {
            tag: format!("{PREFIX}-{}-{seq}", std::process::id()),
            namespaces: Vec::new(),
            segments: Vec::new(),
            hosts: BTreeMap::new(),
            routers: BTreeMap::new(),
            faults: Mutex::new(BTreeMap::new()),
            forwarders: Mutex::new(Vec::new()),
            nft: matches!(probe.nftables, Found::Works),
        })
    }

    /// A new segment: a switch namespace with a bridge. The first is 10.77.0.0/24 (the
    /// shared LAN of most tests), the next 10.77.1.0/24, and so on.
    pub fn lan(&mut self) -> Result<Segment> {
        let subnet = u8::try_from(self.segments.len()).context("at most 256 segments")?;
        let ns = self.new_ns(&format!("sw{subnet}"))?;
        ip(&["-n", &ns, "link", "add", "name", "br0", "type", "bridge"])?;
        ip(&["-n", &ns, "link", "set", "dev", "br0", "up"])?;
        self.segments.push(SegmentState {
            ns,
            subnet,
            gateway: None,
            router: None,
            next_host: FIRST_HOST,
            next_port: 0,
        });
        Ok(Segment(self.segments.len() - 1))
    }

    /// A new host namespace `name` on `segment`, with the segment's next address (and its
    /// gateway as the default route, behind a NAT). Returns the address.
    pub fn add_host(&mut self, name: &str, segment: Segment) -> Result<Ipv4Addr> {
        if self.hosts.contains_key(name) || self.routers.contains_key(name) {
            bail!("{name} already exists");
        }
        let ns = self.new_ns(&format!("h-{name}"))?;
        ip(&["-n", &ns, "link", "set", "dev", "lo", "up"])?;
        let address = self.next_address(segment)?;
        self.plug(&ns, "eth0", segment, address)?;
        self.hosts.insert(
            name.to_owned(),
            HostState {
                ns,
                segment,
                ip: address,
            },
        );
        Ok(address)
    }

    /// A NAT router `name`: `wan` on `upstream` (its next address, the router's public
    /// address), `lan` (10.77.H.1) on a new home segment it returns. Hosts added to the home
    /// segment route through it and reach `upstream` from the router's public address.
    pub fn add_nat(&mut self, name: &str, upstream: Segment, kind: NatKind) -> Result<Segment> {
        self.need_nft()?;
        if self.hosts.contains_key(name) || self.routers.contains_key(name) {
            bail!("{name} already exists");
        }
        let home = self.lan()?;
        let ns = self.new_ns(&format!("r-{name}"))?;
        ip(&["-n", &ns, "link", "set", "dev", "lo", "up"])?;
        let public_ip = self.next_address(upstream)?;
        self.plug(&ns, "wan", upstream, public_ip)?;
        let home_subnet = self.segments[home.0].subnet;
        let gateway = Ipv4Addr::new(10, 77, home_subnet, 1);
        self.plug(&ns, "lan", home, gateway)?;
        self.segments[home.0].gateway = Some(gateway);
        self.segments[home.0].router = Some(name.to_owned());
        run(Command::new("ip").args([
            "netns",
            "exec",
            &ns,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ]))?;
        let masquerade = match kind {
            NatKind::EndpointIndependent => "masquerade",
            NatKind::Symmetric => "masquerade random,fully-random",
        };
        // The firewall every home router has: nothing new comes in from the WAN side, only
        // replies to what went out. Without it two Linux routers clash on a fast LAN: a punch
        // that reaches the far router before its host has punched back is delivered locally
        // (no mapping matches it), and the conntrack entry it leaves (`ra:p -> rb:q`,
        // UNREPLIED, 30 s) holds the very tuple the far host's own punch needs, so masquerade
        // gives that punch another source port, which the first router drops. A dropped
        // packet's conntrack entry is never confirmed, so nothing is left to clash with.
        nft(
            &ns,
            &format!(
                "table ip {NAT} {{\n\
                 \tchain postrouting {{\n\
                 \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
                 \t\toifname \"wan\" {masquerade}\n\
                 \t}}\n\
                 }}\n\
                 table ip {FIREWALL} {{\n\
                 \tchain input {{\n\
                 \t\ttype filter hook input priority filter; policy accept;\n\
                 \t\tiifname \"wan\" ct state established,related accept\n\
                 \t\tiifname \"wan\" counter drop comment \"unsolicited\"\n\
                 \t}}\n\
                 \tchain forward {{\n\
                 \t\ttype filter hook forward priority filter; policy accept;\n\
                 \t\tiifname \"wan\" ct state established,related accept\n\
                 \t\tiifname \"wan\" counter drop comment \"unsolicited\"\n\
                 \t}}\n\
                 }}\n"
            ),
        )?;
        self.routers.insert(
            name.to_owned(),
            RouterState {
                ns,
                wan: upstream,
                home,
                public_ip,
                kind,
            },
        );
        Ok(home)
    }

    /// The namespaces made so far, in order.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// `host`'s address now.
    pub fn ip(&self, host: &str) -> Ipv4Addr {
        self.host(host).ip
    }

    /// `host`'s device address: its address and [`DEVICE_PORT`].
    pub fn udp(&self, host: &str) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip(host), DEVICE_PORT))
    }

    /// A router's address on its upstream segment.
    pub fn public_ip(&self, router: &str) -> Ipv4Addr {
        self.routers
            .get(router)
            .unwrap_or_else(|| panic!("no router {router}"))
            .public_ip
    }

    /// Packets `router`'s firewall dropped as new from the WAN side (`add_nat`): the first
    /// punch packets that arrived before their host punched back.
    pub fn unsolicited(&self, router: &str) -> Result<u64> {
        let ns = &self
            .routers
            .get(router)
            .with_context(|| format!("no router {router}"))?
            .ns;
        let out = run(Command::new("ip").args([
            "netns", "exec", ns, "nft", "-j", "list", "table", "ip", FIREWALL,
        ]))?;
        let json: Value = serde_json::from_str(&out)?;
        let rules = json["nftables"].as_array().into_iter().flatten();
        Ok(rules
            .map(|item| &item["rule"])
            .filter(|rule| rule["comment"] == "unsolicited")
            .flat_map(|rule| rule["expr"].as_array().into_iter().flatten())
            .filter_map(|e| e["counter"]["packets"].as_u64())
            .sum())
    }

    /// The home segment behind a router.
    pub fn home_of(&self, router: &str) -> Segment {
        self.routers
            .get(router)
            .unwrap_or_else(|| panic!("no router {router}"))
            .home
    }

    /// The segment `host` is on.
    pub fn segment_of(&self, host: &str) -> Segment {
        self.host(host).segment
    }

    /// The namespace's name of a host or router (for `ip netns exec`).
    pub fn ns(&self, name: &str) -> &str {
        match self.hosts.get(name) {
            Some(host) => &host.ns,
            None => {
                &self
                    .routers
                    .get(name)
                    .unwrap_or_else(|| panic!("no host or router {name}"))
                    .ns
            }
        }
    }

    /// `program` to run inside `host`'s namespace (`ip netns exec NS program`).
    pub fn command(&self, host: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.ns(host), program]);
        command
    }

    /// Runs `f` on a thread inside `host`'s network namespace and returns its result. Sockets
    /// it opens stay in that namespace wherever they are used later.
    pub fn in_ns<T: Send>(&self, host: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = ns_path(self.ns(host));
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<T> {
                    enter(&path)?;
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the closure in {host} panicked"))?
        })
    }

    /// A UDP socket bound to `bind` inside `host`'s namespace.
    pub fn udp_socket(&self, host: &str, bind: SocketAddr) -> Result<std::net::UdpSocket> {
        Ok(self.in_ns(host, || std::net::UdpSocket::bind(bind))??)
    }

    /// An address on the test's loopback that forwards TCP to `target` inside `host`'s
    /// namespace, for as long as this `Net` lives.
    pub fn forward_tcp(&self, host: &str, target: SocketAddr) -> Result<SocketAddr> {
        let forwarder = Forwarder::start(ns_path(self.ns(host)), target)?;
        let addr = forwarder.addr;
        self.forwarders.lock().unwrap().push(forwarder);
        Ok(addr)
    }

    /// Starts `meshlog device` inside `host`'s namespace (`ip netns exec`), its API on the
    /// namespace's loopback and reached through [`Net::forward_tcp`]. `spec.udp` is the
    /// address it binds, e.g. [`Net::udp`] or `0.0.0.0:PORT` for a device that must survive
    /// an address change. It stops on its own if the test process dies (`--parent-pid`).
    pub fn device(
        &self,
        host: &str,
        spec: &DeviceSpec,
        extra_args: &[&str],
    ) -> Result<DeviceProcess> {
        let parent = std::process::id().to_string();
        let mut args = vec!["--parent-pid", parent.as_str()];
        args.extend_from_slice(extra_args);
        let launch = Launch {
            prefix: ["ip", "netns", "exec", self.ns(host)]
                .into_iter()
                .map(OsString::from)
                .collect(),
            reach: Some(Box::new(move |printed: &str| {
                let inside: SocketAddr = printed
                    .trim_start_matches("http://")
                    .parse()
                    .with_context(|| format!("the device printed {printed:?}"))?;
                Ok(format!("http://{}", self.forward_tcp(host, inside)?))
            })),
        };
        DeviceProcess::start_launched(spec, &args, &launch)
    }

    /// Random loss of `percent`% of the UDP packets arriving at `host` from outside (its
    /// loopback, where the API is, is never touched). 0 removes it.
    pub fn set_loss(&self, host: &str, percent: u8) -> Result<()> {
        let ns = self.host(host).ns.clone();
        self.change_faults(&ns, FaultsAt::Host, |f| f.loss_percent = percent.min(100))
    }

    /// Random loss of `percent`% of the UDP packets crossing `segment`'s bridge. 0 removes it.
    pub fn set_switch_loss(&self, segment: Segment, percent: u8) -> Result<()> {
        let ns = self.segment(segment).ns.clone();
        self.change_faults(&ns, FaultsAt::Bridge, |f| f.loss_percent = percent.min(100))
    }

    /// Cuts `from` → `to` one way: `to` drops every packet from `from`'s address (as `to`
    /// sees it: `from`'s own address, or its router's public address when `from` is behind a
    /// NAT whose upstream segment is `to`'s, which then cuts every host behind that router).
    /// The address is taken now: a later address change of `from` is not followed.
    pub fn cut(&self, from: &str, to: &str) -> Result<()> {
        let source = self.seen_from(from, to);
        let ns = self.host(to).ns.clone();
        self.change_faults(&ns, FaultsAt::Host, |f| {
            f.cut_from.insert(source);
        })
    }

    /// Undoes `cut(from, to)`: `to` takes `from`'s packets again (loss stays as it is).
    pub fn restore(&self, from: &str, to: &str) -> Result<()> {
        let source = self.seen_from(from, to);
        let ns = self.host(to).ns.clone();
        self.change_faults(&ns, FaultsAt::Host, |f| {
            f.cut_from.remove(&source);
        })
    }

    /// Removes every loss and cut everywhere.
    pub fn heal(&self) -> Result<()> {
        let installed: Vec<String> = self
            .faults
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f.installed)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in installed {
            let at = if self.segments.iter().any(|s| s.ns == ns) {
                FaultsAt::Bridge
            } else {
                FaultsAt::Host
            };
            self.change_faults(&ns, at, |f| {
                f.loss_percent = 0;
                f.cut_from.clear();
            })?;
        }
        Ok(())
    }

    /// The UDP counters of `host`'s input since its faults last changed.
    pub fn host_counters(&self, host: &str) -> Result<UdpCounters> {
        counters(&self.host(host).ns, "inet", "input")
    }

    /// The UDP counters of `segment`'s bridge since its faults last changed.
    pub fn switch_counters(&self, segment: Segment) -> Result<UdpCounters> {
        counters(&self.segment(segment).ns, "bridge", "forward")
    }

    /// Gives `host` a new address on its segment (a new DHCP lease): the old one is gone,
    /// the default route (behind a NAT) is back. Sockets bound to the old address are stranded
    /// as on a real host; bind `0.0.0.0` to survive it. Returns the new address.
    pub fn readdress(&mut self, host: &str) -> Result<Ipv4Addr> {
        let segment = self.host(host).segment;
        let address = self.next_address(segment)?;
        let ns = self.host(host).ns.clone();
        ip(&["-n", &ns, "addr", "flush", "dev", "eth0"])?;
        self.configure(&ns, "eth0", segment, address)?;
        self.hosts.get_mut(host).expect("host").ip = address;
        Ok(address)
    }

    /// Unplugs `host` and plugs it into `segment` with that segment's next address (Wi-Fi to
    /// Ethernet, or home to the LAN): its `eth0` is replaced. Returns the new address.
    pub fn move_host(&mut self, host: &str, segment: Segment) -> Result<Ipv4Addr> {
        let ns = self.host(host).ns.clone();
        let address = self.next_address(segment)?;
        ip(&["-n", &ns, "link", "del", "dev", "eth0"])?;
        self.plug(&ns, "eth0", segment, address)?;
        let state = self.hosts.get_mut(host).expect("host");
        state.segment = segment;
        state.ip = address;
        Ok(address)
    }

    // --- inside ---

    fn host(&self, host: &str) -> &HostState {
        self.hosts
            .get(host)
            .unwrap_or_else(|| panic!("no host {host}"))
    }

    fn segment(&self, segment: Segment) -> &SegmentState {
        &self.segments[segment.0]
    }

    fn need_nft(&self) -> Result<()> {
        if !self.nft {
            bail!("nft is not available (start the Net with Needs::Nftables)");
        }
        Ok(())
    }

    /// The source address `to` sees on packets from `from`.
    fn seen_from(&self, from: &str, to: &str) -> Ipv4Addr {
        let (from, to) = (self.host(from), self.host(to));
        if from.segment == to.segment {
            return from.ip;
        }
        let from_segment = self.segment(from.segment);
        match from_segment.router.as_ref().map(|r| &self.routers[r]) {
            Some(router) if router.wan == to.segment => router.public_ip,
            _ => from.ip,
        }
    }

    fn new_ns(&mut self, role: &str) -> Result<String> {
        let ns = format!("{}-{role}", self.tag);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        Ok(ns)
    }

    fn next_address(&mut self, segment: Segment) -> Result<Ipv4Addr> {
        let state = &mut self.segments[segment.0];
        if state.next_host == 254 {
            bail!("segment {} is full", state.subnet);
        }
        let address = Ipv4Addr::new(10, 77, state.subnet, state.next_host);
        state.next_host += 1;
        Ok(address)
    }

    /// A veth pair: `iface` in `ns`, a port on `segment`'s bridge; `address` on `iface`.
    fn plug(&mut self, ns: &str, iface: &str, segment: Segment, address: Ipv4Addr) -> Result<()> {
        let state = &mut self.segments[segment.0];
        let port = format!("p{}", state.next_port);
        state.next_port += 1;
        let switch = state.ns.clone();
        // Made directly in the two namespaces: the names never meet the test's namespace.
        ip(&[
            "link", "add", "name", iface, "netns", ns, "type", "veth", "peer", "name", &port,
            "netns", &switch,
        ])?;
        ip(&[
            "-n", &switch, "link", "set", "dev", &port, "master", "br0", "up",
        ])?;
        self.configure(ns, iface, segment, address)
    }

    fn configure(&self, ns: &str, iface: &str, segment: Segment, address: Ipv4Addr) -> Result<()> {
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            iface,
        ])?;
        ip(&["-n", ns, "link", "set", "dev", iface, "up"])?;
        if let Some(gateway) = self.segment(segment).gateway {
            if gateway != address {
                ip(&[
                    "-n",
                    ns,
                    "route",
                    "replace",
                    "default",
                    "via",
                    &gateway.to_string(),
                ])?;
            }
        }
        Ok(())
    }

    fn change_faults(
        &self,
        ns: &str,
        at: FaultsAt,
        change: impl FnOnce(&mut Faults),
    ) -> Result<()> {
        self.need_nft()?;
        let mut all = self.faults.lock().unwrap();
        let faults = all.entry(ns.to_owned()).or_default();
        change(faults);
        nft(ns, &faults_table(at, faults))?;
        faults.installed = true;
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for forwarder in self.forwarders.lock().unwrap().drain(..) {
            forwarder.stop();
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(err) = ip(&["netns", "del", ns]) {
                say(&format!(
                    "real_network: could not delete namespace {ns}: {err:#}"
                ));
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum FaultsAt {
    /// A host's input (inet family).
    Host,
    /// A switch's bridge (bridge family).
    Bridge,
}

/// The whole fault table of one namespace, replacing the old one in one transaction.
fn faults_table(at: FaultsAt, faults: &Faults) -> String {
    let (family, chain, hook) = match at {
        FaultsAt::Host => ("inet", "input", "type filter hook input priority -10"),
        FaultsAt::Bridge => ("bridge", "forward", "type filter hook forward priority 0"),
    };
    let mut rules = String::new();
    if let FaultsAt::Host = at {
        rules.push_str("\t\tiifname \"lo\" accept\n");
    }
    rules.push_str("\t\tmeta l4proto udp counter comment \"udp\"\n");
    if !faults.cut_from.is_empty() {
        let sources: Vec<String> = faults.cut_from.iter().map(|a| a.to_string()).collect();
        rules.push_str(&format!(
            "\t\tip saddr {{ {} }} counter drop comment \"cut\"\n",
            sources.join(", ")
        ));
    }
    if faults.loss_percent > 0 {
        rules.push_str(&format!(
            "\t\tmeta l4proto udp numgen random mod 100 < {} counter drop comment \"loss\"\n",
            faults.loss_percent
        ));
    }
    format!(
        "add table {family} {FAULTS}\n\
         delete table {family} {FAULTS}\n\
         table {family} {FAULTS} {{\n\
         \tchain {chain} {{\n\
         \t\t{hook}; policy accept;\n\
         {rules}\
         \t}}\n\
         }}\n"
    )
}

/// Reads the counters of a fault table (zero if it was never made).
fn counters(ns: &str, family: &str, chain: &str) -> Result<UdpCounters> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-j", "list", "chain", family])
        .args([FAULTS, chain])
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Ok(UdpCounters::default());
    }
    let json: Value = serde_json::from_slice(&out.stdout)?;
    let mut counters = UdpCounters::default();
    for item in json["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        let packets = rule["expr"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e["counter"]["packets"].as_u64())
            .unwrap_or(0);
        match rule["comment"].as_str() {
            Some("udp") => counters.seen = packets,
            Some("loss") => counters.lost = packets,
            Some("cut") => counters.cut = packets,
            _ => {}
        }
    }
    Ok(counters)
}

// --- commands ---

fn run(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// Runs an nft script inside `ns`.
fn nft(ns: &str, script: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {ns}: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &std::path::Path) -> Result<()> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .with_context(|| format!("setns into {}", path.display()))
}

// --- can this machine do it? ---

/// What the machine allows, found by trying.
#[derive(Clone, Debug)]
enum Found {
    Works,
    /// The machine cannot: the tests skip.
    Cannot(String),
    /// It can, but what the harness does next fails: a bug to see, the tests fail.
    Broken(String),
}

#[derive(Debug)]
struct Probe {
    namespaces: Found,
    nftables: Found,
}

/// Tries once per process. A namespace that cannot be made (not root, no `ip`, `ip netns
/// add` refused), or no `nft` to run, is the machine's; anything failing after that (a
/// bridge, a veth, entering it from a thread, an nft table in it) is taken for a bug in the
/// harness and fails the tests rather than hiding them. Namespaces of earlier test processes
/// that no longer run are deleted first.
fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let ns = format!("{PREFIX}-{}-probe", std::process::id());
        if let Err(err) = run(Command::new("ip").arg("-V")) {
            let why = Found::Cannot(format!("no usable `ip`: {err:#}"));
            return Probe {
                namespaces: why.clone(),
                nftables: why,
            };
        }
        if let Err(err) = ip(&["netns", "add", &ns]) {
            let why = Found::Cannot(format!("`ip netns add` failed: {err:#}"));
            return Probe {
                namespaces: why.clone(),
                nftables: why,
            };
        }
        let namespaces = match probe_namespace(&ns) {
            Ok(()) => Found::Works,
            Err(err) => Found::Broken(format!("{err:#}")),
        };
        let nftables = match &namespaces {
            Found::Works => match Command::new("nft").arg("--version").output() {
                Err(err) => Found::Cannot(format!("no `nft` to run: {err}")),
                Ok(_) => match nft(
                    &ns,
                    "table inet probe {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\
                     \t\tmeta l4proto udp numgen random mod 100 < 1 drop\n\t}\n}\n",
                ) {
                    Ok(()) => Found::Works,
                    Err(err) => Found::Broken(format!("{err:#}")),
                },
            },
            other => other.clone(),
        };
        let _ = ip(&["netns", "del", &ns]);
        if let Err(err) = remove_stale() {
            say(&format!("real_network: removing stale namespaces: {err:#}"));
        }
        Probe {
            namespaces,
            nftables,
        }
    })
}

/// A bridge and a veth in `ns`, and a thread of this process entering it (the API forwarders
/// need setns).
fn probe_namespace(ns: &str) -> Result<()> {
    ip(&["-n", ns, "link", "add", "name", "br0", "type", "bridge"])?;
    ip(&[
        "link", "add", "name", "probe0", "netns", ns, "type", "veth", "peer", "name", "probe1",
        "netns", ns,
    ])?;
    ip(&["-n", ns, "link", "set", "dev", "probe0", "master", "br0"])?;
    let path = ns_path(ns);
    std::thread::scope(|scope| {
        scope
            .spawn(|| enter(&path))
            .join()
            .map_err(|_| anyhow::anyhow!("setns probe panicked"))?
    })
}

/// Deletes namespaces named by this harness whose process is gone (a test killed before its
/// `Net` was dropped). Namespaces of live processes (parallel runs) are left alone.
pub fn remove_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Ok(removed); // none made yet on this machine
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&format!("{PREFIX}-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            ip(&["netns", "del", &name])?;
            removed.push(name);
        }
    }
    Ok(removed)
}

// --- the API forwarder ---

/// A loopback listener in the test's namespace whose connections are forwarded to `target`
/// from a socket opened inside another namespace.
#[derive(Debug)]
struct Forwarder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(ns: PathBuf, target: SocketAddr) -> Result<Forwarder> {
        // Bound before the thread moves: the listener stays in the test's namespace.
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("forward {addr} -> {target}"))
            .spawn(move || {
                let entered = enter(&ns);
                let failed = entered.is_err();
                let _ = ready_tx.send(entered);
                if failed {
                    return;
                }
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    // Opened on this thread, so inside the namespace.
                    match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
                        Ok(upstream) => splice(client, upstream),
                        Err(_) => drop(client),
                    }
                }
            })?;
        ready_rx
            .recv()
            .context("the forwarder thread ended before entering its namespace")??;
        Ok(Forwarder {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)); // wakes accept
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies both ways until either side ends, then closes both.
fn splice(a: TcpStream, b: TcpStream) {
    let pairs = [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ];
    for (from, to) in pairs {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            return;
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
}
