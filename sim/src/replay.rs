//! Replays a recording of a real device (`meshlog device --record`) on virtual time: a fresh
//! node, rebuilt from the recording's start (config, seed, epoch, store), is given the same
//! inputs batch by batch, and each batch's outputs (datagrams byte for byte, node events, the
//! next wake-up) must fold to the digest the device recorded. The first batch that does not
//! is reported with its inputs and what the node did instead.
//!
//! Time is the recording's: each input carries the instant the device's clock gave it. The
//! trace (`meshlog replay --trace`) uses the simulator's line shapes, with times relative to
//! the device's start.

use std::net::SocketAddr;

use meshlog_core::event::open;
use meshlog_core::record::{finish_batch, OutputsDigest, RecordedInput, Recording};
use meshlog_core::{
    Community, Config, DeviceKeys, InMemoryStore, Input, Instant, Node, Output, Packet, Store,
};
use thiserror::Error;

use crate::report::trace::Trace;
use crate::report::{ReplayReport, ReportOptions, RunReport};

/// Inputs and outputs of a differing batch shown at most (a batch holds up to 256 inputs).
const SHOWN_MAX: usize = 20;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("the keys given are {given}'s, the recording is {recorded}'s")]
    WrongDevice { given: String, recorded: String },
    #[error("an event of the recorded store does not open with these keys: {0}")]
    StoreEvent(String),
    #[error("cannot rebuild the node: {0}")]
    Node(String),
    #[error("the rebuilt node took epoch {rebuilt}, the device {recorded}")]
    Epoch { rebuilt: u64, recorded: u64 },
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayOptions {
    /// Replays with `Config::test_divergence` on, to show a changed node is caught.
    pub test_divergence: bool,
    /// Draws the replay as `meshlog run --report` draws a run (the device's view), with the
    /// sequence diagram over this window of time from the device's start.
    pub report: Option<ReportOptions>,
}

