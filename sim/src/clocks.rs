//! Device clocks that disagree with the world's, and the checker that event times still sort.
//!
//! `[[clock]]` gives a device an offset (`"-1h"`: its clock reads an hour behind) and a drift
//! (`drift_ppm = 200`: it gains 200 µs per second). The world keeps one virtual time; each
//! node is handed its own clock's reading of it, and its wake-ups are turned back into world
//! time, so a fast clock also runs its rounds early, as a real one would.
//!
//! The checker: the core's hybrid clock (`meshlog_core::clock`) must keep each author's events
//! in the order they were made and every reaction after its message (one the reacting device
//! held), whatever the skew. Event
//! times are part of the sealed bytes, the same on every device, so checking them once as each
//! event is made checks every device's view.

use std::fmt;

use meshlog_core::{EventBody, EventId, Instant};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::duration::parse_duration;
use crate::outcome::Appended;
use crate::scenario::{Scenario, ScenarioError};
use crate::validate::{Invalid, Known};
use crate::world::World;

/// Offsets beyond a month are a different bug (a clock never set), not skew.
pub const CLOCK_OFFSET_MAX_US: u64 = 30 * 24 * 3_600_000_000;
/// ±10%: far beyond any crystal (±100 ppm), and small enough that a drifting clock still
/// runs forward at a useful rate.
pub const CLOCK_DRIFT_PPM_MAX: i64 = 100_000;
/// Out-of-order pairs listed in a failure.
pub const CLOCK_BREAKS_LISTED_MAX: usize = 10;

/// `[[clock]]`: one device's clock.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    pub device: String,
    /// What its clock reads at the world's 0, relative to the world: `"1h"`, `"-90s"`.
    #[serde(default)]
    pub offset: SignedDuration,
    /// Parts per million it runs fast (negative: slow).
    #[serde(default)]
    pub drift_ppm: i64,
}

/// A duration with an optional leading `-`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignedDuration {
    pub micros: i64,
}

impl fmt::Display for SignedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = crate::duration::SimDuration::from_micros(self.micros.unsigned_abs());
        let sign = if self.micros < 0 { "-" } else { "" };
        write!(f, "{sign}{magnitude}")
    }
}

impl Serialize for SignedDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SignedDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SignedVisitor;
        impl Visitor<'_> for SignedVisitor {
            type Value = SignedDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string, maybe negative, such as \"1h\" or \"-90s\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SignedDuration, E> {
                let (sign, rest) = match text.strip_prefix('-') {
                    Some(rest) => (-1, rest),
                    None => (1, text),
                };
                let magnitude = parse_duration(rest).map_err(E::custom)?.as_micros();
                let micros = i64::try_from(magnitude)
                    .map_err(|_| E::custom(format!("{text:?} is too long")))?;
                Ok(SignedDuration {
                    micros: sign * micros,
                })
            }
        }
        deserializer.deserialize_str(SignedVisitor)
    }
}

pub(crate) fn validate_clocks(
    scenario: &Scenario,
    known: &Known<'_>,
    invalid: &Invalid<'_>,
) -> Result<(), ScenarioError> {
    let mut listed = std::collections::BTreeSet::new();
    for (i, clock) in scenario.clocks.iter().enumerate() {
        let field = format!("clock[{i}]");
        known(&format!("{field}.device"), &clock.device)?;
        if !listed.insert(clock.device.as_str()) {
            return Err(invalid(
                &format!("{field}.device"),
                format!("{:?} has two clocks", clock.device),
            ));
        }
        if clock.offset.micros.unsigned_abs() > CLOCK_OFFSET_MAX_US {
            return Err(invalid(
                &format!("{field}.offset"),
                format!("{} is more than 30 days off", clock.offset),
            ));
        }
        if clock.drift_ppm.abs() > CLOCK_DRIFT_PPM_MAX {
            return Err(invalid(
                &format!("{field}.drift_ppm"),
                format!(
                    "{} ppm: at most ±{CLOCK_DRIFT_PPM_MAX} (10%)",
                    clock.drift_ppm
                ),
            ));
        }
    }
    Ok(())
}

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

