//! Where the driver's `now` comes from. The core never reads a clock; the driver does, here.

use meshlog_core::Instant;

pub trait Clock: Send + 'static {
    fn now(&self) -> Instant;
}

/// Production time: microseconds since the Unix epoch, so `created_at` is meaningful across
/// devices and restarts.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Instant::from_micros(since_epoch.as_micros() as u64)
    }
}

/// tokio's clock, offset to a fixed epoch: under turmoil (or a paused runtime) it is virtual
/// and deterministic, which `SystemClock` is not.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: tokio::time::Instant,
    epoch_us: u64,
}

impl TokioClock {
    pub fn new(epoch_us: u64) -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
            epoch_us,
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch_us + self.start.elapsed().as_micros() as u64)
    }
}

/// 32 bytes from the OS, drawn once per node start to seed the node's ChaCha generator.
pub fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom_fill(&mut seed);
    seed
}

fn getrandom_fill(buf: &mut [u8]) {
    use rand_core::RngCore;
    rand_core::OsRng.fill_bytes(buf);
}
