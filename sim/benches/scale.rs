//! Large worlds, printed (not asserted): `cargo bench -p meshlog-sim --bench scale` (or
//! `cargo bench -p meshlog-sim -- scale`, which the `sim` bench ignores).
//!
//! Each world runs in a child process (this binary again, told which world by
//! `MESHLOG_SCALE_CHILD`), so its peak RSS (`VmHWM`) is its own. For each it prints wall time,
//! virtual seconds per wall second, peak RSS, stored copies and bytes per stored copy; then
//! the slope of processor and wall time against the number of events and against the number of devices
//! (log-log, between the smallest and largest size).
//!
//! 1. `catchup`: `scenarios/scale/catchup-1m.toml` at N events (alice writes, bob offline,
//!    carol online; bob catches up after the heal). Sizes from `MESHLOG_SCALE_EVENTS`
//!    (comma-separated; default 10000,100000,300000,1000000). Bytes per stored copy beyond
//!    the shared bytes come from the growth of peak RSS between sizes.
//! 2. `devices`: `scenarios/scale/mesh-300.toml` cut to D devices (random degree 8, 10% loss)
//!    with E events. `MESHLOG_SCALE_DEVICES` (default 30,100,300) and
//!    `MESHLOG_SCALE_MESH_EVENTS` (default 100000).
//!
//! `MESHLOG_SCALE_RUNS` (default 1) runs each world that many times and keeps the run with
//! the least processor time: other load on the machine only ever adds time, and a slope
//! between two single runs moves by ±0.05 with it (the 30-device mesh took 4.5 to 5.5 s).
//!
//! The wall clock is read here, around whole runs, never inside the world.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use meshlog_sim::{Scenario, World};

const CHILD: &str = "MESHLOG_SCALE_CHILD";

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/scale")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn sizes(var: &str, default: &str) -> Vec<u64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().parse().expect("a comma-separated list of numbers"))
        .collect()
}

/// What a child measured.
#[derive(Debug, Default)]
struct Figures {
    wall_s: f64,
    /// Processor time of the child (user + system): steadier than wall time on a shared
    /// machine, so the slopes use it.
    cpu_s: f64,
    rss_kib: f64,
    copies: f64,
    events: f64,
    sealed_bytes: f64,
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run =
        |section: &str| wanted.is_empty() || wanted.iter().any(|w| w == section || w == "scale");
    if run("catchup") {
        let runs: Vec<(u64, Figures)> =
            sizes("MESHLOG_SCALE_EVENTS", "10000,100000,300000,1000000")
                .into_iter()
                .map(|n| (n, best_of(&format!("catchup:{n}"))))
                .collect();
        slope("catch-up time against events", &runs);
        marginal_bytes(&runs);
    }
    if run("devices") {
        let events = sizes("MESHLOG_SCALE_MESH_EVENTS", "100000")[0];
        let runs: Vec<(u64, Figures)> = sizes("MESHLOG_SCALE_DEVICES", "30,100,300")
            .into_iter()
            .map(|d| (d, best_of(&format!("mesh:{d}:{events}"))))
            .collect();
        slope("mesh time against devices", &runs);
        let per_copy: Vec<(u64, Figures)> = runs
            .into_iter()
            .map(|(_, f)| (f.copies as u64, f))
            .collect();
        slope("mesh time against stored copies", &per_copy);
    }
}

/// Runs one world `MESHLOG_SCALE_RUNS` times; the run with the least processor time.
fn best_of(spec: &str) -> Figures {
    let runs = sizes("MESHLOG_SCALE_RUNS", "1")[0].max(1);
    let best = (0..runs)
        .map(|_| in_child(spec))
        .min_by(|a, b| a.cpu_s.total_cmp(&b.cpu_s))
        .expect("at least one run");
    if runs > 1 {
        println!(
            "{spec}: best of {runs}: {:.1} CPU s, {:.1} wall s",
            best.cpu_s, best.wall_s
        );
    }
    best
}

