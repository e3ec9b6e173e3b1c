//! Device clocks: each node is handed its own clock's reading of the world's one virtual
//! time, and its wake-ups are turned back into world time, so a fast clock also runs its
//! rounds early, as a real one would (`[[clock]]` in the scenario).

use meshlog_core::Instant;

use crate::scenario::Scenario;

/// One device's reading of world time: `shift + world × (1 + drift)`. Every shift is the
/// offset less the most negative offset, so no clock reads below zero; a common shift changes
/// no one's skew against anyone else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeviceClock {
    shift_us: u64,
    drift_ppm: i64,
}

const PPM: i128 = 1_000_000;

impl DeviceClock {
    /// Each device's clock, in `scenario.devices` order (the world's own where unset).
    pub(crate) fn all(scenario: &Scenario) -> Vec<DeviceClock> {
        let spec = |name: &str| scenario.clocks.iter().find(|c| c.device == name);
        let lowest = scenario
            .clocks
            .iter()
            .map(|c| c.offset.micros)
            .min()
            .unwrap_or(0)
            .min(0);
        scenario
            .devices
            .iter()
            .map(|name| {
                let (offset, drift_ppm) =
                    spec(name).map_or((0, 0), |c| (c.offset.micros, c.drift_ppm));
                DeviceClock {
                    shift_us: (offset - lowest) as u64,
                    drift_ppm,
                }
            })
            .collect()
    }

    /// What this clock reads at world time `world`.
    pub(crate) fn read(self, world: Instant) -> Instant {
        let w = i128::from(world.as_micros());
        let reading = i128::from(self.shift_us) + w + w * i128::from(self.drift_ppm) / PPM;
        Instant::from_micros(reading.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The first world time at which this clock reads `reading` or more.
    pub(crate) fn world_time_of(self, reading: Instant) -> Instant {
        let past_shift = i128::from(reading.as_micros()) - i128::from(self.shift_us);
        if past_shift <= 0 {
            return Instant::ZERO;
        }
        let rate = PPM + i128::from(self.drift_ppm);
        let mut world = (past_shift * PPM / rate).clamp(0, i128::from(u64::MAX)) as u64;
        // Integer division may land a microsecond either side of the first such time.
        while world > 0 && self.read(Instant::from_micros(world - 1)) >= reading {
            world -= 1;
        }
        while self.read(Instant::from_micros(world)) < reading {
            world += 1;
        }
        Instant::from_micros(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_reads_and_inverts_exactly() {
        for clock in [
            DeviceClock::default(),
            DeviceClock {
                shift_us: 3_600_000_000,
                drift_ppm: 200,
            },
            DeviceClock {
                shift_us: 0,
                drift_ppm: -100_000,
            },
        ] {
            for world in [0u64, 1, 999_999, 1_000_001, 86_400_000_000] {
                let reading = clock.read(Instant::from_micros(world));
                let back = clock.world_time_of(reading);
                assert!(back.as_micros() <= world, "{clock:?} {world}");
                assert_eq!(clock.read(back), reading, "{clock:?} {world}");
            }
        }
    }

    #[test]
    fn negative_offsets_shift_everyone_and_keep_the_skew() {
        let scenario = Scenario::parse(
            r#"
            name = "skew"
            duration = "1m"
            devices = ["a", "b", "c"]
            [[clock]]
            device = "a"
            offset = "-1h"
            [[clock]]
            device = "b"
            offset = "30m"
            drift_ppm = 50
            "#,
            "skew.toml",
        )
        .unwrap();
        let clocks = DeviceClock::all(&scenario);
        let at = |i: usize| clocks[i].read(Instant::ZERO).as_micros() as i64;
        assert_eq!(at(0), 0);
        assert_eq!(at(2) - at(0), 3_600_000_000, "c is the world's time");
        assert_eq!(at(1) - at(2), 1_800_000_000);
    }
}
