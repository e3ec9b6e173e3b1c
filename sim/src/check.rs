//! The checkers run after every world: convergence, nothing invented or altered, liveness,
//! nothing replayed accepted, answers within the amplification budget (`budget.rs`).
//! Each reports what it saw, so a failure says which device and by how much.

use std::fmt;

use serde::Serialize;

use crate::world::World;

/// Most invented or altered ids listed per device; the count says how many there were.
const IDS_LISTED_MAX: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Failure {
    /// At the end of the run a device that is up does not hold every appended event.
    NotConverged {
        device: String,
        missing: usize,
        total: usize,
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
    /// A node that had accepted a datagram accepted, answered or otherwise used a replayed
    /// copy of it, instead of dropping it as `replayed`.
    ReplayAccepted {
        device: String,
        from: String,
        count: u64,
        first_at_us: u64,
        first: String,
    },
    /// A device answered a peer with more digest and filter bytes than the budget allows in
    /// some window (see `budget.rs` for the rule).
    OverBudget {
        device: String,
        peer: String,
        windows: u64,
        worst_window_start_us: u64,
        answered: u64,
        bound: u64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotConverged {
                device,
                missing,
                total,
            } => write!(
                f,
                "convergence: {device} lacks {missing} of {total} events at the end"
            ),
            Failure::Invented { device, count, ids } => write!(
                f,
                "invented: {device} holds {count} events nobody appended ({})",
                ids.join(", ")
            ),
            Failure::Altered { device, count, ids } => write!(
                f,
                "altered: {device} holds {count} events that differ from what was appended ({})",
                ids.join(", ")
            ),
            Failure::Liveness {
                device,
                converged_after_us,
                bound_us,
            } => match converged_after_us {
                Some(after) => write!(
                    f,
                    "liveness: {device} converged {}ms after the heal, bound {}ms",
                    after / 1_000,
                    bound_us / 1_000
                ),
                None => write!(
                    f,
                    "liveness: {device} did not converge within {}ms of the heal",
                    bound_us / 1_000
                ),
            },
            Failure::ReplayAccepted {
                device,
                from,
                count,
                first_at_us,
                first,
            } => write!(
                f,
                "replay: {device} did not drop {count} replays of {from}'s datagrams as \
                 `replayed` (first at {}ms: {first})",
                first_at_us / 1_000
            ),
            Failure::OverBudget {
                device,
                peer,
                windows,
                worst_window_start_us,
                answered,
                bound,
            } => write!(
                f,
                "budget: {device} answered {peer} over budget in {windows} windows \
                 (worst from {}ms: {answered} B, bound {bound} B)",
                worst_window_start_us / 1_000
            ),
        }
    }
}

/// Runs every checker over a finished world.
pub fn check(world: &World) -> Vec<Failure> {
    let mut failures = Vec::new();
    let reports = world.device_reports();
    let total = world.appended.len();
    let heal_at = world.heal_at.map_or(u64::MAX, |t| t.as_micros());
    let bound_us = world.scenario.expect.converged_within.as_micros();
    for (device, report) in reports.iter().enumerate() {
        let store = world.store(device).borrow();
        let mut invented = Vec::new();
        let mut altered = Vec::new();
        let mut held = 0;
        for (id, entry) in store.entries() {
            match world.appended.get(id) {
                None => invented.push(id.to_string()),
                Some(original) => {
                    held += 1;
                    if original.sealed != entry.sealed || original.event != entry.event {
                        altered.push(id.to_string());
                    }
                }
            }
        }
        if !invented.is_empty() {
            failures.push(Failure::Invented {
                device: report.name.clone(),
                count: invented.len(),
                ids: first_few(invented),
            });
        }
        if !altered.is_empty() {
            failures.push(Failure::Altered {
                device: report.name.clone(),
                count: altered.len(),
                ids: first_few(altered),
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
    let name = |i: usize| world.devices[i].name.to_string();
    for ((to, from), breach) in &world.attack.breaches {
        failures.push(Failure::ReplayAccepted {
            device: name(*to),
            from: name(*from),
            count: breach.count,
            first_at_us: breach.first_at_us,
            first: breach.first.clone(),
        });
    }
    for ((device, peer), overrun) in &world.ledger.overruns {
        failures.push(Failure::OverBudget {
            device: name(*device),
            peer: name(*peer),
            windows: overrun.windows,
            worst_window_start_us: overrun.worst_window_start_us,
            answered: overrun.worst_answered,
            bound: overrun.worst_bound,
        });
    }
    failures
}

fn first_few(mut ids: Vec<String>) -> Vec<String> {
    ids.truncate(IDS_LISTED_MAX);
    ids
}
