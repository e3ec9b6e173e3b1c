//! What the scenario types cannot say: known device names, rates within 0..1, one action per
//! fault, faults within the duration. Each error names its field.

use std::collections::BTreeSet;

use crate::scenario::{FaultSpec, LinkSpec, Scenario, ScenarioError, StoreKind, Topology};

/// The shortest `every` of a hostile member: bounds the world's work per virtual second.
const HOSTILE_EVERY_MIN_US: u64 = 10_000;

pub(crate) type Invalid<'a> = dyn Fn(&str, String) -> ScenarioError + 'a;
pub(crate) type Known<'a> = dyn Fn(&str, &str) -> Result<(), ScenarioError> + 'a;

pub(crate) fn percent(value: u32, field: &str, invalid: &Invalid<'_>) -> Result<(), ScenarioError> {
    if value > 100 {
        return Err(invalid(
            field,
            format!("{value} is not a percentage (0 to 100)"),
        ));
    }
    Ok(())
}

fn rate(value: Option<f64>, field: &str, invalid: &Invalid<'_>) -> Result<(), ScenarioError> {
    match value {
        Some(v) if !(0.0..=1.0).contains(&v) => Err(invalid(
            field,
            format!("{v} is not a rate (0.0 to 1.0; 0.3 means 30%)"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn validate_link(
    link: &LinkSpec,
    field: &str,
    one_link: bool,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    match (&link.from, &link.to, one_link) {
        (Some(from), Some(to), true) => {
            known(&format!("{field}.from"), from)?;
            known(&format!("{field}.to"), to)?;
            if from == to {
                return Err(invalid(field, format!("a link from {from:?} to itself")));
            }
        }
        (_, _, true) => return Err(invalid(field, "a link needs both `from` and `to`".into())),
        (None, None, false) if !link.both => {}
        _ => {
            return Err(invalid(
                field,
                "`from`, `to` and `both` belong in [[link]]".into(),
            ))
        }
    }
    rate(link.loss, &format!("{field}.loss"), invalid)?;
    rate(link.duplicate, &format!("{field}.duplicate"), invalid)?;
    rate(link.reorder, &format!("{field}.reorder"), invalid)?;
    rate(link.corrupt, &format!("{field}.corrupt"), invalid)?;
    rate(link.replay, &format!("{field}.replay"), invalid)?;
    rate(link.forge, &format!("{field}.forge"), invalid)?;
    if link.replay_delay.is_some_and(|d| d.as_micros() == 0) {
        return Err(invalid(
            &format!("{field}.replay_delay"),
            "must be more than 0s (a copy at once is `duplicate`)".into(),
        ));
    }
    if let Some(burst) = &link.burst {
        rate(Some(burst.enter), &format!("{field}.burst.enter"), invalid)?;
        rate(Some(burst.exit), &format!("{field}.burst.exit"), invalid)?;
        rate(Some(burst.loss), &format!("{field}.burst.loss"), invalid)?;
    }
    if let Some(latency) = &link.latency {
        if latency.min > latency.max {
            return Err(invalid(
                &format!("{field}.latency"),
                format!("min {} is more than max {}", latency.min, latency.max),
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_fault(
    fault: &FaultSpec,
    field: &str,
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    if fault.at > scenario.duration {
        return Err(invalid(
            &format!("{field}.at"),
            format!(
                "{} is after the duration {} (every fault heals then)",
                fault.at, scenario.duration
            ),
        ));
    }
    let actions = [
        fault.partition.is_some(),
        fault.heal.is_some(),
        fault.cut.is_some(),
        fault.restore.is_some(),
        fault.offline.is_some(),
        fault.online.is_some(),
        fault.crash.is_some(),
        fault.restart.is_some(),
        fault.power_cut.is_some(),
        fault.disk_full.is_some(),
        fault.disk_freed.is_some(),
        fault.network.is_some(),
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        return Err(invalid(
            field,
            "needs exactly one of partition, heal, cut, restore, offline, online, crash, \
             restart, power_cut, disk_full, disk_freed, network"
                .into(),
        ));
    }
    if fault.power_cut.is_some() && scenario.world.store == StoreKind::Sqlite {
        // A process cannot cut its own power: SQLite keeps every commit through a crash, and
        // what `synchronous = NORMAL` may lose to a power cut is modelled by the memory store.
        return Err(invalid(
            &format!("{field}.power_cut"),
            "a power cut needs `[world] store = \"memory\"`: the SQLite world's crashes \
             keep every commit, and its losses to a power cut are what the memory store models"
                .into(),
        ));
    }
    if let Some(groups) = &fault.partition {
        let mut listed = BTreeSet::new();
        for name in groups.iter().flatten() {
            known(&format!("{field}.partition"), name)?;
            if !listed.insert(name) {
                return Err(invalid(
                    &format!("{field}.partition"),
                    format!("{name:?} is in two groups"),
                ));
            }
        }
    }
    for (what, pair) in [("cut", &fault.cut), ("restore", &fault.restore)] {
        if let Some(pair) = pair {
            let name = format!("{field}.{what}");
            if pair.len() != 2 || pair[0] == pair[1] {
                return Err(invalid(
                    &name,
                    "needs [from, to], two different devices".into(),
                ));
            }
            known(&name, &pair[0])?;
            known(&name, &pair[1])?;
        }
    }
    for (what, device) in [
        ("offline", &fault.offline),
        ("online", &fault.online),
        ("crash", &fault.crash),
        ("restart", &fault.restart),
        ("power_cut", &fault.power_cut),
        ("disk_full", &fault.disk_full),
        ("disk_freed", &fault.disk_freed),
    ] {
        if let Some(device) = device {
            known(&format!("{field}.{what}"), device)?;
        }
    }
    if let Some(link) = &fault.network {
        let one_link = link.from.is_some() || link.to.is_some();
        validate_link(link, &format!("{field}.network"), one_link, known, invalid)?;
    }
    Ok(())
}

/// Hostile members: known, once each, with peers, a sane pace, and neither posting nor named
/// by faults that would start its node (it has none).
pub(crate) fn validate_hostiles(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    let mut listed = BTreeSet::new();
    for (i, hostile) in scenario.hostiles.iter().enumerate() {
        let field = format!("hostile[{i}]");
        known(&format!("{field}.device"), &hostile.device)?;
        if !listed.insert(hostile.device.as_str()) {
            return Err(invalid(
                &format!("{field}.device"),
                format!("{:?} is hostile twice", hostile.device),
            ));
        }
        if scenario.devices.len() < 2 {
            return Err(invalid(
                &format!("{field}.device"),
                "a hostile member needs peers to attack".into(),
            ));
        }
        if hostile.every.as_micros() < HOSTILE_EVERY_MIN_US {
            return Err(invalid(
                &format!("{field}.every"),
                format!("{} is less than 10ms", hostile.every),
            ));
        }
        if hostile.kinds.is_empty() {
            return Err(invalid(
                &format!("{field}.kinds"),
                "name at least one of summary, digest, filter_empty, filter_full".into(),
            ));
        }
        let name = &hostile.device;
        let posts = scenario
            .workload
            .devices
            .iter()
            .flatten()
            .any(|d| d == name)
            || scenario.workload.batches.iter().any(|b| &b.device == name);
        if posts {
            return Err(invalid(
                "workload",
                format!("{name:?} is hostile: it runs no node to post with"),
            ));
        }
        for (j, fault) in scenario.faults.iter().enumerate() {
            let named = [
                &fault.offline,
                &fault.online,
                &fault.crash,
                &fault.restart,
                &fault.power_cut,
            ]
            .into_iter()
            .any(|d| d.as_ref() == Some(name));
            if named {
                return Err(invalid(
                    &format!("fault[{j}]"),
                    format!("{name:?} is hostile: it runs no node to fault"),
                ));
            }
        }
    }
    Ok(())
}

/// The topology fits the roster, and no device gets more peers than a node takes
/// (`PEERS_MAX`: a large world needs a sparse topology).
pub(crate) fn validate_topology(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    topology_fits_roster(scenario, known, invalid)?;
    let most = meshlog_core::config::PEERS_MAX;
    let too_many = match scenario.topology {
        // Drawn from the seed: only its floor is known here.
        Topology::Random(degree) => (degree > most).then(|| (degree, "each device".to_owned())),
        _ => {
            let mut degrees = vec![0; scenario.devices.len()];
            for (a, b) in scenario.topology.links(&scenario.devices, 0) {
                degrees[a] += 1;
                degrees[b] += 1;
            }
            let mut named = degrees.into_iter().zip(&scenario.devices);
            named
                .find(|(degree, _)| *degree > most)
                .map(|(degree, name)| (degree, name.clone()))
        }
    };
    match too_many {
        Some((degree, who)) => Err(invalid(
            "topology",
            format!(
                "{degree} peers for {who}: a node takes at most {most}; a large world needs \
                 random, ring, line or edges"
            ),
        )),
        None => Ok(()),
    }
}

/// A random graph's degree fits the roster; edges name two different known devices.
fn topology_fits_roster(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    let n = scenario.devices.len();
    match &scenario.topology {
        Topology::Random(degree) if *degree == 0 || *degree >= n => Err(invalid(
            "topology.random",
            format!(
                "{degree} peers each: needs 1 to {} with {n} devices",
                n.saturating_sub(1)
            ),
        )),
        Topology::Edges(edges) => {
            for (i, [a, b]) in edges.iter().enumerate() {
                let field = format!("topology.edges[{i}]");
                known(&field, a)?;
                known(&field, b)?;
                if a == b {
                    return Err(invalid(&field, format!("a link from {a:?} to itself")));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
