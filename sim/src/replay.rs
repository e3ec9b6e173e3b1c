//! Replays a recording of a real device (`meshlog device --record`) on virtual time: a fresh
//! node, rebuilt from the recording's start (config, seed, epoch, store), is given the same
//! inputs batch by batch, and each batch's outputs (datagrams byte for byte, node events, the
//! next wake-up) must fold to the digest the device recorded. The first batch that does not
//! is reported with its inputs and what the node did instead.
//!
//! Time is the recording's: each input carries the instant the device's clock gave it. The
//! trace (`meshlog replay --trace`) uses the simulator's line shapes, with times relative to
//! the device's start.

use meshlog_core::event::open;
use meshlog_core::record::{finish_batch, OutputsDigest, RecordedInput, Recording};
use meshlog_core::{
    Community, Config, DeviceKeys, InMemoryStore, Input, Instant, Node, NodeEvent, Origin, Output,
    Packet, Store,
};
use thiserror::Error;

use crate::trace::Trace;

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
    for sealed in &start.events {
        let opened =
            open(sealed, &community).map_err(|e| ReplayError::StoreEvent(e.to_string()))?;
        store
            .insert(&opened, 0)
            .expect("an in-memory store takes any event");
    }
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
            trace_input(trace, relative(at), &name, input);
            apply(&mut node, input);
        }
        inputs_total += batch.inputs.len() as u64;
        let commit = batch.commit_error.clone().map_or(Ok(()), Err);
        let (outputs, wake_at) = finish_batch(&mut node, commit);
        outputs_total += outputs.len() as u64;
        for output in &outputs {
            trace_output(trace, relative(at), &name, output);
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
    Ok(ReplayOutcome {
        batches: recording.batches.len(),
        inputs: inputs_total,
        outputs: outputs_total,
        recorded_digest: recorded_digest.finalize().to_hex().to_string(),
        replayed_digest: replayed_digest.finalize().to_hex().to_string(),
        first_difference,
        torn: recording.torn,
        full: recording.full,
        trace_lines: trace.lines(),
        trace_digest: trace.digest(),
    })
}

