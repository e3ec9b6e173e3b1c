//! Simulator throughput, printed (not asserted): `cargo bench -p meshlog-sim`.
//!
//! 1. The seed's default demo workload (`scenarios/default-demo.toml`) over 24 virtual hours:
//!    virtual seconds per wall second (target: at least 10,000x real time).
//! 2. `scenarios/ten-devices-10k.toml` (10 devices, 10,000+ events, 20% loss): wall time to
//!    run it to convergence (target: under 30 s), with the world's shared signature memo (as
//!    every run has it) and without (every device pays for every check, as on real devices).
//! 3. Catch-up: bob is offline while alice writes N events (N = 100,000 and 1,000,000; set
//!    `MESHLOG_BENCH_CATCHUP=100000` for one size), then comes back: events per virtual second
//!    from bob's return to convergence, wall time, and the reconcile bytes (SUMMARY, DIGEST,
//!    FILTER, SKETCH) as a share of the event bytes (target: at most 10% at every size).
//! 4. Amplification, from the world's own accounting: bytes receivers sent back to the sender
//!    while handling replayed datagrams (target 0) and each kind of hostile packet, per byte
//!    of it. The budget is 3x what a peer sent plus a credit granted once when a node starts
//!    (2 datagrams), however it times its sending: a member flooding (mallory, 20
//!    datagrams/s) and a slow one (trudy, one a second) both get at most 3x and that credit.
//! 5. Time to converge after the heal in the five-device ring at 30% and 50% loss
//!    (`scenarios/ring-loss-{30,50}.toml`), p50 and p99 over 200 seeds.
//!
//! 6. Delivery latency against hops (`hops`): a line of 2 to 6 devices over clean 20 ms links,
//!    the first device writing; p50 and p99 from its append to the far end's insert, over 10
//!    seeds, with the core's eager forwarding on and off (`[sync] eager_forward`).
//!
//! Sections run by name (`speed`: 1 and 2, `catchup`: 3, `amplification`, `converge`, `hops`), e.g.
//! `cargo bench -p meshlog-sim --bench sim -- amplification converge`; all without names.
//!
//! The wall clock is read here, around whole runs, never inside the world.

use std::time::Instant;

use meshlog_sim::scenario::{BatchSpec, Fault, FaultKind, HostileKind, SimDuration};
use meshlog_sim::{Outcome, World, WorldOptions};

mod support;
use support::load;

/// Seeds behind each convergence percentile.
const CONVERGE_SEEDS: u64 = 200;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |section: &str| wanted.is_empty() || wanted.iter().any(|w| w == section);
    if run("speed") {
        speed();
    }
    if run("catchup") {
        let sizes: Vec<u32> = match std::env::var("MESHLOG_BENCH_CATCHUP") {
            Ok(n) => vec![n.parse().expect("a number of events")],
            Err(_) => vec![100_000, 1_000_000],
        };
        for n in sizes {
            catch_up(n);
        }
    }
    if run("amplification") {
        amplification();
    }
    if run("converge") {
        for name in ["ring-loss-30.toml", "ring-loss-50.toml"] {
            converge(name);
        }
    }
    if run("hops") {
        hops();
    }
}

/// Seeds behind each latency-per-hop percentile.
const HOPS_SEEDS: u64 = 10;

