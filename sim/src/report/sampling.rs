//! Keeping a long stream's picture within a fixed size: what a report keeps of a run of any
//! length is bounded, and stays spread over the whole run.

use super::limits::SERIES_POINTS_MAX;

/// Every `stride`-th item of a stream, at most `cap`: when full, every other one is let go
/// and the stride doubles, so what is kept stays evenly spread whatever the stream's length.
#[derive(Clone, Debug)]
pub(super) struct Sampler<T> {
    cap: usize,
    seen: u64,
    stride: u64,
    kept: Vec<(u64, T)>,
}

impl<T> Sampler<T> {
    pub(super) fn new(cap: usize) -> Self {
        Sampler {
            cap,
            seen: 0,
            stride: 1,
            kept: Vec::new(),
        }
    }
    /// Offers the next item; `make` runs only if it is kept.
    pub(super) fn offer(&mut self, make: impl FnOnce() -> T) {
        let n = self.seen;
        self.seen += 1;
        if n % self.stride != 0 {
            return;
        }
        if self.kept.len() == self.cap {
            self.stride *= 2;
            let stride = self.stride;
            self.kept.retain(|(i, _)| i % stride == 0);
            if n % stride != 0 {
                return;
            }
        }
        self.kept.push((n, make()));
    }
    pub(super) fn take(self) -> (u64, u64, Vec<T>) {
        (
            self.seen,
            self.stride,
            self.kept.into_iter().map(|(_, t)| t).collect(),
        )
    }
}

/// Appends a step, halving the series (every other point, the newest kept) when full.
pub(super) fn push_thinned(series: &mut Vec<(u64, u64)>, point: (u64, u64)) {
    if let Some(last) = series.last_mut() {
        if last.0 == point.0 {
            *last = point;
            return;
        }
    }
    if series.len() >= SERIES_POINTS_MAX {
        let newest = series.len() - 1;
        let mut i = 0;
        series.retain(|_| {
            let keep = i % 2 == 0 || i == newest;
            i += 1;
            keep
        });
    }
    series.push(point);
}
