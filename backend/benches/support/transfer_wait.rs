//! Waiting, with bounds, for a device to hold a file the blob transfer brings it: shared by
//! `backend/benches/files.rs` (loopback) and `tests/benches/files_netns.rs` (namespaces),
//! which ask `GET /api/files/:id/progress` each their own way and hand the answers here.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

/// A transfer that gains no group for this long has stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait for one file on one device, from the post of the message that names it.
#[derive(Debug)]
pub struct TransferWait {
    pub posted: Instant,
    deadline: Instant,
    last_have: u64,
    last_gain: Instant,
    /// How long after the post the device's store first had the file (its outboard
    /// fetched): the message's sync and the outboard's trips.
    pub appeared: Option<Duration>,
}

impl TransferWait {
    /// Bounded by a floor rate of `floor_bytes_per_s` over `size_bytes` (plus a minute for
    /// the message's sync), and by [`STALL_TIMEOUT`] without a group gained.
    pub fn new(posted: Instant, size_bytes: u64, floor_bytes_per_s: u64) -> Self {
        let deadline = posted + Duration::from_secs(60 + size_bytes / floor_bytes_per_s.max(1));
        TransferWait {
            posted,
            deadline,
            last_have: 0,
            last_gain: posted,
            appeared: None,
        }
    }

    /// Takes one answer of the progress route at `now`: `Ok(Some(time since the post))`
    /// once the file is complete, `Ok(None)` to ask again, an error for an error answer or
    /// once a bound has passed.
    pub fn note(
        &mut self,
        now: Instant,
        status: u16,
        progress: &Value,
    ) -> Result<Option<Duration>> {
        match status {
            200 if progress["complete"] == true => {
                self.appeared.get_or_insert(now - self.posted);
                return Ok(Some(now - self.posted));
            }
            200 => {
                self.appeared.get_or_insert(now - self.posted);
            }
            // Not in the store yet: the message or the outboard is on its way.
            404 => {}
            _ => bail!("progress: {status} {progress}"),
        }
        let have = progress["chunks_have"].as_u64().unwrap_or(0);
        if have > self.last_have {
            (self.last_have, self.last_gain) = (have, now);
        }
        if now > self.deadline || now - self.last_gain > STALL_TIMEOUT {
            bail!(
                "the file is not whole {:.0} s after the post (deadline {:.0} s, stalls of \
                 {STALL_TIMEOUT:?}); progress: {status} {progress}",
                (now - self.posted).as_secs_f64(),
                (self.deadline - self.posted).as_secs_f64()
            );
        }
        Ok(None)
    }
}
