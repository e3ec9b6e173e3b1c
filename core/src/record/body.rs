//! The bodies of `Start` and `Batch` records, byte by byte (the layout is in `record.rs`).

use super::{Batch, OutputsDigest, RecordedInput, Start, Tunables};
use crate::codec::{DecodeError, Reader, Writer};
use crate::event::EventBody;
use crate::id::DeviceId;
use crate::time::Instant;

pub(super) fn encode_start(w: &mut Writer, s: &Start) {
    w.u8(1);
    w.bytes_u8(s.device.as_str().as_bytes());
    w.bytes_u16(s.keys_dir.as_bytes());
    w.u16(s.peers.len() as u16);
    for (peer, addr) in &s.peers {
        w.bytes_u8(peer.as_str().as_bytes())
            .bytes_u8(addr.as_bytes());
    }
    w.raw(&s.seed);
    let t = &s.tunables;
    w.u64(t.sync_interval_us)
        .u64(t.sync_jitter_us)
        .u32(t.sync_fanout);
    w.u32(t.events_per_round_max).u32(t.stream_rate_max);
    w.u32(t.followups_per_round_max)
        .u64(t.filter_fp_rate.to_bits());
    w.u32(t.leaf_items_max).u32(t.output_queue_max).u8(t.flags);
    w.u64(s.epoch).u64(s.started_at.as_micros());
    w.u32(s.events.len() as u32);
    for sealed in &s.events {
        w.u32(sealed.len() as u32).raw(sealed);
    }
}

pub(super) fn decode_start(body: &[u8]) -> Result<Start, DecodeError> {
    let mut r = Reader::new(body);
    if r.u8("record kind")? != 1 {
        return Err(DecodeError::invalid(
            "record kind",
            "the first record is not a start",
        ));
    }
    let device = name(&mut r, "device")?;
    let keys_dir = r.str_u16("keys dir")?.to_owned();
    let peers = (0..r.u16("peer count")?)
        .map(|_| Ok((name(&mut r, "peer")?, r.str_u8("peer address")?.to_owned())))
        .collect::<Result<_, DecodeError>>()?;
    let seed = r.array("seed")?;
    let tunables = Tunables {
        sync_interval_us: r.u64("sync interval")?,
        sync_jitter_us: r.u64("sync jitter")?,
        sync_fanout: r.u32("sync fanout")?,
        events_per_round_max: r.u32("events per round")?,
        stream_rate_max: r.u32("stream rate")?,
        followups_per_round_max: r.u32("follow-ups per round")?,
        filter_fp_rate: f64::from_bits(r.u64("filter rate")?),
        leaf_items_max: r.u32("leaf items")?,
        output_queue_max: r.u32("output queue")?,
        flags: r.u8("flags")?,
    };
    let epoch = r.u64("epoch")?;
    let started_at = Instant::from_micros(r.u64("start time")?);
    let events = (0..r.u32("event count")?)
        .map(|_| {
            let len = r.u32("event length")? as usize;
            Ok(r.take(len, "event")?.to_vec())
        })
        .collect::<Result<_, DecodeError>>()?;
    r.finish()?;
    Ok(Start {
        device,
        keys_dir,
        peers,
        seed,
        tunables,
        epoch,
        started_at,
        events,
    })
}

fn name(r: &mut Reader<'_>, what: &'static str) -> Result<DeviceId, DecodeError> {
    let text = r.str_u8(what)?;
    DeviceId::new(text).ok_or_else(|| DecodeError::invalid(what, text.to_owned()))
}

pub(super) fn encode_batch(w: &mut Writer, batch: &Batch) {
    w.u8(2).u32(batch.inputs.len() as u32);
    for input in &batch.inputs {
        match input {
            RecordedInput::Datagram { now, from, bytes } => {
                w.u8(1).u64(now.as_micros()).bytes_u8(from.as_bytes());
                w.u32(bytes.len() as u32).raw(bytes);
            }
            RecordedInput::Timeout(now) => {
                w.u8(2).u64(now.as_micros());
            }
            RecordedInput::Append { now, bodies } => {
                w.u8(3).u64(now.as_micros()).u16(bodies.len() as u16);
                for body in bodies {
                    let bytes = body.to_bytes();
                    w.u32(bytes.len() as u32).raw(&bytes);
                }
            }
            RecordedInput::Online { now, online } => {
                w.u8(4).u64(now.as_micros()).u8(u8::from(*online));
            }
        }
    }
    match &batch.commit_error {
        None => w.u8(0),
        Some(error) => w.u8(1).bytes_u16(error.as_bytes()),
    };
    let o = &batch.outputs;
    w.u32(o.count).raw(&o.digest).u64(o.wake_at.as_micros());
}

pub(super) fn decode_batch(body: &[u8]) -> Result<Batch, DecodeError> {
    let mut r = Reader::new(body);
    let inputs = (0..r.u32("input count")?)
        .map(|_| decode_input(&mut r))
        .collect::<Result<_, _>>()?;
    let commit_error = match r.u8("commit error flag")? {
        0 => None,
        _ => Some(r.str_u16("commit error")?.to_owned()),
    };
    let outputs = OutputsDigest {
        count: r.u32("output count")?,
        digest: r.array("outputs digest")?,
        wake_at: Instant::from_micros(r.u64("wake-up")?),
    };
    r.finish()?;
    Ok(Batch {
        inputs,
        commit_error,
        outputs,
    })
}

fn decode_input(r: &mut Reader<'_>) -> Result<RecordedInput, DecodeError> {
    let kind = r.u8("input kind")?;
    let now = Instant::from_micros(r.u64("input time")?);
    Ok(match kind {
        1 => {
            let from = r.str_u8("source address")?.to_owned();
            let len = r.u32("datagram length")? as usize;
            RecordedInput::Datagram {
                now,
                from,
                bytes: r.take(len, "datagram")?.to_vec(),
            }
        }
        2 => RecordedInput::Timeout(now),
        3 => {
            let bodies = (0..r.u16("body count")?)
                .map(|_| {
                    let len = r.u32("body length")? as usize;
                    EventBody::from_bytes(r.take(len, "body")?)
                })
                .collect::<Result<_, _>>()?;
            RecordedInput::Append { now, bodies }
        }
        4 => RecordedInput::Online {
            now,
            online: r.bool("online")?,
        },
        other => return Err(DecodeError::invalid("input kind", format!("{other}"))),
    })
}
