//! # meshlog-sim
//!
//! A seeded, single-threaded discrete-event world that runs real `meshlog_core::Node`s over a
//! virtual network and proves they converge.
//!
//! ```text
//!  scenario.toml ──> Scenario ──> World::new(scenario, seed) ──> run() ──> check() ──> Outcome
//!                                   │ devices: Node<Rc<RefCell<WorldStore>>> per device
//!                                   │ network: per-link faults, partitions, cuts
//!                                   │ workload: messages, attachments, reactions, batches
//!                                   └ queue: BTreeMap<(virtual time, sequence), Item>
//! ```
//!
//! - [`scenario`]: the TOML shape (`#[serde(deny_unknown_fields)]`), durations like `"5ms"`,
//!   and errors naming the file, the field and what is wrong.
//! - [`world`]: the event loop. Items are deliveries, node wake-ups, faults, workload ticks,
//!   batches and the end-of-workload heal; time jumps to the next one. Draining a node's
//!   outputs (`outputs.rs`) and applying faults (`faults.rs`) are `World` methods too.
//! - [`network`]: loss, Gilbert-Elliott burst loss, latency min..max (which reorders), explicit
//!   reorder, duplication, bit-flip corruption, replay (an attacker records what receivers
//!   accept and re-sends it later, from a bounded store, with its own dice), partitions and
//!   one-way cuts; settable for every link or one, and changed over time by faults. Devices go offline/online and crash
//!   (the node and all its in-flight state are dropped; the store survives a restart).
//! - [`workload`]: the seed's rate split across enabled devices; attachments through
//!   `chunk_file`; reactions; batches for backlogs.
//! - `attack.rs`, `hostile.rs`: every delivery is watched (accepted? dropped why? how many
//!   bytes answered?); replays are judged; hostile members (`[[hostile]]`) send worst-case
//!   summaries, digests and filters sealed with their own pairwise keys.
//! - `budget.rs`: per-link accounting of answers against what each peer sent (QUIC's 3×).
//! - [`check`]: convergence (every device that is up holds every appended event at the end),
//!   nothing invented or altered (every stored event is byte- and content-equal to one some
//!   device appended), liveness (converged within `expect.converged_within` of the heal),
//!   no replay accepted, answers within the amplification budget.
//! - [`trace`]: one line per send, drop, delivery, append, insert and fault; its blake3 digest
//!   fingerprints the run.
//!
//! A run has three phases: the workload and scheduled faults for `duration`; then the heal
//! (every fault not marked `permanent` is lifted and devices come back) and up to
//! `converged_within` to converge; then `quiet` more, so a late divergence would show.
//!
//! From the command line (the `meshlog` binary in `meshlog-backend`):
//!
//! ```text
//! meshlog run scenarios/partition-heal.toml --seed 1234 --trace run.trace [--json]
//! meshlog sweep scenarios/*.toml --seeds 0..200 --jobs 2 [--shard 1/4]
//! cargo bench -p meshlog-sim          # virtual seconds per wall second, 10 devices x 10k events
//! ```
//!
//! ## Determinism
//! One root seed; each purpose (network, workload, each node incarnation) gets its own ChaCha
//! stream derived with blake3, so adding a device does not reshuffle the network's dice.
//! No `std::time`, no OS randomness, no threads, no hash-map order reaching output, no
//! floats in draws (rates become parts per million). Same scenario and seed, same digest.

mod attack;
mod budget;
pub mod check;
pub mod clocks;
pub mod duration;
mod faults;
mod forge;
mod hostile;
mod index_check;
pub mod network;
pub mod outcome;
mod outputs;
mod power;
mod prompt;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod shelf;
pub mod store;
pub mod topology;
pub mod trace;
mod validate;
pub mod workload;
pub mod world;

use std::io::Write;

pub use attack::AttackCounters;
pub use check::Failure;
pub use outcome::Outcome;
pub use report::{ReportOptions, RunReport};
pub use scenario::{Scenario, ScenarioError};
pub use store::{StoreKind, StoreProvider};
pub use world::{SimError, World, WorldOptions};

/// Runs `scenario` with root `seed`, writing trace lines to `sink` if given, and checks it.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    sink: Option<Box<dyn Write>>,
) -> Result<Outcome, SimError> {
    run_with(scenario, seed, sink, WorldOptions::default())
}

/// Like [`run`], with `options` (a store provider for a SQLite scenario, say).
pub fn run_with(
    scenario: &Scenario,
    seed: u64,
    sink: Option<Box<dyn Write>>,
    options: WorldOptions,
) -> Result<Outcome, SimError> {
    let mut world = World::with_options(scenario, seed, sink, options)?;
    world.run();
    let failures = check::check(&world);
    Ok(world.finish(failures))
}

/// The text a caught panic carries (a core assertion's message), for runners that report a
/// panicking seed as that seed's failure instead of stopping.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Like [`run_with`], also recording the picture `meshlog run --report` draws. The trace, and
/// so the digest, is the same as without it.
pub fn run_with_report(
    scenario: &Scenario,
    seed: u64,
    sink: Option<Box<dyn Write>>,
    world_options: WorldOptions,
    options: ReportOptions,
) -> Result<(Outcome, RunReport), SimError> {
    let mut world = World::with_report(scenario, seed, sink, world_options, Some(options))?;
    world.run();
    let failures = check::check(&world);
    let (recorder, missing) = world.take_report().expect("recording a report");
    let outcome = world.finish(failures);
    let report = recorder.finish(report::Summary::of(&outcome), missing);
    Ok((outcome, report))
}
