use std::collections::BTreeMap;
use std::path::Path;

use super::recorder::named_ids_for_tests as named_ids;
use super::sampling::Sampler;
use super::*;
use crate::{Outcome, Scenario, World, WorldOptions};
use meshlog_core::PacketNote;

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn sum_links(report: &RunReport) -> [BTreeMap<String, (u64, u64)>; 2] {
    let mut sent = BTreeMap::<String, (u64, u64)>::new();
    let mut delivered = BTreeMap::<String, (u64, u64)>::new();
    for row in &report.links {
        for (map, packets, bytes) in [
            (&mut sent, row.sent_packets, row.sent_bytes),
            (&mut delivered, row.delivered_packets, row.delivered_bytes),
        ] {
            if packets > 0 {
                let entry = map.entry(row.kind.clone()).or_default();
                entry.0 += packets;
                entry.1 += bytes;
            }
        }
    }
    [sent, delivered]
}

fn assert_report_matches(outcome: &Outcome, report: &RunReport) {
    let [sent, delivered] = sum_links(report);
    let traffic = |map: &BTreeMap<String, crate::report::Traffic>| -> BTreeMap<String, (u64, u64)> {
        map.iter()
            .map(|(kind, t)| (kind.clone(), (t.packets, t.bytes)))
            .collect()
    };
    assert_eq!(
        sent,
        traffic(&outcome.counters.sent),
        "{}",
        outcome.scenario
    );
    assert_eq!(
        delivered,
        traffic(&outcome.counters.delivered),
        "{}",
        outcome.scenario
    );
    let mut drops = BTreeMap::<String, u64>::new();
    for row in &report.links {
        for (cause, n) in &row.dropped {
            *drops.entry(cause.clone()).or_default() += n;
        }
    }
    assert_eq!(drops, outcome.counters.drops, "{}", outcome.scenario);
    assert!(
        report.links.iter().all(|row| row.kind != "?"),
        "every refusal is explained by the delivery being handled"
    );
    for (lane, device) in report.devices.iter().zip(&outcome.devices) {
        assert_eq!(lane.name, device.name);
        assert_eq!(
            lane.converged_at_us, device.converged_at_us,
            "{}",
            lane.name
        );
        let held = lane.events.last().map_or(0, |p| p.1);
        assert_eq!(held, device.events, "{}: events held at the end", lane.name);
    }
    assert_eq!(report.digest, outcome.digest);
    assert_eq!(report.passed, outcome.passed());
}

#[test]
fn per_link_counts_and_convergence_match_the_outcome() {
    // Loss and crashes; replays; hostile members: every way a datagram travels or dies.
    for name in [
        "crash-restart",
        "replay-storm",
        "hostile-member",
        "partition-heal",
    ] {
        let scenario = shipped(name);
        let (outcome, report) = crate::run_with_report(
            &scenario,
            5,
            None,
            Default::default(),
            ReportOptions::default(),
        )
        .unwrap();
        assert_report_matches(&outcome, &report);
        assert!(report.sequence.total > 0 && !report.sequence.arrows.is_empty());
        assert!(report.sequence.arrows.len() <= limits::ARROWS_MAX);
    }
}

#[test]
fn faults_and_states_are_on_the_timeline() {
    let scenario = shipped("crash-restart");
    let (_, report) = crate::run_with_report(
        &scenario,
        1,
        None,
        Default::default(),
        ReportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.faults.len(), scenario.faults.len());
    assert_eq!(report.faults[0].at_us, scenario.faults[0].at.as_micros());
    let states: Vec<&str> = report
        .devices
        .iter()
        .flat_map(|d| d.states.iter().map(|s| s.1))
        .collect();
    assert!(
        states.contains(&"crashed") && states.contains(&"offline"),
        "{states:?}"
    );
    assert_eq!(report.heal_at_us, Some(scenario.duration.as_micros()));
}

#[test]
fn a_report_does_not_change_the_digest() {
    let scenario = shipped("partition-heal");
    for seed in [1, 2] {
        let plain = crate::run(&scenario, seed, None).unwrap();
        let (with, _) = crate::run_with_report(
            &scenario,
            seed,
            None,
            Default::default(),
            ReportOptions::default(),
        )
        .unwrap();
        assert_eq!(plain.digest, with.digest, "seed {seed}");
    }
}