/// Two events whose times sort against the order they were made in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClockBreak {
    /// "author order" or "reaction before its message".
    pub(crate) rule: &'static str,
    pub(crate) earlier: EventId,
    pub(crate) earlier_at: Instant,
    pub(crate) later: EventId,
    pub(crate) later_at: Instant,
}

/// Per author, the last event made; and the breaks found.
#[derive(Debug, Default)]
pub(crate) struct ClockOrder {
    last_by_author: Vec<Option<(EventId, Instant)>>,
    pub(crate) breaks: Vec<ClockBreak>,
    pub(crate) break_count: u64,
}

impl ClockOrder {
    pub(crate) fn new(devices: usize) -> Self {
        ClockOrder {
            last_by_author: vec![None; devices],
            ..ClockOrder::default()
        }
    }

    fn note_break(&mut self, found: ClockBreak) {
        self.break_count += 1;
        if self.breaks.len() < CLOCK_BREAKS_LISTED_MAX {
            self.breaks.push(found);
        }
    }
}

/// The message a reaction answers, which the clock checker compares times with.
pub(crate) fn reacts_to(body: &EventBody) -> Option<EventId> {
    match body {
        EventBody::Reaction { message, .. } => Some(*message),
        _ => None,
    }
}

impl World {
    /// `device` just made `id`: its time must follow the author's last event and, for a
    /// reaction (`reacts_to`, the message), the message it reacts to.
    pub(crate) fn check_event_time(
        &mut self,
        device: usize,
        id: EventId,
        appended: &Appended,
        reacts_to: Option<EventId>,
    ) {
        // Bodies are not kept (`shelf.rs`): the time as the author's store took it (decoded
        // from the bytes only if the store did not say).
        let stored_at = (self.devices[device].store.borrow().last_appended)
            .iter()
            .find(|(appended_id, _)| *appended_id == id)
            .map(|&(_, at)| at);
        let at = match stored_at {
            Some(at) => at,
            None => {
                self.opened_slot(appended.slot)
                    .expect("the author's bytes open")
                    .event
                    .created_at
            }
        };
        if let Some((last, last_at)) = self.clock_order.last_by_author[device] {
            if at <= last_at {
                self.clock_order.note_break(ClockBreak {
                    rule: "author order",
                    earlier: last,
                    earlier_at: last_at,
                    later: id,
                    later_at: at,
                });
            }
        }
        self.clock_order.last_by_author[device] = Some((id, at));
        if let Some(message) = &reacts_to {
            // The workload may react to a message the device has not received yet (no person
            // could); only an answer to something seen must sort after it.
            let seen = self.devices[device]
                .node
                .as_ref()
                .is_some_and(|node| node.contains(message));
            let original = seen.then(|| self.appended.get(message)).flatten();
            if let Some(original) = original.and_then(|a| self.opened_slot(a.slot)) {
                let message_at = original.event.created_at;
                if at <= message_at {
                    self.clock_order.note_break(ClockBreak {
                        rule: "reaction before its message",
                        earlier: *message,
                        earlier_at: message_at,
                        later: id,
                        later_at: at,
                    });
                }
            }
        }
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

    #[test]
    fn bad_clocks_name_the_field() {
        for (body, field) in [
            ("device = \"zed\"", "clock[0].device"),
            ("device = \"a\"\noffset = \"-45d\"", "clock[0].offset"),
            ("device = \"a\"\ndrift_ppm = 200000", "clock[0].drift_ppm"),
            ("device = \"a\"\noffset = \"-x\"", "clock[0].offset"),
        ] {
            let text =
                format!("name = \"s\"\nduration = \"1m\"\ndevices = [\"a\"]\n[[clock]]\n{body}\n");
            let err = Scenario::parse(&text, "s.toml").unwrap_err().to_string();
            assert!(err.contains(field), "{body}: {err}");
            assert!(err.starts_with("s.toml"), "{err}");
        }
    }
}
