//! Roaming (`address_change`, WireGuard's rule): a peer's address follows its newest authentic
//! packet, and nothing else moves it.
//!
//! - While a node handles a replayed or forged datagram, it names no address for a peer that
//!   is not where that peer is now (a replay from an old address moves nothing). Always on.
//! - With `[expect] followed_within`: after a device moves, every device that had it as a
//!   peer and runs at the end sends to its new address within the bound (its node said so:
//!   `NodeEvent::PeerAddress`, which the driver's book follows).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlog_core::{Instant, NodeEvent};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, Via, View};

/// One move and who had to follow it.
#[derive(Debug)]
struct Move {
    device: usize,
    at: Instant,
    /// Each device that had the mover as a peer then, and when it first sent to wherever
    /// the mover was at that time (this address or a later one).
    followers: BTreeMap<usize, Option<Instant>>,
}

#[derive(Debug, Default)]
pub(super) struct Roaming {
    /// The receiver of the replayed or forged datagram being handled now.
    handling: Option<usize>,
    /// One per `address_change` fault applied (the scenario's list bounds them).
    moves: Vec<Move>,
    /// Addresses a replay or forgery moved, per (receiver, peer): how often, the first
    /// time, and where to. At most one entry per pair of devices.
    moved_by_replay: BTreeMap<(usize, usize), (u64, u64, SocketAddr)>,
}

impl Roaming {
    fn learned(&mut self, view: &View<'_>, device: usize, peer: usize, addr: SocketAddr) {
        let now = view.now;
        let reached = view.is_address_of(peer, addr);
        if self.handling == Some(device) && !reached {
            self.moved_by_replay
                .entry((device, peer))
                .and_modify(|(count, ..)| *count += 1)
                .or_insert((1, now.as_micros(), addr));
        }
        if !reached {
            return;
        }
        for moved in self.moves.iter_mut().filter(|m| m.device == peer) {
            if let Some(followed @ None) = moved.followers.get_mut(&device) {
                *followed = Some(now);
            }
        }
    }

    fn moved(&mut self, view: &View<'_>, device: usize) {
        let name = view.name(device);
        let followers = (0..view.device_count())
            .filter(|&d| d != device)
            .filter(|&d| {
                view.node(d)
                    .is_some_and(|node| node.peers().iter().any(|p| &p.device == name))
            })
            .map(|d| (d, None))
            .collect();
        self.moves.push(Move {
            device,
            at: view.now,
            followers,
        });
    }

    /// Followers that count at the end: running, and not excused.
    fn judged<'m>(
        &'m self,
        view: &'m View<'_>,
    ) -> impl Iterator<Item = (&'m Move, usize, Option<Instant>)> + 'm {
        self.moves.iter().flat_map(move |m| {
            m.followers
                .iter()
                .filter(|(&d, _)| {
                    view.node(d).is_some() && !view.is_down_for_good(d) && !view.is_removed(d)
                })
                .map(move |(&d, &at)| (m, d, at))
        })
    }
}

impl Checker for Roaming {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Delivered {
                to,
                via: Via::Replay | Via::Forged,
                ..
            } => self.handling = Some(to),
            Happening::Handled { .. } => self.handling = None,
            Happening::Node {
                device,
                event: NodeEvent::PeerAddress { peer, addr, .. },
            } => {
                if let Some(peer) = view.index_of(peer) {
                    self.learned(view, device, peer, *addr);
                }
            }
            Happening::AddressChanged { device, .. } => self.moved(view, device),
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for (&(device, peer), &(count, at_us, addr)) in &self.moved_by_replay {
            failures.push(Failure::Roaming {
                device: view.name(device).to_string(),
                peer: view.name(peer).to_string(),
                what: format!("moved to {addr} by {count} replayed or forged datagrams"),
                at_us,
            });
        }
        let Some(bound) = view.scenario.expect.followed_within else {
            return;
        };
        for (moved, follower, at) in self.judged(view) {
            let due = moved.at + bound.0;
            if at.is_some_and(|at| at <= due) {
                continue;
            }
            let what = match at {
                Some(at) => format!(
                    "followed its move only {} µs after it, bound {} µs",
                    at.saturating_since(moved.at).as_micros(),
                    bound.0.as_micros()
                ),
                None => "never followed its move".to_owned(),
            };
            failures.push(Failure::Roaming {
                device: view.name(follower).to_string(),
                peer: view.name(moved.device).to_string(),
                what,
                at_us: moved.at.as_micros(),
            });
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        let took: Vec<Option<u64>> = self
            .judged(view)
            .map(|(m, _, at)| at.map(|at| at.saturating_since(m.at).as_micros()))
            .collect();
        if !took.is_empty() && took.iter().all(Option::is_some) {
            figures.followed_worst_us = took.into_iter().flatten().max();
        }
    }
}
