//! Where devices are and whom they know: `[[lan]]` broadcast domains, `[[nat]]` boxes,
//! `[knows]` (which peers' addresses a device starts with, over the topology's), `[world]
//! strangers` and the `address_change` fault's addresses.
//!
//! ```toml
//! topology = "none"                      # nobody starts knowing anybody ...
//! [knows]                                # ... but these (one way: carol knows alice's address)
//! carol = ["alice"]
//! [[lan]]                                # one local link: each announces itself to the others
//! devices = ["alice", "bob", "eve"]
//! [world]
//! strangers = ["eve"]                    # of another community, on the café Wi-Fi
//! peer_exchange = true                   # address records travel with the sync
//! [[nat]]                                # bob's home router (`kernel/nat.rs`)
//! kind = "endpoint-independent"          # or "symmetric"
//! devices = ["bob"]
//! mapping_timeout = "30s"
//! ```

use std::collections::BTreeSet;

use super::fault::FaultKind;
use super::lan::is_reserved;
use super::{Invalid, Known, Scenario, ScenarioError};

impl Scenario {
    /// A device of another community (`[world] strangers`).
    pub fn is_stranger(&self, name: &str) -> bool {
        self.world.strangers.iter().any(|s| s == name)
    }

    /// Each device's configured peers, by index, in index order: `[knows]` where it names the
    /// device, the topology's links otherwise. `seed`: the run's (a random topology draws).
    pub fn configured_peers(&self, seed: u64) -> Vec<Vec<usize>> {
        let mut peers = self.topology.peer_lists(&self.devices, seed);
        let at = |name: &String| self.devices.iter().position(|d| d == name);
        for (device, knows) in &self.knows {
            if let Some(i) = at(device) {
                peers[i] = knows.iter().filter_map(at).collect();
                peers[i].sort_unstable();
            }
        }
        peers
    }

    /// Per device, the index of the `[[nat]]` it is behind, if any.
    pub fn nat_of(&self) -> Vec<Option<usize>> {
        let mut behind = vec![None; self.devices.len()];
        for (n, nat) in self.nats.iter().enumerate() {
            for name in &nat.devices {
                if let Some(i) = self.devices.iter().position(|d| d == name) {
                    behind[i] = Some(n);
                }
            }
        }
        behind
    }

    /// The LANs, as device indices.
    pub fn lan_members(&self) -> Vec<Vec<usize>> {
        let at = |name: &String| self.devices.iter().position(|d| d == name);
        self.lans
            .iter()
            .map(|lan| lan.devices.iter().filter_map(at).collect())
            .collect()
    }
}

/// `[[lan]]`, `[knows]`, `[world] strangers` and the addresses `address_change` gives.
pub(crate) fn validate_net(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    for (i, lan) in scenario.lans.iter().enumerate() {
        let field = format!("lan[{i}].devices");
        let mut listed = BTreeSet::new();
        for device in &lan.devices {
            known(&field, device)?;
            if !listed.insert(device) {
                return Err(invalid(&field, format!("{device:?} is listed twice")));
            }
        }
        if listed.len() < 2 {
            return Err(invalid(&field, "a local link needs two devices".into()));
        }
    }
    for (device, peers) in &scenario.knows {
        let field = format!("knows.{device}");
        known("knows", device)?;
        let mut listed = BTreeSet::new();
        for peer in peers {
            known(&field, peer)?;
            if peer == device || !listed.insert(peer) {
                return Err(invalid(&field, format!("{peer:?}: itself or twice")));
            }
        }
        if peers.len() > meshlog_core::config::PEERS_MAX {
            return Err(invalid(&field, "more peers than a node takes".into()));
        }
    }
    validate_strangers(scenario, known, invalid)?;
    validate_nats(scenario, known, invalid)?;
    let mut given = BTreeSet::new();
    for (i, fault) in scenario.faults.iter().enumerate() {
        if let FaultKind::AddressChange {
            address: Some(addr),
            ..
        } = &fault.kind
        {
            let field = format!("fault[{i}].address");
            if is_reserved(addr) || addr.port() == 0 {
                return Err(invalid(
                    &field,
                    format!(
                        "{addr}: 10.0.0.0/16, 10.1.0.0/16 and 10.2.0.0/16 are the world's \
                         own, and port 0 is none"
                    ),
                ));
            }
            if !given.insert(*addr) {
                return Err(invalid(&field, format!("{addr} is given twice")));
            }
        }
    }
    Ok(())
}

