//! The result of one benchmark run as written to `--json` and read back by `bench compare`:
//! settings, environment, throughput, latency summaries with their percentile curves, error
//! counts, consumer verification, harness CPU use and the per-second timeline. Also the text
//! renderings: the end-of-run summary, side-by-side comparison and the markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;
use crate::sysinfo::Environment;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub endpoint: String,
    pub region: String,
    /// The stream named with `--stream`; `None` when the run created its own.
    pub stream: Option<String>,
    pub shards: u32,
    pub mode: String,
    /// `PutRecords` or `PutRecord`.
    pub api: String,
    pub batch_size: usize,
    pub record_size: String,
    pub keys: String,
    pub key_count: usize,
    pub connections: usize,
    /// Open-loop target in records per second across all connections; `None`: closed loop.
    pub rate_records_per_second: Option<f64>,
    pub duration_seconds: f64,
    pub consumers: usize,
    pub efo_consumers: usize,
    pub poll_interval_ms: f64,
    pub get_records_limit: u32,
    pub drain_timeout_seconds: f64,
    pub request_timeout_seconds: f64,
    pub seed: u64,
    pub label: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// `[percentile, ms]` pairs from 0 to the highest percentile the sample count resolves,
    /// evenly spaced in log10(1 / (1 - p)): the HDR percentile plot.
    pub curve: Vec<[f64; 2]>,
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl LatencySummary {
    pub fn from_histogram(histogram: &Histogram) -> LatencySummary {
        let mut curve = Vec::new();
        if !histogram.is_empty() {
            let count = histogram.count() as f64;
            // Steps of 0.05 in log10(1/(1-p)): p = 0, 10.9%, 20.6%, ... up to 1 - 1/count.
            let mut x: f64 = 0.0;
            loop {
                let p = 1.0 - 10f64.powf(-x);
                curve.push([p * 100.0, ms(histogram.value_at_percentile(p * 100.0))]);
                if 10f64.powf(x) >= count || x >= 7.0 {
                    break;
                }
                x += 0.05;
            }
            curve.push([100.0, ms(histogram.max())]);
        }
        LatencySummary {
            count: histogram.count(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_percentile(50.0)),
            p90_ms: ms(histogram.value_at_percentile(90.0)),
            p99_ms: ms(histogram.value_at_percentile(99.0)),
            p999_ms: ms(histogram.value_at_percentile(99.9)),
            max_ms: ms(histogram.max()),
            curve,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpenLoop {
    pub target_records_per_second: f64,
    pub target_requests_per_second: f64,
    /// Requests a perfect sender would have issued in the window.
    pub requests_due: u64,
    pub requests_sent: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReaderVerification {
    pub name: String,
    /// Distinct records of this run the reader consumed.
    pub unique: u64,
    /// Of those, acknowledged ones.
    pub acked_seen: u64,
    /// Acknowledged records the reader never consumed.
    pub missing: u64,
    /// Consumed more than once.
    pub duplicates: u64,
    /// Consumed though never acknowledged (a put whose response was lost).
    pub unacked_seen: u64,
    /// This reader's end-to-end latency (from ack).
    #[serde(default)]
    pub e2e_p50_ms: f64,
    #[serde(default)]
    pub e2e_p99_ms: f64,
    #[serde(default)]
    pub e2e_max_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConsumerResult {
    pub polling: usize,
    pub efo: usize,
    /// `ok`, `none`, or why enhanced fan-out was skipped.
    pub efo_status: String,
    /// Record deliveries over all readers (one record read by two readers counts twice).
    pub records_consumed: u64,
    pub bytes_consumed: u64,
    pub records_per_second: f64,
    pub get_records_calls: u64,
    pub read_throttled: u64,
    pub read_errors: BTreeMap<String, u64>,
    /// Records in the stream not written by this run (other writers, earlier runs).
    pub foreign_records: u64,
    /// Records consumed before the producer saw their put acknowledged (e2e counted as 0).
    pub consumed_before_ack: u64,
    pub readers: Vec<ReaderVerification>,
    /// Every reader consumed every acknowledged record exactly once.
    pub verified: bool,
    pub drain_seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HarnessUsage {
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    /// CPU time over wall time: 100 means one core busy.
    pub cpu_percent_of_one_core: f64,
    pub cpu_percent_of_machine: f64,
    pub max_resident_mib: f64,
    pub threads: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub elapsed_seconds: f64,
    pub put_records_per_second: f64,
    pub put_megabytes_per_second: f64,
    pub consumed_records_per_second: f64,
    pub put_p50_ms: f64,
    pub put_p99_ms: f64,
    pub put_max_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub throttled: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub tool: String,
    pub label: Option<String>,
    pub endpoint: String,
    pub stream: String,
    pub stream_created: bool,
    pub shards: usize,
    pub settings: Option<Settings>,
    pub environment: Environment,
    /// The measured producing window.
    pub duration_seconds: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub records_acked: u64,
    pub bytes_acked: u64,
    pub records_per_second: f64,
    /// Payload megabytes (10^6 bytes) acknowledged per second.
    pub megabytes_per_second: f64,
    pub records_throttled: u64,
    pub records_failed: u64,
    /// Records whose put failed, by error type (throttling included).
    pub failed_records_by_type: BTreeMap<String, u64>,
    /// Requests that failed as a whole, by error type.
    pub failed_requests_by_type: BTreeMap<String, u64>,
    pub open_loop: Option<OpenLoop>,
    /// Per request: from send (closed loop) or from intended send time (open loop) to response.
    pub put_latency: LatencySummary,
    /// Per record and reader: from the put's acknowledgement to consumption.
    pub e2e_latency: Option<LatencySummary>,
    /// Per record and reader: from the send time carried in the record to consumption.
    pub e2e_from_send_latency: Option<LatencySummary>,
    pub consumers: ConsumerResult,
    pub harness: HarnessUsage,
    pub timeline: Vec<TimelinePoint>,
}

impl RunResult {
    pub fn name(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.endpoint.clone())
    }

    pub fn describe_workload(&self) -> String {
        let Some(s) = &self.settings else { return String::new() };
        let shape = if s.api == "PutRecords" {
            format!("PutRecords {} x {} B", s.batch_size, s.record_size)
        } else {
            format!("PutRecord {} B", s.record_size)
        };
        let keys = if s.keys.starts_with("zipf") {
            format!("{} over {} keys", s.keys, s.key_count)
        } else {
            s.keys.clone()
        };
        let pacing = match s.rate_records_per_second {
            Some(rate) => format!("open loop {} records/s", group(rate)),
            None => "closed loop".to_string(),
        };
        format!(
            "{shape}, keys {keys}, {} connection{}, {pacing}, {:.1} s",
            s.connections,
            if s.connections == 1 { "" } else { "s" },
            self.duration_seconds
        )
    }
}

/// `12345.6` -> `12,346`.
pub fn group(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

fn latency_row(out: &mut String, name: &str, summary: &LatencySummary) {
    let _ = writeln!(
        out,
        "  {:<22} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        name,
        group(summary.count as f64),
        summary.p50_ms,
        summary.p90_ms,
        summary.p99_ms,
        summary.p999_ms,
        summary.max_ms,
        summary.mean_ms
    );
}

fn by_type(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {}", group(*v as f64))).collect();
    format!(" ({})", parts.join(", "))
}

/// The end-of-run summary table.
pub fn summary(result: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "spate bench: {}", result.describe_workload());
    let _ = writeln!(
        out,
        "endpoint {}  stream {}{}  shards {}",
        result.endpoint,
        result.stream,
        if result.stream_created { " (created)" } else { "" },
        result.shards
    );
    let _ = writeln!(out);
    let _ =
        writeln!(out, "  {:<22} {:>12} {:>10} {:>10}", "throughput", "records/s", "MB/s", "req/s");
    let _ = writeln!(
        out,
        "  {:<22} {:>12} {:>10.2} {:>10.1}",
        "put (acknowledged)",
        group(result.records_per_second),
        result.megabytes_per_second,
        result.requests_per_second
    );
    if result.consumers.records_consumed > 0 {
        let _ = writeln!(
            out,
            "  {:<22} {:>12} {:>10.2} {:>10}",
            "consumed (all readers)",
            group(result.consumers.records_per_second),
            result.consumers.bytes_consumed as f64
                / 1e6
                / (result.duration_seconds + result.consumers.drain_seconds).max(1e-9),
            "-"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<22} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let put_name = if result.open_loop.is_some() { "put (from intended)" } else { "put" };
    latency_row(&mut out, put_name, &result.put_latency);
    if let Some(e2e) = &result.e2e_latency {
        latency_row(&mut out, "end-to-end (from ack)", e2e);
    }
    if let Some(e2e) = &result.e2e_from_send_latency {
        latency_row(&mut out, "end-to-end (from send)", e2e);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "records acked {}  throttled {}  failed {}{}",
        group(result.records_acked as f64),
        group(result.records_throttled as f64),
        group(result.records_failed as f64),
        by_type(&result.failed_records_by_type)
    );
    if !result.failed_requests_by_type.is_empty() {
        let _ = writeln!(out, "failed requests{}", by_type(&result.failed_requests_by_type));
    }
    if let Some(open) = &result.open_loop {
        let _ = writeln!(
            out,
            "open loop: target {} records/s ({:.1} req/s); sent {} of {} requests due",
            group(open.target_records_per_second),
            open.target_requests_per_second,
            group(open.requests_sent as f64),
            group(open.requests_due as f64)
        );
    }
    let c = &result.consumers;
    if c.polling + c.efo > 0 || c.efo_status != "none" {
        let verification = if c.readers.is_empty() {
            String::new()
        } else {
            let missing: u64 = c.readers.iter().map(|r| r.missing).sum();
            let duplicates: u64 = c.readers.iter().map(|r| r.duplicates).sum();
            format!(
                "; {} missing, {} duplicates: {}",
                group(missing as f64),
                group(duplicates as f64),
                if c.verified { "verified" } else { "NOT VERIFIED" }
            )
        };
        let _ = writeln!(
            out,
            "consumers: {} polling, {} efo ({}); {} deliveries{}; drain {:.1} s",
            c.polling,
            c.efo,
            c.efo_status,
            group(c.records_consumed as f64),
            verification,
            c.drain_seconds
        );
        for r in &c.readers {
            let _ = writeln!(
                out,
                "  reader {:<8} e2e p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms; {} unique, {} missing, \
                 {} duplicates",
                r.name,
                r.e2e_p50_ms,
                r.e2e_p99_ms,
                r.e2e_max_ms,
                group(r.unique as f64),
                group(r.missing as f64),
                group(r.duplicates as f64)
            );
        }
        if c.read_throttled > 0 {
            let _ = writeln!(out, "read throttled {} calls", group(c.read_throttled as f64));
        }
        if !c.read_errors.is_empty() {
            let _ = writeln!(out, "read errors{}", by_type(&c.read_errors));
        }
    }
    let h = &result.harness;
    let _ = writeln!(
        out,
        "harness: {:.2} s user + {:.2} s system CPU = {:.1}% of one core ({:.1}% of {} cores), \
         peak RSS {:.0} MiB",
        h.cpu_user_seconds,
        h.cpu_system_seconds,
        h.cpu_percent_of_one_core,
        h.cpu_percent_of_machine,
        result.environment.nproc,
        h.max_resident_mib
    );
    out
}

fn ratio(a: f64, b: f64) -> String {
    if a == 0.0 && b == 0.0 {
        "-".to_string()
    } else if a == 0.0 {
        "inf".to_string()
    } else {
        format!("{:.2}x", b / a)
    }
}

/// Rows compared by `bench compare` and `--vs`: (name, value, decimals).
pub fn metrics(result: &RunResult) -> Vec<(&'static str, f64, usize)> {
    let mut rows = vec![
        ("records/s", result.records_per_second, 0),
        ("MB/s", result.megabytes_per_second, 2),
        ("requests/s", result.requests_per_second, 1),
        ("put p50 ms", result.put_latency.p50_ms, 2),
        ("put p90 ms", result.put_latency.p90_ms, 2),
        ("put p99 ms", result.put_latency.p99_ms, 2),
        ("put p99.9 ms", result.put_latency.p999_ms, 2),
        ("put max ms", result.put_latency.max_ms, 2),
    ];
    if let Some(e2e) = &result.e2e_latency {
        rows.push(("e2e p50 ms", e2e.p50_ms, 2));
        rows.push(("e2e p99 ms", e2e.p99_ms, 2));
        rows.push(("e2e max ms", e2e.max_ms, 2));
    }
    rows.push(("records throttled", result.records_throttled as f64, 0));
    rows.push(("records failed", result.records_failed as f64, 0));
    rows.push(("harness CPU % of core", result.harness.cpu_percent_of_one_core, 1));
    rows
}

fn format_value(value: f64, decimals: usize) -> String {
    if decimals == 0 { group(value) } else { format!("{value:.decimals$}") }
}

/// Two runs side by side with B/A ratios.
pub fn compare(a: &RunResult, b: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}  {}", a.name(), a.describe_workload());
    let _ = writeln!(out, "B: {}  {}", b.name(), b.describe_workload());
    if let (Some(sa), Some(sb)) = (&a.settings, &b.settings) {
        let shape = |s: &Settings| {
            (s.api.clone(), s.batch_size, s.record_size.clone(), s.keys.clone(), s.connections)
        };
        if shape(sa) != shape(sb) || sa.rate_records_per_second != sb.rate_records_per_second {
            let _ = writeln!(out, "note: the workloads differ; ratios compare unlike runs");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:<22} {:>14} {:>14} {:>9}", "metric", "A", "B", "B/A");
    let rows_b = metrics(b);
    for (name, value_a, decimals) in metrics(a) {
        if let Some((_, value_b, _)) = rows_b.iter().find(|(n, _, _)| *n == name) {
            let _ = writeln!(
                out,
                "  {:<22} {:>14} {:>14} {:>9}",
                name,
                format_value(value_a, decimals),
                format_value(*value_b, decimals),
                ratio(value_a, *value_b)
            );
        }
    }
    out
}

/// One markdown row per run.
pub fn markdown(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| target | api | batch x size | conns | records/s | MB/s | p50 ms | p99 ms | p99.9 ms \
         | max ms | throttled | failed | harness CPU % |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let (api, shape, conns) = match &r.settings {
            Some(s) => (
                s.api.clone(),
                format!("{} x {}", s.batch_size, s.record_size),
                s.connections.to_string(),
            ),
            None => ("?".into(), "?".into(), "?".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} |",
            r.name(),
            api,
            shape,
            conns,
            group(r.records_per_second),
            r.megabytes_per_second,
            r.put_latency.p50_ms,
            r.put_latency.p99_ms,
            r.put_latency.p999_ms,
            r.put_latency.max_ms,
            group(r.records_throttled as f64),
            group(r.records_failed as f64),
            r.harness.cpu_percent_of_one_core
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_and_curves() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.4), "999");
        assert_eq!(group(1234567.0), "1,234,567");
        assert_eq!(group(-1000.0), "-1,000");
        let mut h = Histogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 10_000);
        assert!((s.p50_ms - 5.0).abs() < 0.05);
        assert_eq!(s.max_ms, 10.0);
        let last = s.curve[s.curve.len() - 2];
        assert!(last[0] >= 99.99 - 1e-9, "curve reaches 1 - 1/count: {last:?}");
        assert!(s.curve.windows(2).all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]));
    }

    #[test]
    fn compare_and_markdown_render() {
        let mut a =
            RunResult { label: Some("a".into()), records_per_second: 1000.0, ..Default::default() };
        a.put_latency.p99_ms = 10.0;
        let mut b = a.clone();
        b.label = Some("b".into());
        b.records_per_second = 2500.0;
        b.put_latency.p99_ms = 5.0;
        let text = compare(&a, &b);
        assert!(text.contains("2.50x"), "{text}");
        assert!(text.contains("0.50x"), "{text}");
        let table = markdown(&[a, b]);
        assert_eq!(table.lines().count(), 4);
        assert!(table.contains("| b |"));
    }
}
