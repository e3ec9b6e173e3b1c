//! What the world traced, turned into each simulated device's network log and stream frames,
//! as a real device's pump turns driver events into them (same `NetEvent` shape and summary
//! lines, same `message` frames for new or changed messages).

use meshlog_sim::host::{Seen, Tap};
use meshlog_sim::World;

use super::decoded::Decoded;
use super::entries::Changed;
use super::outputs::DeviceOutputs;
use crate::device::netlog::{summary, NetEvent};
use crate::device::state::{Frame, CHUNK_PROGRESS_EVERY};
use crate::device::views::MessageView;

/// Everything the world traced since last time, as network-log lines and stream frames.
pub(crate) fn publish(world: &World, tap: &Tap, outputs: &[DeviceOutputs], decoded: &mut Decoded) {
    for happening in tap.drain() {
        match happening {
            Seen::Sent {
                at,
                from,
                to,
                kind,
                bytes,
                note,
            } => log(world, outputs, &from, |seq| NetEvent {
                seq,
                at_ms: at.as_millis(),
                direction: "sent",
                summary: summary(&from, &to, kind.name(), &note, bytes as usize),
                from: from.clone(),
                to: to.clone(),
                kind: kind.name(),
                bytes,
                reason: None,
            }),
            Seen::Lost {
                at,
                from,
                to,
                kind,
                bytes,
                cause,
            } => log(world, outputs, &from, |seq| NetEvent {
                seq,
                at_ms: at.as_millis(),
                direction: "dropped",
                summary: format!(
                    "{} lost in the virtual network: {cause}",
                    summary(&from, &to, kind.name(), "", bytes as usize)
                ),
                from: from.clone(),
                to: to.clone(),
                kind: kind.name(),
                bytes,
                reason: Some(cause.clone()),
            }),
            Seen::Delivered {
                at,
                from,
                to,
                kind,
                bytes,
            } => log(world, outputs, &to, |seq| NetEvent {
                seq,
                at_ms: at.as_millis(),
                direction: "received",
                summary: summary(&from, &to, kind.name(), "", bytes as usize),
                from: from.clone(),
                to: to.clone(),
                kind: kind.name(),
                bytes,
                reason: None,
            }),
            Seen::Refused {
                at,
                at_device,
                bytes,
                code,
            } => log(world, outputs, &at_device, |seq| NetEvent {
                seq,
                at_ms: at.as_millis(),
                direction: "dropped",
                summary: format!(
                    "{} dropped: {code}",
                    summary("?", &at_device, "UNKNOWN", "", bytes as usize)
                ),
                from: "?".into(),
                to: at_device.clone(),
                kind: "UNKNOWN",
                bytes,
                reason: Some(code.clone()),
            }),
            Seen::Stored { device, id } => announce(world, outputs, decoded, &device, &id),
        }
    }
    for device in 0..outputs.len() {
        decoded.catch_up(world, device);
    }
}

fn log(world: &World, outputs: &[DeviceOutputs], device: &str, make: impl FnOnce(u64) -> NetEvent) {
    let Some(out) = world.device_index(device).and_then(|i| outputs.get(i)) else {
        return;
    };
    let entry = out
        .netlog
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_with(make);
    // No subscriber is normal: nobody has the page open.
    let _ = out.frames.send(Frame::new("network", &entry));
}

/// A stored event changed a message (new, reacted to, more chunks): tell the device's stream.
/// The trace names events by their first 12 hex digits (6 bytes), which is what `prefix` is.
/// Indexed whether or not anyone listens; rows are built only for a listener.
fn announce(
    world: &World,
    outputs: &[DeviceOutputs],
    decoded: &mut Decoded,
    device: &str,
    prefix: &str,
) {
    let (Some(index), Ok(prefix)) = (world.device_index(device), hex::decode(prefix)) else {
        return;
    };
    let Some(out) = outputs.get(index).filter(|_| !prefix.is_empty()) else {
        return;
    };
    let Some((_, changed)) = decoded.stored(world, index, &prefix) else {
        return;
    };
    if out.frames.receiver_count() == 0 {
        return;
    }
    let Some(store) = decoded.index(index) else {
        return;
    };
    let changed = match changed {
        Changed::Message(id) => vec![id],
        Changed::Chunk { file, have, total }
            if have >= total || have % CHUNK_PROGRESS_EVERY == 0 =>
        {
            store.messages_with_file(&file)
        }
        Changed::Chunk { .. } | Changed::Nothing => Vec::new(),
    };
    for message in changed {
        if let Some(row) = store.message(&message) {
            let _ = out
                .frames
                .send(Frame::new("message", &MessageView::from(row)));
        }
    }
}
