//! Prometheus metrics. Counters are plain integers owned by each core (no atomics, no locks on
//! the data path); a scrape asks every core for a `MetricsSnapshot` (a `Send` copy), merges
//! them, and renders the text format with the prometheus crate's encoder.

use std::cell::RefCell;
use std::collections::BTreeMap;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// Request latency histogram bounds, in seconds.
pub const LATENCY_BOUNDS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Clone, Debug, Default)]
pub struct ShardCounters {
    pub incoming_bytes: u64,
    pub incoming_records: u64,
    pub outgoing_bytes: u64,
    pub outgoing_records: u64,
    pub get_records_calls: u64,
    /// Milliseconds behind the tip at the last GetRecords (gauge).
    pub iterator_age_ms: i64,
    pub write_throttled: u64,
    pub read_throttled: u64,
    /// Gauges set by the owning core.
    pub write_utilization: f64,
    pub read_utilization: f64,
    pub open: Option<bool>,
    /// Damage recovery found in the shard's log and left in place (gauge, set at open).
    pub log_anomalies: u64,
}

#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram {
    pub buckets: [u64; LATENCY_BOUNDS_SECONDS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, seconds: f64) {
        for (i, bound) in LATENCY_BOUNDS_SECONDS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
    fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }
}

/// Enhanced fan-out cursor of one consumer on one shard.
#[derive(Clone, Debug, Default)]
pub struct ConsumerCursor {
    pub position: u64,
    pub lag_records: u64,
    pub millis_behind_latest: i64,
    pub bytes_pushed: u64,
    pub records_pushed: u64,
    pub active: bool,
}

/// Everything one core counts. Keys: (stream, shard id) / (operation, outcome) / ...
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// The core these counters come from (labels requests and latencies).
    pub core: usize,
    pub shards: BTreeMap<(String, String), ShardCounters>,
    pub requests: BTreeMap<(String, String), u64>,
    pub latency: BTreeMap<String, LatencyHistogram>,
    pub consumers: BTreeMap<(String, String, String), ConsumerCursor>,
    /// (stream) -> gauges set by the controller.
    pub streams: BTreeMap<String, StreamGauges>,
    /// (stream, action, reason) -> count of autoscaler decisions.
    pub autoscaler: BTreeMap<(String, String, String), u64>,
}

#[derive(Clone, Debug, Default)]
pub struct StreamGauges {
    pub open_shards: u64,
    pub mode: String,
}

/// The counters of one core.
#[derive(Debug, Default)]
pub struct CoreMetrics {
    data: RefCell<MetricsSnapshot>,
}

impl CoreMetrics {
    pub fn shard(&self, stream: &str, shard: &str, f: impl FnOnce(&mut ShardCounters)) {
        let mut data = self.data.borrow_mut();
        let key = (stream.to_string(), shard.to_string());
        f(data.shards.entry(key).or_default());
    }

    pub fn request(&self, operation: &str, outcome: &str, seconds: f64) {
        let mut data = self.data.borrow_mut();
        *data.requests.entry((operation.to_string(), outcome.to_string())).or_default() += 1;
        data.latency.entry(operation.to_string()).or_default().observe(seconds);
    }

    pub fn consumer(
        &self,
        stream: &str,
        consumer: &str,
        shard: &str,
        f: impl FnOnce(&mut ConsumerCursor),
    ) {
        let mut data = self.data.borrow_mut();
        let key = (stream.to_string(), consumer.to_string(), shard.to_string());
        f(data.consumers.entry(key).or_default());
    }

    pub fn stream_gauges(&self, stream: &str, gauges: StreamGauges) {
        self.data.borrow_mut().streams.insert(stream.to_string(), gauges);
    }

    /// Replaces every stream's gauges (the controller calls this on each catalog commit).
    pub fn set_streams(&self, streams: Vec<(String, StreamGauges)>) {
        self.data.borrow_mut().streams = streams.into_iter().collect();
    }

    pub fn autoscaler_decision(&self, stream: &str, action: &str, reason: &str) {
        let mut data = self.data.borrow_mut();
        *data.autoscaler.entry((stream.into(), action.into(), reason.into())).or_default() += 1;
    }

    /// Forgets a reclaimed shard's series.
    pub fn forget_shard(&self, stream: &str, shard: &str) {
        let mut data = self.data.borrow_mut();
        data.shards.retain(|(s, id), _| !(s == stream && id == shard));
        data.consumers.retain(|(s, _, id), _| !(s == stream && id == shard));
    }

    /// Forgets a deleted stream's series.
    pub fn forget_stream(&self, stream: &str) {
        let mut data = self.data.borrow_mut();
        data.shards.retain(|(s, _), _| s != stream);
        data.consumers.retain(|(s, _, _), _| s != stream);
        data.streams.remove(stream);
    }