/// A `Write` the bench keeps a handle on: the world's trace goes here.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Microseconds from each of `first`'s appends to `last`'s insert of it, read off the trace
/// (`<time> append <device> <id> ...`, `<time> insert <device> <id> from ...`).
fn latencies_us(trace: &str, first: &str, last: &str) -> Vec<u64> {
    let time_us = |t: &str| -> Option<u64> {
        let secs: f64 = t.trim_end_matches('s').parse().ok()?;
        Some((secs * 1e6).round() as u64)
    };
    let mut appended = std::collections::BTreeMap::new();
    let mut took = Vec::new();
    for line in trace.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [at, verb, device, id, ..] = words[..] else {
            continue;
        };
        let Some(at) = time_us(at) else { continue };
        match verb {
            "append" if device == first => {
                appended.insert(id.to_owned(), at);
            }
            "insert" if device == last => {
                if let Some(from) = appended.get(id) {
                    took.push(at - from);
                }
            }
            _ => {}
        }
    }
    took
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn hops() {
    println!("delivery latency vs hops: a line over clean 20 ms links, {HOPS_SEEDS} seeds");
    println!("hops  forward  events  p50 ms   p99 ms   max ms");
    for hops in 1..=5usize {
        for forward in [true, false] {
            let mut scenario = load("line-5-latency.toml");
            scenario.devices = (0..=hops).map(|i| format!("d{i}")).collect();
            scenario.workload.devices = Some(vec!["d0".into()]);
            scenario.workload.attachment_percent = 0;
            scenario.workload.reaction_percent = 0;
            scenario.sync.eager_forward = Some(forward);
            // The per-hop checker would fail the runs without forwarding; only latency is read.
            scenario.expect.hop_latency_slack = None;
            let last = format!("d{hops}");
            let mut took = Vec::new();
            for seed in 0..HOPS_SEEDS {
                let sink = Shared::default();
                meshlog_sim::run(&scenario, seed, Some(Box::new(sink.clone())))
                    .expect("world builds");
                let trace = String::from_utf8(sink.0.lock().expect("not poisoned").clone())
                    .expect("the trace is text");
                took.extend(latencies_us(&trace, "d0", &last));
            }
            took.sort_unstable();
            let ms = |us: u64| us as f64 / 1e3;
            println!(
                "{hops:>4}  {:>7}  {:>6}  {:>7.1}  {:>7.1}  {:>7.1}",
                if forward { "on" } else { "off" },
                took.len(),
                ms(percentile(&took, 0.5)),
                ms(percentile(&took, 0.99)),
                ms(took.last().copied().unwrap_or(0)),
            );
        }
    }
}

fn speed() {
    let mut demo = load("default-demo.toml");
    demo.duration = SimDuration::from_secs(24 * 3600);
    let started = Instant::now();
    let outcome = meshlog_sim::run(&demo, demo.seed, None).expect("world builds");
    let wall = started.elapsed().as_secs_f64();
    let virtual_s = outcome.virtual_time_us as f64 / 1e6;
    println!(
        "default demo, 24 virtual hours: {} events, {virtual_s:.0} virtual s in {wall:.2} wall s \
         = {:.0}x real time ({})",
        outcome.events,
        virtual_s / wall,
        if outcome.passed() {
            "converged"
        } else {
            "FAILED"
        }
    );

    let ten = load("ten-devices-10k.toml");
    for signature_memo in [true, false] {
        let started = Instant::now();
        let options = WorldOptions {
            signature_memo,
            ..WorldOptions::default()
        };
        let mut world = World::with_options(&ten, ten.seed, None, options).expect("world builds");
        world.run();
        let outcome = world.finish();
        let wall = started.elapsed().as_secs_f64();
        let delivered: u64 = outcome.counters.delivered.values().map(|t| t.packets).sum();
        println!(
            "10 devices x {} events at 20% loss, signature memo {}: {wall:.1} wall s, {} datagrams \
             delivered, converged {:.1} virtual s after the heal ({})",
            outcome.events,
            if signature_memo { "on" } else { "off" },
            delivered,
            outcome
                .devices
                .iter()
                .filter_map(|d| d.converged_at_us)
                .max()
                .map_or(f64::NAN, |at| (at - outcome.heal_at_us) as f64 / 1e6),
            if outcome.passed() { "passed" } else { "FAILED" }
        );
    }
}

