//! The checkers run after every world: convergence (naming what is missing and who holds it),
//! nothing invented or altered, liveness, prompt delivery of pushes (`prompt.rs`), corrupted
//! and forged datagrams refused at the door and replays refused (`attack.rs`), index equals
//! store (`index_check.rs`), answers within the amplification budget (`budget.rs`) and the
//! scenario's efficiency bounds. Each reports what it saw, so a failure says which device and
//! by how much.

use meshlog_core::Prefix;
use meshlog_core::{EventId, Store};
use serde::Serialize;

use crate::world::World;

mod display;

/// Most invented or altered ids listed per device; the count says how many there were.
const IDS_LISTED_MAX: usize = 3;
/// Most missing ids listed per device that did not converge.
const MISSING_LISTED_MAX: usize = 10;
/// Nibbles of the bucket shown with a missing id (`3f*`): a bug in one branch of the descent
/// shows as missing ids sharing a prefix.
const BUCKET_DEPTH_SHOWN: u8 = 2;

/// An event a device lacks at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub id: String,
    /// Its bucket, `BUCKET_DEPTH_SHOWN` nibbles deep: `3f*`.
    pub bucket: String,
    /// Devices that hold it (its author among them, unless crashed with it unsent).
    pub held_by: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Failure {
    /// At the end of the run a device that is up does not hold every appended event.
    NotConverged {
        device: String,
        missing: usize,
        total: usize,
        /// The first few it lacks, in id order.
        ids: Vec<Missing>,
    },
    /// A device stores events that no device appended in this run.
    Invented {
        device: String,
        count: usize,
        ids: Vec<String>,
    },
    /// A device stores an appended id whose bytes or decrypted content differ from the author's.
    Altered {
        device: String,
        count: usize,
        ids: Vec<String>,
    },
    /// A device converged later than `converged_within` after the heal, or never.
    Liveness {
        device: String,
        converged_after_us: Option<u64>,
        bound_us: u64,
    },
    /// A device's append did not reach a direct peer over a clean link within the link's
    /// latency: eager push skipped it, and only a later round carried it.
    PushLate {
        from: String,
        to: String,
        count: u64,
        first: String,
        first_sent_at_us: u64,
        first_due_us: u64,
        first_arrived_us: Option<u64>,
    },
    /// A datagram the network corrupted or an attacker forged got past the packet layer
    /// (accepted, answered, or one of its events opened).
    PastTheDoor {
        device: String,
        from: String,
        cause: String,
        count: u64,
        first_at_us: u64,
        first: String,
    },
    /// A node that had accepted a datagram accepted, answered or otherwise used a replayed
    /// copy of it, instead of dropping it as `replayed`.
    ReplayAccepted {
        device: String,
        from: String,
        count: u64,
        first_at_us: u64,
        first: String,
    },
    /// A running node's id index and its store held different ids (after a restart, or at
    /// the end).
    IndexDiffers {
        device: String,
        when: String,
        at_us: u64,
        index_only: usize,
        store_only: usize,
        ids: Vec<String>,
    },
    /// A power cut or a reopened store lost events the device had appended itself:
    /// acknowledged, then lost.
    OwnEventLost {
        device: String,
        cause: String,
        at_us: u64,
        count: usize,
        ids: Vec<String>,
    },
    /// Event times that sort against the order they were made: an author's event before its
    /// previous one, or a reaction before its message.
    ClockOrder {
        count: u64,
        /// (rule, earlier id, its time µs, later id, its time µs), the first few.
        breaks: Vec<(String, String, u64, String, u64)>,
    },
    /// A device answered a peer with more digest, filter and sketch bytes than the budget
    /// allows (see `budget.rs` for the rule): `sends` answers went out over it, the first at
    /// `first_at_us`; `answered` and `bound` are the worst moment's.
    OverBudget {
        device: String,
        peer: String,
        sends: u64,
        first_at_us: u64,
        answered: u64,
        bound: u64,
    },
    /// The run cost more than the scenario's `[expect]` allows: `bytes_per_event` (bytes the
    /// nodes sent per event delivered to a peer) or `rounds_to_converge` (sync intervals from
    /// the heal until the last device converged).
    Inefficient {
        measure: String,
        value: f64,
        bound: f64,
    },
}