/// NAT boxes at most: each takes one public address of `10.2.0.0/16`.
pub const NATS_MAX: usize = 1_000;

/// `[[nat]]`: known devices, each behind one box at most; a mapping timeout between 100 ms and
/// an hour; nobody behind a box whose datagrams the world sends by name rather than routes
/// (a hostile member, a device yet to join).
fn validate_nats(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    if scenario.nats.len() > NATS_MAX {
        return Err(invalid("nat", format!("more than {NATS_MAX} boxes")));
    }
    let outsiders = scenario.outsiders();
    let mut behind = BTreeSet::new();
    for (i, nat) in scenario.nats.iter().enumerate() {
        let field = format!("nat[{i}].devices");
        if nat.devices.is_empty() {
            return Err(invalid(&field, "a box with nobody behind it".into()));
        }
        for device in &nat.devices {
            known(&field, device)?;
            if !behind.insert(device) {
                return Err(invalid(&field, format!("{device:?} is behind two boxes")));
            }
            let hostile = scenario.hostiles.iter().any(|h| &h.device == device);
            if hostile || outsiders.contains(&device.as_str()) {
                return Err(invalid(
                    &field,
                    format!(
                        "{device:?}: a hostile member's or a joiner's datagrams are not routed, \
                         so it cannot be behind a box"
                    ),
                ));
            }
        }
        let timeout = nat.mapping_timeout.0.as_micros();
        if !(100_000..=3_600_000_000).contains(&timeout) {
            return Err(invalid(
                &format!("nat[{i}].mapping_timeout"),
                "between 100ms and 1h".into(),
            ));
        }
    }
    Ok(())
}

