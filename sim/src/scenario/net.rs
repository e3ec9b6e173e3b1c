//! Where devices are and whom they know: `[[lan]]` broadcast domains, `[knows]` (which peers'
//! addresses a device starts with, over the topology's), `[world] strangers` and the
//! `address_change` fault's addresses.
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
                        "{addr}: 10.0.0.0/16 and 10.1.0.0/16 are the world's own, and port 0 \
                         is none"
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
             [[fault]]\nat = \"10s\"\naddress_change = \"b\"\n\
             [[fault]]\nat = \"20s\"\naddress_change = \"c\"\naddress = \"192.168.1.9:4000\"\n",
        )
        .expect("valid");
        assert_eq!(
            good.configured_peers(0),
            vec![vec![], vec![], vec![0], vec![]]
        );
        assert_eq!(good.lan_members(), vec![vec![0, 1, 3]]);
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
