//! The checkers: each one an observer of the kernel's happenings (it never reaches into the
//! kernel) with a verdict at the end, read off the world's final [`View`]. Each reports what
//! it saw, so a failure says which device and by how much.
//!
//! Adding a checker is one new file with a type that implements [`Checker`], and one line in
//! [`Checks::new`], which also fixes the order failures are listed in.

use crate::kernel::{Happening, Observer, View};

mod attack;
mod budget;
mod clock_order;
mod confidentiality;
mod convergence;
mod datagram_size;
mod discovery;
mod display;
mod efficiency;
mod files;
mod forged_author;
mod forward_secrecy;
mod goodput;
mod hop_latency;
mod index;
mod join_attack;
mod joined;
mod nat;
mod overheard;
mod own_loss;
mod prompt;
mod removed_refused;
mod resume;
mod roaming;
mod roster;
mod strangers;
mod verdict;

pub use verdict::{AttackCounters, Checker, Failure, Figures, Missing, NatPair, NatPath};

/// Every checker, in the order their failures are listed.
#[derive(Debug)]
pub struct Checks {
    checkers: Vec<Box<dyn Checker>>,
}

impl Checks {
    pub fn new(devices: usize) -> Checks {
        Checks {
            checkers: vec![
                Box::new(convergence::Convergence),
                Box::new(prompt::Prompt::default()),
                Box::new(hop_latency::HopLatency::default()),
                Box::new(attack::Attack::default()),
                Box::new(index::IndexCheck::default()),
                Box::new(own_loss::OwnLosses::default()),
                Box::new(clock_order::ClockOrder::new(devices)),
                Box::new(budget::Ledger::new(devices)),
                Box::new(efficiency::Efficiency::default()),
                Box::new(files::Files::default()),
                Box::new(goodput::Goodput::default()),
                Box::new(resume::Resume::default()),
                Box::new(datagram_size::DatagramSize::default()),
                Box::new(roster::RosterCheck::default()),
                Box::new(confidentiality::Confidentiality::default()),
                Box::new(removed_refused::RemovedRefused::default()),
                Box::new(joined::Joined::default()),
                Box::new(join_attack::JoinAttack::default()),
                Box::new(forged_author::ForgedAuthor::default()),
                Box::new(forward_secrecy::ForwardSecrecy::default()),
                Box::new(discovery::Discovery::default()),
                Box::new(strangers::Strangers::default()),
                Box::new(roaming::Roaming::default()),
                Box::new(nat::Nat::default()),
            ],
        }
    }

    /// Every checker's failures over the finished world, and their figures.
    pub fn verdict(&self, view: &View<'_>) -> (Vec<Failure>, Figures) {
        let mut failures = Vec::new();
        let mut figures = Figures::default();
        for checker in &self.checkers {
            checker.verdict(view, &mut failures);
            checker.figures(view, &mut figures);
        }
        (failures, figures)
    }
}

impl Observer for Checks {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        for checker in &mut self.checkers {
            checker.observe(view, happening);
        }
    }
}
