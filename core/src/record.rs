//! Recordings of a node's inputs, so a run on the real network can be replayed exactly on
//! virtual time (`meshlog device --record FILE`, `meshlog replay FILE`).
//!
//! The driver hands its node inputs in batches and commits the store after each; a recording
//! is that, batch by batch: every datagram (arrival time, source address, bytes), timeout,
//! local append (its bodies) and online/offline change, then a digest of everything the batch
//! made the node do (each datagram byte for byte with its destination, each node event, the
//! next wake-up). What rebuilds the node comes first: its config without secrets (the key
//! directory is named, not copied), its RNG seed, its epoch, and every event its store held.
//!
//! ```text
//! file   = "MLREC" | version:u8 = 1 | record*
//! record = len:u32 | check:[u8; 8] | body          check = BLAKE3(body), first 8 bytes
//! body   = 1 Start | 2 Batch | 3 Full
//! Batch  = inputs:u32 | input* | commit_error:str16? | outputs:u32 | digest:[u8; 16] | wake_at:u64
//! input  = 1 Datagram now:u64 from:str8 bytes:u16-len | 2 Timeout now:u64
//!        | 3 Append now:u64 bodies:u16 (len:u32 body)* | 4 Online now:u64 online:u8
//! ```
//!
//! The format lives here, without IO; the device's driver writes the file (`meshlog-net`'s
//! `Recorder`), the simulator replays it (`meshlog-sim`'s `replay`). Records are appended and
//! flushed after each batch: a SIGKILL loses nothing written, and a record torn by a crash
//! mid-write (short, or failing its check) ends the recording on read. A recording is bounded:
//! at its size limit the recorder writes `Full` and records nothing more, so the replay covers
//! what came before.

use thiserror::Error;

use crate::codec::{DecodeError, Writer};
use crate::event::EventBody;
use crate::id::DeviceId;
use crate::node::{Node, NodeEvent, Output};
use crate::store::Store;
use crate::time::Instant;

mod body;
use body::{decode_batch, decode_start, encode_batch, encode_start};

const MAGIC: &[u8; 5] = b"MLREC";
const VERSION: u8 = 1;
const CHECK_LEN: usize = 8;
/// One record at most: a batch of 256 datagrams of 64 KiB would be 16 MiB; a start record holds
/// the whole store, bounded by the recording's own size limit.
const RECORD_LEN_MAX: u32 = 1 << 30;

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("not a meshlog recording (bad magic or version)")]
    NotARecording,
    #[error("recording has no start record")]
    NoStart,
    #[error("malformed record {index}: {error}")]
    Malformed { index: usize, error: DecodeError },
}

/// What rebuilds the node: everything in its `Config` but the keys, and its store at start.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub device: DeviceId,
    /// Where the keys were (`community.json`, `NAME.device.json`); replay loads them from a
    /// directory given on its command line, which may differ.
    pub keys_dir: String,
    pub peers: Vec<(DeviceId, String)>,
    pub seed: [u8; 32],
    pub tunables: Tunables,
    /// The epoch `Node::new` took: replay gives its store the same.
    pub epoch: u64,
    pub started_at: Instant,
    /// Sealed bytes of every event in the store at start, in id order.
    pub events: Vec<Vec<u8>>,
}

/// The node's `Config` fields besides keys, community, peers and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Tunables {
    pub sync_interval_us: u64,
    pub sync_jitter_us: u64,
    pub sync_fanout: u32,
    pub events_per_round_max: u32,
    pub stream_rate_max: u32,
    pub followups_per_round_max: u32,
    pub filter_fp_rate: f64,
    pub leaf_items_max: u32,
    pub output_queue_max: u32,
    pub flags: u8,
}

/// Bit `i` of `flags` is `FLAGS[i]`. `eager_forward` and then `introductions` came last: a
/// recording made before one has its bit clear, and replays without it, as it ran.
/// (`forward_fanout` is not recorded: a replay uses the default, which every driver uses.)
const FLAGS: [&str; 7] = [
    "eager_push",
    "anti_entropy",
    "relay",
    "amplification_budget",
    "replay_protection",
    "eager_forward",
    "introductions",
];

