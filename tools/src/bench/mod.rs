//! `spate bench`: the throughput and latency harness. Owns one run from start to finish: create
//! or open the stream, set up readers (polling and enhanced fan-out, skipped cleanly when the
//! server lacks it), start producer threads on a common start instant, print a progress line
//! every second, drain the readers until every acknowledged record was read, verify, and return
//! a [`result::RunResult`]. Also the A/B/A/B `--vs` driver.
//!
//! Time: every latency comes from one monotonic clock (`Instant`); record headers carry
//! wall-clock send times derived from the same clock (`Shared::epoch_ns_at`), so the
//! "from send" end-to-end figure never mixes clocks either.

pub mod consumer;
#[cfg(test)]
mod fake;
pub mod html;
pub mod producer;
pub mod result;
pub mod tracking;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::histogram::Histogram;
use crate::http::{Timeouts, Url};
use crate::kinesis::{Client, Position, Shard};
use crate::sysinfo::{self, Environment};
use crate::timefmt;

use consumer::{EfoConfig, PollingConfig, ReaderShared, ShardCursor};
use producer::{ProducerConfig, ProducerStats};
use result::{
    ConsumerResult, HarnessUsage, LatencySummary, OpenLoop, ReaderVerification, RunResult,
    Settings, TimelinePoint, group,
};
use tracking::{AckMap, RecordSet};
use workload::{Filler, KeyDistribution, KeySource, SizeDistribution};

/// Longest a run waits for a created stream or consumer to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);
pub const CONNECTIONS_MAX: usize = 1024;
pub const READERS_MAX: usize = 64;

/// State every thread of one run shares.
pub struct Shared {
    origin: Instant,
    origin_epoch_ns: u64,
    pub run_id: u32,
    stop_consumers: AtomicBool,
    pub acks: AckMap,
}

impl Shared {
    pub fn micros_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// Wall-clock nanoseconds since the epoch at `t`, on the monotonic clock's scale.
    pub fn epoch_ns_at(&self, t: Instant) -> u64 {
        self.origin_epoch_ns + t.saturating_duration_since(self.origin).as_nanos() as u64
    }

    pub fn stop_consumers(&self) -> bool {
        self.stop_consumers.load(Ordering::Relaxed)
    }
}

/// Checks settings that clap cannot.
pub fn validate(settings: &Settings) -> Result<(), String> {
    Url::parse(&settings.endpoint)?;
    let sizes = SizeDistribution::parse(&settings.record_size)?;
    KeyDistribution::parse(&settings.keys)?;
    if settings.api == "PutRecords" {
        workload::check_batch(settings.batch_size, &sizes)?;
    } else if settings.batch_size != 1 {
        return Err("--batch-size applies to PutRecords only (use --api put-records)".into());
    }
    if settings.connections == 0 || settings.connections > CONNECTIONS_MAX {
        return Err(format!("--connections must be 1..={CONNECTIONS_MAX}"));
    }
    if settings.consumers + settings.efo_consumers > READERS_MAX {
        return Err(format!("at most {READERS_MAX} readers (--consumers + --efo-consumers)"));
    }
    if settings.duration_seconds <= 0.0 {
        return Err("--duration must be positive".into());
    }
    if let Some(rate) = settings.rate_records_per_second
        && !(rate > 0.0 && rate.is_finite())
    {
        return Err("--rate must be a positive number of records per second".into());
    }
    if settings.key_count == 0 {
        return Err("--key-count must be positive".into());
    }
    if settings.shards == 0 && settings.stream.is_none() && settings.mode == "provisioned" {
        return Err("--shards must be positive".into());
    }
    if settings.get_records_limit == 0 || settings.get_records_limit > 10_000 {
        return Err("--get-records-limit must be 1..=10000".into());
    }
    Ok(())
}

