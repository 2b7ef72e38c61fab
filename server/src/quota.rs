//! Per-shard quotas, accounted on the shard's owning core (no sharing, no locks): writes of
//! 1 MiB/s and 1,000 records/s; GetRecords 5 calls/s and 2 MiB/s shared by all polling
//! consumers. The buckets are `engine::quota::TokenBucket`s driven by the core's clock.

use std::cell::RefCell;

use engine::quota::TokenBucket;
use spate_proto::limits::{
    GET_SHARD_ITERATOR_CALLS_PER_SECOND, SHARD_READ_BYTES_PER_SECOND, SHARD_READ_CALLS_PER_SECOND,
    SHARD_WRITE_BYTES_PER_SECOND, SHARD_WRITE_RECORDS_PER_SECOND,
};

/// The limits, AWS's by default. `enabled: false` (`spated --quotas off`) disables them all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaLimits {
    pub enabled: bool,
    pub write_bytes_per_second: f64,
    pub write_records_per_second: f64,
    pub read_calls_per_second: f64,
    pub read_bytes_per_second: f64,
    pub get_shard_iterator_calls_per_second: f64,
}

impl QuotaLimits {
    /// The limits a server runs with.
    pub fn from_config(config: &crate::config::Config) -> QuotaLimits {
        QuotaLimits {
            enabled: config.quotas_enabled,
            write_bytes_per_second: config.shard_write_bytes_per_second as f64,
            write_records_per_second: config.shard_write_records_per_second as f64,
            read_calls_per_second: config.shard_read_calls_per_second as f64,
            read_bytes_per_second: config.shard_read_bytes_per_second as f64,
            get_shard_iterator_calls_per_second: GET_SHARD_ITERATOR_CALLS_PER_SECOND as f64,
        }
    }

    pub fn aws(enabled: bool) -> QuotaLimits {
        QuotaLimits {
            enabled,
            write_bytes_per_second: SHARD_WRITE_BYTES_PER_SECOND as f64,
            write_records_per_second: SHARD_WRITE_RECORDS_PER_SECOND as f64,
            read_calls_per_second: SHARD_READ_CALLS_PER_SECOND as f64,
            read_bytes_per_second: SHARD_READ_BYTES_PER_SECOND as f64,
            get_shard_iterator_calls_per_second: GET_SHARD_ITERATOR_CALLS_PER_SECOND as f64,
        }
    }
}

struct Buckets {
    write_bytes: TokenBucket,
    write_records: TokenBucket,
    read_calls: TokenBucket,
    read_bytes: TokenBucket,
    iterator_calls: TokenBucket,
}

pub struct ShardQuotas {
    enabled: bool,
    buckets: RefCell<Buckets>,
}

impl ShardQuotas {
    pub fn new(limits: &QuotaLimits, now_ns: u64) -> ShardQuotas {
        let bucket = |rate: f64| TokenBucket::new(rate, rate, now_ns);
        ShardQuotas {
            enabled: limits.enabled,
            buckets: RefCell::new(Buckets {
                write_bytes: bucket(limits.write_bytes_per_second),
                write_records: bucket(limits.write_records_per_second),
                read_calls: bucket(limits.read_calls_per_second),
                read_bytes: bucket(limits.read_bytes_per_second),
                iterator_calls: bucket(limits.get_shard_iterator_calls_per_second),
            }),
        }
    }

    /// Admits one record of `bytes` (data plus partition key), or refuses it.
    pub fn try_write(&self, now_ns: u64, bytes: u64) -> bool {
        if !self.enabled {
            return true;
        }
        let mut b = self.buckets.borrow_mut();
        let b = &mut *b;
        // Check both before taking from either.
        let mut records = b.write_records.clone();
        let mut data = b.write_bytes.clone();
        if records.try_take(now_ns, 1.0) && data.try_take(now_ns, bytes as f64) {
            b.write_records = records;
            b.write_bytes = data;
            true
        } else {
            false
        }
    }

    /// Admits one GetRecords call: a call token, and no outstanding byte debt.
    pub fn try_read_call(&self, now_ns: u64) -> bool {
        if !self.enabled {
            return true;
        }
        let mut b = self.buckets.borrow_mut();
        b.read_bytes.has_tokens(now_ns) && b.read_calls.try_take(now_ns, 1.0)
    }

    /// Charges the bytes a GetRecords returned (may go into debt: a 10 MiB read is allowed and
    /// throttles the calls of the following seconds).
    pub fn charge_read_bytes(&self, now_ns: u64, bytes: u64) {
        if self.enabled {
            self.buckets.borrow_mut().read_bytes.charge(now_ns, bytes as f64);
        }
    }

    pub fn try_get_shard_iterator(&self, now_ns: u64) -> bool {
        !self.enabled || self.buckets.borrow_mut().iterator_calls.try_take(now_ns, 1.0)
    }

    pub fn write_utilization(&self, now_ns: u64) -> f64 {
        let mut b = self.buckets.borrow_mut();
        b.write_bytes.utilization(now_ns).max(b.write_records.utilization(now_ns))
    }

