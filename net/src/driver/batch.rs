//! One batch on the node: its inputs handled in order, the store committed once (or held open
//! for the next batches: group commit), and the outputs collected, only after the commit.
//! Runs on the driver's task or on the node's own thread (see `Home`).

use std::net::SocketAddr;

use meshlog_core::record;
use meshlog_core::{Input, Instant, Node, Output, Store};

use super::precheck::precheck;
use super::{Command, DriverError, MemberOutcome, MemberVerb, Members, Snapshot};
use crate::recorder::Recorder;

/// Group commit across batches: while inputs keep coming (each batch was full), the node thread
/// keeps received events in one open transaction for up to this many batches, so a flood
/// commits thousands of events at once, not a few hundred: each commit writes every page it
/// dirtied, and random event ids dirty about one index page per event whatever the batch, so
/// bigger commits share those pages (the store bench measures the difference). The outputs
/// wait in the node's queue for the commit with their events, as within one batch.
const GROUP_COMMIT_BATCHES_MAX: usize = 16;
/// ...and for at most this long (driver clock), so under a flood the outputs held back (acks,
/// relays, the live stream) still leave within a few tens of milliseconds.
const GROUP_COMMIT_WAIT_MAX_US: u64 = 50_000;

/// One input of a batch, stamped with the driver's clock when it arrived.
#[derive(Debug)]
pub(super) enum Work {
    Datagram {
        now: Instant,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Timeout(Instant),
    Command {
        now: Instant,
        command: Command,
    },
}

/// What a batch left to do: outputs to send and publish, and when the node next wants a call.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) outputs: Vec<Output>,
    /// Unused while `held`.
    pub(super) wake_at: Instant,
    /// The commit was put off (group commit) and the outputs with it: the driver must hand
    /// the node its next batch without waiting, even an empty one, which commits.
    pub(super) held: bool,
}

/// Inputs for the node, and whether more were waiting when they were gathered (the batch was
/// full), which lets the node thread put its commit off (see `GROUP_COMMIT_BATCHES_MAX`).
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) work: Vec<Work>,
    pub(super) more_waiting: bool,
}

/// The node thread's group commit in progress: how many batches it holds, since when, and
/// their inputs for the recorder (a recording holds one batch per commit, as a replay
/// commits).
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    batches: usize,
    opened_at: Option<Instant>,
    recorded: Vec<record::RecordedInput>,
}

/// Feeds a batch to the node, commits the store once (group commit), and collects the outputs.
/// Outputs leave only after the commit: nothing is pushed that the store could still lose.
/// With a `group`, the commit (and the outputs, left in the node's queue) may wait for the
/// next batches while more input is waiting, within `GROUP_COMMIT_BATCHES_MAX` and
/// `GROUP_COMMIT_WAIT_MAX_US`. With a recorder, the inputs up to a commit and a digest of the
/// outputs are recorded.
pub(super) fn run_batch<S: Store>(
    node: &mut Node<S>,
    batch: Batch,
    group: Option<&mut GroupCommit>,
    mut recorder: Option<&mut Recorder>,
) -> Done {
    // Only a node thread's own group may wait; a fresh one ends with this batch.
    let may_wait = group.is_some();
    let mut fresh_group = GroupCommit::default();
    let group = group.unwrap_or(&mut fresh_group);
    let first_at = batch.work.first().map(Work::at);
    let last_at = batch.work.last().map(Work::at);
    let recorded = &mut group.recorded;
    let recording = recorder.is_some();
    if may_wait {
        // On the node's own thread, which may start others: on the driver's task (a store in
        // memory, or turmoil) threads would only compete with the executor.
        precheck(node, &batch.work);
    }
    for work in batch.work {
        if recorder.is_some() {
            recorded.extend(record_input(&work));
        }
        match work {
            Work::Datagram { now, from, bytes } => node.handle_input(Input::Datagram {
                now,
                from,
                bytes: &bytes,
            }),
            Work::Timeout(now) => node.handle_input(Input::Timeout(now)),
            Work::Command { now, command } => handle_command(node, now, command, recording),
        }
    }
    group.batches += 1;
    group.opened_at = group.opened_at.or(first_at);
    let waited_us = match (group.opened_at, last_at) {
        (Some(opened), Some(last)) => last.as_micros().saturating_sub(opened.as_micros()),
        _ => 0,
    };
    if may_wait
        && batch.more_waiting
        && group.batches < GROUP_COMMIT_BATCHES_MAX
        && waited_us < GROUP_COMMIT_WAIT_MAX_US
    {
        return Done {
            outputs: Vec::new(),
            wake_at: last_at.unwrap_or_default(),
            held: true,
        };
    }
    let recorded = std::mem::take(group).recorded;
    let commit = node.store_mut().commit().map_err(|err| err.to_string());
    let commit_error = commit.as_ref().err().cloned();
    let (outputs, wake_at) = record::finish_batch(node, commit);
    if let Some(recorder) = recorder.as_mut() {
        recorder.batch(&record::Batch {
            inputs: recorded,
            commit_error,
            outputs: record::OutputsDigest::of(&outputs, wake_at),
        });
    }
    Done {
        outputs,
        wake_at,
        held: false,
    }
}

