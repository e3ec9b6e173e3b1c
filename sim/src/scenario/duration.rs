//! Durations as scenario files write them: `"250ms"`, `"10m"`, `"1h30m"`.
//!
//! Kept in microseconds, the core's unit, so a parsed file and the world agree exactly; no
//! floats, so a duration means the same on every platform.

use std::fmt;

use meshlog_core::Duration;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Units a duration may use, largest first (formatting picks the largest exact one).
const UNITS: [(&str, u64); 6] = [
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
];

/// A span of virtual time read from or written to a scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimDuration(pub Duration);

impl SimDuration {
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(Duration::from_millis(ms))
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(Duration::from_micros(us))
    }
    pub fn as_micros(self) -> u64 {
        self.0.as_micros()
    }
}

/// Parses one or more `<integer><unit>` segments: `"5ms"`, `"2h"`, `"1m30s"`.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let units = "use d, h, m, s, ms or us, e.g. \"5ms\" or \"1m30s\"";
    if text.is_empty() {
        return Err(format!("empty duration: {units}"));
    }
    let mut rest = text;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "bad duration {text:?}: expected a number at {rest:?}; {units}"
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        // Everything up to the next number is the unit, so "8 weeks" names " weeks".
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let shown = if unit.is_empty() { "none" } else { unit };
            return Err(format!(
                "bad duration {text:?}: unit {shown:?} unknown; {units}"
            ));
        };
        total = value
            .checked_mul(*scale)
            .and_then(|us| total.checked_add(us))
            .ok_or_else(|| format!("bad duration {text:?}: too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(SimDuration(Duration::from_micros(total)))
}

impl fmt::Display for SimDuration {
    /// The largest unit that divides exactly: `90s` is `"90s"`, `120s` is `"2m"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        if us == 0 {
            return f.write_str("0s");
        }
        let (name, scale) = UNITS
            .iter()
            .find(|(_, scale)| us % scale == 0)
            .expect("us divides everything");
        write!(f, "{}{name}", us / scale)
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = SimDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5ms\", \"10m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SimDuration, E> {
                parse_duration(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_segments() {
        assert_eq!(parse_duration("5ms").unwrap().as_micros(), 5_000);
        assert_eq!(parse_duration("10m").unwrap().as_micros(), 600_000_000);
        assert_eq!(parse_duration("2h").unwrap().as_micros(), 7_200_000_000);
        assert_eq!(parse_duration("1m30s").unwrap().as_micros(), 90_000_000);
        assert_eq!(parse_duration("7us").unwrap().as_micros(), 7);
    }

    #[test]
    fn rejects_bad_text_with_a_reason() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("5").unwrap_err().contains("unit \"none\""));
        assert!(parse_duration("5x").unwrap_err().contains("unit \"x\""));
        assert!(parse_duration("ms")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("99999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "90s", "2m", "1h", "250ms", "3us", "2d"] {
            assert_eq!(parse_duration(text).unwrap().to_string(), text);
        }
    }
}
