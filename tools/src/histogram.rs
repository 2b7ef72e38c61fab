//! An HDR-style latency histogram: log-linear buckets with two significant decimal digits
//! (256 sub-buckets per power of two, relative error below 1/128) over 1 µs to 1 hour, in
//! 26 KiB of counters. Owns recording (with coordinated-omission correction), merging and
//! percentile queries; it knows nothing about time sources or reports.
//!
//! The layout follows HdrHistogram: bucket `b` holds values in `[128 << b, 256 << b)` at a
//! resolution of `1 << b`, except bucket 0 which holds `[0, 256)` at resolution 1.

/// Values recorded above this are clamped to it and counted in [`Histogram::saturated`].
pub const VALUE_MAX_US: u64 = 3_600_000_000;

const SUB_BUCKET_HALF_MAGNITUDE: u32 = 7;
const SUB_BUCKET_HALF_COUNT: u64 = 1 << SUB_BUCKET_HALF_MAGNITUDE;
const SUB_BUCKET_COUNT: u64 = 2 * SUB_BUCKET_HALF_COUNT;
const SUB_BUCKET_MASK: u64 = SUB_BUCKET_COUNT - 1;

const fn bucket_count() -> usize {
    let mut smallest_untrackable = SUB_BUCKET_COUNT;
    let mut buckets = 1;
    while smallest_untrackable <= VALUE_MAX_US {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    buckets
}

const BUCKET_COUNT: usize = bucket_count();
const COUNTS_LEN: usize = (BUCKET_COUNT + 1) * SUB_BUCKET_HALF_COUNT as usize;

// Two significant digits need at least 200 distinct sub-buckets per decade step.
const _: () = assert!(SUB_BUCKET_COUNT >= 200);
const _: () = assert!((SUB_BUCKET_COUNT << (BUCKET_COUNT - 1)) > VALUE_MAX_US);

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
    saturated: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn bucket_index(value: u64) -> u32 {
    (64 - (value | SUB_BUCKET_MASK).leading_zeros()) - (SUB_BUCKET_HALF_MAGNITUDE + 1)
}

fn counts_index(value: u64) -> usize {
    let bucket = bucket_index(value);
    let sub_bucket = value >> bucket;
    debug_assert!(sub_bucket < SUB_BUCKET_COUNT);
    (((bucket as u64 + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub_bucket - SUB_BUCKET_HALF_COUNT)
        as usize
}

fn value_from_index(index: usize) -> u64 {
    let mut bucket = (index as i64 >> SUB_BUCKET_HALF_MAGNITUDE) - 1;
    let mut sub_bucket = (index as u64 & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    if bucket < 0 {
        sub_bucket -= SUB_BUCKET_HALF_COUNT;
        bucket = 0;
    }
    sub_bucket << bucket
}

/// The smallest value that shares `value`'s counter.
pub fn lowest_equivalent(value: u64) -> u64 {
    let bucket = bucket_index(value);
    (value >> bucket) << bucket
}

/// The largest value that shares `value`'s counter.
pub fn highest_equivalent(value: u64) -> u64 {
    lowest_equivalent(value) + (1u64 << bucket_index(value)) - 1
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; COUNTS_LEN],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
            saturated: 0,
        }
    }

    pub fn record(&mut self, value_us: u64) {
        self.record_n(value_us, 1);
    }

    pub fn record_n(&mut self, value_us: u64, count: u64) {
        if count == 0 {
            return;
        }
        let value = if value_us > VALUE_MAX_US {
            self.saturated += count;
            VALUE_MAX_US
        } else {
            value_us
        };
        self.counts[counts_index(value)] += count;
        self.total += count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += u128::from(value) * u128::from(count);
    }

    /// Records `value_us` and, when it exceeds `expected_interval_us`, the samples a
    /// closed-loop client missed while it waited: `value - k * interval` for every k >= 1
    /// down to `interval` (HdrHistogram's recordValueWithExpectedInterval). The back-fill is
    /// added per counter, so a 1-hour stall at a 1 µs interval costs a few thousand steps.
    pub fn record_corrected(&mut self, value_us: u64, expected_interval_us: u64) {
        let value = value_us.min(VALUE_MAX_US);
        self.record(value_us);
        if expected_interval_us == 0 || value <= expected_interval_us {
            return;
        }
        let interval = expected_interval_us;
        let mut missing = value - interval;
        while missing >= interval {
            let floor = lowest_equivalent(missing).max(interval);
            let n = (missing - floor) / interval + 1;
            let last = missing - (n - 1) * interval;
            self.counts[counts_index(missing)] += n;
            self.total += n;
            // Arithmetic series missing, missing - interval, ..., last.
            self.sum += (u128::from(missing) + u128::from(last)) * u128::from(n) / 2;
            self.min = self.min.min(last);
            missing = last - interval;
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.saturated += other.saturated;
    }

    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.min = u64::MAX;
        self.max = 0;
        self.sum = 0;
        self.saturated = 0;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Exact maximum recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Exact minimum recorded value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.sum as f64 / self.total as f64 }
    }

    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The value at or below which `percentile` (0..=100) of the samples fall, reported as the
    /// highest value of its counter (never above the exact maximum). 0 when empty.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let percentile = percentile.clamp(0.0, 100.0);
        let exact = percentile * self.total as f64 / 100.0;
        // Absorb floating-point noise such as 99.00000000000001 before rounding up.
        let rank = ((exact - exact * 1e-12).ceil() as u64).clamp(1, self.total);
        let mut cumulative = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            cumulative += count;
            if cumulative >= rank {
                return highest_equivalent(value_from_index(index)).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn reference_percentile(sorted: &[u64], percentile: f64) -> u64 {
        let exact = percentile * sorted.len() as f64 / 100.0;
        let rank = ((exact - exact * 1e-12).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_against_reference(values: &[u64]) {
        let mut histogram = Histogram::new();
        for &v in values {
            histogram.record(v);
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        for p in [0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0] {
            let expected = reference_percentile(&sorted, p);
            let got = histogram.value_at_percentile(p);
            // Same counter as the reference sample: within 1/128 above it, never below.
            assert!(got >= expected, "p{p}: {got} < {expected}");
            assert!(got <= highest_equivalent(expected), "p{p}: {got} vs {expected}");
            assert!(got - expected <= expected / 128, "p{p}: {got} vs {expected}");
        }
        assert_eq!(histogram.max(), *sorted.last().unwrap());
        assert_eq!(histogram.min(), sorted[0]);
        assert_eq!(histogram.count(), values.len() as u64);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        assert!((histogram.mean() - mean).abs() < 1e-6 * mean.max(1.0));
    }

    #[test]
    fn percentiles_match_sorted_reference_uniform() {
        let mut rng = Rng::new(42);
        let values: Vec<u64> = (0..100_000).map(|_| rng.range_inclusive(1, 50_000)).collect();
        check_against_reference(&values);
    }

    #[test]
    fn percentiles_match_sorted_reference_heavy_tail() {
        // Log-uniform over 1 µs .. 1 hour: exercises every bucket.
        let mut rng = Rng::new(7);
        let span = (VALUE_MAX_US as f64).ln();
        let values: Vec<u64> =
            (0..200_000).map(|_| (rng.next_f64() * span).exp().round() as u64).collect();
        check_against_reference(&values);
    }

    #[test]
    fn small_values_are_exact() {
        let values: Vec<u64> = (0..256).collect();
        let mut histogram = Histogram::new();
        for &v in &values {
            histogram.record(v);
        }
        for (i, &v) in values.iter().enumerate() {
            let p = (i + 1) as f64 * 100.0 / values.len() as f64;
            assert_eq!(histogram.value_at_percentile(p), v);
        }
    }

    #[test]
    fn index_layout_round_trips() {
        for value in [0, 1, 255, 256, 257, 511, 512, 1000, 123_456, VALUE_MAX_US] {
            let index = counts_index(value);
            assert!(index < COUNTS_LEN);
            assert_eq!(value_from_index(index), lowest_equivalent(value));
            assert!(lowest_equivalent(value) <= value && value <= highest_equivalent(value));
        }
    }

    #[test]
    fn saturates_above_one_hour() {
        let mut histogram = Histogram::new();
        histogram.record(VALUE_MAX_US * 10);
        assert_eq!(histogram.saturated(), 1);
        assert_eq!(histogram.max(), VALUE_MAX_US);
    }

    #[test]
    fn merge_equals_recording_into_one() {
        let mut rng = Rng::new(3);
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for i in 0..10_000 {
            let v = rng.range_inclusive(1, 1_000_000);
            if i % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            both.record(v);
        }
        a.merge(&b);
        for p in [50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(a.value_at_percentile(p), both.value_at_percentile(p));
        }
        assert_eq!(a.count(), both.count());
        assert_eq!(a.mean(), both.mean());
    }

    #[test]
    fn coordinated_omission_correction_exposes_a_stall() {
        // A closed-loop client meant to send every 1 ms sees 1 ms responses, then one 1 s
        // stall. Uncorrected, the stall is 1 sample of 10,001 and invisible at p99.
        let interval_us = 1_000;
        let mut raw = Histogram::new();
        let mut corrected = Histogram::new();
        for _ in 0..10_000 {
            raw.record(interval_us);
            corrected.record_corrected(interval_us, interval_us);
        }
        raw.record(1_000_000);
        corrected.record_corrected(1_000_000, interval_us);

        assert!(raw.value_at_percentile(99.0) <= highest_equivalent(interval_us));
        // The corrected histogram holds the 999 samples the stall hid: 1000 of 11,000 samples
        // lie in (1 ms, 1 s], so p99 is about 1 s - 110 ms and p95 about 1 s - 550 ms.
        assert_eq!(corrected.count(), 10_000 + 1_000);
        let p99 = corrected.value_at_percentile(99.0);
        assert!((880_000..=900_000).contains(&p99), "corrected p99 {p99}");
        let p95 = corrected.value_at_percentile(95.0);
        assert!((440_000..=460_000).contains(&p95), "corrected p95 {p95}");
        assert_eq!(corrected.max(), 1_000_000);
        // Mean of 10,000 x 1 ms plus the series 1 ms..1 s (1000 terms): exact, not bucketed.
        let expected_mean = (10_000.0 * 1_000.0 + 1_000.0 * 500_500.0) / 11_000.0;
        assert!((corrected.mean() - expected_mean).abs() < 1e-6 * expected_mean);
    }

    #[test]
    fn corrected_backfill_matches_naive_loop() {
        let mut fast = Histogram::new();
        let mut naive = Histogram::new();
        for (value, interval) in [(123_457, 17), (5_000_000, 999), (300, 7), (10, 20)] {
            fast.record_corrected(value, interval);
            naive.record(value);
            let mut missing = value.saturating_sub(interval);
            while value > interval && missing >= interval {
                naive.record(missing);
                missing -= interval;
            }
        }
        assert_eq!(fast.counts, naive.counts);
        assert_eq!(fast.count(), naive.count());
        assert_eq!(fast.sum, naive.sum);
        assert_eq!(fast.min(), naive.min());
    }
}
