//! Recording overhead and replay speed (issue 13), printed (not timed tests):
//! 1. The store bench's catch-up load (`support::back_online`): alice takes `EVENTS` POSTs
//!    while bob is offline (appends), then bob, switched back on, catches up (datagrams both
//!    ways at link speed). Run with neither device recording and with both recording
//!    (`meshlog device --record`), alternately, `ROUNDS` times each; the best of each is
//!    printed, as POSTs/s and catch-up events/s and as CPU time per event (the whole process:
//!    steadier than the wall clock on a shared machine), with the recording's overhead in %.
//! 2. The size of each recording, per input.
//! 3. Each recording replayed by the simulator's engine (`meshlog_sim::replay`, what `meshlog
//!    replay` runs): inputs per second, and whether every step matched.
//!
//! `cargo bench -p meshlog-backend --bench record [-- EVENTS]`

mod support;

use std::time::{Duration, Instant};

use meshlog_core::record::Recording;
use meshlog_sim::replay::{replay, ReplayOptions};
use meshlog_sim::report::trace::Trace;
use support::*;

/// Runs of each kind; the best counts (the machine is shared: the slowest runs are others').
const ROUNDS: usize = 3;

/// One phase of a run: its wall-clock and CPU time.
type Phase = fn(&BackOnline) -> (Duration, Option<Duration>);

fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    // The devices get an executor of their own, as in `meshlog device`; the clients another.
    let server = tokio::runtime::Runtime::new()?;
    let clients = tokio::runtime::Runtime::new()?;
    let mut plain = Vec::new();
    let mut recorded = Vec::new();
    for _ in 0..ROUNDS {
        plain.push(clients.block_on(back_online(server.handle(), events, false))?);
        recorded.push(clients.block_on(back_online(server.handle(), events, true))?);
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let per_event_us =
        |cpu: Option<Duration>| cpu.map_or(f64::NAN, |cpu| cpu.as_secs_f64() * 1e6 / events as f64);
    let phases: [(&str, Phase); 2] = [
        ("POSTs to alice (bob offline)", |r| {
            (r.posting, r.posting_cpu)
        }),
        ("bob's catch-up once back online", |r| {
            (r.catching_up, r.catching_up_cpu)
        }),
    ];
    for (what, of) in phases {
        let wall = |runs: &[BackOnline]| runs.iter().map(|r| of(r).0).min().expect("a run");
        let cpu = |runs: &[BackOnline]| runs.iter().filter_map(|r| of(r).1).min();
        let (without, with) = (rate(wall(&plain)), rate(wall(&recorded)));
        let (cpu_without, cpu_with) = (per_event_us(cpu(&plain)), per_event_us(cpu(&recorded)));
        println!(
            "recording overhead, {what}, {events} events, best of {ROUNDS}: without --record \
             {without:.0} events/s, {cpu_without:.0} µs CPU per event; with {with:.0} events/s, \
             {cpu_with:.0} µs CPU per event: {:+.1}% events/s, {:+.1}% CPU",
            100.0 * (with - without) / without,
            100.0 * (cpu_with - cpu_without) / cpu_without
        );
    }
    // The last recorded run's files: sizes and replays.
    let run = recorded.last().expect("a run");
    let keys_dir = run.root.path().join("keys");
    for name in ["alice", "bob"] {
        let bytes = std::fs::read(run.root.path().join(format!("{name}.rec")))?;
        let recording = Recording::parse(&bytes)?;
        let inputs: usize = recording.batches.iter().map(|b| b.inputs.len()).sum();
        let community = meshlog_backend::keys::load_community(&keys_dir)?;
        let keys = meshlog_backend::keys::load_device(&keys_dir, name)?;
        let mut trace = Trace::new(None);
        let started = Instant::now();
        let outcome = replay(
            &recording,
            keys,
            community,
            ReplayOptions::default(),
            &mut trace,
        )?;
        let wall = started.elapsed();
        println!(
            "recording of {name}: {} bytes, {inputs} inputs in {} batches = {:.0} bytes per \
             input; replayed in {:.0} ms = {:.0} inputs/s ({} outputs), {}",
            bytes.len(),
            recording.batches.len(),
            bytes.len() as f64 / inputs.max(1) as f64,
            ms(wall),
            inputs as f64 / wall.as_secs_f64(),
            outcome.outputs,
            if outcome.matched() {
                "every step matched".to_owned()
            } else {
                format!(
                    "DIFFERS at {}",
                    outcome.first_difference.expect("a difference")
                )
            }
        );
    }
    Ok(())
}
