//! A world with its standard observers and agents: the trace, the counters, every checker,
//! a report if asked for, and the scenario's faults and attackers. This is where the layers
//! meet; everything below knows nothing of what sits above it.

use std::io::Write;

use meshlog_core::Store;

use crate::checks::Checks;
use crate::faults::Plan;
use crate::kernel::{Observer, SimError, World, WorldOptions};
use crate::report::trace::Trace;
use crate::report::{
    Counters, DeviceReport, MissingInput, Outcome, Recorder, ReportOptions, Reporter,
};
use crate::scenario::Scenario;

impl World {
    /// Builds the world for a validated scenario. `seed` is the root of every random stream;
    /// `sink`, if given, receives the trace.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
    ) -> Result<World, SimError> {
        Self::with_options(scenario, seed, sink, WorldOptions::default())
    }

    pub fn with_options(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
        options: WorldOptions,
    ) -> Result<World, SimError> {
        Self::with_report(scenario, seed, sink, options, None)
    }

    /// A world that also records a report (see `report`); `None` records nothing.
    pub fn with_report(
        scenario: &Scenario,
        seed: u64,
        sink: Option<Box<dyn Write>>,
        options: WorldOptions,
        report: Option<ReportOptions>,
    ) -> Result<World, SimError> {
        let mut observers: Vec<Box<dyn Observer>> = vec![
            Box::new(Trace::new(sink)),
            Box::new(Counters::default()),
            Box::new(Checks::new(scenario.devices.len())),
        ];
        if let Some(options) = report {
            observers.push(Box::new(Reporter::new(scenario.devices.clone(), options)));
        }
        World::build(scenario, seed, options, observers, |world| {
            Box::new(Plan::new(world, world.community()))
        })
    }

    /// blake3 of the trace so far.
    pub fn digest(&self) -> String {
        self.observer::<Trace>()
            .map(Trace::digest)
            .unwrap_or_default()
    }

    /// What every checker found so far, over the world as it is now.
    pub fn failures(&self) -> Vec<crate::checks::Failure> {
        let checks = self
            .observer::<Checks>()
            .expect("a standard world has its checkers");
        checks.verdict(&self.view()).0
    }

    /// Ends the run: the summary, the checkers' verdicts, the digest.
    pub fn finish(mut self) -> Outcome {
        let view = self.view();
        let checks = self
            .observer::<Checks>()
            .expect("a standard world has its checkers");
        let (failures, figures) = checks.verdict(&view);
        let devices = view
            .devices
            .iter()
            .map(|d| DeviceReport {
                name: d.name.to_string(),
                events: d.store.borrow().len().expect("in-memory store"),
                up: d.node.is_some() && d.online,
                excused: d.down_for_good,
                restarts: d.incarnation.saturating_sub(1),
                converged_at_us: d.converged_at.map(|at| at.as_micros()),
            })
            .collect();
        let (scenario, seed, now) = (self.scenario().name.clone(), self.seed(), self.now());
        let (heal_at_us, events) = (self.workload_end().as_micros(), self.appended().len());
        let counters = std::mem::take(self.observer_mut::<Counters>().expect("counted"));
        let trace = self.observer_mut::<Trace>().expect("traced");
        let trace_error = trace.finish().err().map(|e| e.to_string());
        Outcome {
            scenario,
            seed,
            digest: trace.digest(),
            trace_lines: trace.lines(),
            trace_error,
            virtual_time_us: now.as_micros(),
            heal_at_us,
            events: events as u64,
            devices,
            counters,
            figures,
            failures,
        }
    }

    /// The report's recorder, with what each device that should converge lacks. `None` if no
    /// report was asked for (or it was taken already).
    pub fn take_report(&mut self) -> Option<(Recorder, Vec<MissingInput>)> {
        let reporter = self.take_observer::<Reporter>()?;
        Some(reporter.finish(&self.view()))
    }
}

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
    Ok(world.finish())
}

/// Like [`run_with`], also recording the picture `meshlog run --report` draws. The trace, and
/// so the digest, is the same as without it.
pub fn run_with_report(
    scenario: &Scenario,
    seed: u64,
    sink: Option<Box<dyn Write>>,
    world_options: WorldOptions,
    options: ReportOptions,
) -> Result<(Outcome, crate::report::RunReport), SimError> {
    let mut world = World::with_report(scenario, seed, sink, world_options, Some(options))?;
    world.run();
    let (recorder, missing) = world.take_report().expect("recording a report");
    let outcome = world.finish();
    let report = recorder.finish(crate::report::Summary::of(&outcome), missing);
    Ok((outcome, report))
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

impl World {
    /// The outcome of a scenario written out in a test, run to the end with `options`.
    #[cfg(test)]
    pub(crate) fn outcome_of(text: &str, seed: u64, options: WorldOptions) -> Outcome {
        let scenario = Scenario::parse(text, "test.toml").expect("a valid scenario");
        let mut world = World::with_options(&scenario, seed, None, options).expect("it builds");
        world.run();
        world.finish()
    }
}
