//! How many shards may be asked of one source at once: from the rate they arrive at and the
//! shortest round trip seen, as BBR sizes its window, measured on the receiving side. The
//! fetcher turns it into groups at the recovery shards a group costs now, so that more
//! recovery means fewer groups in flight, never more bytes.
//!
//! Why not loss: the links this transfer is for lose datagrams at random, and recovery shards
//! pay for that in the same trip. A window cut for every loss would starve a lossy link (TCP's
//! trouble on bad Wi-Fi); a window that ignores a link's rate fills the queue on its way,
//! whose overflow reads as more loss, which asks more recovery shards, which overflow it more.
//! So the window is twice what the path holds, rate × round trip: enough to keep it busy
//! between asks, little enough that a router's queue absorbs the rest.
//!
//! Startup doubles the window each round trip (a group's shards more per group received)
//! until the arrival rate stops growing by a quarter for three rate samples in a row: the
//! link is full.

use crate::time::{Duration, Instant};

/// The window before anything is measured, and the least it is: four groups with one
/// recovery shard each, 68 KiB, within a 100 ms queue on a link of 1 MB/s, and enough to get
/// a fast link going.
pub(super) const WINDOW_MIN_SHARDS: u64 = 4 * 17;
/// 256 such groups, 4.25 MiB in flight per source: enough for 100 MB/s at 40 ms.
pub(super) const WINDOW_MAX_SHARDS: u64 = 256 * 17;
/// Bytes a shard carries, for turning bytes in flight into shards.
const SHARD_BYTES: u64 = crate::blob::coding::SHARD_LEN as u64;
/// Rate samples kept for the maximum: about eight round trips, so a link that got slower is
/// believed within as many.
const RATE_SAMPLES_MAX: usize = 8;
/// A rate sample spans one shortest round trip, at least this: shorter samples would measure
/// bursts, not the link.
const SAMPLE_SPAN_MIN: Duration = Duration::from_millis(10);
/// The shortest round trip is measured again after this long (a path may have changed).
const RTT_MIN_FOR: Duration = Duration::from_secs(10);
/// Startup ends after this many samples in a row without the rate growing by a quarter.
const STARTUP_FLAT_SAMPLES: u8 = 3;

#[derive(Debug)]
pub(super) struct Window {
    /// Shards that may be asked at once.
    shards: u64,
    startup: bool,
    /// The best rate at startup's last growth, and samples since without a quarter more.
    startup_rate_bytes_per_s: u64,
    startup_flat: u8,
    /// The latest rate samples, newest last (at most `RATE_SAMPLES_MAX`).
    rates_bytes_per_s: Vec<u64>,
    /// Shard bytes arrived, and where the current sample began (when, and the count then).
    delivered_bytes: u64,
    sample_from: Option<(Instant, u64)>,
    rtt_min_us: Option<u64>,
    rtt_min_at: Instant,
}

impl Window {
    pub(super) fn new(now: Instant) -> Window {
        Window {
            shards: WINDOW_MIN_SHARDS,
            startup: true,
            startup_rate_bytes_per_s: 0,
            startup_flat: 0,
            rates_bytes_per_s: Vec::with_capacity(RATE_SAMPLES_MAX),
            delivered_bytes: 0,
            sample_from: None,
            rtt_min_us: None,
            rtt_min_at: now,
        }
    }

    pub(super) fn shards(&self) -> u64 {
        self.shards
    }

    /// The best recent arrival rate, once measured.
    pub(super) fn rate_bytes_per_s(&self) -> Option<u64> {
        self.rates_bytes_per_s.iter().copied().max()
    }

    pub(super) fn rtt_min_us(&self) -> Option<u64> {
        self.rtt_min_us
    }