/// The first batch whose outputs differ from the recording's.
#[derive(Clone, Debug)]
pub struct Difference {
    /// 0 is the node's start (its first round), 1 the first batch of inputs.
    pub batch: usize,
    pub at: Instant,
    pub inputs: Vec<String>,
    pub expected: OutputsDigest,
    pub actual: OutputsDigest,
    /// What the replayed node did, one line each.
    pub outputs: Vec<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "step {} at {}: recorded {} outputs (digest {}, wake at {}), replay made {} (digest {}, wake at {})",
            self.batch,
            self.at,
            self.expected.count,
            hex(&self.expected.digest),
            self.expected.wake_at,
            self.actual.count,
            hex(&self.actual.digest),
            self.actual.wake_at
        )?;
        for input in &self.inputs {
            writeln!(f, "  input  {input}")?;
        }
        for output in &self.outputs {
            writeln!(f, "  output {output}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct ReplayOutcome {
    pub batches: usize,
    pub inputs: u64,
    pub outputs: u64,
    /// Over every batch's outputs digest, in order: equal for the recording and a faithful
    /// replay.
    pub recorded_digest: String,
    pub replayed_digest: String,
    pub first_difference: Option<Difference>,
    /// The recording ended in a torn record or at its size bound.
    pub torn: bool,
    pub full: bool,
    pub trace_lines: u64,
    pub trace_digest: String,
    /// When `ReplayOptions::report` asked for one.
    pub report: Option<RunReport>,
}

impl ReplayOutcome {
    pub fn matched(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// Replays `recording` with the device's `keys` and `community` (from the key directory).
pub fn replay(
    recording: &Recording,
    keys: DeviceKeys,
    community: Community,
    options: ReplayOptions,
    trace: &mut Trace,
) -> Result<ReplayOutcome, ReplayError> {
    let start = &recording.start;
    if keys.device != start.device {
        return Err(ReplayError::WrongDevice {
            given: keys.device.to_string(),
            recorded: start.device.to_string(),
        });
    }
    let mut store = InMemoryStore::new();
    let mut held = Vec::with_capacity(start.events.len());
    for sealed in &start.events {
        let opened =
            open(sealed, &community).map_err(|e| ReplayError::StoreEvent(e.to_string()))?;
        store
            .insert(&opened, 0)
            .expect("an in-memory store takes any event");
        held.push(opened.id);
    }
    let mut report = options
        .report
        .map(|window| ReplayReport::new(recording, held, window));
    let peers = start.peers.iter().map(|(peer, _)| peer.clone()).collect();
    let mut config = Config::new(keys, community, peers, start.seed);
    start.tunables.apply(&mut config);
    // The store is fresh, so its next epoch is the floor: the one the device took.
    config.epoch_floor = start.epoch;
    config.test_divergence = options.test_divergence;
    let name = start.device.to_string();
    let mut node =
        Node::new(config, store, start.started_at).map_err(|e| ReplayError::Node(e.to_string()))?;
    if node.epoch() != start.epoch {
        return Err(ReplayError::Epoch {
            rebuilt: node.epoch(),
            recorded: start.epoch,
        });
    }
    let origin = start.started_at;
    let relative = |at: Instant| Instant(at.0.saturating_sub(origin.0));
    trace.line(format_args!(
        "replay {name} epoch {} peers {} events {}",
        start.epoch,
        start.peers.len(),
        start.events.len()
    ));

    let mut recorded_digest = blake3::Hasher::new();
    let mut replayed_digest = blake3::Hasher::new();
    let mut first_difference = None;
    let (mut inputs_total, mut outputs_total) = (0u64, 0u64);
    for (index, batch) in recording.batches.iter().enumerate() {
        let mut at = start.started_at;
        for input in &batch.inputs {
            at = input_time(input);
            trace.replay_input(relative(at), &name, input);
            if let Some(report) = &mut report {
                report.input(relative(at), input);
            }
            apply(&mut node, input);
        }
        inputs_total += batch.inputs.len() as u64;
        let commit = batch.commit_error.clone().map_or(Ok(()), Err);
        let (outputs, wake_at) = finish_batch(&mut node, commit);
        outputs_total += outputs.len() as u64;
        for output in &outputs {
            trace.replay_output(relative(at), &name, output);
            if let Some(report) = &mut report {
                report.output(relative(at), output);
            }
        }
        let actual = OutputsDigest::of(&outputs, wake_at);
        recorded_digest.update(&batch.outputs.digest);
        replayed_digest.update(&actual.digest);
        if actual != batch.outputs && first_difference.is_none() {
            let shift = |mut d: OutputsDigest| {
                d.wake_at = relative(d.wake_at);
                d
            };
            first_difference = Some(Difference {
                batch: index,
                at: relative(at),
                inputs: batch
                    .inputs
                    .iter()
                    .take(SHOWN_MAX)
                    .map(|input| describe_input(relative(input_time(input)), input))
                    .collect(),
                expected: shift(batch.outputs),
                actual: shift(actual),
                outputs: outputs
                    .iter()
                    .take(SHOWN_MAX)
                    .map(describe_output)
                    .collect(),
            });
        }
    }
    let replayed_digest = replayed_digest.finalize().to_hex().to_string();
    let report = report.map(|report| {
        let failures = first_difference
            .iter()
            .map(|d: &Difference| d.to_string().lines().next().unwrap_or_default().to_owned())
            .collect();
        report.finish(
            format!("replay of {name}"),
            replayed_digest.clone(),
            failures,
        )
    });
    Ok(ReplayOutcome {
        batches: recording.batches.len(),
        inputs: inputs_total,
        outputs: outputs_total,
        recorded_digest: recorded_digest.finalize().to_hex().to_string(),
        replayed_digest,
        first_difference,
        torn: recording.torn,
        full: recording.full,
        trace_lines: trace.lines(),
        trace_digest: trace.digest(),
        report,
    })
}

/// Gives the node one recorded input, as the driver gave it.
fn apply(node: &mut Node<InMemoryStore>, input: &RecordedInput) {
    match input {
        RecordedInput::Datagram { now, from, bytes } => node.handle_input(Input::Datagram {
            now: *now,
            // The driver recorded the address it was given; one that does not parse (a
            // recording made by hand) comes from nowhere in particular.
            from: from.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            bytes,
        }),
        RecordedInput::Timeout(now) => node.handle_input(Input::Timeout(*now)),
        RecordedInput::Append { now, bodies } => {
            // The result went back to the API caller; the node's outputs say the rest.
            let _ = node.append_all(*now, bodies.clone());
        }
        RecordedInput::Online { now, online } => node.set_online(*now, *online),
    }
}

fn input_time(input: &RecordedInput) -> Instant {
    match input {
        RecordedInput::Datagram { now, .. }
        | RecordedInput::Append { now, .. }
        | RecordedInput::Online { now, .. } => *now,
        RecordedInput::Timeout(now) => *now,
    }
}

/// One input, at `now` (relative to the device's start).
fn describe_input(now: Instant, input: &RecordedInput) -> String {
    match input {
        RecordedInput::Datagram { from, bytes, .. } => {
            let kind = Packet::peek(bytes).map_or("UNKNOWN".to_owned(), |(k, s)| {
                format!("{} from {s}", k.name())
            });
            format!("{now} datagram {kind} ({} B, {from})", bytes.len())
        }
        RecordedInput::Timeout(_) => format!("{now} timeout"),
        RecordedInput::Append { bodies, .. } => {
            let kinds: Vec<&str> = bodies.iter().map(|b| b.kind_name()).collect();
            format!("{now} append {}", kinds.join(", "))
        }
        RecordedInput::Online { online, .. } => format!("{now} online={online}"),
    }
}

fn describe_output(output: &Output) -> String {
    match output {
        Output::Transmit(t) => format!(
            "send to {} {} {} B ({})",
            t.to,
            t.kind,
            t.bytes.len(),
            t.note
        ),
        Output::Event(event) => format!("{event:?}"),
        Output::Timeout(at) => format!("timeout {at}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
