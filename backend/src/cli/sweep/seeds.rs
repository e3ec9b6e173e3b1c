//! `--seeds A..B`: the range of seeds a sweep runs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

pub fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    let bad = || format!("{text:?}: expected A..B or A..=B, e.g. 0..2000");
    let (start, end, inclusive) = match text.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => {
            let (a, b) = text.split_once("..").ok_or_else(bad)?;
            (a, b, false)
        }
    };
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        end.checked_add(1).ok_or_else(bad)?
    } else {
        end
    };
    if end <= start {
        return Err(format!("{text:?}: the range is empty"));
    }
    Ok(SeedRange { start, end })
}