/// Shards a reader starts on: the roots of the lineage when reading from the trim horizon (their
/// children follow as they close), the open shards when reading from the latest position.
fn initial_shards<'a>(shards: &'a [Shard], position: &Position) -> Vec<&'a Shard> {
    match position {
        Position::TrimHorizon => shards
            .iter()
            .filter(|s| s.parents().all(|p| !shards.iter().any(|o| o.shard_id == p)))
            .collect(),
        _ => shards.iter().filter(|s| s.is_open()).collect(),
    }
}

struct Readers {
    polling: Vec<Arc<ReaderShared>>,
    efo: Vec<Arc<ReaderShared>>,
    efo_status: String,
    efo_registered: Vec<String>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Readers {
    fn all(&self) -> impl Iterator<Item = &Arc<ReaderShared>> {
        self.polling.iter().chain(&self.efo)
    }
}

fn progress_line(
    elapsed: f64,
    point: &TimelinePoint,
    put_so_far: &Histogram,
    e2e_so_far: &Histogram,
    readers: bool,
) -> String {
    let mut line = format!(
        "[{:>5.1}s] put {:>9} rec/s {:>7.2} MB/s p99 {:>8.2} ms",
        elapsed,
        group(point.put_records_per_second),
        point.put_megabytes_per_second,
        result::ms(put_so_far.value_at_percentile(99.0))
    );
    if readers {
        line.push_str(&format!(
            " | read {:>9} rec/s e2e p99 {:>8.2} ms",
            group(point.consumed_records_per_second),
            result::ms(e2e_so_far.value_at_percentile(99.0))
        ));
    }
    line.push_str(&format!(
        " | throttled {} failed {}",
        group(point.throttled as f64),
        group(point.failed as f64)
    ));
    line
}

#[derive(Default, Clone, Copy)]
struct Totals {
    records: u64,
    bytes: u64,
    throttled: u64,
    failed: u64,
    deliveries: u64,
}

fn totals(producers: &[Arc<ProducerStats>], readers: &Readers) -> Totals {
    let mut t = Totals::default();
    for p in producers {
        t.records += p.records_acked.load(Ordering::Relaxed);
        t.bytes += p.bytes_acked.load(Ordering::Relaxed);
        t.throttled += p.records_throttled.load(Ordering::Relaxed);
        t.failed += p.records_failed.load(Ordering::Relaxed);
    }
    for r in readers.all() {
        t.deliveries += r.deliveries.load(Ordering::Relaxed);
    }
    t
}

/// Runs one benchmark. Progress lines go to stderr when `show_progress`.
pub fn run(settings: &Settings, show_progress: bool) -> Result<RunResult, String> {
    validate(settings)?;
    let say = |text: String| {
        if show_progress {
            eprintln!("{text}");
        }
    };
    let url = Url::parse(&settings.endpoint)?;
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs_f64(settings.request_timeout_seconds),
    };
    let environment = Environment::capture();
    let sizes = SizeDistribution::parse(&settings.record_size)?;
    let key_distribution = KeyDistribution::parse(&settings.keys)?;
    let put_records = settings.api == "PutRecords";
    let mut admin = Client::new(&url, &settings.region, timeouts);
    let fail = |what: &str, e: crate::kinesis::Error| format!("{what}: {e}");

    // The stream.
    let (stream, created) = match &settings.stream {
        Some(name) => (name.clone(), false),
        None => (format!("spate-bench-{}", timefmt::epoch_nanos_now() / 1_000_000), true),
    };
    if created {
        let on_demand = settings.mode == "on-demand";
        let shards = if on_demand { None } else { Some(settings.shards) };
        admin.create_stream(&stream, shards, on_demand).map_err(|e| fail("CreateStream", e))?;
        say(format!("created stream {stream} ({} shards, {})", settings.shards, settings.mode));
    }
    let summary =
        admin.wait_active(&stream, ACTIVE_TIMEOUT).map_err(|e| fail("DescribeStreamSummary", e))?;
    let shards = admin.list_shards(&stream).map_err(|e| fail("ListShards", e))?;
    let open_shard_count = shards.iter().filter(|s| s.is_open()).count();
    let start_position = if created { Position::TrimHorizon } else { Position::Latest };
    let first_shards = initial_shards(&shards, &start_position);

