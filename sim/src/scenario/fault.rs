//! `[[fault]]`: one change to the world at `at`. In the file a fault is a table with exactly
//! one action field (`partition = [...]`, `crash = "bob"`, ...); in the program it is a
//! [`Fault`] whose [`FaultKind`] is that action, so "exactly one" is settled when the file is
//! read. Each kind's behaviour is one module of `faults/`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::duration::SimDuration;
use super::link::LinkSpec;

/// One change at `at`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "FaultSpec", into = "FaultSpec")]
pub struct Fault {
    pub at: SimDuration,
    pub kind: FaultKind,
    /// Survives every heal, mid-run `heal = true` and the end of the workload (to break a
    /// world on purpose).
    pub permanent: bool,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Devices in different groups cannot reach each other; unlisted devices form one more
    /// group.
    Partition(Vec<Vec<String>>),
    /// Lifts partitions and cuts, brings devices online, restarts crashed ones, frees full
    /// disks; never what a fault marked `permanent` did (nor does the end-of-workload heal).
    Heal,
    /// Datagrams from `from` to `to` are lost (one way).
    Cut {
        from: String,
        to: String,
    },
    Restore {
        from: String,
        to: String,
    },
    Offline(String),
    Online(String),
    /// The device's node is dropped with all in-flight state; its store survives.
    Crash(String),
    Restart(String),
    /// A crash that also takes back what the device's store had not made durable: events
    /// received since its last own append, as SQLite's `synchronous = NORMAL` may lose them
    /// (its own events commit with FULL, which makes every earlier commit durable too).
    PowerCut(String),
    /// Every insert into the device's store fails, as on a full disk, until `disk_freed` or
    /// a heal.
    DiskFull(String),
    DiskFreed(String),
    /// Changes the network model of every link, or of one (`from`, `to`).
    // Boxed: a link spec is much larger than any other fault.
    Network(Box<LinkSpec>),
    /// The device is reached at a new address from now on (DHCP, Wi-Fi to Ethernet, a new
    /// port): `address`, or the world's next fresh one. Its peers must follow its newest
    /// authentic packet; nothing lifts it.
    AddressChange {
        device: String,
        address: Option<SocketAddr>,
    },
}

impl FaultKind {
    /// The field that names it in a file.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Partition(_) => "partition",
            FaultKind::Heal => "heal",
            FaultKind::Cut { .. } => "cut",
            FaultKind::Restore { .. } => "restore",
            FaultKind::Offline(_) => "offline",
            FaultKind::Online(_) => "online",
            FaultKind::Crash(_) => "crash",
            FaultKind::Restart(_) => "restart",
            FaultKind::PowerCut(_) => "power_cut",
            FaultKind::DiskFull(_) => "disk_full",
            FaultKind::DiskFreed(_) => "disk_freed",
            FaultKind::Network(_) => "network",
            FaultKind::AddressChange { .. } => "address_change",
        }
    }

    /// The one device it acts on, for kinds that act on one.
    pub fn device(&self) -> Option<&str> {
        match self {
            FaultKind::Offline(d)
            | FaultKind::Online(d)
            | FaultKind::Crash(d)
            | FaultKind::Restart(d)
            | FaultKind::PowerCut(d)
            | FaultKind::DiskFull(d)
            | FaultKind::DiskFreed(d)
            | FaultKind::AddressChange { device: d, .. } => Some(d),
            _ => None,
        }
    }
}

impl Fault {
    /// The line the trace writes for it: its TOML, one line.
    pub fn to_line(&self) -> String {
        toml::to_string(self)
            .unwrap_or_default()
            .replace('\n', "; ")
    }
}

const KINDS: &str = "partition, heal, cut, restore, offline, online, crash, restart, \
                     power_cut, disk_full, disk_freed, network, address_change";

fn is_false(b: &bool) -> bool {
    !*b
}

