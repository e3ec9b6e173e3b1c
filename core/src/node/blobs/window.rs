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
//!
//! Why probe: twice rate × the *shortest* round trip is too little on a jittery path, whose
//! typical round trip is several times its shortest (Wi-Fi, a 5–20 ms link each way). There
//! the window, not the link, sets the rate, so the rate it is sized from shrinks with it, and
//! the window with that, toward its least. So every six samples the window tries a quarter
//! more for three typical round trips, as BBR's bandwidth probe does; if the arrival rate
//! rose by an eighth, the path had room and the gain over rate × shortest trip keeps the
//! quarter; if not, the gain eases back toward two. On a full link a probe adds a quarter of a window to
//! the queue for a few round trips, and keeps nothing.

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
/// The window over rate × shortest round trip, in percent: twice at least (BBR's), and at
/// most eight times, a path whose typical round trip is four times its shortest.
const GAIN_MIN_PERCENT: u64 = 200;
const GAIN_MAX_PERCENT: u64 = 800;
/// Samples between probes.
const PROBE_EVERY_SAMPLES: u8 = 6;
/// Samples a probe's rate is compared with: the latest before it, not the whole ring, whose
/// older samples may still carry the last probe's larger window.
const PROBE_BASELINE_SAMPLES: usize = 3;
/// A probe's judged span, in typical round trips; its first round trip fills the larger
/// window and is not judged.
const PROBE_JUDGED_TRIPS: u64 = 2;

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
    /// The typical round trip, smoothed an eighth per sample (RFC 6298's SRTT): how long a
    /// probe's larger window takes to show in the arrival rate.
    rtt_smoothed_us: Option<u64>,
    /// The window over rate × shortest round trip, in percent (`GAIN_MIN_PERCENT` and up).
    gain_percent: u64,
    /// Samples since the last probe ended, or the probe under way.
    since_probe: u8,
    probe: Option<Probe>,
}