impl Tunables {
    pub fn of(config: &crate::config::Config) -> Self {
        let flags = [
            config.eager_push,
            config.anti_entropy,
            config.relay,
            config.amplification_budget,
            config.replay_protection,
            config.eager_forward,
            config.introductions,
        ]
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, on)| acc | (u8::from(*on) << i));
        Tunables {
            sync_interval_us: config.sync_interval.as_micros(),
            sync_jitter_us: config.sync_jitter.as_micros(),
            sync_fanout: config.sync_fanout as u32,
            events_per_round_max: config.events_per_round_max,
            stream_rate_max: config.stream_rate_max,
            followups_per_round_max: config.followups_per_round_max,
            filter_fp_rate: config.filter_fp_rate,
            leaf_items_max: config.leaf_items_max,
            output_queue_max: config.output_queue_max as u32,
            flags,
        }
    }

    /// Sets these on `config` (whose keys, peers and seed the caller made).
    pub fn apply(&self, config: &mut crate::config::Config) {
        use crate::time::Duration;
        config.sync_interval = Duration(self.sync_interval_us);
        config.sync_jitter = Duration(self.sync_jitter_us);
        config.sync_fanout = self.sync_fanout as usize;
        config.events_per_round_max = self.events_per_round_max;
        config.stream_rate_max = self.stream_rate_max;
        config.followups_per_round_max = self.followups_per_round_max;
        config.filter_fp_rate = self.filter_fp_rate;
        config.leaf_items_max = self.leaf_items_max;
        config.output_queue_max = self.output_queue_max as usize;
        let flag = |i: usize| self.flags & (1 << i) != 0;
        debug_assert_eq!(FLAGS.len(), 7);
        config.eager_push = flag(0);
        config.anti_entropy = flag(1);
        config.relay = flag(2);
        config.amplification_budget = flag(3);
        config.replay_protection = flag(4);
        config.eager_forward = flag(5);
        config.introductions = flag(6);
    }
}

/// One input the driver gave the node.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordedInput {
    Datagram {
        now: Instant,
        from: String,
        bytes: Vec<u8>,
    },
    Timeout(Instant),
    Append {
        now: Instant,
        bodies: Vec<EventBody>,
    },
    Online {
        now: Instant,
        online: bool,
    },
}

/// One batch: its inputs and what they made the node do.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub inputs: Vec<RecordedInput>,
    /// The store's commit failed with this (replay reports it the same way).
    pub commit_error: Option<String>,
    pub outputs: OutputsDigest,
}

/// Everything a batch made the node do, folded: outputs in order, then the next wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputsDigest {
    pub count: u32,
    pub digest: [u8; 16],
    pub wake_at: Instant,
}

impl OutputsDigest {
    pub fn of(outputs: &[Output], wake_at: Instant) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("meshlog recorded outputs v1");
        for output in outputs {
            match output {
                Output::Transmit(t) => {
                    hasher.update(&[1]).update(t.to.as_str().as_bytes());
                    hasher.update(&(t.bytes.len() as u64).to_le_bytes());
                    hasher.update(&t.bytes);
                }
                Output::Event(event) => {
                    // Node events are data; their debug form names every field.
                    hasher.update(&[2]).update(describe_event(event).as_bytes());
                }
                Output::Timeout(at) => {
                    hasher.update(&[3]).update(&at.as_micros().to_le_bytes());
                }
            }
        }
        hasher.update(&wake_at.as_micros().to_le_bytes());
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        OutputsDigest {
            count: outputs.len() as u32,
            digest,
            wake_at,
        }
    }
}

/// Ends a batch of inputs as the driver does, and as a replay must: the store's commit (its
/// error, if any, reported first as a `StoreFailed` event), then every output until the node's
/// next wake-up. One place, so a replay cannot drift from the driver.
pub fn finish_batch<S: Store>(
    node: &mut Node<S>,
    commit: Result<(), String>,
) -> (Vec<Output>, Instant) {
    let mut outputs = Vec::new();
    if let Err(detail) = commit {
        outputs.push(Output::Event(NodeEvent::StoreFailed { detail }));
    }
    loop {
        match node.poll_output() {
            Output::Timeout(wake_at) => return (outputs, wake_at),
            output => outputs.push(output),
        }
    }
}

fn describe_event(event: &NodeEvent) -> String {
    format!("{event:?}")
}

/// What a recording file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub start: Start,
    pub batches: Vec<Batch>,
    /// The recorder stopped at its size bound.
    pub full: bool,
    /// The last record was torn (a crash mid-write) and was ignored.
    pub torn: bool,
}

/// The bytes a recording file starts with.
pub fn file_header() -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.push(VERSION);
    header
}

/// A record as written to the file: length, check, body.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("a record under 4 GiB");
    assert!(len <= RECORD_LEN_MAX, "record of {len} bytes");
    let mut framed = Vec::with_capacity(4 + CHECK_LEN + body.len());
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&check(body));
    framed.extend_from_slice(body);
    framed
}

/// The start record's body.
pub fn start_body(start: &Start) -> Vec<u8> {
    let mut w = Writer::new();
    encode_start(&mut w, start);
    w.bytes
}

/// A batch record's body.
pub fn batch_body(batch: &Batch) -> Vec<u8> {
    let mut w = Writer::new();
    encode_batch(&mut w, batch);
    w.bytes
}

/// The record that says the recorder stopped at its size bound.
pub const FULL_BODY: &[u8] = &[3];

