//! The page's network faults as the service keeps them: partition groups and one-way cuts
//! between named devices, and what each device must block to make them hold on real UDP.

use std::collections::BTreeSet;

use meshlog_net::Blocked;
use serde::Serialize;

use super::error::SimServiceError;

/// A one-way cut: datagrams from `from` to `to` are lost.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ts_rs::TS)]
pub struct Cut {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Every device in exactly one group; empty when not partitioned.
    groups: Vec<Vec<String>>,
    cuts: BTreeSet<Cut>,
}

impl Faults {
    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    pub fn cuts(&self) -> Vec<Cut> {
        self.cuts.iter().cloned().collect()
    }

    /// Checks `groups` against the device names: each device in exactly one group, no other
    /// name. `[]` (or one group of everyone) heals.
    pub fn set_groups(
        &mut self,
        devices: &[String],
        groups: Vec<Vec<String>>,
    ) -> Result<(), SimServiceError> {
        let mut seen = BTreeSet::new();
        for name in groups.iter().flatten() {
            if !devices.contains(name) {
                return Err(SimServiceError::Network(format!(
                    "groups: {name:?} is not a device of this demo"
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(SimServiceError::Network(format!(
                    "groups: {name:?} is in more than one group"
                )));
            }
        }
        if !groups.is_empty() && seen.len() != devices.len() {
            let missing: Vec<&String> = devices.iter().filter(|d| !seen.contains(*d)).collect();
            return Err(SimServiceError::Network(format!(
                "groups: every device must be in a group; missing {missing:?}"
            )));
        }
        let groups: Vec<Vec<String>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
        self.groups = if groups.len() > 1 { groups } else { Vec::new() };
        Ok(())
    }

    /// The older switch: the first device on one side, the rest on the other.
    pub fn set_partitioned(&mut self, devices: &[String], partitioned: bool) {
        self.groups = match devices.split_first() {
            Some((first, rest)) if partitioned && !rest.is_empty() => {
                vec![vec![first.clone()], rest.to_vec()]
            }
            _ => Vec::new(),
        };
    }

    pub fn set_cut(&mut self, from: &str, to: &str, cut: bool) {
        let link = Cut {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        if cut {
            self.cuts.insert(link);
        } else {
            self.cuts.remove(&link);
        }
    }

    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.cuts.contains(&Cut {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    fn group_of(&self, device: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.iter().any(|d| d == device))
    }

    /// Each device's group number (all 0 when healed), in `devices` order, for the world.
    pub fn group_numbers(&self, devices: &[String]) -> Vec<u32> {
        devices
            .iter()
            .map(|d| self.group_of(d).map_or(0, |g| g as u32 + 1))
            .collect()
    }

    /// What `device` must block of `peer` for the cuts and groups to hold.
    pub fn blocked(&self, device: &str, peer: &str) -> Blocked {
        let apart = self.group_of(device) != self.group_of(peer);
        Blocked {
            outbound: apart || self.is_cut(device, peer),
            inbound: apart || self.is_cut(peer, device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["alice", "bob", "carol"].map(String::from).to_vec()
    }

    #[test]
    fn groups_must_cover_every_device_once() {
        let mut faults = Faults::default();
        let g = |groups: &[&[&str]]| -> Vec<Vec<String>> {
            groups
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        assert!(faults
            .set_groups(&names(), g(&[&["alice"], &["bob"]]))
            .is_err());
        assert!(faults
            .set_groups(&names(), g(&[&["alice", "bob"], &["bob", "carol"]]))
            .is_err());
        assert!(faults
            .set_groups(&names(), g(&[&["alice", "bob"], &["mallory", "carol"]]))
            .is_err());
        faults
            .set_groups(&names(), g(&[&["alice", "bob"], &["carol"]]))
            .unwrap();
        assert_eq!(faults.group_numbers(&names()), [1, 1, 2]);
        assert!(faults.blocked("alice", "carol").inbound);
        assert_eq!(faults.blocked("alice", "bob"), Blocked::default());
        faults
            .set_groups(&names(), g(&[&["alice", "bob", "carol"]]))
            .unwrap();
        assert!(faults.groups().is_empty(), "one group is no partition");
    }

    #[test]
    fn a_one_way_cut_blocks_one_way_at_each_end() {
        let mut faults = Faults::default();
        faults.set_cut("alice", "carol", true);
        let at_alice = faults.blocked("alice", "carol");
        let at_carol = faults.blocked("carol", "alice");
        assert!(at_alice.outbound && !at_alice.inbound);
        assert!(at_carol.inbound && !at_carol.outbound);
        faults.set_cut("alice", "carol", false);
        assert_eq!(faults.blocked("alice", "carol"), Blocked::default());
    }
}