/// A probe under way: a quarter more window for three typical round trips.
#[derive(Debug)]
struct Probe {
    /// The window it tries: a quarter more than the one before it.
    shards: u64,
    started_at: Instant,
    /// The mean rate of the samples before it.
    rate_before_bytes_per_s: u64,
    /// Where its judged span began (when, and the bytes delivered then), once the larger
    /// window had a round trip to fill.
    judged_from: Option<(Instant, u64)>,
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
            rtt_smoothed_us: None,
            gain_percent: GAIN_MIN_PERCENT,
            since_probe: 0,
            probe: None,
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
            self.rtt_smoothed_us = Some(self.rtt_smoothed_us.map_or(rtt, |s| (s * 7 + rtt) / 8));
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
            self.probe_step(now);
            self.shards = self.target_shards();
        }
        debug_assert!((GAIN_MIN_PERCENT..=GAIN_MAX_PERCENT).contains(&self.gain_percent));
    }

    /// One rate sample after startup: starts, judges or ends a probe.
    fn probe_step(&mut self, now: Instant) {
        let trip = Duration::from_micros(self.rtt_smoothed_us.unwrap_or(0)).max(SAMPLE_SPAN_MIN);
        let Some(probe) = &mut self.probe else {
            self.since_probe += 1;
            if self.since_probe >= PROBE_EVERY_SAMPLES {
                // The latest samples only: those just after the last probe still carry its
                // larger window.
                let latest = &self.rates_bytes_per_s[self
                    .rates_bytes_per_s
                    .len()
                    .saturating_sub(PROBE_BASELINE_SAMPLES)..];
                let (count, sum) = (latest.len() as u64, latest.iter().sum::<u64>());
                self.probe = Some(Probe {
                    shards: (self.shards * 5 / 4).clamp(WINDOW_MIN_SHARDS, WINDOW_MAX_SHARDS),
                    started_at: now,
                    rate_before_bytes_per_s: sum / count.max(1),
                    judged_from: None,
                });
            }
            return;
        };
        let Some((from, from_bytes)) = probe.judged_from else {
            if probe.started_at + trip <= now {
                probe.judged_from = Some((now, self.delivered_bytes));
            }
            return;
        };
        let span_us = now.saturating_since(from).as_micros();
        if span_us < PROBE_JUDGED_TRIPS * trip.as_micros() {
            return;
        }
        let rate_probed = (self.delivered_bytes - from_bytes) * 1_000_000 / span_us;
        let (rate_before, shards_tried) = (probe.rate_before_bytes_per_s, probe.shards);
        self.gain_percent = if rate_probed * 8 >= rate_before * 9 {
            // At least the gain that gives the window tried: one at its least, above what
            // the gain asked, had no other way up.
            let path_bytes = self.path_bytes().max(1);
            let tried_percent = shards_tried * SHARD_BYTES * 100 / path_bytes;
            (self.gain_percent * 5 / 4).max(tried_percent)
        } else {
            self.gain_percent * 7 / 8
        }
        .clamp(GAIN_MIN_PERCENT, GAIN_MAX_PERCENT);
        self.probe = None;
        self.since_probe = 0;
    }

    /// A group asked with `cost_shards` arrived whole: in startup, that many shards more
    /// (twice the window per round trip).
    pub(super) fn on_group(&mut self, cost_shards: u64) {
        if self.startup {
            self.shards = (self.shards + cost_shards).min(WINDOW_MAX_SHARDS);
        }
    }

    /// The gain times what the path holds at its shortest round trip, in shards, within the
    /// bounds; while probing, the window the probe tries.
    fn target_shards(&self) -> u64 {
        if let Some(probe) = &self.probe {
            return probe.shards;
        }
        (self.path_bytes() * self.gain_percent / 100)
            .div_ceil(SHARD_BYTES)
            .clamp(WINDOW_MIN_SHARDS, WINDOW_MAX_SHARDS)
    }

    /// What the path holds at its shortest round trip: rate × shortest trip.
    fn path_bytes(&self) -> u64 {
        let rate = self.rate_bytes_per_s().unwrap_or(0);
        let rtt_us = self.rtt_min_us.unwrap_or(0);
        rate * rtt_us / 1_000_000
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
        assert!(
            window.shards() <= WINDOW_MIN_SHARDS * 5 / 4,
            "at most a probe's more"
        );
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

    /// A path without a bottleneck whose typical round trip is `trip_us` and shortest
    /// `trip_min_us`: the window sets the rate, its shards arriving over each typical trip.
    fn window_limited(
        window: &mut Window,
        start: Instant,
        trips: u64,
        trip_min_us: u64,
        trip_us: u64,
    ) {
        let mut at = start;
        for _ in 0..trips {
            let shards = window.shards();
            let gap_us = trip_us / shards;
            for i in 0..shards {
                at = at + Duration::from_micros(gap_us);
                let rtt_us = if i == 0 { trip_min_us } else { trip_us };
                window.on_shard(at, 1024, (i % 16 == 0).then_some(rtt_us));
                if i % 16 == 15 {
                    window.on_group(17);
                }
            }
        }
    }

    #[test]
    fn probing_grows_the_window_on_a_path_whose_typical_trip_is_thrice_its_shortest() {
        // A slow first second ends startup at the least window.
        let mut window = Window::new(Instant::from_millis(0));
        let now = feed(
            &mut window,
            Instant::from_millis(0),
            1_000_000,
            1_000,
            10_000,
        );
        assert!(!window.startup);
        assert!(window.shards() <= WINDOW_MIN_SHARDS * 5 / 4);
        // Then the path has room, but twice rate × shortest trip is two thirds of what it
        // holds: without probes the window would shrink with the rate it sets.
        window_limited(&mut window, now, 100, 10_000, 30_000);
        assert!(
            window.shards() >= 8 * WINDOW_MIN_SHARDS,
            "{} shards",
            window.shards()
        );
    }

    #[test]
    fn probing_keeps_nothing_on_a_full_link() {
        // 1 MB/s whatever the window: no probe finds more, so the gain stays at its least.
        let mut window = Window::new(Instant::from_millis(0));
        feed(
            &mut window,
            Instant::from_millis(0),
            1_000_000,
            5_000,
            30_000,
        );
        assert_eq!(window.gain_percent, GAIN_MIN_PERCENT);
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
