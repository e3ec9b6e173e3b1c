//! One source of a fetch, as the fetcher sees it: its window, the loss its asks saw, the
//! asks it was sent and how late its shards come, and when its silence says an ask was lost.

use std::collections::VecDeque;

use crate::blob::coding::{ORIGINALS_MAX, RECOVERY_MAX};
use crate::blob::BlobItem;
use crate::time::{Duration, Instant};

use super::window::Window;

/// The loss a new source is assumed to have until its asks are measured: none, so a clean
/// link pays one recovery shard per group (6%); each judged ask moves the estimate an
/// eighth of the way to what it saw.
const LOSS_INITIAL_PPM: u64 = 0;
/// Groups asked of a source at once at least, whatever its window: a short group holds its
/// place until judged, and fewer would leave the link idle meanwhile.
const ROOM_MIN_GROUPS: u64 = 3;
/// Recovery shards sent per one expected lost, in percent. More means fewer groups short
/// (each a retry a reordering window and a round trip later) and more bytes on the wire.
/// files-capacity over 200 seeds, goodput mean: 0.740 at 70, 0.748 at 100, 0.730 at 150.
const RECOVERY_MARGIN_PERCENT: u64 = 100;
/// Loss assumed at most when choosing recovery shards: past it, retries take over.
const LOSS_MAX_PPM: u64 = 800_000;
/// The least an ask is given past a later ask's first shard: a datagram's worth of jitter
/// on a quiet link, before any reordering is seen.
const REORDER_WINDOW_MIN: Duration = Duration::from_millis(2);
/// Earlier WANT_GROUPS repeated beside a new one while none of their shards arrived: at 20%
/// loss an ask is lost one time in five, and one lost holds its groups' place in the window
/// until judged; repeated twice, one in 125. A repeat costs ~40 bytes on the way back; the
/// source serves each ask once (`serve.rs`).
pub(super) const WANTS_REPEATED: usize = 2;
/// The least a source may be silent, its asks unanswered, before they are sent again: a
/// WANT lost when the window is full has no next ask to ride beside, and its groups would
/// hold the window until their deadline (a fifth of a second idle on a 1 MB/s link).
const PROBE_AFTER_MIN: Duration = Duration::from_millis(10);
/// Probes in a row without a shard back, at most: each waits twice the one before, and the
/// asks' deadlines judge them meanwhile.
const PROBES_MAX: u32 = 4;

#[derive(Debug)]
pub(super) struct Source {
    pub(super) window: Window,
    pub(super) loss_ppm: u64,
    pub(super) asked: u64,
    /// Asks made of it, each group's numbered in order (`Pending::seq`).
    pub(super) asks_made: u64,
    /// WANT_GROUPS items sent to it, numbered (`BlobItem::WantGroups::seq`).
    pub(super) wants_made: u64,
    /// The latest WANT_GROUPS sent to it, with their first group and its `Pending::seq`
    /// (at most `WANTS_REPEATED`): repeated beside the next while nothing of them arrived.
    pub(super) recent_wants: VecDeque<(BlobItem, u64, u64)>,
    /// The newest ask a shard arrived for, and when its first did.
    pub(super) newest_arrived: Option<(u64, Instant)>,
    /// The most an earlier ask's shard arrived after a later one's first.
    pub(super) reorder_us: u64,
    /// When it last sent a shard here or was sent an ask, and the probes since (`probe_at`).
    pub(super) silent_since: Instant,
    pub(super) probes: u32,
    /// The sync's round-trip estimate when the fetch began: probes use it until a shard has
    /// timed one, so a fetch's very first ask, lost, is not left to its deadline.
    rtt_hint_us: u64,
    pub(super) not_held_at: Option<Instant>,
    /// Sent a group or an outboard that did not verify: never asked again.
    pub(super) excluded: bool,
}