/// Strangers: known, once each, nobody's configured peer and none of their own, and no part of
/// this community's life (admins, hostiles, joins, roster changes, posting).
fn validate_strangers(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    let field = "world.strangers";
    let mut listed = BTreeSet::new();
    for stranger in &scenario.world.strangers {
        known(field, stranger)?;
        if !listed.insert(stranger) {
            return Err(invalid(field, format!("{stranger:?} is listed twice")));
        }
        let admin = scenario.admins().contains(stranger);
        let hostile = scenario.hostiles.iter().any(|h| &h.device == stranger);
        let member_change = scenario.members.iter().any(|m| {
            m.action.device() == Some(stranger.as_str()) || m.by.as_ref() == Some(stranger)
        });
        let posts = scenario
            .workload
            .devices
            .iter()
            .flatten()
            .any(|d| d == stranger)
            || scenario
                .workload
                .batches
                .iter()
                .any(|b| &b.device == stranger);
        let knows = scenario.knows.contains_key(stranger)
            || scenario.knows.values().flatten().any(|p| p == stranger);
        let linked = !matches!(scenario.topology, super::Topology::None)
            && scenario
                .topology
                .links(&scenario.devices, 0)
                .iter()
                .any(|&(a, b)| [a, b].iter().any(|&d| &scenario.devices[d] == stranger));
        let why = if admin {
            "an admin of this community"
        } else if hostile {
            "a hostile member"
        } else if member_change {
            "named by a [[member]] change"
        } else if posts {
            "posting to this community"
        } else if knows || linked {
            "a configured peer (in [knows] or the topology's links)"
        } else {
            continue;
        };
        return Err(invalid(
            field,
            format!("{stranger:?} is a stranger: it cannot be {why}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    fn parse(body: &str) -> Result<Scenario, String> {
        let text = format!(
            "name = \"s\"\nduration = \"1m\"\ndevices = [\"a\", \"b\", \"c\", \"e\"]\n\
             topology = \"none\"\n{body}"
        );
        Scenario::parse(&text, "s.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn lans_knows_and_strangers_read_back_and_name_their_errors() {
        let good = parse(
            "[knows]\nc = [\"a\"]\n[world]\nstrangers = [\"e\"]\npeer_exchange = true\n\
             [workload]\ndevices = [\"a\"]\n[[lan]]\ndevices = [\"a\", \"b\", \"e\"]\n\
             [[nat]]\nkind = \"symmetric\"\ndevices = [\"b\", \"c\"]\n\
             [[nat]]\nkind = \"endpoint-independent\"\ndevices = [\"a\"]\n\
             mapping_timeout = \"5s\"\n\
             [[fault]]\nat = \"10s\"\naddress_change = \"b\"\n\
             [[fault]]\nat = \"20s\"\naddress_change = \"c\"\naddress = \"192.168.1.9:4000\"\n",
        )
        .expect("valid");
        assert_eq!(
            good.configured_peers(0),
            vec![vec![], vec![], vec![0], vec![]]
        );
        assert_eq!(good.lan_members(), vec![vec![0, 1, 3]]);
        assert_eq!(good.nat_of(), vec![Some(1), Some(0), Some(0), None]);
        assert_eq!(good.nats[0].mapping_timeout.0.as_micros(), 30_000_000);
        assert!(good.is_stranger("e") && !good.is_stranger("a"));
        let again = Scenario::parse(&good.to_toml(), "again.toml").expect("writes back");
        assert_eq!(again, good);
        for (body, field, says) in [
            (
                "[[lan]]\ndevices = [\"a\"]\n",
                "lan[0].devices",
                "two devices",
            ),
            (
                "[[lan]]\ndevices = [\"a\", \"z\"]\n",
                "lan[0].devices",
                "unknown device",
            ),
            ("[knows]\na = [\"a\"]\n", "knows.a", "itself"),
            ("[knows]\nz = [\"a\"]\n", "knows", "unknown device"),
            ("[world]\nstrangers = [\"a\"]\n", "world.strangers", "admin"),
            (
                "[world]\nstrangers = [\"e\"]\n[knows]\nb = [\"e\"]\n",
                "world.strangers",
                "configured peer",
            ),
            (
                "[world]\nstrangers = [\"e\"]\n[workload]\ndevices = [\"e\"]\n",
                "world.strangers",
                "posting",
            ),
            (
                "[[fault]]\nat = \"1s\"\naddress_change = \"a\"\naddress = \"10.1.0.1:9000\"\n",
                "fault[0].address",
                "world's own",
            ),
            (
                "[[nat]]\nkind = \"symmetric\"\ndevices = [\"a\"]\n\
                 [[nat]]\nkind = \"symmetric\"\ndevices = [\"a\"]\n",
                "nat[1].devices",
                "two boxes",
            ),
            (
                "[[nat]]\nkind = \"full-cone\"\ndevices = [\"a\"]\n",
                "nat",
                "unknown variant",
            ),
            (
                "[[nat]]\nkind = \"symmetric\"\ndevices = [\"a\"]\nmapping_timeout = \"1ms\"\n",
                "nat[0].mapping_timeout",
                "100ms",
            ),
            (
                "[[nat]]\nkind = \"symmetric\"\ndevices = []\n",
                "nat[0].devices",
                "nobody",
            ),
            (
                "[[fault]]\nat = \"1s\"\ncrash = \"a\"\naddress = \"10.9.0.1:9000\"\n",
                "fault[0]",
                "belongs with",
            ),
        ] {
            let err = parse(body).expect_err(body);
            assert!(err.contains(field) && err.contains(says), "{body}: {err}");
        }
    }
}
