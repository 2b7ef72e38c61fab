//! Token buckets for per-shard quotas, driven by the clock seam (monotonic nanoseconds), so
//! tests move time instead of sleeping.

/// A token bucket: `rate` tokens per second, holding at most `capacity`. Tokens may be
/// borrowed past zero with `charge` (a large read is allowed, and later calls pay for it).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    rate_per_second: f64,
    tokens: f64,
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, rate_per_second: f64, now_ns: u64) -> TokenBucket {
        assert!(capacity > 0.0 && rate_per_second > 0.0);
        TokenBucket { capacity, rate_per_second, tokens: capacity, last_ns: now_ns }
    }

    fn refill(&mut self, now_ns: u64) {
        if now_ns > self.last_ns {
            let elapsed = (now_ns - self.last_ns) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.capacity);
            self.last_ns = now_ns;
        }
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, now_ns: u64, n: f64) -> bool {
        self.refill(now_ns);
        if self.tokens + 1e-9 >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is not in debt.
    pub fn has_tokens(&mut self, now_ns: u64) -> bool {
        self.refill(now_ns);
        self.tokens > 0.0
    }

    /// Takes `n` tokens unconditionally (may go into debt).
    pub fn charge(&mut self, now_ns: u64, n: f64) {
        self.refill(now_ns);
        self.tokens -= n;
    }

    /// The fraction of the capacity currently used (0 when full, 1 or more when empty).
    pub fn utilization(&mut self, now_ns: u64) -> f64 {
        self.refill(now_ns);
        ((self.capacity - self.tokens) / self.capacity).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_rates_pass_the_next_is_refused_tokens_refill() {
        let mut b = TokenBucket::new(1000.0, 1000.0, 0);
        for _ in 0..1000 {
            assert!(b.try_take(0, 1.0));
        }
        assert!(!b.try_take(0, 1.0), "the 1001st record in the same instant is throttled");
        assert!(!b.try_take(999_000, 1.0), "999 us later: still under one token");
        assert!(b.try_take(1_000_000, 1.0), "1 ms later: one token back");
        assert!(b.try_take(2_000_000_000, 1000.0), "after a second the bucket is full again");
        assert!(!b.try_take(2_000_000_000, 1.0));
    }

    #[test]
    fn debt_blocks_until_repaid() {
        let mut b = TokenBucket::new(2.0, 2.0, 0);
        assert!(b.has_tokens(0));
        b.charge(0, 10.0); // a 10 MiB read against a 2 MiB/s budget
        assert!(!b.has_tokens(3_999_999_999));
        assert!(b.has_tokens(4_000_000_001));
    }
}
