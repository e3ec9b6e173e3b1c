//! NAT traversal in the simulator, printed (not asserted): `cargo bench -p meshlog-sim --bench
//! nat [-- SEEDS]`.
//!
//! 1. `scenarios/nat-traversal.toml` over SEEDS seeds (default 200): each pair of members with
//!    a box between them, by whether the boxes let it go direct: the share direct at the end,
//!    relayed, unlinked; and how long after the start the pairs that could go direct were
//!    direct both ways (p50, p99, max).
//! 2. A population: per seed, carol on the open network and seven devices each drawn on the
//!    open network (20%), behind an endpoint-independent box (60%) or a symmetric one (20%),
//!    each knowing only carol, at 5% loss: the share of NATed pairs connected directly and
//!    relayed, against the share the boxes allow.
//!
//! The wall clock is read here, around whole runs, never inside the world.

use std::collections::BTreeMap;
use std::time::Instant;

use meshlog_sim::checks::{NatPair, NatPath};
use meshlog_sim::scenario::{NatKind, NatSpec};
use meshlog_sim::Scenario;

mod support;
use support::load;

fn main() {
    let seeds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let scenario = load("nat-traversal.toml");
    let started = Instant::now();
    let pairs = pairs_over_seeds(&scenario, seeds, |_, s| s.clone());
    println!(
        "nat-traversal.toml, {seeds} seeds ({:.1} wall s):",
        started.elapsed().as_secs_f64()
    );
    report(&pairs);
    let started = Instant::now();
    let pairs = pairs_over_seeds(&scenario, seeds, population);
    println!(
        "a population of 8 (carol open; 7 drawn: 20% open, 60% endpoint-independent, 20% \
         symmetric), {seeds} seeds ({:.1} wall s):",
        started.elapsed().as_secs_f64()
    );
    report(&pairs);
}

/// Every seed's pairs, from the world `shape` makes of the scenario for that seed.
fn pairs_over_seeds(
    scenario: &Scenario,
    seeds: u64,
    shape: impl Fn(u64, &Scenario) -> Scenario,
) -> Vec<NatPair> {
    let mut pairs = Vec::new();
    // Failed checks by their first words (which checker), over all runs.
    let mut failed: BTreeMap<String, u32> = BTreeMap::new();
    for seed in 0..seeds {
        let world = shape(seed, scenario);
        let outcome = meshlog_sim::run(&world, seed, None).expect("world builds");
        for failure in &outcome.failures {
            let text = failure.to_string();
            let checker = text.split(':').next().unwrap_or_default().to_owned();
            *failed.entry(checker).or_default() += 1;
        }
        pairs.extend(outcome.figures.nat_pairs);
    }
    if !failed.is_empty() {
        println!("  failed checks over the runs: {failed:?}");
    }
    pairs
}

fn report(pairs: &[NatPair]) {
    println!("  boxes allow  pairs  direct  relayed  unlinked  direct after: p50     p99     max");
    for can in [true, false] {
        let class: Vec<&NatPair> = pairs.iter().filter(|p| p.can_go_direct == can).collect();
        if class.is_empty() {
            continue;
        }
        let share = |path: NatPath| {
            let n = class.iter().filter(|p| p.path == path).count();
            format!("{:.1}%", 100.0 * n as f64 / class.len() as f64)
        };
        let mut after: Vec<u64> = class.iter().filter_map(|p| p.direct_after_us).collect();
        after.sort_unstable();
        let at = |q: f64| {
            after
                .get(((after.len().max(1) - 1) as f64 * q).round() as usize)
                .map_or("-".to_owned(), |us| format!("{:.1} s", *us as f64 / 1e6))
        };
        println!(
            "  {:<11}  {:>5}  {:>6}  {:>7}  {:>8}  {:>19}  {:>6}  {:>6}",
            if can { "direct" } else { "no direct" },
            class.len(),
            share(NatPath::Direct),
            share(NatPath::Relayed),
            share(NatPath::Unlinked),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

/// The seed's population: carol open, seven more drawn from a SplitMix64 stream of the seed
/// (the bench's own dice, so the world's are untouched), each behind its own box or none.
fn population(seed: u64, base: &Scenario) -> Scenario {
    let mut state = seed ^ 0x6e61_7400;
    let mut draw = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 100
    };
    let mut world = base.clone();
    world.name = "nat-population".into();
    let others: Vec<String> = (1..=7).map(|i| format!("d{i}")).collect();
    world.devices = std::iter::once("carol".to_owned())
        .chain(others.iter().cloned())
        .collect();
    world.lans.clear();
    // A figure here, not a bound: carol introduces four pairs a round, so 28 pairs take her
    // seven rounds to introduce once.
    world.expect.direct_within = None;
    world.knows = others
        .iter()
        .map(|d| (d.clone(), vec!["carol".to_owned()]))
        .collect::<BTreeMap<_, _>>();
    world.nats = others
        .iter()
        .filter_map(|d| {
            let kind = match draw() {
                0..20 => return None,
                20..80 => NatKind::EndpointIndependent,
                _ => NatKind::Symmetric,
            };
            Some(NatSpec {
                kind,
                devices: vec![d.clone()],
                mapping_timeout: base.nats[0].mapping_timeout,
            })
        })
        .collect();
    world
}
