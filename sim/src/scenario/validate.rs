//! What the scenario types cannot say: known device names, rates within 0..1, one action per
//! fault, faults within the duration. Each error names its field.

use std::collections::BTreeSet;

use meshlog_core::DeviceId;

use super::clock::{CLOCK_DRIFT_PPM_MAX, CLOCK_OFFSET_MAX_US};
use super::fault::{Fault, FaultKind};
use super::link::LinkSpec;
use super::member::MemberAction;
use super::topology::Topology;
use super::world::StoreKind;
use super::{Invalid, Known, Scenario, ScenarioError};

/// The shortest `every` of a hostile member: bounds the world's work per virtual second.
const HOSTILE_EVERY_MIN_US: u64 = 10_000;

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
    if link.capacity_bytes_per_s == Some(0) {
        return Err(invalid(
            &format!("{field}.capacity_bytes_per_s"),
            "must be more than 0 (leave it out for no limit)".into(),
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
    fault: &Fault,
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
    let name = format!("{field}.{}", fault.kind.name());
    if let Some(device) = fault.kind.device() {
        known(&name, device)?;
    }
    match &fault.kind {
        FaultKind::PowerCut(_) if scenario.world.store == StoreKind::Sqlite => {
            // A process cannot cut its own power: SQLite keeps every commit through a crash,
            // and what `synchronous = NORMAL` may lose to a power cut is modelled by the
            // memory store.
            return Err(invalid(
                &name,
                "a power cut needs `[world] store = \"memory\"`: the SQLite world's crashes \
                 keep every commit, and its losses to a power cut are what the memory store \
                 models"
                    .into(),
            ));
        }
        FaultKind::Partition(groups) => {
            let mut listed = BTreeSet::new();
            for device in groups.iter().flatten() {
                known(&name, device)?;
                if !listed.insert(device) {
                    return Err(invalid(&name, format!("{device:?} is in two groups")));
                }
            }
        }
        FaultKind::Cut { from, to } | FaultKind::Restore { from, to } => {
            known(&name, from)?;
            known(&name, to)?;
        }
        FaultKind::Network(link) => {
            let one_link = link.from.is_some() || link.to.is_some();
            validate_link(link, &name, one_link, known, invalid)?;
        }
        _ => {}
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
            let named = matches!(
                &fault.kind,
                FaultKind::Offline(d) | FaultKind::Online(d) | FaultKind::Crash(d)
                    | FaultKind::Restart(d) | FaultKind::PowerCut(d) if d == name
            );
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

pub(crate) fn validate_clocks(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    let mut listed = std::collections::BTreeSet::new();
    for (i, clock) in scenario.clocks.iter().enumerate() {
        let field = format!("clock[{i}]");
        known(&format!("{field}.device"), &clock.device)?;
        if !listed.insert(clock.device.as_str()) {
            return Err(invalid(
                &format!("{field}.device"),
                format!("{:?} has two clocks", clock.device),
            ));
        }
        if clock.offset.micros.unsigned_abs() > CLOCK_OFFSET_MAX_US {
            return Err(invalid(
                &format!("{field}.offset"),
                format!("{} is more than 30 days off", clock.offset),
            ));
        }
        if clock.drift_ppm.abs() > CLOCK_DRIFT_PPM_MAX {
            return Err(invalid(
                &format!("{field}.drift_ppm"),
                format!(
                    "{} ppm: at most ±{CLOCK_DRIFT_PPM_MAX} (10%)",
                    clock.drift_ppm
                ),
            ));
        }
    }
    Ok(())
}

/// `[world] admins` and `[[member]]`: known devices, changes within the duration, made by a
/// genesis admin by default, never by or on a hostile member (it runs no node), and no
/// device removed twice.
pub(crate) fn validate_members(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    if let Some(admins) = &scenario.world.admins {
        if admins.is_empty() {
            return Err(invalid(
                "world.admins",
                "name at least one admin, or leave it out (the first device)".into(),
            ));
        }
        let mut listed = BTreeSet::new();
        for admin in admins {
            known("world.admins", admin)?;
            if !listed.insert(admin) {
                return Err(invalid(
                    "world.admins",
                    format!("{admin:?} is listed twice"),
                ));
            }
        }
    }
    if let Some(admin) = scenario.admins().iter().find(|a| scenario.is_outsider(a)) {
        return Err(invalid(
            "world.admins",
            format!("{admin:?} joins with an invite: it cannot be a genesis admin"),
        ));
    }
    let hostile = |name: &str| scenario.hostiles.iter().any(|h| h.device == name);
    let mut removed = BTreeSet::new();
    for (i, change) in scenario.members.iter().enumerate() {
        let field = format!("member[{i}]");
        if change.at > scenario.duration {
            return Err(invalid(
                &format!("{field}.at"),
                format!(
                    "{} is after the duration {} (changes are made during the workload)",
                    change.at, scenario.duration
                ),
            ));
        }
        if let Some(by) = &change.by {
            known(&format!("{field}.by"), by)?;
        }
        let by = scenario.member_by(change);
        let name = format!("{field}.{}", change.action.name());
        if let Some(device) = change.action.device() {
            known(&name, device)?;
            if hostile(device) {
                return Err(invalid(
                    &name,
                    format!("{device:?} is hostile: it is no member a roster change can name"),
                ));
            }
        }
        if hostile(&by) {
            return Err(invalid(
                &format!("{field}.by"),
                format!("{by:?} is hostile: it runs no node to make the change"),
            ));
        }
        if let MemberAction::Remove(device) = &change.action {
            if *device == by {
                return Err(invalid(&name, format!("{by:?} cannot remove itself")));
            }
            if !removed.insert(device.clone()) {
                return Err(invalid(&name, format!("{device:?} is removed twice")));
            }
        }
        if matches!(change.action, MemberAction::StealKeys(_))
            && scenario.sync.key_retention.is_none()
        {
            return Err(invalid(
                &name,
                "a theft is judged against `[sync] key_retention`: set it (without one a \
                 device keeps every key, and its keys open everything it ever held)"
                    .into(),
            ));
        }
        super::join::validate_join(scenario, i, change, &name, invalid)?;
    }
    Ok(())
}

impl Scenario {
    /// Checks what the types cannot: names, ranges, one action per fault.
    pub fn validate(&self, origin: &str) -> Result<(), ScenarioError> {
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            path: origin.to_owned(),
            field: field.to_owned(),
            message,
        };
        if self.devices.is_empty() {
            return Err(invalid("devices", "at least one device is needed".into()));
        }
        let mut seen = BTreeSet::new();
        for name in &self.devices {
            if DeviceId::new(name).is_none() {
                return Err(invalid(
                    "devices",
                    format!("{name:?} is not a device name (1-32 of a-z, 0-9, - and _)"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(invalid("devices", format!("{name:?} is listed twice")));
            }
        }
        let known = |field: &str, name: &str| {
            if seen.contains(name) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!(
                        "unknown device {name:?} (devices: {})",
                        self.devices.join(", ")
                    ),
                ))
            }
        };
        if self.duration.as_micros() == 0 {
            return Err(invalid("duration", "must be more than 0s".into()));
        }
        validate_link(&self.network, "network", false, &known, &invalid)?;
        for (i, link) in self.links.iter().enumerate() {
            validate_link(link, &format!("link[{i}]"), true, &known, &invalid)?;
        }
        let w = &self.workload;
        percent(
            w.attachment_percent,
            "workload.attachment_percent",
            &invalid,
        )?;
        percent(w.reaction_percent, "workload.reaction_percent", &invalid)?;
        if w.attachment_bytes_min > w.attachment_bytes_max
            || w.attachment_bytes_max as usize > meshlog_core::event::FILE_SIZE_MAX
        {
            return Err(invalid(
                "workload.attachment_bytes_max",
                format!(
                    "{}..{} bytes: need min <= max <= {}",
                    w.attachment_bytes_min,
                    w.attachment_bytes_max,
                    meshlog_core::event::FILE_SIZE_MAX
                ),
            ));
        }
        for name in w.devices.iter().flatten() {
            known("workload.devices", name)?;
        }
        for (i, batch) in w.batches.iter().enumerate() {
            let field = format!("workload.batch[{i}]");
            known(&format!("{field}.device"), &batch.device)?;
            if batch.at > self.duration {
                return Err(invalid(
                    &format!("{field}.at"),
                    format!("{} is after the duration {}", batch.at, self.duration),
                ));
            }
        }
        for (i, file) in w.files.iter().enumerate() {
            let field = format!("workload.file[{i}]");
            known(&format!("{field}.device"), &file.device)?;
            for name in &file.forged_by {
                known(&format!("{field}.forged_by"), name)?;
            }
            if file.at > self.duration {
                return Err(invalid(
                    &format!("{field}.at"),
                    format!("{} is after the duration {}", file.at, self.duration),
                ));
            }
            if file.size_bytes == 0 || file.size_bytes > super::FILE_SIZE_BYTES_MAX {
                return Err(invalid(
                    &format!("{field}.size_bytes"),
                    format!(
                        "{}: need 1 to {}",
                        file.size_bytes,
                        super::FILE_SIZE_BYTES_MAX
                    ),
                ));
            }
        }
        for (i, fault) in self.faults.iter().enumerate() {
            validate_fault(fault, &format!("fault[{i}]"), self, &known, &invalid)?;
        }
        validate_hostiles(self, &known, &invalid)?;
        validate_clocks(self, &known, &invalid)?;
        validate_members(self, &known, &invalid)?;
        validate_topology(self, &known, &invalid)?;
        super::net::validate_net(self, &known, &invalid)?;
        let e = &self.expect;
        for (field, bound) in [
            ("expect.bytes_per_event_max", e.bytes_per_event_max),
            ("expect.rounds_to_converge_max", e.rounds_to_converge_max),
        ] {
            if bound.is_some_and(|b| !(b.is_finite() && b > 0.0)) {
                return Err(invalid(
                    field,
                    format!("{} is not a bound (a number above 0)", bound.unwrap_or(0.0)),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    #[test]
    fn bad_member_changes_name_the_field() {
        for (body, field, says) in [
            (
                "at = \"1m\"\nremove = \"zed\"",
                "member[0].remove",
                "unknown device",
            ),
            (
                "at = \"1m\"\nremove = \"b\"\nrotate = true",
                "member[0]",
                "exactly one",
            ),
            ("at = \"1m\"", "member[0]", "exactly one"),
            ("at = \"1m\"\nrotate = false", "member[0]", "does nothing"),
            ("at = \"1m\"\nadd = \"b\"", "member[0]", "not supported"),
            (
                "at = \"9m\"\nrotate = true",
                "member[0].at",
                "after the duration",
            ),
            (
                "at = \"1m\"\nrotate = true\nby = \"zed\"",
                "member[0].by",
                "unknown device",
            ),
            (
                "at = \"1m\"\nremove = \"a\"",
                "member[0].remove",
                "cannot remove itself",
            ),
            (
                "at = \"1m\"\nset_role = { device = \"b\", role = \"boss\" }",
                "member[0]",
                "unknown variant",
            ),
            (
                "at = \"1m\"\nrotate = true\ncolour = 1",
                "member[0]",
                "unknown field",
            ),
        ] {
            let text = format!(
                "name = \"s\"\nduration = \"5m\"\ndevices = [\"a\", \"b\"]\n[[member]]\n{body}\n"
            );
            let err = Scenario::parse(&text, "s.toml").unwrap_err().to_string();
            assert!(err.contains(field) && err.contains(says), "{body}: {err}");
            assert!(err.starts_with("s.toml"), "{err}");
        }
        let admins = "name = \"s\"\nduration = \"5m\"\ndevices = [\"a\", \"b\"]\n\
                      [world]\nadmins = [\"zed\"]\n";
        let err = Scenario::parse(admins, "s.toml").unwrap_err().to_string();
        assert!(
            err.contains("world.admins") && err.contains("unknown device"),
            "{err}"
        );
        let good = "name = \"s\"\nduration = \"5m\"\ndevices = [\"a\", \"b\", \"c\"]\n\
                    [world]\nadmins = [\"b\"]\n[[member]]\nat = \"1m\"\nremove = \"a\"\n\
                    [[member]]\nat = \"2m\"\nset_role = { device = \"c\", role = \"admin\" }\n";
        let scenario = Scenario::parse(good, "s.toml").unwrap();
        assert_eq!(scenario.member_by(&scenario.members[0]), "b");
        assert_eq!(
            Scenario::parse(&scenario.to_toml(), "again.toml").unwrap(),
            scenario,
            "a scenario with members writes back as it reads"
        );
    }

    #[test]
    fn bad_clocks_name_the_field() {
        for (body, field) in [
            ("device = \"zed\"", "clock[0].device"),
            ("device = \"a\"\noffset = \"-45d\"", "clock[0].offset"),
            ("device = \"a\"\ndrift_ppm = 200000", "clock[0].drift_ppm"),
            ("device = \"a\"\noffset = \"-x\"", "clock[0].offset"),
        ] {
            let text =
                format!("name = \"s\"\nduration = \"1m\"\ndevices = [\"a\"]\n[[clock]]\n{body}\n");
            let err = Scenario::parse(&text, "s.toml").unwrap_err().to_string();
            assert!(err.contains(field), "{body}: {err}");
            assert!(err.starts_with("s.toml"), "{err}");
        }
    }
}