    pub fn snapshot(&self, core: usize) -> MetricsSnapshot {
        let mut snapshot = self.data.borrow().clone();
        snapshot.core = core;
        snapshot
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn counter(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut m = Metric::from_label(labels(pairs));
    let mut c = Counter::default();
    c.set_value(value);
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut m = Metric::from_label(labels(pairs));
    let mut g = Gauge::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}

/// Merges per-core snapshots and renders the Prometheus text format.
pub fn render(snapshots: &[MetricsSnapshot]) -> String {
    let mut merged = MetricsSnapshot::default();
    for s in snapshots {
        for (k, v) in &s.shards {
            let m = merged.shards.entry(k.clone()).or_default();
            m.incoming_bytes += v.incoming_bytes;
            m.incoming_records += v.incoming_records;
            m.outgoing_bytes += v.outgoing_bytes;
            m.outgoing_records += v.outgoing_records;
            m.get_records_calls += v.get_records_calls;
            m.iterator_age_ms = m.iterator_age_ms.max(v.iterator_age_ms);
            m.write_throttled += v.write_throttled;
            m.read_throttled += v.read_throttled;
            m.write_utilization = m.write_utilization.max(v.write_utilization);
            m.read_utilization = m.read_utilization.max(v.read_utilization);
            m.log_anomalies = m.log_anomalies.max(v.log_anomalies);
            if v.open.is_some() {
                m.open = v.open;
            }
        }
        // Requests and latencies keep a `core` label: the key is "<core>\n<operation>".
        for ((op, outcome), v) in &s.requests {
            let key = (format!("{}\n{op}", s.core), outcome.clone());
            *merged.requests.entry(key).or_default() += v;
        }
        for (op, v) in &s.latency {
            merged.latency.entry(format!("{}\n{op}", s.core)).or_default().merge(v);
        }
        for (k, v) in &s.consumers {
            merged.consumers.insert(k.clone(), v.clone());
        }
        for (k, v) in &s.streams {
            merged.streams.insert(k.clone(), v.clone());
        }
        for (k, v) in &s.autoscaler {
            *merged.autoscaler.entry(k.clone()).or_default() += v;
        }
    }
    let mut families = Vec::default();
    type ShardField = fn(&ShardCounters) -> f64;
    let shard_series: [(&str, &str, MetricType, ShardField); 11] = [
        (
            "spate_shard_log_anomalies",
            "Damage that opening the shard's log found and left in place (a gap between \
             segments); `spate check` names it.",
            MetricType::GAUGE,
            |c| c.log_anomalies as f64,
        ),
        (
            "spate_shard_incoming_bytes_total",
            "Bytes (data plus partition key) written to the shard.",
            MetricType::COUNTER,
            |c| c.incoming_bytes as f64,
        ),
        (
            "spate_shard_incoming_records_total",
            "Records written to the shard.",
            MetricType::COUNTER,
            |c| c.incoming_records as f64,
        ),
        (
            "spate_shard_outgoing_bytes_total",
            "Bytes returned by GetRecords from the shard.",
            MetricType::COUNTER,
            |c| c.outgoing_bytes as f64,
        ),
        (
            "spate_shard_outgoing_records_total",
            "Records returned by GetRecords from the shard.",
            MetricType::COUNTER,
            |c| c.outgoing_records as f64,
        ),
        (
            "spate_shard_get_records_calls_total",
            "GetRecords calls on the shard.",
            MetricType::COUNTER,
            |c| c.get_records_calls as f64,
        ),
        (
            "spate_shard_iterator_age_seconds",
            "MillisBehindLatest of the last GetRecords on the shard, in seconds.",
            MetricType::GAUGE,
            |c| c.iterator_age_ms as f64 / 1000.0,
        ),
        (
            "spate_shard_write_provisioned_throughput_exceeded_total",
            "WriteProvisionedThroughputExceeded: records throttled on the shard.",
            MetricType::COUNTER,
            |c| c.write_throttled as f64,
        ),
        (
            "spate_shard_read_provisioned_throughput_exceeded_total",
            "ReadProvisionedThroughputExceeded: GetRecords calls throttled on the shard.",
            MetricType::COUNTER,
            |c| c.read_throttled as f64,
        ),
        (
            "spate_shard_write_quota_utilization_ratio",
            "Fraction of the shard's write quota used over the last second.",
            MetricType::GAUGE,
            |c| c.write_utilization,
        ),
        (
            "spate_shard_read_quota_utilization_ratio",
            "Fraction of the shard's read quota used over the last second.",
            MetricType::GAUGE,
            |c| c.read_utilization,
        ),
    ];
    for (name, help, kind, field) in shard_series {
        let metrics = merged
            .shards
            .iter()
            .map(|((stream, shard), c)| {
                let pairs = [("stream", stream.as_str()), ("shard", shard.as_str())];
                if kind == MetricType::COUNTER {
                    counter(&pairs, field(c))
                } else {
                    gauge(&pairs, field(c))
                }
            })
            .collect();
        families.push(family(name, help, kind, metrics));
    }
    let open: Vec<Metric> = merged
        .shards
        .iter()
        .filter_map(|((stream, shard), c)| {
            c.open
                .map(|o| gauge(&[("stream", stream), ("shard", shard)], if o { 1.0 } else { 0.0 }))
        })
        .collect();
    families.push(family(
        "spate_shard_open",
        "1 if the shard is open, 0 if closed by a reshard.",
        MetricType::GAUGE,
        open,
    ));
    let requests = merged
        .requests
        .iter()
        .map(|((key, outcome), v)| {
            let (core, op) = key.split_once('\n').unwrap_or(("0", key));
            counter(&[("core", core), ("operation", op), ("outcome", outcome)], *v as f64)
        })
        .collect();
    families.push(family(
        "spate_requests_total",
        "API requests per core by operation and outcome (ok or the error type).",
        MetricType::COUNTER,
        requests,
    ));
    let latency = merged
        .latency
        .iter()
        .map(|(key, h)| {
            let (core, op) = key.split_once('\n').unwrap_or(("0", key));
            let mut m = Metric::from_label(labels(&[("core", core), ("operation", op)]));
            let mut hist = Histogram::default();
            hist.set_sample_count(h.count);
            hist.set_sample_sum(h.sum_seconds);
            hist.set_bucket(
                LATENCY_BOUNDS_SECONDS
                    .iter()
                    .zip(h.buckets.iter())
                    .map(|(bound, count)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(*bound);
                        b.set_cumulative_count(*count);
                        b
                    })
                    .collect(),
            );
            m.set_histogram(hist);
            m
        })
        .collect();
    families.push(family(
        "spate_request_duration_seconds",
        "API request latency per core by operation.",
        MetricType::HISTOGRAM,
        latency,
    ));
    type CursorField = fn(&ConsumerCursor) -> f64;
    let cursor_series: [(&str, &str, MetricType, CursorField); 6] = [
        (
            "spate_consumer_position",
            "Enhanced fan-out: the last offset pushed to the consumer.",
            MetricType::GAUGE,
            |c| c.position as f64,
        ),
        (
            "spate_consumer_lag_records",
            "Enhanced fan-out: records between the consumer's position and the shard's tip.",
            MetricType::GAUGE,
            |c| c.lag_records as f64,
        ),
        (
            "spate_consumer_millis_behind_latest",
            "Enhanced fan-out: MillisBehindLatest of the last event pushed.",
            MetricType::GAUGE,
            |c| c.millis_behind_latest as f64,
        ),
        (
            "spate_consumer_pushed_bytes_total",
            "Enhanced fan-out: bytes pushed to the consumer.",
            MetricType::COUNTER,
            |c| c.bytes_pushed as f64,
        ),
        (
            "spate_consumer_pushed_records_total",
            "Enhanced fan-out: records pushed to the consumer.",
            MetricType::COUNTER,
            |c| c.records_pushed as f64,
        ),
        (
            "spate_consumer_subscription_active",
            "Enhanced fan-out: 1 while a SubscribeToShard stream is open.",
            MetricType::GAUGE,
            |c| if c.active { 1.0 } else { 0.0 },
        ),
    ];
    for (name, help, kind, field) in cursor_series {
        let metrics = merged
            .consumers
            .iter()
            .map(|((stream, consumer, shard), c)| {
                let pairs = [
                    ("stream", stream.as_str()),
                    ("consumer", consumer.as_str()),
                    ("shard", shard.as_str()),
                ];
                if kind == MetricType::COUNTER {
                    counter(&pairs, field(c))
                } else {
                    gauge(&pairs, field(c))
                }
            })
            .collect();
        families.push(family(name, help, kind, metrics));
    }
    let open_shards = merged
        .streams
        .iter()
        .map(|(stream, g)| gauge(&[("stream", stream), ("mode", &g.mode)], g.open_shards as f64))
        .collect();
    families.push(family(
        "spate_stream_open_shards",
        "Open shards of the stream, labelled with its capacity mode.",
        MetricType::GAUGE,
        open_shards,
    ));
    let decisions = merged
        .autoscaler
        .iter()
        .map(|((stream, action, reason), v)| {
            counter(&[("stream", stream), ("action", action), ("reason", reason)], *v as f64)
        })
        .collect();
    families.push(family(
        "spate_autoscaler_decisions_total",
        "On-demand autoscaler splits and merges, with the reason.",
        MetricType::COUNTER,
        decisions,
    ));
    families.retain(|f| !f.get_metric().is_empty());
    let mut out = Vec::default();
    use prometheus::Encoder;
    prometheus::TextEncoder::new().encode(&families, &mut out).expect("text encoding");
    String::from_utf8(out).expect("utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_cores_and_renders() {
        let a = CoreMetrics::default();
        let b = CoreMetrics::default();
        a.shard("s", "shardId-000000000000", |c| c.incoming_records += 2);
        b.shard("s", "shardId-000000000000", |c| c.incoming_records += 3);
        a.request("PutRecord", "ok", 0.002);
        let text = render(&[a.snapshot(0), b.snapshot(1)]);
        assert!(
            text.contains(
                "spate_shard_incoming_records_total{stream=\"s\",shard=\"shardId-000000000000\"} 5"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "spate_request_duration_seconds_bucket{core=\"0\",operation=\"PutRecord\",le=\"0.0025\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE spate_request_duration_seconds histogram"));
    }
}