/// `backlog-5000.toml` grown: both hold 1,000 shared events, then bob is offline while alice
/// writes `n` more; bob is back at 30 s.
fn catch_up(n: u32) {
    let mut scenario = load("backlog-5000.toml");
    scenario.name = format!("catch-up-{n}");
    let batch = |at, messages| BatchSpec {
        at: SimDuration::from_secs(at),
        device: "alice".into(),
        messages,
    };
    scenario.workload.batches = vec![batch(1, 1_000), batch(10, n)];
    let fault = |at, kind| Fault {
        at: SimDuration::from_secs(at),
        kind,
        permanent: false,
    };
    scenario.faults = vec![
        fault(5, FaultKind::Offline("bob".into())),
        fault(30, FaultKind::Online("bob".into())),
    ];
    // The world measures convergence from the end of the duration ("heal"): end it just
    // after bob is back, and measure from his return.
    let back_us = 30_000_000;
    scenario.duration = SimDuration::from_secs(31);
    scenario.expect.converged_within = SimDuration::from_secs(u64::from(n) / 100);
    let started = Instant::now();
    let outcome = meshlog_sim::run(&scenario, scenario.seed, None).expect("world builds");
    let wall = started.elapsed().as_secs_f64();
    let bytes = |kinds: &[&str]| -> u64 {
        kinds
            .iter()
            .filter_map(|k| outcome.counters.sent.get(*k))
            .map(|t| t.bytes)
            .sum()
    };
    let events = bytes(&["EVENT"]);
    let reconcile = bytes(&["SUMMARY", "DIGEST", "FILTER", "SKETCH"]);
    let took = outcome
        .devices
        .iter()
        .filter_map(|d| d.converged_at_us)
        .max()
        .map_or(f64::NAN, |at| (at - back_us) as f64 / 1e6);
    println!(
        "catch-up of {n} events at 1% loss: {took:.1} virtual s after bob's return = {:.0} events/s, \
         {wall:.1} wall s, reconcile {reconcile} B = {:.1}% of {events} event B ({})",
        f64::from(n) / took,
        100.0 * reconcile as f64 / events as f64,
        if outcome.passed() { "passed" } else { "FAILED" }
    );
}

fn amplification() {
    let replay = load("replay-storm.toml");
    let outcome = meshlog_sim::run(&replay, replay.seed, None).expect("world builds");
    let a = &outcome.figures.attacks;
    println!(
        "replay storm: {} replays ({} B) reached a node that had accepted the original, {} \
         refused; receivers answered {} B = {:.2}x amplification (target 0)",
        a.replays_judged,
        a.replay_bytes,
        a.replays_refused,
        a.replay_answer_bytes,
        a.replay_amplification()
    );
    let mut hostile = load("hostile-member.toml");
    for kind in HostileKind::all() {
        for member in &mut hostile.hostiles {
            member.kinds = vec![kind];
        }
        let outcome = meshlog_sim::run(&hostile, hostile.seed, None).expect("world builds");
        let a = &outcome.figures.attacks;
        println!(
            "hostile {:<13} {} packets, {} B delivered; answered {} B = {:.2}x ({:.2}x in \
             answers; target <= 3x); the worst moment at {:.0}% of the bound (3x plus the \
             initial credit) ({})",
            kind.name(),
            a.hostile_sent_packets,
            a.hostile_delivered_bytes,
            a.hostile_answer_bytes,
            a.hostile_amplification(),
            a.hostile_answer_reconcile_bytes as f64 / a.hostile_delivered_bytes.max(1) as f64,
            outcome.figures.budget_worst_share * 100.0,
            verdict(&outcome)
        );
    }
}

fn verdict(outcome: &Outcome) -> String {
    if outcome.passed() {
        "passed".to_owned()
    } else {
        format!("{} checks FAILED", outcome.failures.len())
    }
}

/// p50 and p99 of the time from the heal until the last device converged, over seeds.
fn converge(name: &str) {
    let scenario = load(name);
    let started = Instant::now();
    let mut after_s: Vec<f64> = Vec::new();
    let mut never = 0;
    let mut failed = 0;
    for seed in 0..CONVERGE_SEEDS {
        let outcome = meshlog_sim::run(&scenario, seed, None).expect("world builds");
        failed += u32::from(!outcome.passed());
        let last = outcome
            .devices
            .iter()
            .filter(|d| !d.excused)
            .map(|d| d.converged_at_us)
            .try_fold(0, |last, at| at.map(|at| last.max(at)));
        match last {
            Some(at) => after_s.push(at.saturating_sub(outcome.heal_at_us) as f64 / 1e6),
            None => never += 1,
        }
    }
    after_s.sort_by(f64::total_cmp);
    // Runs that never converged rank last: a percentile that lands on them is "never".
    let percentile = |p: f64| {
        let rank = ((p * CONVERGE_SEEDS as f64).ceil() as usize).max(1) - 1;
        after_s
            .get(rank)
            .map_or("never".to_owned(), |s| format!("{s:.1} s"))
    };
    println!(
        "{name}: time to converge after the heal over {CONVERGE_SEEDS} seeds: p50 {}, p99 {}, \
         max {}; {never} never converged, {failed} runs failed a check ({:.1} wall s)",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        started.elapsed().as_secs_f64()
    );
}