/// Runs one world in a child process; relays what it prints and parses its figures.
fn in_child(spec: &str) -> Figures {
    let exe = std::env::current_exe().expect("own path");
    let output = Command::new(exe)
        .env(CHILD, spec)
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    if !output.status.success() {
        println!(
            "{spec}: child failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        return Figures::default();
    }
    let mut figures = Figures::default();
    for pair in text
        .lines()
        .filter(|l| l.starts_with("figures "))
        .flat_map(|l| l.split_whitespace().skip(1))
    {
        let (key, value) = pair.split_once('=').expect("key=value");
        let value: f64 = value.parse().expect("a number");
        match key {
            "wall_s" => figures.wall_s = value,
            "cpu_s" => figures.cpu_s = value,
            "rss_kib" => figures.rss_kib = value,
            "copies" => figures.copies = value,
            "events" => figures.events = value,
            "sealed_bytes" => figures.sealed_bytes = value,
            _ => {}
        }
    }
    figures
}

/// log-log slopes of wall and processor time between the first and last run.
fn slope(what: &str, runs: &[(u64, Figures)]) {
    let (Some((x0, a)), Some((x1, b))) = (runs.first(), runs.last()) else {
        return;
    };
    let of = |t0: f64, t1: f64| {
        if x0 == x1 || t0 <= 0.0 || t1 <= 0.0 {
            return f64::NAN;
        }
        (t1 / t0).ln() / (*x1 as f64 / *x0 as f64).ln()
    };
    println!(
        "slope of {what}, {x0} -> {x1}: {:.2} in CPU time, {:.2} in wall time",
        of(a.cpu_s, b.cpu_s),
        of(a.wall_s, b.wall_s)
    );
}

/// Peak RSS growth per added event, split into the shared sealed bytes and the rest per copy.
fn marginal_bytes(runs: &[(u64, Figures)]) {
    for pair in runs.windows(2) {
        let ((n0, a), (n1, b)) = (&pair[0], &pair[1]);
        let events = b.events - a.events;
        let copies = b.copies - a.copies;
        if events <= 0.0 || copies <= 0.0 {
            continue;
        }
        let bytes = (b.rss_kib - a.rss_kib) * 1024.0;
        let sealed = b.sealed_bytes - a.sealed_bytes;
        println!(
            "memory {n0} -> {n1} events: {:.0} B of peak RSS per event ({:.0} sealed), {:.2} \
             copies per event, {:.0} B per stored copy beyond the shared sealed bytes",
            bytes / events,
            sealed / events,
            copies / events,
            (bytes - sealed) / copies
        );
    }
}

fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let scenario = match parts.as_slice() {
        ["catchup", n] => {
            let n: u32 = n.parse().expect("events");
            let mut s = load("catchup-1m.toml");
            s.name = format!("catchup-{n}");
            // Two virtual hours of writing whatever the size.
            s.workload.messages_per_hour = n / 2;
            s
        }
        ["mesh", d, e] => {
            let devices: usize = d.parse().expect("devices");
            let events: u32 = e.parse().expect("events");
            let mut s = load("mesh-300.toml");
            s.name = format!("mesh-{devices}-{events}");
            s.devices = (0..devices).map(|i| format!("d{i:03}")).collect();
            s.workload.messages_per_hour = events; // over the one-hour duration
            s
        }
        _ => panic!("unknown world {spec}"),
    };
    let started = Instant::now();
    let mut world = World::new(&scenario, scenario.seed, None).expect("world builds");
    world.run();
    let run_s = started.elapsed().as_secs_f64();

    let check_s = started.elapsed().as_secs_f64() - run_s;
    let sealed_bytes: usize = world.sealed_bytes();
    let outcome = world.finish();
    let wall_s = started.elapsed().as_secs_f64();
    let copies: usize = outcome.devices.iter().map(|d| d.events as usize).sum();
    let virtual_s = outcome.virtual_time_us as f64 / 1e6;
    let heal = outcome.heal_at_us;
    let converged = outcome
        .devices
        .iter()
        .filter_map(|d| d.converged_at_us)
        .max()
        .map_or(f64::NAN, |at| at.saturating_sub(heal) as f64 / 1e6);
    let rss_kib = peak_rss_kib();
    let cpu_s = cpu_s();
    println!(
        "{}: {} devices, {} events, {copies} stored copies: {wall_s:.1} wall s ({run_s:.1} \
         run, {check_s:.1} check), {cpu_s:.1} CPU s, {:.0} virtual s per wall s, peak RSS \
         {:.0} MiB = {:.0} B per stored copy all in, converged {converged:.1} virtual s after \
         the heal ({})",
        outcome.scenario,
        outcome.devices.len(),
        outcome.events,
        virtual_s / wall_s,
        rss_kib / 1024.0,
        rss_kib * 1024.0 / copies.max(1) as f64,
        if outcome.passed() {
            "passed".to_owned()
        } else {
            format!(
                "{} checks FAILED, first {:?}",
                outcome.failures.len(),
                outcome.failures.first()
            )
        }
    );
    println!(
        "figures wall_s={wall_s} cpu_s={cpu_s} rss_kib={rss_kib} copies={copies} events={} \
         sealed_bytes={sealed_bytes}",
        outcome.events
    );
}

/// Processor time of this process so far (user + system, `/proc/self/stat` fields 14 and 15,
/// in clock ticks of 1/100 s, the Linux default).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name, which may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// Peak resident set of this process (`VmHWM`), KiB.
fn peak_rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}