    /// A shard of `len` bytes arrived; `rtt_us`, if it was the first of its ask's group.
    pub(super) fn on_shard(&mut self, now: Instant, len: usize, rtt_us: Option<u64>) {
        if let Some(rtt) = rtt_us {
            let stale = self.rtt_min_at + RTT_MIN_FOR <= now;
            if stale || self.rtt_min_us.is_none_or(|min| rtt < min) {
                self.rtt_min_us = Some(rtt);
                self.rtt_min_at = now;
            }
        }
        self.delivered_bytes += len as u64;
        let Some((from, from_bytes)) = self.sample_from else {
            self.sample_from = Some((now, self.delivered_bytes));
            return;
        };
        let span = Duration::from_micros(self.rtt_min_us.unwrap_or(0)).max(SAMPLE_SPAN_MIN);
        let span_us = now.saturating_since(from).as_micros();
        if span_us < span.as_micros() {
            return;
        }
        let rate = (self.delivered_bytes - from_bytes) * 1_000_000 / span_us;
        if self.rates_bytes_per_s.len() == RATE_SAMPLES_MAX {
            self.rates_bytes_per_s.remove(0);
        }
        self.rates_bytes_per_s.push(rate);
        self.sample_from = Some((now, self.delivered_bytes));
        if self.startup {
            if rate * 4 >= self.startup_rate_bytes_per_s * 5 {
                self.startup_rate_bytes_per_s = rate;
                self.startup_flat = 0;
            } else {
                self.startup_flat += 1;
                if self.startup_flat >= STARTUP_FLAT_SAMPLES {
                    self.startup = false;
                }
            }
        }
        if !self.startup {
            self.shards = self.target_shards();
        }
    }

    /// A group asked with `cost_shards` arrived whole: in startup, that many shards more
    /// (twice the window per round trip).
    pub(super) fn on_group(&mut self, cost_shards: u64) {
        if self.startup {
            self.shards = (self.shards + cost_shards).min(WINDOW_MAX_SHARDS);
        }
    }

    /// Twice what the path holds, in shards, within the bounds.
    fn target_shards(&self) -> u64 {
        let rate = self.rate_bytes_per_s().unwrap_or(0);
        let rtt_us = self.rtt_min_us.unwrap_or(0);
        let path_bytes = rate * rtt_us / 1_000_000;
        (2 * path_bytes)
            .div_ceil(SHARD_BYTES)
            .clamp(WINDOW_MIN_SHARDS, WINDOW_MAX_SHARDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shards of 1 KiB arriving at `rate` bytes/s for `for_ms`, from `start`, each group of
    /// 16 whole; the first of each group after `rtt_us`.
    fn feed(window: &mut Window, start: Instant, rate: u64, for_ms: u64, rtt_us: u64) -> Instant {
        let gap_us = 1024 * 1_000_000 / rate;
        let mut at = start;
        for i in 0..(for_ms * 1_000 / gap_us) {
            at = at + Duration::from_micros(gap_us);
            window.on_shard(at, 1024, (i % 16 == 0).then_some(rtt_us));
            if i % 16 == 15 {
                window.on_group(17);
            }
        }
        at
    }

    #[test]
    fn startup_grows_then_settles_at_twice_the_path() {
        let mut window = Window::new(Instant::from_millis(0));
        assert_eq!(window.shards(), WINDOW_MIN_SHARDS);
        // 1 MB/s at 30 ms: the path holds 30 KB, so twice is 60 KB, under the least window.
        let now = feed(
            &mut window,
            Instant::from_millis(0),
            1_000_000,
            2_000,
            30_000,
        );
        assert!(!window.startup, "a flat rate ends startup");
        assert_eq!(window.rtt_min_us(), Some(30_000));
        let rate = window.rate_bytes_per_s().expect("measured");
        assert!((900_000..=1_100_000).contains(&rate), "rate {rate}");
        assert_eq!(window.shards(), WINDOW_MIN_SHARDS);
        // The same link, ten times faster: the window follows the rate.
        feed(&mut window, now, 10_000_000, 1_000, 30_000);
        let rate = window.rate_bytes_per_s().expect("measured");
        assert_eq!(
            window.shards(),
            (2 * rate * 30 / 1_000).div_ceil(SHARD_BYTES)
        );
        assert!(
            (580..=620).contains(&window.shards()),
            "{}",
            window.shards()
        );
    }

    #[test]
    fn the_window_stays_within_its_bounds() {
        let mut window = Window::new(Instant::from_millis(0));
        for _ in 0..1_000 {
            window.on_group(17);
        }
        assert_eq!(window.shards(), WINDOW_MAX_SHARDS);
        let mut slow = Window::new(Instant::from_millis(0));
        feed(&mut slow, Instant::from_millis(0), 20_000, 5_000, 1_000);
        assert_eq!(slow.shards(), WINDOW_MIN_SHARDS);
    }
}