/// Gives the node one recorded input, as the driver gave it.
fn apply(node: &mut Node<InMemoryStore>, input: &RecordedInput) {
    match input {
        RecordedInput::Datagram { now, bytes, .. } => {
            node.handle_input(Input::Datagram { now: *now, bytes })
        }
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

fn trace_input(trace: &mut Trace, now: Instant, name: &str, input: &RecordedInput) {
    match input {
        RecordedInput::Datagram { bytes, from, .. } => {
            let (kind, source) = Packet::peek(bytes)
                .map_or(("UNKNOWN".to_owned(), "?".to_owned()), |(k, s)| {
                    (k.name().to_owned(), s)
                });
            trace.line(format_args!(
                "{now} deliver {source}>{name} {kind} {} from {from}",
                bytes.len()
            ));
        }
        RecordedInput::Timeout(_) => {}
        RecordedInput::Append { bodies, .. } => trace.line(format_args!(
            "{now} api append {name} {} bodies",
            bodies.len()
        )),
        RecordedInput::Online { online, .. } => {
            trace.line(format_args!("{now} api online {name} {online}"))
        }
    }
}

fn trace_output(trace: &mut Trace, now: Instant, name: &str, output: &Output) {
    match output {
        Output::Transmit(t) => trace.line(format_args!(
            "{now} send {name}>{} {} {} ({})",
            t.to,
            t.kind,
            t.bytes.len(),
            t.note
        )),
        Output::Event(event) => {
            if let Some(line) = event_line(name, event) {
                trace.line(format_args!("{now} {line}"));
            }
        }
        Output::Timeout(_) => {}
    }
}

/// A node event as the simulator's trace writes it (without the time).
fn event_line(name: &str, event: &NodeEvent) -> Option<String> {
    Some(match event {
        NodeEvent::EventStored {
            id,
            origin: Origin::Local,
            event,
            ..
        } => format!("append {name} {id} {}", event.body.kind_name()),
        NodeEvent::EventStored { id, from, .. } => {
            let from = from.as_ref().map(ToString::to_string).unwrap_or_default();
            format!("insert {name} {id} from {from}")
        }
        NodeEvent::PacketDropped { reason, size, .. } => {
            format!("drop at {name} {size} {}", reason.code())
        }
        NodeEvent::EventRejected { from, reason } => {
            format!("reject at {name} from {from} {}", reason.code())
        }
        NodeEvent::PeerSync { peer, in_sync } => format!("peer {name} {peer} in_sync={in_sync}"),
        NodeEvent::StoreFailed { detail } => format!("store_failed {name} {detail}"),
        NodeEvent::PacketReceived { .. } => return None,
    })
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
mod tests {
    use super::*;
    use meshlog_core::record::{Batch, Start, Tunables};
    use meshlog_core::testing::{community_of, derive_seed, keys};
    use meshlog_core::{DeviceId, EventBody};

    /// Alice's node run by hand as the driver runs it, recorded: its start, two appends and
    /// a few timeouts. Bob is a peer that never answers.
    fn recording() -> Recording {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let peers = vec![
            DeviceId::new("bob").unwrap(),
            DeviceId::new("carol").unwrap(),
        ];
        let config = Config::new(
            keys("alice", 1),
            community,
            peers.clone(),
            derive_seed(1, "a"),
        );
        let start = Start {
            device: config.keys.device.clone(),
            keys_dir: "keys".into(),
            peers: peers
                .iter()
                .map(|p| (p.clone(), "127.0.0.1:1".into()))
                .collect(),
            seed: config.seed,
            tunables: Tunables::of(&config),
            epoch: 1,
            started_at: Instant::from_millis(1_000_000),
            events: vec![],
        };
        let mut node = Node::new(config, InMemoryStore::new(), start.started_at).unwrap();
        let mut batches = Vec::new();
        let mut run = |node: &mut Node<InMemoryStore>, inputs: Vec<RecordedInput>| {
            for input in &inputs {
                apply(node, input);
            }
            let (outputs, wake_at) = finish_batch(node, Ok(()));
            batches.push(Batch {
                inputs,
                commit_error: None,
                outputs: OutputsDigest::of(&outputs, wake_at),
            });
            wake_at
        };
        let mut wake = run(&mut node, vec![]);
        for i in 0..4u64 {
            let now = Instant::from_millis(1_000_000 + 1_000 * (1 + i));
            let body = EventBody::Message {
                text: format!("hello {i}"),
                attachment: None,
                auto: false,
            };
            wake = run(
                &mut node,
                vec![RecordedInput::Append {
                    now,
                    bodies: vec![body],
                }],
            );
            wake = run(&mut node, vec![RecordedInput::Timeout(wake.max(now))]);
        }
        let _ = wake;
        Recording {
            start,
            batches,
            full: false,
            torn: false,
        }
    }

    fn replay_with(options: ReplayOptions) -> ReplayOutcome {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let mut trace = Trace::new(None);
        replay(
            &recording(),
            keys("alice", 1),
            community,
            options,
            &mut trace,
        )
        .unwrap()
    }

    #[test]
    fn a_faithful_replay_matches_every_step() {
        let outcome = replay_with(ReplayOptions::default());
        assert!(outcome.matched(), "{:?}", outcome.first_difference);
        assert_eq!(outcome.batches, 9);
        assert_eq!(outcome.recorded_digest, outcome.replayed_digest);
        assert!(outcome.outputs > 0);
        // The trace is deterministic too.
        assert_eq!(
            replay_with(ReplayOptions::default()).trace_digest,
            outcome.trace_digest
        );
    }

    #[test]
    fn a_changed_node_is_caught_at_the_first_step_it_changes() {
        let outcome = replay_with(ReplayOptions {
            test_divergence: true,
        });
        let difference = outcome.first_difference.expect("the pushes differ");
        assert_eq!(difference.batch, 1, "the first append: {difference}");
        assert!(
            difference.to_string().contains("append message"),
            "{difference}"
        );
        assert_ne!(outcome.recorded_digest, outcome.replayed_digest);
    }

    #[test]
    fn keys_of_another_device_are_refused() {
        let community = community_of(&["alice", "bob", "carol"], 1);
        let mut trace = Trace::new(None);
        let err = replay(
            &recording(),
            keys("bob", 1),
            community,
            ReplayOptions::default(),
            &mut trace,
        )
        .unwrap_err();
        assert!(matches!(err, ReplayError::WrongDevice { .. }), "{err}");
    }
}
