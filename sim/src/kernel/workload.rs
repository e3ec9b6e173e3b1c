//! What the devices write: the seed's rate distribution (one global messages-per-hour rate
//! split across the enabled devices), attachments of random size, reactions, and batches.
//!
//! Inter-arrival gaps are drawn uniformly in `[0, 2 × mean]` microseconds: the same mean as a
//! Poisson process, in integer arithmetic so it means the same on every platform.

use meshlog_core::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::scenario::WorkloadSpec;

const EMOJIS: [&str; 6] = ["👍", "❤️", "😂", "🎉", "👀", "🚀"];

/// One thing a device does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Message {
        device: usize,
        text: String,
        /// File content to chunk and append before the message.
        attachment: Option<Vec<u8>>,
    },
    Reaction {
        device: usize,
        /// The message reacted to, as the shelf slot its author's store took (the world
        /// knows the id from the bytes there).
        message_slot: u32,
        emoji: &'static str,
    },
}

#[derive(Debug)]
pub struct Workload {
    rng: ChaCha20Rng,
    /// Mean gap between ticks in microseconds; `None` when the rate is zero.
    gap_us_mean: Option<u64>,
    devices: Vec<usize>,
    attachment_percent: u32,
    attachment_bytes_min: u32,
    attachment_bytes_max: u32,
    reaction_percent: u32,
    /// Messages appended so far, for reactions to point at: their shelf slots, 4 bytes each
    /// rather than a 32-byte id (a million-event world keeps every one).
    messages: Vec<u32>,
    ticks: u64,
}

impl Workload {
    /// `devices` are the indices of the enabled devices, in scenario order.
    pub fn new(spec: &WorkloadSpec, devices: Vec<usize>, seed: [u8; 32]) -> Self {
        let gap_us_mean = (spec.messages_per_hour > 0 && !devices.is_empty())
            .then(|| 3_600_000_000 / u64::from(spec.messages_per_hour));
        Workload {
            rng: ChaCha20Rng::from_seed(seed),
            gap_us_mean,
            devices,
            attachment_percent: spec.attachment_percent,
            attachment_bytes_min: spec.attachment_bytes_min,
            attachment_bytes_max: spec.attachment_bytes_max,
            reaction_percent: spec.reaction_percent,
            messages: Vec::new(),
            ticks: 0,
        }
    }

    /// Time to the next tick, or `None` if this workload never ticks.
    pub fn next_gap(&mut self) -> Option<Duration> {
        let mean = self.gap_us_mean?;
        Some(Duration::from_micros(self.rng.next_u64() % (2 * mean + 1)))
    }

    /// What happens at this tick.
    pub fn next_action(&mut self) -> Action {
        self.ticks += 1;
        let pick = self.below(self.devices.len() as u64) as usize;
        let device = self.devices[pick];
        if !self.messages.is_empty() && self.percent(self.reaction_percent) {
            let pick = self.below(self.messages.len() as u64) as usize;
            let message_slot = self.messages[pick];
            let emoji = EMOJIS[self.below(EMOJIS.len() as u64) as usize];
            return Action::Reaction {
                device,
                message_slot,
                emoji,
            };
        }
        let attachment = self.percent(self.attachment_percent).then(|| {
            let spread = u64::from(self.attachment_bytes_max - self.attachment_bytes_min);
            let size = u64::from(self.attachment_bytes_min) + self.below(spread + 1);
            let mut content = vec![0u8; size as usize];
            self.rng.fill_bytes(&mut content);
            content
        });
        Action::Message {
            device,
            text: format!("auto message {}", self.ticks),
            attachment,
        }
    }

    /// Messages a batch appends; counted into what reactions may point at.
    pub fn batch_text(device: &str, index: u32) -> String {
        format!("{device} backlog {index}")
    }

    pub fn note_message(&mut self, slot: u32) {
        self.messages.push(slot);
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    fn percent(&mut self, percent: u32) -> bool {
        percent > 0 && (percent >= 100 || self.below(100) < u64::from(percent))
    }
}