/// A fault as the file writes it: one optional field per kind, exactly one of them set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultSpec {
    pub(super) at: SimDuration,
    /// Devices in different groups cannot reach each other; unlisted devices form one more group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) partition: Option<Vec<Vec<String>>>,
    /// Lifts partitions and cuts, brings devices online, restarts crashed ones, frees full
    /// disks; never what
    /// a fault marked `permanent` did (nor does the end-of-workload heal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) heal: Option<bool>,
    /// `[from, to]`: datagrams from `from` to `to` are lost (one way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cut: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) restore: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) offline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) online: Option<String>,
    /// The device's node is dropped with all in-flight state; its store survives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) crash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) restart: Option<String>,
    /// A crash that also takes back what the device's store had not made durable: events
    /// received since its last own append, as SQLite's `synchronous = NORMAL` may lose them
    /// (its own events commit with FULL, which makes every earlier commit durable too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) power_cut: Option<String>,
    /// Every insert into the device's store fails, as on a full disk, until `disk_freed` or
    /// a heal (`store.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) disk_full: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) disk_freed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) network: Option<LinkSpec>,
    /// The device moves to a new address (`address`, or the world's next fresh one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) address_change: Option<String>,
    /// With `address_change` only: where the device moves (`"192.168.1.20:9000"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) address: Option<SocketAddr>,
    /// Survives every heal, mid-run `heal = true` and the end of the workload (to break a
    /// world on purpose).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(super) permanent: bool,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Fault, String> {
        let pair = |p: Vec<String>, what: &str| match <[String; 2]>::try_from(p) {
            Ok([from, to]) if from != to => Ok((from, to)),
            _ => Err(format!("{what}: needs [from, to], two different devices")),
        };
        let mut kinds = Vec::new();
        if let Some(groups) = spec.partition {
            kinds.push(FaultKind::Partition(groups));
        }
        match spec.heal {
            Some(true) => kinds.push(FaultKind::Heal),
            Some(false) => return Err("`heal = false` does nothing: leave the fault out".into()),
            None => {}
        }
        if let Some(p) = spec.cut {
            let (from, to) = pair(p, "cut")?;
            kinds.push(FaultKind::Cut { from, to });
        }
        if let Some(p) = spec.restore {
            let (from, to) = pair(p, "restore")?;
            kinds.push(FaultKind::Restore { from, to });
        }
        for (device, make) in [
            (spec.offline, FaultKind::Offline as fn(String) -> FaultKind),
            (spec.online, FaultKind::Online),
            (spec.crash, FaultKind::Crash),
            (spec.restart, FaultKind::Restart),
            (spec.power_cut, FaultKind::PowerCut),
            (spec.disk_full, FaultKind::DiskFull),
            (spec.disk_freed, FaultKind::DiskFreed),
        ] {
            if let Some(device) = device {
                kinds.push(make(device));
            }
        }
        if let Some(link) = spec.network {
            kinds.push(FaultKind::Network(Box::new(link)));
        }
        match (spec.address_change, spec.address) {
            (Some(device), address) => kinds.push(FaultKind::AddressChange { device, address }),
            (None, Some(_)) => return Err("`address` belongs with `address_change`".into()),
            (None, None) => {}
        }
        if kinds.len() != 1 {
            return Err(format!("needs exactly one of {KINDS}"));
        }
        Ok(Fault {
            at: spec.at,
            kind: kinds.pop().expect("one"),
            permanent: spec.permanent,
        })
    }
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> FaultSpec {
        let mut spec = FaultSpec {
            at: fault.at,
            permanent: fault.permanent,
            ..FaultSpec::default()
        };
        match fault.kind {
            FaultKind::Partition(groups) => spec.partition = Some(groups),
            FaultKind::Heal => spec.heal = Some(true),
            FaultKind::Cut { from, to } => spec.cut = Some(vec![from, to]),
            FaultKind::Restore { from, to } => spec.restore = Some(vec![from, to]),
            FaultKind::Offline(d) => spec.offline = Some(d),
            FaultKind::Online(d) => spec.online = Some(d),
            FaultKind::Crash(d) => spec.crash = Some(d),
            FaultKind::Restart(d) => spec.restart = Some(d),
            FaultKind::PowerCut(d) => spec.power_cut = Some(d),
            FaultKind::DiskFull(d) => spec.disk_full = Some(d),
            FaultKind::DiskFreed(d) => spec.disk_freed = Some(d),
            FaultKind::Network(link) => spec.network = Some(*link),
            FaultKind::AddressChange { device, address } => {
                spec.address_change = Some(device);
                spec.address = address;
            }
        }
        spec
    }
}