fn check(body: &[u8]) -> [u8; CHECK_LEN] {
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&blake3::hash(body).as_bytes()[..CHECK_LEN]);
    out
}

impl Recording {
    pub fn parse(bytes: &[u8]) -> Result<Recording, RecordError> {
        let rest = bytes
            .strip_prefix(&MAGIC[..])
            .and_then(|rest| rest.split_first())
            .filter(|(version, _)| **version == VERSION)
            .map(|(_, rest)| rest)
            .ok_or(RecordError::NotARecording)?;
        let mut bodies = Vec::new();
        let mut at = 0;
        let mut torn = false;
        while at < rest.len() {
            let Some(body) = framed_body(&rest[at..]) else {
                torn = true;
                break;
            };
            at += 4 + CHECK_LEN + body.len();
            bodies.push(body);
        }
        let mut records = bodies.into_iter().enumerate();
        let (_, first) = records.next().ok_or(RecordError::NoStart)?;
        let malformed = |index| move |error| RecordError::Malformed { index, error };
        let start = decode_start(first).map_err(malformed(0))?;
        let mut batches = Vec::new();
        let mut full = false;
        for (index, body) in records {
            match body.first() {
                Some(2) => batches.push(decode_batch(&body[1..]).map_err(malformed(index))?),
                Some(3) => {
                    full = true;
                    break;
                }
                _ => {
                    return Err(RecordError::Malformed {
                        index,
                        error: DecodeError::invalid("record kind", "not a batch"),
                    })
                }
            }
        }
        Ok(Recording {
            start,
            batches,
            full,
            torn,
        })
    }
}

/// The body of the record at the head of `bytes`, if it is whole and passes its check.
fn framed_body(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    if len > RECORD_LEN_MAX {
        return None;
    }
    let sum = bytes.get(4..4 + CHECK_LEN)?;
    let body = bytes.get(4 + CHECK_LEN..4 + CHECK_LEN + len as usize)?;
    (check(body) == sum).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Start {
        Start {
            device: DeviceId::new("alice").unwrap(),
            keys_dir: "/keys".into(),
            peers: vec![(DeviceId::new("bob").unwrap(), "127.0.0.1:8002".into())],
            seed: [7; 32],
            tunables: Tunables::of(&crate::config::Config::new(
                crate::testing::keys("alice", 1),
                crate::testing::community_of(&["alice", "bob"], 1),
                vec![DeviceId::new("bob").unwrap()],
                [1; 32],
            )),
            epoch: 1_700_000_000,
            started_at: Instant::from_micros(5),
            events: vec![vec![1, 2, 3], vec![4; 300]],
        }
    }

    fn batch(i: u64) -> Batch {
        Batch {
            inputs: vec![
                RecordedInput::Datagram {
                    now: Instant::from_micros(i),
                    from: "127.0.0.1:9".into(),
                    bytes: vec![i as u8; 40],
                },
                RecordedInput::Timeout(Instant::from_micros(i + 1)),
                RecordedInput::Append {
                    now: Instant::from_micros(i + 2),
                    bodies: vec![EventBody::DeviceStatus { online: true }],
                },
                RecordedInput::Online {
                    now: Instant::from_micros(i + 3),
                    online: false,
                },
            ],
            commit_error: (i == 2).then(|| "disk full".to_owned()),
            outputs: OutputsDigest {
                count: 3,
                digest: [i as u8; 16],
                wake_at: Instant::from_micros(i * 10),
            },
        }
    }

    /// A file as the recorder writes it: header, start, batches.
    fn file(batches: u64) -> Vec<u8> {
        let mut bytes = file_header();
        bytes.extend(framed(&start_body(&start())));
        for i in 0..batches {
            bytes.extend(framed(&batch_body(&batch(i))));
        }
        bytes
    }

    #[test]
    fn a_recording_reads_back_and_a_torn_tail_is_ignored() {
        let bytes = file(3);
        let read = Recording::parse(&bytes).unwrap();
        assert_eq!(read.start, start());
        assert_eq!(read.batches, (0..3).map(batch).collect::<Vec<_>>());
        assert!(!read.full && !read.torn);
        // A crash mid-write: the last record cut short, or its last byte wrong.
        for cut in [bytes.len() - 1, bytes.len() - 30] {
            let torn = Recording::parse(&bytes[..cut]).unwrap();
            assert_eq!(torn.batches.len(), 2);
            assert!(torn.torn);
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(Recording::parse(&flipped).unwrap().batches.len(), 2);
        assert!(matches!(
            Recording::parse(b"MLREC\x09"),
            Err(RecordError::NotARecording)
        ));
        let mut full = file(1);
        full.extend(framed(FULL_BODY));
        full.extend(framed(&batch_body(&batch(9))));
        let read = Recording::parse(&full).unwrap();
        assert!(read.full);
        assert_eq!(read.batches.len(), 1, "nothing after Full counts");
    }
}
