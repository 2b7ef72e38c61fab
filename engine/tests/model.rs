//! Model-based tests: random appends, reads, rolls, retention trims, clean reopens and crashes,
//! checked against a plain `Vec` of records.

mod common;

use common::*;
use engine::{Error, FrameRef, ManualClock, ReadSink, Record, SimStorage};
use futures_lite::future::block_on;

#[derive(Clone, Debug, PartialEq)]
struct Model {
    key: Vec<u8>,
    data: Vec<u8>,
    arrival_ms: i64,
}

/// A `ReadSink` that keeps what it is shown, checking the size hint comes first.
#[derive(Default)]
struct Visited {
    hints: usize,
    records: Vec<Record>,
}

impl ReadSink for Visited {
    fn expect(&mut self, _frame_bytes: usize) {
        assert!(self.records.is_empty(), "the size hint comes before the first record");
        self.hints += 1;
    }

    fn record(&mut self, frame: FrameRef<'_>) {
        assert_eq!(self.hints, 1, "a record before the size hint");
        let record = frame.to_record();
        assert_eq!(
            (&record.partition_key[..], &record.data[..]),
            (frame.partition_key(), frame.data())
        );
        self.records.push(record);
    }
}

#[test]
fn random_operations_match_a_vec_model() {
    for seed in 0..40u64 {
        block_on(run_seed(seed));
    }
}

async fn run_seed(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut storage = SimStorage::new();
    let clock = ManualClock::new(1_700_000_000_000);
    let segment_bytes = [4096u64, 16 << 10, 1 << 20][rng.below(3) as usize];
    let mut log = open(&storage, &clock, segment_bytes).await;
    // Offsets below `trimmed` may be gone; the model keeps everything for comparison.
    let mut model: Vec<Model> = Vec::new();
    let retention_ms = 1_000_000i64;
    for step in 0..300 {
        match rng.below(100) {
            0..=49 => {
                let n = 1 + rng.below(20) as usize;
                let mut batch = Vec::new();
                for _ in 0..n {
                    let key = format!("k{}", rng.below(1000));
                    let len = [0usize, 1, 10, 300, 2000][rng.below(5) as usize];
                    batch.push(record(&key, rng.bytes(len)));
                }
                let result = log.append(&batch).await.expect("append");
                assert_eq!(result.first_offset, model.len() as u64, "seed {seed} step {step}");
                for r in &batch {
                    model.push(Model {
                        key: r.partition_key.to_vec(),
                        data: r.data.to_vec(),
                        arrival_ms: result.arrival_ms,
                    });
                }
            }
            50..=74 => {
                let from = rng.below(model.len() as u64 + 2);
                let max_records = 1 + rng.below(50) as usize;
                let max_bytes = 1 + rng.below(20_000) as usize;
                let batch = log.read(from, max_records, max_bytes).expect("read");
                let start = from.max(log.trim_horizon());
                assert!(batch.records.len() <= max_records);
                for (i, r) in batch.records.iter().enumerate() {
                    let offset = start + i as u64;
                    assert_eq!(r.offset, offset, "seed {seed} step {step}");
                    let m = &model[offset as usize];
                    assert_eq!(&r.partition_key[..], &m.key[..]);
                    assert_eq!(&r.data[..], &m.data[..]);
                    assert_eq!(r.arrival_ms, m.arrival_ms);
                }
                assert_eq!(batch.next_offset, start + batch.records.len() as u64);
                if start < model.len() as u64 {
                    assert!(!batch.records.is_empty(), "seed {seed} step {step}: no progress");
                }
                // The streaming read visits exactly the same records, after one size hint.
                let mut sink = Visited::default();
                let summary = log.read_each(from, max_records, max_bytes, &mut sink).unwrap();
                assert_eq!(sink.records, batch.records, "seed {seed} step {step}: read_each");
                assert_eq!(sink.hints, usize::from(!batch.records.is_empty()));
                assert_eq!(summary.next_offset, batch.next_offset);
                assert_eq!(summary.records, batch.records.len());
                let bytes: usize =
                    batch.records.iter().map(|r| r.partition_key.len() + r.data.len()).sum();
                assert_eq!(summary.bytes, bytes);
            }
            75..=82 => {
                // Timestamp lookups agree with the model (from the trim horizon on).
                let horizon = log.trim_horizon() as usize;
                let probe = clock_probe(&mut rng, &model, &clock);
                let expected = model[horizon..]
                    .iter()
                    .position(|m| m.arrival_ms >= probe)
                    .map_or(model.len(), |p| p + horizon);
                assert_eq!(log.offset_at_timestamp(probe).unwrap(), expected as u64);
            }
            83..=90 => clock.advance_ms(rng.below(300_000) as i64),
            91..=93 => {
                let before = log.trim_horizon();
                log.enforce_retention(retention_ms).await.expect("retention");
                let after = log.trim_horizon();
                assert!(after >= before);
                // Nothing within retention was removed.
                let cutoff = clock_now(&clock) - retention_ms;
                if let Some(first_young) = model.iter().position(|m| m.arrival_ms >= cutoff) {
                    assert!(after as usize <= first_young, "seed {seed}: trimmed live records");
                }
                assert_eq!(log.next_offset(), model.len() as u64);
            }
            94..=96 => {
                log.close().await.expect("close");
                drop(log);
                log = open(&storage, &clock, segment_bytes).await;
                assert_eq!(log.next_offset(), model.len() as u64, "seed {seed}: reopen");
            }
            _ => {
                // Power loss right now: everything appended was acknowledged, so all survives.
                drop(log);
                storage = storage.crash_image(rng.next());
                log = open(&storage, &clock, segment_bytes).await;
                assert_eq!(log.next_offset(), model.len() as u64, "seed {seed}: crash reopen");
            }
        }
    }
    let _ = Error::DiskFull;
}

fn clock_now(clock: &ManualClock) -> i64 {
    use engine::Clock;
    clock.now_ms()
}

fn clock_probe(rng: &mut Rng, model: &[Model], clock: &ManualClock) -> i64 {
    if model.is_empty() || rng.below(4) == 0 {
        return clock_now(clock) - rng.below(2_000_000) as i64;
    }
    let m = &model[rng.below(model.len() as u64) as usize];
    m.arrival_ms + rng.below(3) as i64 - 1
}
