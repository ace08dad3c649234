//! Percentiles and summaries of latency samples. Pure.

use std::time::Duration;

use serde::Serialize;

/// The `q`-quantile (0.0..=1.0) of `sorted` (ascending) by the nearest-rank method: the
/// smallest sample such that at least `q` of all samples are less than or equal to it.
/// `None` for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let n = sorted.len();
    // ceil(q * n), computed so that exact products (0.5 * 200) do not round up.
    let rank = ((q * n as f64) - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(n) - 1])
}

/// Count, median, 99th percentile, maximum and mean of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
}

impl Summary {
    /// Summarizes samples in microseconds (sorts them in place).
    pub fn of_micros(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let count = samples.len();
        if count == 0 {
            return Self::default();
        }
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Self {
            count,
            p50_us: percentile(samples, 0.50).unwrap_or(0),
            p99_us: percentile(samples, 0.99).unwrap_or(0),
            max_us: samples[count - 1],
            mean_us: (sum / count as u128) as u64,
        }
    }

    /// Summarizes durations.
    pub fn of_durations(samples: &[Duration]) -> Self {
        let mut micros: Vec<u64> = samples.iter().map(|d| micros(*d)).collect();
        Self::of_micros(&mut micros)
    }
}

/// A duration in whole microseconds (saturating).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