    // Readers: enhanced fan-out first, since whether it works decides how many readers there are.
    let mut readers = Readers {
        polling: Vec::new(),
        efo: Vec::new(),
        efo_status: if settings.efo_consumers == 0 { "none".into() } else { "ok".into() },
        efo_registered: Vec::new(),
        threads: Arc::default(),
    };
    let mut efo_subscriptions = Vec::new();
    'efo: for j in 0..settings.efo_consumers {
        let name = format!("spate-bench-{j}");
        let consumer = match admin.ensure_consumer(&summary.stream_arn, &name, ACTIVE_TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                readers.efo_status = if e.is_unsupported() {
                    format!("unsupported by the endpoint ({})", e.kind())
                } else {
                    format!("skipped: RegisterStreamConsumer failed: {e}")
                };
                break 'efo;
            }
        };
        readers.efo_registered.push(name.clone());
        let reader = Arc::new(ReaderShared::new(format!("efo-{j}")));
        let mut subscriptions = Vec::new();
        for shard in &first_shards {
            reader.claim(&shard.shard_id);
            match consumer::subscribe(
                &mut admin,
                &consumer.consumer_arn,
                &shard.shard_id,
                &start_position,
            ) {
                Ok(s) => subscriptions.push((shard.shard_id.clone(), s)),
                Err(e) => {
                    readers.efo_status = if e.is_unsupported() {
                        format!("unsupported by the endpoint (SubscribeToShard: {})", e.kind())
                    } else {
                        format!("skipped: SubscribeToShard failed: {e}")
                    };
                    readers.efo.clear();
                    efo_subscriptions.clear();
                    break 'efo;
                }
            }
        }
        readers.efo.push(Arc::clone(&reader));
        efo_subscriptions.push((reader, consumer.consumer_arn, subscriptions));
    }
    if readers.efo_status != "ok" && readers.efo_status != "none" {
        say(format!("enhanced fan-out {}", readers.efo_status));
        for name in readers.efo_registered.drain(..) {
            let _ = admin.deregister_stream_consumer(&summary.stream_arn, &name);
        }
    }
    let mut polling_cursors = Vec::new();
    for i in 0..settings.consumers {
        let reader = Arc::new(ReaderShared::new(format!("poll-{i}")));
        let mut cursors = Vec::new();
        for shard in &first_shards {
            reader.claim(&shard.shard_id);
            let iterator = admin
                .get_shard_iterator(&stream, &shard.shard_id, &start_position)
                .map_err(|e| fail("GetShardIterator", e))?;
            cursors.push(ShardCursor {
                shard_id: shard.shard_id.clone(),
                iterator,
                last_sequence: None,
                start: start_position.clone(),
                paused_until: None,
            });
        }
        readers.polling.push(Arc::clone(&reader));
        polling_cursors.push((reader, cursors));
    }
    let reader_count = readers.polling.len() + readers.efo.len();

    let origin = Instant::now();
    let shared = Arc::new(Shared {
        origin,
        origin_epoch_ns: timefmt::epoch_nanos_now(),
        run_id: (timefmt::epoch_nanos_now() ^ settings.seed.rotate_left(17)) as u32 | 1,
        stop_consumers: AtomicBool::new(false),
        acks: AckMap::new(reader_count as u32),
    });
    let usage_before = sysinfo::usage();
    let mut thread_count = 0;

    for (reader, cursors) in polling_cursors {
        let config = PollingConfig {
            url: url.clone(),
            region: settings.region.clone(),
            timeouts,
            stream: stream.clone(),
            limit: settings.get_records_limit,
            poll_interval: Duration::from_secs_f64(settings.poll_interval_ms / 1000.0),
        };
        let shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(reader.name.clone())
            .spawn(move || consumer::run_polling(config, cursors, shared, reader))
            .map_err(|e| e.to_string())?;
        readers.threads.lock().unwrap().push(handle);
        thread_count += 1;
    }
    for (reader, consumer_arn, subscriptions) in efo_subscriptions {
        let config = Arc::new(EfoConfig {
            url: url.clone(),
            region: settings.region.clone(),
            timeouts,
            stream: stream.clone(),
            consumer_arn,
        });
        for (shard_id, subscription) in subscriptions {
            let (config, shared, reader, threads) = (
                Arc::clone(&config),
                Arc::clone(&shared),
                Arc::clone(&reader),
                Arc::clone(&readers.threads),
            );
            let position = start_position.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{}-{shard_id}", reader.name))
                .spawn(move || {
                    consumer::run_efo(
                        config,
                        shard_id,
                        Some(subscription),
                        position,
                        shared,
                        reader,
                        threads,
                    )
                })
                .map_err(|e| e.to_string())?;
            readers.threads.lock().unwrap().push(handle);
            thread_count += 1;
        }
    }

    // Producers.
    let (_, size_high) = sizes.bounds();
    let filler = Arc::new(Filler::new(size_high, settings.seed ^ 0xF111));
    let keys = KeySource::new(&key_distribution, settings.key_count);
    let batch = if put_records { settings.batch_size } else { 1 };
    let start = Instant::now() + Duration::from_millis(100);
    let duration = Duration::from_secs_f64(settings.duration_seconds);
    let deadline = start + duration;
    let requests_per_second_per_connection = settings
        .rate_records_per_second
        .map(|rate| rate / batch as f64 / settings.connections as f64);
    let mut producer_stats = Vec::new();
    let mut producer_threads = Vec::new();
    for index in 0..settings.connections {
        let stats = Arc::new(ProducerStats::default());
        let config = ProducerConfig {
            index,
            url: url.clone(),
            region: settings.region.clone(),
            timeouts,
            stream: stream.clone(),
            put_records,
            batch_size: batch,
            sizes: sizes.clone(),
            keys: keys.share(),
            filler: Arc::clone(&filler),
            seed: settings.seed,
            requests_per_second: requests_per_second_per_connection,
            threads: settings.connections,
            start,
            deadline,
        };
        let (shared, stats_for_thread) = (Arc::clone(&shared), Arc::clone(&stats));
        let handle = std::thread::Builder::new()
            .name(format!("producer-{index}"))
            .spawn(move || producer::run(config, shared, stats_for_thread))
            .map_err(|e| e.to_string())?;
        producer_stats.push(stats);
        producer_threads.push(handle);
        thread_count += 1;
    }
    say(format!(
        "running {} for {:.1} s against {} (stream {stream}, {} readers)",
        if settings.rate_records_per_second.is_some() { "open loop" } else { "closed loop" },
        settings.duration_seconds,
        settings.endpoint,
        reader_count
    ));

    // Progress, once a second, until every producer has returned.
    let mut timeline = Vec::new();
    let mut put_so_far = Histogram::new();
    let mut e2e_so_far = Histogram::new();
    let mut interval_put = Histogram::new();
    let mut interval_e2e = Histogram::new();
    let mut last_totals = Totals::default();
    let mut last_time = start;
    let mut tick = 1u32;
    let now = Instant::now();
    if start > now {
        std::thread::sleep(start - now);
    }
    loop {
        let target = start + Duration::from_secs(u64::from(tick));
        loop {
            let now = Instant::now();
            let finished = producer_threads.iter().all(|h| h.is_finished());
            if now >= target || finished {
                break;
            }
            std::thread::sleep((target - now).min(Duration::from_millis(50)));
        }
        let finished = producer_threads.iter().all(|h| h.is_finished());
        let now = Instant::now();
        let seconds = now.duration_since(last_time).as_secs_f64().max(1e-9);
        let current = totals(&producer_stats, &readers);
        interval_put.reset();
        for p in &producer_stats {
            let mut recorder = p.latency.lock().unwrap();
            interval_put.merge(&recorder.interval);
            recorder.interval.reset();
        }
        interval_e2e.reset();
        for r in readers.all() {
            let mut recorder = r.e2e.lock().unwrap();
            interval_e2e.merge(&recorder.interval);
            recorder.interval.reset();
        }
        put_so_far.merge(&interval_put);
        e2e_so_far.merge(&interval_e2e);
        let point = TimelinePoint {
            elapsed_seconds: now.duration_since(start).as_secs_f64(),
            put_records_per_second: (current.records - last_totals.records) as f64 / seconds,
            put_megabytes_per_second: (current.bytes - last_totals.bytes) as f64 / 1e6 / seconds,
            consumed_records_per_second: (current.deliveries - last_totals.deliveries) as f64
                / seconds,
            put_p50_ms: result::ms(interval_put.value_at_percentile(50.0)),
            put_p99_ms: result::ms(interval_put.value_at_percentile(99.0)),
            put_max_ms: result::ms(interval_put.max()),
            e2e_p50_ms: result::ms(interval_e2e.value_at_percentile(50.0)),
            e2e_p99_ms: result::ms(interval_e2e.value_at_percentile(99.0)),
            throttled: current.throttled - last_totals.throttled,
            failed: current.failed - last_totals.failed,
        };
        // A last sliver of an interval (the final in-flight responses) is too short to be a
        // meaningful rate; its counts still go into the totals.
        if seconds >= 0.25 || !finished {
            say(progress_line(
                point.elapsed_seconds,
                &point,
                &put_so_far,
                &e2e_so_far,
                reader_count > 0,
            ));
            timeline.push(point);
        }
        last_totals = current;
        last_time = now;
        if finished {
            break;
        }
        tick += 1;
    }
    let mut producers_done = start;
    let mut acked = RecordSet::default();
    let mut requests_sent = 0;
    let mut requests_due = 0;
    for handle in producer_threads {
        let outcome = handle.join().map_err(|_| "a producer thread panicked".to_string())?;
        acked.union_with(&outcome.acked);
        requests_sent += outcome.requests_sent;
        requests_due += outcome.requests_due;
        producers_done = producers_done.max(outcome.finished);
    }
    // The window ends when the last in-flight request came back, and never before the
    // deadline (an open-loop schedule's last send can precede it by up to one interval).
    let measured_seconds =
        producers_done.duration_since(start).as_secs_f64().max(settings.duration_seconds);

    // Drain: wait until every reader has consumed every acknowledged record.
    let drain_start = Instant::now();
    let drain_timeout = Duration::from_secs_f64(settings.drain_timeout_seconds);
    let mut next_report = drain_start + Duration::from_secs(1);
    if reader_count > 0 {
        loop {
            let missing: Vec<(String, u64)> = readers
                .all()
                .map(|r| {
                    let seen = r.seen.lock().unwrap();
                    (r.name.clone(), acked.count - seen.intersection_count(&acked))
                })
                .filter(|(_, missing)| *missing > 0)
                .collect();
            if missing.is_empty() {
                break;
            }
            let now = Instant::now();
            if now.duration_since(drain_start) >= drain_timeout {
                say(format!("drain timed out after {:.1} s", drain_timeout.as_secs_f64()));
                break;
            }
            if now >= next_report {
                let parts: Vec<String> = missing
                    .iter()
                    .map(|(n, m)| format!("{n} {} to go", group(*m as f64)))
                    .collect();
                say(format!(
                    "[drain {:>4.1}s] {}",
                    now.duration_since(drain_start).as_secs_f64(),
                    parts.join(", ")
                ));
                next_report += Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    shared.stop_consumers.store(true, Ordering::Relaxed);
    loop {
        let handle = readers.threads.lock().unwrap().pop();
        match handle {
            Some(handle) => handle.join().map_err(|_| "a reader thread panicked".to_string())?,
            None => break,
        }
    }
    let usage_after = sysinfo::usage();
    let wall_seconds = shared.origin.elapsed().as_secs_f64().max(1e-9);
    for name in &readers.efo_registered {
        let _ = admin.deregister_stream_consumer(&summary.stream_arn, name);
    }

    // Assemble the result.
    let mut put_total = Histogram::new();
    let mut failed_records_by_type = std::collections::BTreeMap::new();
    let mut failed_requests_by_type = std::collections::BTreeMap::new();
    let end_totals = totals(&producer_stats, &readers);
    let mut requests = 0;
    for p in &producer_stats {
        put_total.merge(&p.latency.lock().unwrap().total);
        requests += p.requests.load(Ordering::Relaxed);
        for (k, v) in p.failed_records_by_type.lock().unwrap().iter() {
            *failed_records_by_type.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in p.failed_requests_by_type.lock().unwrap().iter() {
            *failed_requests_by_type.entry(k.clone()).or_insert(0) += v;
        }
    }
    let mut e2e_total = Histogram::new();
    let mut e2e_send_total = Histogram::new();
    let mut consumers = ConsumerResult {
        polling: readers.polling.len(),
        efo: readers.efo.len(),
        efo_status: readers.efo_status.clone(),
        drain_seconds,
        consumed_before_ack: shared.acks.consumed_before_ack.load(Ordering::Relaxed),
        ..Default::default()
    };
    let mut verified = reader_count > 0 && acked.untracked == 0;
    for r in readers.all() {
        let (e2e_p50_ms, e2e_p99_ms, e2e_max_ms) = {
            let recorder = r.e2e.lock().unwrap();
            e2e_total.merge(&recorder.total);
            (
                result::ms(recorder.total.value_at_percentile(50.0)),
                result::ms(recorder.total.value_at_percentile(99.0)),
                result::ms(recorder.total.max()),
            )
        };
        e2e_send_total.merge(&r.e2e_from_send.lock().unwrap().total);
        consumers.records_consumed += r.deliveries.load(Ordering::Relaxed);
        consumers.bytes_consumed += r.bytes.load(Ordering::Relaxed);
        consumers.get_records_calls += r.get_records_calls.load(Ordering::Relaxed);
        consumers.read_throttled += r.throttled.load(Ordering::Relaxed);
        consumers.foreign_records += r.foreign.load(Ordering::Relaxed);
        for (k, v) in r.errors.lock().unwrap().iter() {
            *consumers.read_errors.entry(k.clone()).or_insert(0) += v;
        }
        let seen = r.seen.lock().unwrap();
        let acked_seen = seen.intersection_count(&acked);
        let verification = ReaderVerification {
            name: r.name.clone(),
            unique: seen.count,
            acked_seen,
            missing: acked.count - acked_seen,
            duplicates: r.duplicates.load(Ordering::Relaxed),
            unacked_seen: seen.count - acked_seen,
            e2e_p50_ms,
            e2e_p99_ms,
            e2e_max_ms,
        };
        verified &=
            verification.missing == 0 && verification.duplicates == 0 && seen.untracked == 0;
        consumers.readers.push(verification);
    }
    consumers.verified = verified;
    consumers.records_per_second =
        consumers.records_consumed as f64 / (measured_seconds + drain_seconds);
    let cpu_seconds = usage_after.cpu_seconds() - usage_before.cpu_seconds();
    let harness = HarnessUsage {
        cpu_user_seconds: usage_after.user_seconds - usage_before.user_seconds,
        cpu_system_seconds: usage_after.system_seconds - usage_before.system_seconds,
        cpu_percent_of_one_core: 100.0 * cpu_seconds / wall_seconds,
        cpu_percent_of_machine: 100.0 * cpu_seconds / wall_seconds / environment.nproc as f64,
        max_resident_mib: usage_after.max_resident_kib as f64 / 1024.0,
        threads: thread_count + 1,
    };
    let open_loop = settings.rate_records_per_second.map(|rate| OpenLoop {
        target_records_per_second: rate,
        target_requests_per_second: rate / batch as f64,
        requests_due,
        requests_sent,
    });
    let has_readers = reader_count > 0;
    Ok(RunResult {
        tool: format!("spate bench {}", env!("CARGO_PKG_VERSION")),
        label: settings.label.clone(),
        endpoint: settings.endpoint.clone(),
        stream,
        stream_created: created,
        shards: open_shard_count,
        settings: Some(settings.clone()),
        environment,
        duration_seconds: measured_seconds,
        requests,
        requests_per_second: requests as f64 / measured_seconds,
        records_acked: end_totals.records,
        bytes_acked: end_totals.bytes,
        records_per_second: end_totals.records as f64 / measured_seconds,
        megabytes_per_second: end_totals.bytes as f64 / 1e6 / measured_seconds,
        records_throttled: end_totals.throttled,
        records_failed: end_totals.failed,
        failed_records_by_type,
        failed_requests_by_type,
        open_loop,
        put_latency: LatencySummary::from_histogram(&put_total),
        e2e_latency: has_readers.then(|| LatencySummary::from_histogram(&e2e_total)),
        e2e_from_send_latency: has_readers.then(|| LatencySummary::from_histogram(&e2e_send_total)),
        consumers,
        harness,
        timeline,
    })
}

/// Runs the workload against `settings.endpoint` (A) and `other` (B) in turn, A B A B ...,
/// `pairs` times, printing each run's summary and the B/A ratios per pair.
pub fn run_vs(
    settings: &Settings,
    other: &str,
    pairs: usize,
    show_progress: bool,
) -> Result<Vec<RunResult>, String> {
    Url::parse(other)?;
    let mut runs = Vec::new();
    let mut ratio_lines = Vec::new();
    for pair in 1..=pairs {
        let mut pair_runs = Vec::new();
        for (side, endpoint) in [("A", settings.endpoint.as_str()), ("B", other)] {
            let mut s = settings.clone();
            s.endpoint = endpoint.to_string();
            if s.label.is_none() {
                s.label = Some(format!("{side}:{endpoint}"));
            }
            if show_progress {
                eprintln!("== pair {pair}/{pairs}, {side} = {endpoint}");
            }
            let result = run(&s, show_progress)?;
            print!("{}", result::summary(&result));
            println!();
            pair_runs.push(result);
        }
        let (a, b) = (&pair_runs[0], &pair_runs[1]);
        let ratio = |x: f64, y: f64| if x > 0.0 { y / x } else { f64::NAN };
        ratio_lines.push(format!(
            "  {:>4} {:>12} {:>12} {:>8.2} {:>10.2} {:>10.2} {:>8.2}",
            pair,
            group(a.records_per_second),
            group(b.records_per_second),
            ratio(a.records_per_second, b.records_per_second),
            a.put_latency.p99_ms,
            b.put_latency.p99_ms,
            ratio(a.put_latency.p99_ms, b.put_latency.p99_ms)
        ));
        runs.extend(pair_runs);
    }
    println!("A = {}  B = {}", settings.endpoint, other);
    println!(
        "  {:>4} {:>12} {:>12} {:>8} {:>10} {:>10} {:>8}",
        "pair", "A rec/s", "B rec/s", "B/A", "A p99 ms", "B p99 ms", "B/A"
    );
    for line in ratio_lines {
        println!("{line}");
    }
    Ok(runs)
}