/// Runs every checker over a finished world.
pub fn check(world: &World) -> Vec<Failure> {
    let mut failures = Vec::new();
    let reports = world.device_reports();
    let total = world.appended.len();
    let heal_at = world.heal_at.map_or(u64::MAX, |t| t.as_micros());
    let bound_us = world.scenario.expect.converged_within.as_micros();
    let name = |i: usize| world.devices[i].name.to_string();
    for (device, report) in reports.iter().enumerate() {
        let store = world.store(device).borrow();
        let mut invented = Vec::new();
        let mut altered = Vec::new();
        let mut held = 0;
        let shelf = world.shelf.borrow();
        // Same bytes open to the same event: comparing them compares the decoded bodies too.
        // Slot order, no copy of the store's ids; the few listed are sorted after.
        store
            .events()
            .for_each_in_slot_order(|id, slot, _| match world.appended.get(id) {
                None => invented.push(*id),
                Some(original) => {
                    held += 1;
                    if shelf.bytes(original.slot) != shelf.bytes(slot) {
                        altered.push(*id);
                    }
                }
            });
        if !invented.is_empty() {
            failures.push(Failure::Invented {
                device: report.name.clone(),
                count: invented.len(),
                ids: first_few_in_order(invented),
            });
        }
        if !altered.is_empty() {
            failures.push(Failure::Altered {
                device: report.name.clone(),
                count: altered.len(),
                ids: first_few_in_order(altered),
            });
        }
        if report.excused {
            continue;
        }
        if held != total {
            failures.push(Failure::NotConverged {
                device: report.name.clone(),
                missing: total - held,
                total,
                ids: missing(world, device),
            });
        }
        let after = report.converged_at_us.map(|at| at.saturating_sub(heal_at));
        if after.is_none_or(|after| after > bound_us) {
            failures.push(Failure::Liveness {
                device: report.name.clone(),
                converged_after_us: after,
                bound_us,
            });
        }
    }
    for ((from, to), late) in &world.prompt.late {
        failures.push(Failure::PushLate {
            from: name(*from),
            to: name(*to),
            count: late.count,
            first: late.first_id.to_string(),
            first_sent_at_us: late.first_sent_at_us,
            first_due_us: late.first_due_us,
            first_arrived_us: late.first_arrived_us,
        });
    }
    for ((to, from, cause), breach) in &world.attack.past_the_door {
        failures.push(Failure::PastTheDoor {
            device: name(*to),
            from: name(*from),
            cause: (*cause).to_owned(),
            count: breach.count,
            first_at_us: breach.first_at_us,
            first: breach.first.clone(),
        });
    }
    for ((to, from), breach) in &world.attack.breaches {
        failures.push(Failure::ReplayAccepted {
            device: name(*to),
            from: name(*from),
            count: breach.count,
            first_at_us: breach.first_at_us,
            first: breach.first.clone(),
        });
    }
    for b in &world.index_breaks {
        failures.push(Failure::IndexDiffers {
            device: name(b.device),
            when: b.when.to_owned(),
            at_us: b.at_us,
            index_only: b.index_only_count,
            store_only: b.store_only_count,
            ids: b
                .index_only
                .iter()
                .chain(&b.store_only)
                .map(EventId::to_string)
                .collect(),
        });
    }
    for loss in &world.own_losses {
        failures.push(Failure::OwnEventLost {
            device: name(loss.device),
            cause: loss.cause.to_owned(),
            at_us: loss.at_us,
            count: loss.count,
            ids: loss.ids.iter().map(EventId::to_string).collect(),
        });
    }
    if world.clock_order.break_count > 0 {
        failures.push(Failure::ClockOrder {
            count: world.clock_order.break_count,
            breaks: world
                .clock_order
                .breaks
                .iter()
                .map(|b| {
                    (
                        b.rule.to_owned(),
                        b.earlier.to_string(),
                        b.earlier_at.as_micros(),
                        b.later.to_string(),
                        b.later_at.as_micros(),
                    )
                })
                .collect(),
        });
    }
    for ((device, peer), overrun) in &world.ledger.overruns {
        failures.push(Failure::OverBudget {
            device: name(*device),
            peer: name(*peer),
            sends: overrun.sends,
            first_at_us: overrun.first_at_us,
            answered: overrun.worst_answered,
            bound: overrun.worst_bound,
        });
    }
    failures.extend(efficiency(world));
    failures
}

/// The first `MISSING_LISTED_MAX` ids `device` lacks, each with its bucket and holders.
fn missing(world: &World, device: usize) -> Vec<Missing> {
    let store = world.store(device).borrow();
    world
        .appended
        .keys()
        .filter(|id| !matches!(store.get(id), Ok(Some(_))))
        .take(MISSING_LISTED_MAX)
        .map(|id| Missing {
            id: id.to_string(),
            bucket: Prefix::of(&id, BUCKET_DEPTH_SHOWN).to_string(),
            held_by: world
                .devices
                .iter()
                .filter(|d| matches!(d.store.borrow().get(&id), Ok(Some(_))))
                .map(|d| d.name.to_string())
                .collect(),
        })
        .collect()
}

/// The scenario's efficiency bounds against what the run measured.
fn efficiency(world: &World) -> Vec<Failure> {
    let expect = &world.scenario.expect;
    let measured = [
        (
            "bytes_per_event",
            expect.bytes_per_event_max,
            world.bytes_per_event(),
        ),
        (
            "rounds_to_converge",
            expect.rounds_to_converge_max,
            world.rounds_to_converge(),
        ),
    ];
    measured
        .into_iter()
        .filter_map(|(measure, bound, value)| {
            let (bound, value) = (bound?, value?);
            (value > bound).then(|| Failure::Inefficient {
                measure: measure.to_owned(),
                value,
                bound,
            })
        })
        .collect()
}

/// The first `IDS_LISTED_MAX` of `ids` in id order.
fn first_few_in_order(mut ids: Vec<EventId>) -> Vec<String> {
    ids.sort_unstable();
    ids.iter()
        .take(IDS_LISTED_MAX)
        .map(ToString::to_string)
        .collect()
}