impl Source {
    pub(super) fn new(now: Instant, rtt_hint_us: u64) -> Source {
        Source {
            window: Window::new(now),
            loss_ppm: LOSS_INITIAL_PPM,
            asked: 0,
            asks_made: 0,
            wants_made: 0,
            recent_wants: VecDeque::new(),
            newest_arrived: None,
            reorder_us: 0,
            silent_since: now,
            probes: 0,
            rtt_hint_us,
            not_held_at: None,
            excluded: false,
        }
    }
    pub(super) fn usable(&self) -> bool {
        !self.excluded && self.not_held_at.is_none()
    }
    /// Groups it may be asked for now: its window over what a group costs at the loss
    /// measured, at least `ROOM_MIN_GROUPS`, less those asked (retries, which cost less,
    /// count as whole groups).
    ///
    /// The window is not grossed up for that loss. Datagrams a full queue drops read as loss
    /// too, and a window grown by them overfilled the queue more: a restarted fetcher was
    /// offered twice to three times its link for two seconds (files-capacity seed 63: 1,040
    /// queue-full drops on one link; 107 without the gross-up). The window's gain over
    /// rate × round trip already leaves room for the recovery shards.
    pub(super) fn room(&self) -> u64 {
        let recovery = recovery_for(ORIGINALS_MAX, self.loss_ppm);
        let cost_shards = (ORIGINALS_MAX + usize::from(recovery)) as u64;
        (self.window.shards() / cost_shards)
            .max(ROOM_MIN_GROUPS)
            .saturating_sub(self.asked)
    }
    /// How long after a later ask's first shard an earlier ask's may still come: a quarter
    /// more than the most seen, and at least half the shortest round trip (before much is
    /// seen, jitter is guessed a fraction of the trip, as RACK guesses a quarter) or
    /// `REORDER_WINDOW_MIN`.
    pub(super) fn reorder_window(&self) -> Duration {
        let half_trip_us = self.window.rtt_min_us().unwrap_or(0) / 2;
        Duration::from_micros((self.reorder_us * 5 / 4).max(half_trip_us)).max(REORDER_WINDOW_MIN)
    }
    /// When its unanswered asks are sent again, if it stays silent: the shortest round trip
    /// (or the hint, before one is measured) after it fell silent, when a shard of them would
    /// have come; doubling with each probe in a row; `None` after `PROBES_MAX`. A probe that
    /// was not needed costs a small datagram: the source serves each ask once.
    pub(super) fn probe_at(&self) -> Option<Instant> {
        debug_assert!(self.probes <= PROBES_MAX);
        if self.probes >= PROBES_MAX {
            return None;
        }
        let trip_us = self.window.rtt_min_us().unwrap_or(self.rtt_hint_us);
        let trip = Duration::from_micros(trip_us).max(PROBE_AFTER_MIN);
        Some(self.silent_since + Duration::from_micros(trip.as_micros() << self.probes))
    }
    /// Moves the estimate a quarter of the way to a sample.
    pub(super) fn note_loss(&mut self, sample_ppm: u64) {
        self.loss_ppm = (self.loss_ppm * 3 + sample_ppm) / 4;
    }
}

/// Loss in parts per million when `arrived` of `sent` shards arrived.
pub(super) fn loss_ppm(arrived: u64, sent: u64) -> u64 {
    1_000_000 - arrived.min(sent) * 1_000_000 / sent.max(1)
}

/// Recovery shards to send beside `needed` shards at a loss of `loss_ppm`: enough that
/// `needed` of the lot arrive at that loss, `RECOVERY_MARGIN_PERCENT` of that, and one more.
pub(super) fn recovery_for(needed: usize, loss_ppm: u64) -> u8 {
    let loss = loss_ppm.min(LOSS_MAX_PPM);
    let m = (needed as u64 * loss * RECOVERY_MARGIN_PERCENT).div_ceil(100 * (1_000_000 - loss)) + 1;
    u8::try_from(m.min(RECOVERY_MAX as u64)).expect("RECOVERY_MAX fits a u8")
}