    pub fn read_utilization(&self, now_ns: u64) -> f64 {
        let mut b = self.buckets.borrow_mut();
        b.read_bytes.utilization(now_ns).max(b.read_calls.utilization(now_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_quota_counts_records_and_bytes() {
        let q = ShardQuotas::new(&QuotaLimits::aws(true), 0);
        let admitted = (0..1500).filter(|_| q.try_write(0, 10)).count();
        assert_eq!(admitted, 1000, "exactly 1000 records/s pass");
        let q = ShardQuotas::new(&QuotaLimits::aws(true), 0);
        let admitted = (0..20).filter(|_| q.try_write(0, 100 << 10)).count();
        assert_eq!(admitted, 10, "exactly 1 MiB/s passes");
        assert!(q.try_write(100_000_000, 100 << 10), "refilled after 100 ms");
        let off = ShardQuotas::new(&QuotaLimits::aws(false), 0);
        assert!((0..5000).all(|_| off.try_write(0, 1 << 20)));
    }

    #[test]
    fn read_quota_calls_and_debt() {
        let q = ShardQuotas::new(&QuotaLimits::aws(true), 0);
        assert_eq!((0..10).filter(|_| q.try_read_call(0)).count(), 5);
        q.charge_read_bytes(0, 10 << 20);
        assert!(!q.try_read_call(3_000_000_000), "a 10 MiB read throttles the next seconds");
        assert!(q.try_read_call(5_000_000_000));
    }
}

/// Control-plane rate limits (transactions per second per account), as AWS documents them.
/// Operations that change the catalog run on the controller, so their buckets there are exact;
/// read-only operations run on whichever core received them, so each core refills at `1/cores`
/// of the rate (the sum is the account's sustained limit) and may burst to the whole rate.
pub fn operation_tps(operation: &str) -> Option<f64> {
    Some(match operation {
        "CreateStream" | "DeleteStream" | "MergeShards" | "SplitShard" => 5.0,
        "DescribeStream" => 10.0,
        "DescribeStreamSummary" | "DescribeStreamConsumer" => 20.0,
        "UpdateShardCount" => 10.0,
        "ListStreams" | "ListTagsForStream" | "AddTagsToStream" | "RemoveTagsFromStream" => 5.0,
        "IncreaseStreamRetentionPeriod" | "DecreaseStreamRetentionPeriod" => 5.0,
        "RegisterStreamConsumer" | "DeregisterStreamConsumer" | "ListStreamConsumers" => 5.0,
        "TagResource" | "UntagResource" | "ListTagsForResource" | "UpdateStreamMode" => 5.0,
        "ListShards" => 1000.0,
        "DescribeLimits" => 1.0,
        _ => return None,
    })
}

/// Per-operation token buckets for the control plane.
pub struct OperationLimits {
    enabled: bool,
    share: f64,
    buckets: RefCell<std::collections::HashMap<String, TokenBucket>>,
}

impl OperationLimits {
    /// `share` is the fraction of each account-wide rate this instance enforces.
    pub fn new(enabled: bool, share: f64) -> OperationLimits {
        OperationLimits { enabled, share, buckets: RefCell::new(Default::default()) }
    }

    /// Whether one more call of `operation` is within its rate.
    pub fn admit(&self, operation: &str, now_ns: u64) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(tps) = operation_tps(operation) else { return true };
        // Each core refills at its share of the rate but may burst to the whole rate: a
        // client's connection stays on one core, and a client within the account's rate
        // must not be throttled for that (a burst on every core at once can briefly exceed it).
        let rate = (tps * self.share).max(0.5);
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets
            .entry(operation.to_string())
            .or_insert_with(|| TokenBucket::new(tps.max(1.0), rate, now_ns));
        bucket.try_take(now_ns, 1.0)
    }
}

#[cfg(test)]
mod operation_tests {
    use super::*;

    #[test]
    fn control_plane_rates() {
        let limits = OperationLimits::new(true, 1.0);
        let admitted = (0..20).filter(|_| limits.admit("CreateStream", 0)).count();
        assert_eq!(admitted, 5, "CreateStream: 5 per second");
        assert!(limits.admit("CreateStream", 200_000_001), "one token back after 200 ms");
        assert_eq!((0..30).filter(|_| limits.admit("DescribeStreamSummary", 0)).count(), 20);
        assert!((0..100).all(|_| limits.admit("PutRecord", 0)), "data plane is not limited here");
        // One of two cores: bursts to the account's rate, refills at half of it.
        let half = OperationLimits::new(true, 0.5);
        assert_eq!((0..20).filter(|_| half.admit("ListStreamConsumers", 0)).count(), 5);
        let later = 1_000_000_000;
        assert_eq!((0..20).filter(|_| half.admit("ListStreamConsumers", later)).count(), 2);
        let off = OperationLimits::new(false, 1.0);
        assert!((0..100).all(|_| off.admit("CreateStream", 0)));
    }
}
