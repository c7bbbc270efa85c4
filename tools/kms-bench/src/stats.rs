//! Latency and error bookkeeping of a run, and the summary it prints.

use std::collections::BTreeMap;
use std::time::Duration;

/// What one worker saw. Latencies are kept exactly (one `u32` of microseconds
/// per request: 10 s at 100k req/s is 4 MB), then merged and sorted once.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Latency of every 2xx response, microseconds.
    pub latencies_us: Vec<u32>,
    /// Responses and failures that were not 2xx, by label
    /// (`400 ValidationException`, `transport: connection refused`...).
    pub errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn ok(&mut self, latency: Duration) {
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        for (label, n) in other.errors {
            *self.errors.entry(label).or_default() += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The `p`-th percentile (0 < p <= 100) of `sorted` by the nearest-rank
/// method: the smallest value with at least p% of the values at or below it.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Microseconds as milliseconds with three decimals.
pub fn ms(us: u32) -> String {
    format!("{:.3}", f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));

        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), Some(20));
        assert_eq!(percentile(&v, 50.1), Some(30));
        assert_eq!(percentile(&v, 99.0), Some(40));

        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 0.0), None);
        assert_eq!(percentile(&v, 101.0), None);
        assert_eq!(percentile(&v, f64::NAN), None);
    }

    #[test]
    fn merging_adds_up() {
        let mut a = Recorder::default();
        a.ok(Duration::from_micros(5));
        a.error("400 ValidationException".into());
        let mut b = Recorder::default();
        b.ok(Duration::from_millis(2));
        b.error("400 ValidationException".into());
        b.error("transport: closed".into());
        a.merge(b);
        assert_eq!(a.latencies_us, vec![5, 2000]);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.errors["400 ValidationException"], 2);
        assert_eq!(ms(1234), "1.234");
    }
}
