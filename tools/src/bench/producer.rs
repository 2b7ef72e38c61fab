//! One producer thread: one keep-alive connection sending PutRecord or PutRecords either as fast
//! as responses come back (closed loop) or on an open-loop schedule, counting every record as
//! acknowledged, throttled or failed by error type, and timing every request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::bench::Shared;
use crate::bench::tracking::{LatencyRecorder, RecordSet};
use crate::bench::workload::{
    BodyBuilder, Filler, Header, KeySource, PRODUCER_SHIFT, SizeDistribution,
};
use crate::http::{Timeouts, Url};
use crate::kinesis::{self, Client, THROTTLED};
use crate::pacer::Pacer;
use crate::rng::Rng;

/// Counters the reporter reads while the producer runs.
#[derive(Default)]
pub struct ProducerStats {
    pub requests: AtomicU64,
    pub records_acked: AtomicU64,
    pub bytes_acked: AtomicU64,
    pub records_throttled: AtomicU64,
    pub records_failed: AtomicU64,
    pub latency: Mutex<LatencyRecorder>,
    pub failed_records_by_type: Mutex<BTreeMap<String, u64>>,
    pub failed_requests_by_type: Mutex<BTreeMap<String, u64>>,
}

impl ProducerStats {
    fn count_failure(&self, kind: &str, records: u64, whole_request: bool) {
        if kind == THROTTLED {
            self.records_throttled.fetch_add(records, Ordering::Relaxed);
        } else {
            self.records_failed.fetch_add(records, Ordering::Relaxed);
        }
        *self.failed_records_by_type.lock().unwrap().entry(kind.to_string()).or_default() +=
            records;
        if whole_request {
            *self.failed_requests_by_type.lock().unwrap().entry(kind.to_string()).or_default() += 1;
        }
    }
}

pub struct ProducerConfig {
    pub index: usize,
    pub url: Url,
    pub region: String,
    pub timeouts: Timeouts,
    pub stream: String,
    pub put_records: bool,
    pub batch_size: usize,
    pub sizes: SizeDistribution,
    pub keys: KeySource,
    pub filler: Arc<Filler>,
    pub seed: u64,
    /// Open loop: requests per second for this thread.
    pub requests_per_second: Option<f64>,
    /// Producer threads in the run (for staggering open-loop schedules).
    pub threads: usize,
    pub start: Instant,
    pub deadline: Instant,
}

pub struct ProducerOutcome {
    pub acked: RecordSet,
    pub requests_sent: u64,
    pub requests_due: u64,
    /// When the last response came back.
    pub finished: Instant,
}

#[derive(Deserialize)]
struct PutRecordsEntry<'a> {
    #[serde(rename = "SequenceNumber", default, borrow)]
    sequence_number: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "ErrorCode", default, borrow)]
    error_code: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PutRecordsResponse<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<PutRecordsEntry<'a>>,
}

pub fn run(
    config: ProducerConfig,
    shared: Arc<Shared>,
    stats: Arc<ProducerStats>,
) -> ProducerOutcome {
    let mut client = Client::new(&config.url, &config.region, config.timeouts);
    let mut builder = BodyBuilder::new(&config.stream, Arc::clone(&config.filler));
    let mut rng = Rng::new(config.seed ^ (config.index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut pacer = config.requests_per_second.map(|rate| {
        // Interleave the threads' schedules evenly: together one smooth schedule.
        Pacer::new(config.start + crate::pacer::stagger(config.index, config.threads, rate), rate)
    });
    let operation = if config.put_records { "PutRecords" } else { "PutRecord" };
    let batch = if config.put_records { config.batch_size } else { 1 };
    let mut records: Vec<(Header, usize)> = Vec::with_capacity(batch);
    let mut sequence: u64 = 0;
    let mut acked = RecordSet::default();
    let mut sent: u64 = 0;

    let now = Instant::now();
    if config.start > now {
        std::thread::sleep(config.start - now);
    }
    loop {
        let intended = match &mut pacer {
            Some(pacer) => {
                if pacer.next_intended() >= config.deadline {
                    break;
                }
                pacer.wait_next()
            }
            None => {
                let now = Instant::now();
                if now >= config.deadline {
                    break;
                }
                now
            }
        };
        let send_epoch_ns = shared.epoch_ns_at(Instant::now());
        records.clear();
        for _ in 0..batch {
            let record_id = ((config.index as u64) << PRODUCER_SHIFT) | sequence;
            sequence += 1;
            let header = Header { run_id: shared.run_id, record_id, send_epoch_ns };
            records.push((header, config.sizes.sample(&mut rng)));
        }
        let body = if config.put_records {
            builder.put_records(&records, &config.keys, &mut rng)
        } else {
            builder.put_record(&records[0].0, records[0].1, &config.keys, &mut rng)
        };
        let sent_at = Instant::now();
        let result = client.call_raw(operation, body);
        let done = Instant::now();
        sent += 1;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let from = if pacer.is_some() { intended } else { sent_at };
        let latency_us = done.duration_since(from).as_micros() as u64;
        let done_us = shared.micros_at(done);
        match result {
            Ok(response) => {
                stats.latency.lock().unwrap().record(latency_us);
                if config.put_records {
                    match serde_json::from_slice::<PutRecordsResponse>(&response) {
                        Ok(parsed) if parsed.records.len() == records.len() => {
                            let mut ok = 0;
                            let mut bytes = 0;
                            for (entry, (header, size)) in parsed.records.iter().zip(&records) {
                                if entry.sequence_number.is_some() {
                                    ok += 1;
                                    bytes += *size as u64;
                                    acked.insert(header.record_id);
                                    shared.acks.acked(header.record_id, done_us);
                                } else {
                                    let kind = entry.error_code.as_deref().unwrap_or("Unknown");
                                    stats.count_failure(kind, 1, false);
                                }
                            }
                            stats.records_acked.fetch_add(ok, Ordering::Relaxed);
                            stats.bytes_acked.fetch_add(bytes, Ordering::Relaxed);
                        }
                        _ => stats.count_failure("ProtocolError", records.len() as u64, true),
                    }
                } else {
                    let (header, size) = records[0];
                    acked.insert(header.record_id);
                    shared.acks.acked(header.record_id, done_us);
                    stats.records_acked.fetch_add(1, Ordering::Relaxed);
                    stats.bytes_acked.fetch_add(size as u64, Ordering::Relaxed);
                }
            }
            Err(error) => {
                let api = matches!(error, kinesis::Error::Api { .. });
                if api {
                    stats.latency.lock().unwrap().record(latency_us);
                }
                stats.count_failure(&error.kind(), records.len() as u64, true);
                if !api {
                    // Connection refused or reset: do not spin; the next request reconnects.
                    let pause = Duration::from_millis(20);
                    if Instant::now() + pause < config.deadline {
                        std::thread::sleep(pause);
                    }
                }
            }
        }
    }
    let requests_due = match &pacer {
        Some(p) => p.due_before(config.deadline),
        None => sent,
    };
    ProducerOutcome { acked, requests_sent: sent, requests_due, finished: Instant::now() }
}
