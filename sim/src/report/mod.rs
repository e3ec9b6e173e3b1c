//! A picture of a run, as data: what `meshlog run --report` draws.
//!
//! A [`Reporter`] observes a world and feeds its [`Recorder`] one [`Entry`] per thing that
//! happened (a world asked for no report registers none, and pays nothing). The recorder
//! keeps only bounded aggregates: per-link counts, each device's event count over time (thinned), state changes, faults,
//! the moment each device converged, the last packets that carried each id, and a sampled
//! sequence diagram of one window. [`RunReport`] is the finished, serializable picture.
//!
//! Entries name devices by index and carry plain values, so anything that can say what a
//! node sent, received and stored (a recording's replay, say) can feed a recorder too.
//! Nothing here writes to the trace: a report never changes a run's digest.

pub mod limits;
mod outcome;
mod picture;
mod recorder;
mod replay;
mod sampling;
pub mod trace;
mod world;

pub use outcome::{Counters, DeviceReport, Outcome, Traffic};
pub use picture::*;
pub use recorder::{MissingInput, Recorder, Summary};
pub use replay::ReplayReport;
pub use world::Reporter;

#[cfg(test)]
mod tests;
