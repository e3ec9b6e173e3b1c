//! `[[clock]]`: a device whose clock disagrees with the world's. `offset` (`"-1h"`: it reads
//! an hour behind) and `drift_ppm` (`200`: it gains 200 µs per second). The kernel turns
//! these into each device's reading of world time (`kernel/clock.rs`); the clock-order
//! checker (`checks/clock_order.rs`) wants event times to sort anyway.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::duration::parse_duration;

/// Offsets beyond a month are a different bug (a clock never set), not skew.
pub const CLOCK_OFFSET_MAX_US: u64 = 30 * 24 * 3_600_000_000;
/// ±10%: far beyond any crystal (±100 ppm), and small enough that a drifting clock still
/// runs forward at a useful rate.
pub const CLOCK_DRIFT_PPM_MAX: i64 = 100_000;

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
        let magnitude = super::duration::SimDuration::from_micros(self.micros.unsigned_abs());
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
