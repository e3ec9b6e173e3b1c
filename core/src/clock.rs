//! The hybrid logical clock behind every event's `created_at`.
//!
//! Devices' clocks disagree: one an hour fast would put its messages an hour away from their
//! replies, and one set back would sort its new messages before its old ones. So a new event's
//! time is the device's physical time, advanced past every event time this device has made or
//! seen (received, or in its store at start). Then a reaction always sorts after the message
//! it answers (the device saw that message first), and one author's events sort in the order
//! they were made, whatever the skew. Pages order by `created_at` and need nothing more.
//!
//! A seen time only advances the clock up to `AHEAD_MAX` past physical time: a member whose
//! clock is wrong by a year (or a hostile one) must not drag everyone's clocks along for ever.

use crate::time::{Duration, Instant};

/// How far past its physical time a seen event may advance this device's clock. A day covers
/// any honest skew (time zones mistaken for UTC, a clock that missed a week of NTP drifts a
/// few seconds); beyond it, replies to such an event may sort before it, which is the cost of
/// not trusting it.
pub const AHEAD_MAX: Duration = Duration::from_secs(24 * 3600);

/// The least step between two event times of one device: a millisecond, not a microsecond,
/// because pages and the API show and sort times in milliseconds; an answer stamped a
/// microsecond after its question would tie with it there and sort by id, either way.
pub const STEP: Duration = Duration::from_millis(1);

/// Strictly increasing event times for one device, at least `STEP` apart.
#[derive(Clone, Copy, Debug)]
pub struct HybridClock {
    /// The newest time made or seen (clamped as above); the next event gets more.
    last: Instant,
}

impl HybridClock {
    /// A clock that starts past `seen_max` (the newest `created_at` in the store), as far as
    /// `AHEAD_MAX` allows at `now`.
    pub fn new(seen_max: Instant, now: Instant) -> Self {
        HybridClock {
            last: seen_max.min(now + AHEAD_MAX),
        }
    }

    /// The time for a new event made at physical time `now`.
    pub fn tick(&mut self, now: Instant) -> Instant {
        let next = now.max(self.last + STEP);
        assert!(next > self.last, "event times only grow");
        self.last = next;
        next
    }

    /// An event stamped `seen` arrived at physical time `now`: later events sort after it.
    pub fn observe(&mut self, seen: Instant, now: Instant) {
        self.last = self.last.max(seen.min(now + AHEAD_MAX));
    }

    pub fn last(&self) -> Instant {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_US: u64 = 3_600_000_000;

    #[test]
    fn a_reply_from_a_slow_clock_sorts_after_a_message_from_a_fast_one() {
        // fast is an hour ahead of slow.
        let (mut fast, mut slow) = (
            HybridClock::new(Instant::ZERO, Instant(0)),
            HybridClock::new(Instant::ZERO, Instant(0)),
        );
        let message = fast.tick(Instant(2 * HOUR_US));
        // It reaches slow a second later by slow's clock, an hour behind.
        slow.observe(message, Instant(HOUR_US + 1_000_000));
        let reply = slow.tick(Instant(HOUR_US + 2_000_000));
        assert!(reply > message, "{reply} after {message}");
        // Later in milliseconds too, which is what a page sorts by.
        assert!(reply.as_millis() > message.as_millis());
        // And slow's own next message still sorts after its reply.
        assert!(slow.tick(Instant(HOUR_US + 3_000_000)) > reply);
    }

    #[test]
    fn a_clock_set_back_keeps_the_authors_order() {
        let mut clock = HybridClock::new(Instant::ZERO, Instant(0));
        let before = clock.tick(Instant(10 * HOUR_US));
        let after = clock.tick(Instant(9 * HOUR_US)); // someone set the clock back an hour
        assert!(after > before);
        // After a restart, the store's newest time is the floor.
        let mut restarted = HybridClock::new(after, Instant(9 * HOUR_US));
        assert!(restarted.tick(Instant(9 * HOUR_US)) > after);
    }

    #[test]
    fn a_far_future_event_drags_the_clock_no_further_than_ahead_max() {
        let now = Instant(HOUR_US);
        let mut clock = HybridClock::new(Instant(u64::MAX / 2), now);
        assert_eq!(clock.last(), now + AHEAD_MAX);
        clock.observe(Instant(u64::MAX - 1), now);
        assert_eq!(clock.last(), now + AHEAD_MAX);
        let stamp = clock.tick(now);
        assert_eq!(stamp, now + AHEAD_MAX + STEP);
        // Physical time catching up takes over again.
        let later = now + AHEAD_MAX + Duration::from_secs(10);
        assert_eq!(clock.tick(later), later);
    }
}
