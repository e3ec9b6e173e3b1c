//! Property: whatever the seed, 2–6 devices, loss 0–50%, duplication, reordering, partition
//! schedules, a device offline or crashed for a while, and workloads, every device converges after the heal and nothing is invented.
//! A failing case (after shrinking) is written out as a scenario file that `meshlog run`
//! replays; its path is in the failure message.

use std::path::PathBuf;

use meshlog_core::Duration;
use meshlog_sim::scenario::{Fault, FaultKind, LatencySpec, LinkSpec, SimDuration, WorkloadSpec};
use meshlog_sim::Scenario;
use proptest::prelude::*;

const DURATION_S: u64 = 120;

fn fault(at: SimDuration, kind: FaultKind) -> Fault {
    Fault {
        at,
        kind,
        permanent: false,
    }
}

fn secs(s: u64) -> SimDuration {
    SimDuration(Duration::from_secs(s))
}

/// A partition from `start_s` lasting `len_s`, each device in group `groups[i] % 3`.
#[derive(Clone, Debug)]
struct Partition {
    start_s: u64,
    len_s: u64,
    groups: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn build(
    devices: usize,
    loss_percent: u32,
    duplicate_percent: u32,
    reorder_percent: u32,
    messages_per_hour: u32,
    attachment_percent: u32,
    reaction_percent: u32,
    partitions: Vec<Partition>,
    outage: Option<Outage>,
    seed: u64,
) -> Scenario {
    let names: Vec<String> = (0..devices).map(|i| format!("d{i}")).collect();
    let mut scenario = base(names.clone());
    scenario.seed = seed;
    scenario.network = LinkSpec {
        latency: Some(LatencySpec {
            min: SimDuration::from_millis(1),
            max: SimDuration::from_millis(60),
        }),
        loss: Some(f64::from(loss_percent) / 100.0),
        duplicate: Some(f64::from(duplicate_percent) / 100.0),
        reorder: Some(f64::from(reorder_percent) / 100.0),
        ..LinkSpec::default()
    };
    scenario.workload = WorkloadSpec {
        messages_per_hour,
        attachment_percent,
        attachment_bytes_min: 100,
        attachment_bytes_max: 4_000,
        reaction_percent,
        devices: None,
        batches: Vec::new(),
        files: Vec::new(),
    };
    for p in partitions {
        let start = p.start_s.min(DURATION_S);
        let groups: Vec<Vec<String>> = (0..3u8)
            .map(|g| {
                names
                    .iter()
                    .zip(&p.groups)
                    .filter(|(_, group)| *group % 3 == g)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .filter(|group: &Vec<String>| !group.is_empty())
            .collect();
        scenario
            .faults
            .push(fault(secs(start), FaultKind::Partition(groups)));
        scenario.faults.push(fault(
            secs((start + p.len_s).min(DURATION_S)),
            FaultKind::Heal,
        ));
    }
    if let Some(outage) = outage {
        let name = names[outage.device % devices].clone();
        let start = outage.start_s.min(DURATION_S);
        let (down, up) = if outage.crash {
            (FaultKind::Crash(name.clone()), FaultKind::Restart(name))
        } else {
            (FaultKind::Offline(name.clone()), FaultKind::Online(name))
        };
        scenario.faults.push(fault(secs(start), down));
        scenario
            .faults
            .push(fault(secs((start + outage.len_s).min(DURATION_S)), up));
    }
    scenario.faults.sort_by_key(|f| f.at);
    scenario
        .validate("proptest")
        .expect("generated scenarios are valid");
    scenario
}

/// One device offline (or crashed) from `start_s` for `len_s`.
#[derive(Clone, Debug)]
struct Outage {
    device: usize,
    start_s: u64,
    len_s: u64,
    crash: bool,
}

fn outage() -> impl Strategy<Value = Option<Outage>> {
    proptest::option::of(
        (0usize..6, 0..DURATION_S, 5u64..90, any::<bool>()).prop_map(
            |(device, start_s, len_s, crash)| Outage {
                device,
                start_s,
                len_s,
                crash,
            },
        ),
    )
}

fn base(devices: Vec<String>) -> Scenario {
    let mut scenario = Scenario::parse(
        "name = \"proptest\"\nduration = \"120s\"\ndevices = [\"d0\"]\n[expect]\nconverged_within = \"3m\"\nquiet = \"10s\"\n",
        "proptest",
    )
    .expect("base scenario");
    scenario.devices = devices;
    scenario
}

fn partition(devices: usize) -> impl Strategy<Value = Partition> {
    (
        0..DURATION_S,
        5u64..80,
        proptest::collection::vec(0u8..3, devices),
    )
        .prop_map(|(start_s, len_s, groups)| Partition {
            start_s,
            len_s,
            groups,
        })
}

fn scenarios() -> impl Strategy<Value = Scenario> {
    (2usize..=6).prop_flat_map(|devices| {
        (
            (0u32..=50, 0u32..=20, 0u32..=30),
            (30u32..=900, 0u32..=40, 0u32..=30),
            proptest::collection::vec(partition(devices), 0..=2),
            outage(),
            any::<u64>(),
        )
            .prop_map(
                move |((loss, dup, reorder), (rate, attach, react), parts, out, seed)| {
                    build(
                        devices, loss, dup, reorder, rate, attach, react, parts, out, seed,
                    )
                },
            )
    })
}

/// Writes the case as a scenario file `meshlog run` replays; proptest calls this for every
/// failing case while shrinking, so the file ends up holding the smallest one.
fn write_case(scenario: &Scenario) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim-proptest-failure.toml");
    let text = format!(
        "# Shrunk failing case of tests/tests/sim_props.rs. Replay: meshlog run {} --seed {}\n{}",
        path.display(),
        scenario.seed,
        scenario.to_toml()
    );
    std::fs::write(&path, text).expect("write the failing case");
    path
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_device_converges_after_healing_and_nothing_is_invented(scenario in scenarios()) {
        let outcome = meshlog_sim::run(&scenario, scenario.seed, None).expect("world builds");
        if !outcome.passed() {
            let path = write_case(&scenario);
            let failures: Vec<String> = outcome.failures.iter().map(ToString::to_string).collect();
            prop_assert!(
                false,
                "{}\nwritten to {}; replay: meshlog run {} --seed {}",
                failures.join("\n"),
                path.display(),
                path.display(),
                scenario.seed
            );
        }
    }
}

#[test]
fn a_written_case_replays_to_the_same_digest() {
    let partition = Partition {
        start_s: 20,
        len_s: 30,
        groups: vec![0, 1, 1],
    };
    let outage = Outage {
        device: 2,
        start_s: 50,
        len_s: 40,
        crash: true,
    };
    let scenario = build(3, 20, 5, 10, 300, 20, 10, vec![partition], Some(outage), 99);
    let path = write_case(&scenario);
    let loaded = Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(loaded, scenario);
    let direct = meshlog_sim::run(&scenario, 99, None).unwrap();
    let replayed = meshlog_sim::run(&loaded, loaded.seed, None).unwrap();
    assert_eq!(replayed.digest, direct.digest);
    assert!(direct.passed(), "{:?}", direct.failures);
}
