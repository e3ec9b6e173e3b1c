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
//!
//! The wall clock is read here, around whole runs, never inside the world.

use std::path::Path;
use std::time::Instant;

use meshlog_sim::scenario::{BatchSpec, FaultSpec, SimDuration};
use meshlog_sim::{Scenario, World, WorldOptions};

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn main() {
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
        let options = WorldOptions { signature_memo };
        let mut world = World::with_options(&ten, ten.seed, None, options).expect("world builds");
        world.run();
        let failures = meshlog_sim::check::check(&world);
        let outcome = world.finish(failures);
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

    let sizes: Vec<u32> = match std::env::var("MESHLOG_BENCH_CATCHUP") {
        Ok(n) => vec![n.parse().expect("a number of events")],
        Err(_) => vec![100_000, 1_000_000],
    };
    for n in sizes {
        catch_up(n);
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
    let fault = |at, offline: Option<&str>, online: Option<&str>| FaultSpec {
        at: SimDuration::from_secs(at),
        offline: offline.map(str::to_owned),
        online: online.map(str::to_owned),
        ..FaultSpec::default()
    };
    scenario.faults = vec![fault(5, Some("bob"), None), fault(30, None, Some("bob"))];
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
