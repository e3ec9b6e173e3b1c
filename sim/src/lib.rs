//! # meshlog-sim
//!
//! A seeded, single-threaded discrete-event world that runs real `meshlog_core::Node`s over a
//! virtual network and proves they converge.
//!
//! ## Layers (every arrow points down)
//!
//! ```text
//!  run.rs, host.rs     a world with its standard observers and agents; the simulation
//!       │              service's commands (`World::hosted`)
//!       ├──> faults/   agents that act on the world: one module per [[fault]] kind,
//!       │              hostile members, the forger, [[member]] changes, invites and
//!       │              joins (through the kernel's control surface)
//!       ├──> checks/   observers with a verdict: convergence, liveness, prompt pushes,
//!       │              replays and the door, index = store, own events kept, clock order,
//!       │              amplification budget, efficiency, datagram size, one roster,
//!       │              confidentiality after a removal, removed devices refused, joined
//!       │              devices caught up, attacks on joining refused, forged authors,
//!       │              discovery within a bound, strangers learn nothing, roaming
//!       ├──> report/   observers that record: the trace and its digest (every line shape),
//!       │              the counters and the run's outcome, the picture `--report` draws
//!       ▼
//!  kernel/             virtual clock, queue, network (addresses and routing, local links),
//!       │              devices' nodes and stores, workload;
//!       │              emits one typed stream of `Happening`s to its observers, in order
//!       ▼
//!  scenario/           the TOML file as plain data: parsing, errors naming the field
//! ```
//!
//! - The kernel knows no particular fault or checker. It calls its [`kernel::Agents`] when a
//!   fault or an attack is due and tells its [`kernel::Observer`]s what happened, each with a
//!   read-only [`kernel::View`].
//! - Adding a checker is one file in `checks/` and one line in `Checks::new`; adding a fault
//!   kind is one variant in `scenario/fault.rs`, one module in `faults/` and one arm in
//!   `Plan::fault`.
//! - A run has three phases: the workload and scheduled faults for `duration`; then the heal
//!   (every fault not marked `permanent` is lifted and devices come back) and up to
//!   `converged_within` to converge; then `quiet` more, so a late divergence would show.
//! - [`replay`]: a recording of a real device's inputs, replayed on virtual time.
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

pub mod checks;
pub mod faults;
pub mod host;
pub mod kernel;
pub mod replay;
pub mod report;
mod run;
pub mod scenario;

pub use checks::{AttackCounters, Failure};
pub use kernel::{SimError, StoreProvider, World, WorldOptions};
pub use report::{Outcome, ReportOptions, RunReport};
pub use run::{panic_message, run, run_with, run_with_report};
pub use scenario::{Scenario, ScenarioError, StoreKind};