#[test]
fn a_failed_run_names_the_missing_ids_and_who_holds_them() {
    let text = r#"
name = "cut-off"
duration = "1m"
devices = ["alice", "bob", "carol"]
[workload]
messages_per_hour = 600
[[fault]]
at = "10s"
partition = [["carol"], ["alice", "bob"]]
permanent = true
[expect]
converged_within = "20s"
"#;
    let scenario = Scenario::parse(text, "inline").unwrap();
    let mut world = World::with_report(
        &scenario,
        3,
        None,
        WorldOptions::default(),
        Some(ReportOptions::default()),
    )
    .unwrap();
    world.run();
    let carol_lacks: Vec<String> = {
        let store = world.store(2).borrow();
        world
            .appended()
            .keys()
            .filter(|id| !matches!(meshlog_core::Store::get(&*store, id), Ok(Some(_))))
            .map(|id| id.to_string())
            .collect()
    };
    assert!(!carol_lacks.is_empty());
    let (recorder, missing) = world.take_report().unwrap();
    let outcome = world.finish();
    let report = recorder.finish(Summary::of(&outcome), missing);
    assert!(!report.passed);
    let carol = report.missing.iter().find(|m| m.device == "carol").unwrap();
    assert_eq!(carol.count, carol_lacks.len());
    let listed: Vec<&str> = carol.ids.iter().map(|m| m.id.as_str()).collect();
    let expected: Vec<&str> = carol_lacks
        .iter()
        .take(limits::MISSING_LISTED_MAX)
        .map(String::as_str)
        .collect();
    assert_eq!(listed, expected);
    for id in &carol.ids {
        assert!(!id.held_by.contains(&"carol".to_owned()));
        assert!(!id.held_by.is_empty(), "its author holds it");
        assert!(id.held_by.contains(&id.author));
    }
    // Eager push to carol was lost at the partition: at least one carrier says so.
    let fates: Vec<&str> = carol
        .ids
        .iter()
        .flat_map(|m| m.carriers.iter().filter(|c| c.to == "carol"))
        .map(|c| c.fate.as_str())
        .collect();
    assert!(fates.contains(&"lost: partition"), "{fates:?}");
    assert_report_matches(&outcome, &report);
}

#[test]
fn the_sampler_keeps_an_even_bounded_spread() {
    let mut sampler = Sampler::new(10);
    for i in 0..1000u64 {
        sampler.offer(|| i);
    }
    let (seen, stride, kept) = sampler.take();
    assert_eq!(seen, 1000);
    assert!(kept.len() <= 10 && kept.len() >= 5, "{kept:?}");
    assert!(kept.iter().all(|i| i % stride == 0));
    assert_eq!(kept[0], 0);
}

#[test]
fn notes_name_ids_and_windows_parse() {
    use meshlog_core::{NoteItem, Prefix, ShortId};
    let short = |n: u64| ShortId(n.to_be_bytes()[2..].try_into().unwrap());
    let events =
        |items, ids: &[u64]| PacketNote::new(items, ids.iter().map(|&n| NoteItem::Event(short(n))));
    let six = events(6, &[0xab, 0xffff, 0x1_0000_0000]);
    assert_eq!(
        six.to_string(),
        "ev 0000000000ab, ev 00000000ffff, ev 000100000000 +3 more"
    );
    assert_eq!(named_ids(&six), vec![0xab, 0xffff, 0x1_0000_0000]);
    assert_eq!(named_ids(&events(2, &[0xab, 0xffff])), vec![0xab, 0xffff]);
    let fresh = PacketNote::new(
        1,
        [NoteItem::Fresh {
            body: "message",
            id: short(0xac),
        }],
    );
    assert_eq!(fresh.to_string(), "message 0000000000ac");
    assert_eq!(named_ids(&fresh), vec![0xac]);
    let filter = NoteItem::Filter {
        prefix: Prefix::new(2, 0xb3).unwrap(),
        ids: 39,
        reply: true,
    };
    let filter = PacketNote::new(1, [filter]);
    assert_eq!(filter.to_string(), "b3* 39 ids reply");
    assert!(named_ids(&filter).is_empty());
    let w = ReportOptions::parse_window("1m..1m30s").unwrap();
    assert_eq!(
        (w.window_start.as_micros(), w.window_end.as_micros()),
        (60_000_000, 90_000_000)
    );
    assert!(ReportOptions::parse_window("30s..10s").is_err());
    assert!(ReportOptions::parse_window("30s").is_err());
}