impl Work {
    fn at(&self) -> Instant {
        match self {
            Work::Datagram { now, .. } | Work::Timeout(now) | Work::Command { now, .. } => *now,
        }
    }
}

/// What a recording keeps of one input; `None` for what does not change the node (snapshots).
fn record_input(work: &Work) -> Option<record::RecordedInput> {
    use record::RecordedInput;
    Some(match work {
        Work::Datagram { now, from, bytes } => RecordedInput::Datagram {
            now: *now,
            from: from.to_string(),
            bytes: bytes.clone(),
        },
        Work::Timeout(now) => RecordedInput::Timeout(*now),
        Work::Command { now, command } => match command {
            Command::Append { bodies, .. } => RecordedInput::Append {
                now: *now,
                bodies: bodies.clone(),
            },
            Command::SetOnline { online, .. } => RecordedInput::Online {
                now: *now,
                online: *online,
            },
            // Reads change nothing; a membership verb and discovery are refused while
            // recording.
            Command::Snapshot { .. }
            | Command::Members { .. }
            | Command::Member { .. }
            | Command::Announcement { .. }
            | Command::Heard { .. } => return None,
        },
    })
}

fn handle_command<S: Store>(node: &mut Node<S>, now: Instant, command: Command, recording: bool) {
    match command {
        Command::Append { bodies, reply } => {
            // All or nothing: a message and its file's chunks are stored (durably) together.
            let result = node.append_all(now, bodies).map_err(DriverError::Append);
            // A caller that went away still had its events stored; nothing to undo.
            let _ = reply.send(result);
        }
        Command::SetOnline { online, reply } => {
            node.set_online(now, online);
            let _ = reply.send(());
        }
        Command::Snapshot { reply } => {
            let _ = reply.send(Snapshot {
                device: node.device().clone(),
                online: node.is_online(),
                events: node.event_count(),
                summary: node.summary(),
                stats: node.stats().clone(),
                peers: node.peers(),
                sync_percent: node.sync_percent(),
                key_epoch: node.key_epoch(),
                now,
            });
        }
        Command::Members { reply } => {
            let _ = reply.send(Members {
                roster: node.roster().clone(),
                key_epoch: node.key_epoch(),
                epoch_keys: node.epoch_keys().clone(),
            });
        }
        Command::Member { verb, reply } => {
            let result = if recording {
                Err(DriverError::NotRecordable)
            } else {
                member_verb(node, now, verb)
            };
            let _ = reply.send(result);
        }
        Command::Announcement { ports, reply } => {
            let result = if recording {
                Err(DriverError::DiscoveryNotRecordable)
            } else {
                Ok(node.announcement(now, &ports))
            };
            let _ = reply.send(result);
        }
        Command::Heard { from, bytes } => {
            // Not recordable (see `DriverError::DiscoveryNotRecordable`): a recording device
            // runs without discovery, so nothing is heard; anything that is, is ignored.
            if !recording {
                node.handle_input(Input::Announcement {
                    now,
                    from,
                    bytes: &bytes,
                });
            }
        }
    }
}

fn member_verb<S: Store>(
    node: &mut Node<S>,
    now: Instant,
    verb: MemberVerb,
) -> Result<MemberOutcome, DriverError> {
    Ok(match verb {
        MemberVerb::Remove(device) => MemberOutcome::KeyEpoch(node.remove_member(now, &device)?),
        MemberVerb::RotateKeys => MemberOutcome::KeyEpoch(node.rotate_keys(now)?),
        MemberVerb::RemovePerson(person) => {
            MemberOutcome::KeyEpoch(node.remove_person(now, &person)?)
        }
        MemberVerb::Certify(person) => {
            node.certify(now, &person)?;
            MemberOutcome::KeyEpoch(node.key_epoch())
        }
        MemberVerb::Invite {
            role,
            valid_for,
            uses,
            address,
        } => MemberOutcome::Invite(Box::new(
            node.create_invite(now, role, valid_for, uses, address)?,
        )),
    })
}
