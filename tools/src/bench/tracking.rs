//! Shared bookkeeping between producer and consumer threads of one run: the record-id to
//! acknowledgement-time map that makes end-to-end latency exact (put acknowledged -> consumed,
//! both measured in this process), per-consumer "seen" bitsets that verify every acknowledged
//! record was read exactly once, and latency recorders the progress reporter can sample.
//!
//! Every structure is bounded: the ack map holds at most [`ACK_ENTRIES_MAX`] records awaiting
//! their readers, and a bitset tracks at most [`SEEN_BITS_MAX`] records per producer; beyond
//! either, records are counted as untracked rather than grow memory without limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bench::workload::PRODUCER_SHIFT;
use crate::histogram::Histogram;

pub const ACK_ENTRIES_MAX: usize = 4_000_000;
pub const SEEN_BITS_MAX: u64 = 1 << 28;
const ACK_MAP_SHARDS: usize = 64;

struct AckEntry {
    /// Microseconds since the run's origin; `None` when a reader saw the record first.
    acked_us: Option<u64>,
    /// Readers that have not consumed the record yet.
    readers_left: u32,
}

pub struct AckMap {
    shards: Vec<Mutex<HashMap<u64, AckEntry>>>,
    readers: u32,
    entries: AtomicU64,
    pub untracked: AtomicU64,
    pub consumed_before_ack: AtomicU64,
}

fn shard_of(record_id: u64) -> usize {
    (record_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % ACK_MAP_SHARDS
}

impl AckMap {
    /// `readers`: how many consumer applications will read each record.
    pub fn new(readers: u32) -> AckMap {
        AckMap {
            shards: (0..ACK_MAP_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            readers,
            entries: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            consumed_before_ack: AtomicU64::new(0),
        }
    }

    /// A producer saw `record_id` acknowledged at `acked_us`.
    pub fn acked(&self, record_id: u64, acked_us: u64) {
        if self.readers == 0 {
            return;
        }
        let mut shard = self.shards[shard_of(record_id)].lock().unwrap();
        if let Some(entry) = shard.get_mut(&record_id) {
            // A reader got there first (the server answered the reader before the writer).
            if entry.readers_left == 0 {
                shard.remove(&record_id);
                self.entries.fetch_sub(1, Ordering::Relaxed);
            } else {
                entry.acked_us = Some(acked_us);
            }
            return;
        }
        if self.entries.load(Ordering::Relaxed) >= ACK_ENTRIES_MAX as u64 {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shard.insert(record_id, AckEntry { acked_us: Some(acked_us), readers_left: self.readers });
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    /// A reader consumed `record_id` at `now_us`: returns the latency from acknowledgement,
    /// `Some(0)` when the record was read before its put was acknowledged, and `None` when the
    /// record is not tracked (over the bound, or not acknowledged at all).
    pub fn consumed(&self, record_id: u64, now_us: u64) -> Option<u64> {
        let mut shard = self.shards[shard_of(record_id)].lock().unwrap();
        match shard.get_mut(&record_id) {
            Some(entry) => {
                entry.readers_left = entry.readers_left.saturating_sub(1);
                let latency = entry.acked_us.map(|acked| now_us.saturating_sub(acked));
                if entry.readers_left == 0 && entry.acked_us.is_some() {
                    shard.remove(&record_id);
                    self.entries.fetch_sub(1, Ordering::Relaxed);
                }
                if latency.is_none() {
                    self.consumed_before_ack.fetch_add(1, Ordering::Relaxed);
                }
                Some(latency.unwrap_or(0))
            }
            None => {
                if self.entries.load(Ordering::Relaxed) >= ACK_ENTRIES_MAX as u64 {
                    return None;
                }
                self.consumed_before_ack.fetch_add(1, Ordering::Relaxed);
                shard
                    .insert(record_id, AckEntry { acked_us: None, readers_left: self.readers - 1 });
                self.entries.fetch_add(1, Ordering::Relaxed);
                Some(0)
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One bit per record id, per producer.
#[derive(Default, Clone)]
pub struct RecordSet {
    producers: Vec<Vec<u64>>,
    pub count: u64,
    pub untracked: u64,
}

impl RecordSet {
    /// Adds `record_id`; false when it was already present (a duplicate).
    pub fn insert(&mut self, record_id: u64) -> bool {
        let producer = (record_id >> PRODUCER_SHIFT) as usize;
        let sequence = record_id & ((1 << PRODUCER_SHIFT) - 1);
        if sequence >= SEEN_BITS_MAX {
            self.untracked += 1;
            return true;
        }
        if self.producers.len() <= producer {
            self.producers.resize(producer + 1, Vec::new());
        }
        let words = &mut self.producers[producer];
        let word = (sequence / 64) as usize;
        if words.len() <= word {
            words.resize((word + 1).next_power_of_two(), 0);
        }
        let bit = 1u64 << (sequence % 64);
        if words[word] & bit != 0 {
            return false;
        }
        words[word] |= bit;
        self.count += 1;
        true
    }

    pub fn contains(&self, record_id: u64) -> bool {
        let producer = (record_id >> PRODUCER_SHIFT) as usize;
        let sequence = record_id & ((1 << PRODUCER_SHIFT) - 1);
        let word = (sequence / 64) as usize;
        self.producers
            .get(producer)
            .and_then(|w| w.get(word))
            .is_some_and(|w| w & (1 << (sequence % 64)) != 0)
    }

    /// Records present in both sets.
    pub fn intersection_count(&self, other: &RecordSet) -> u64 {
        self.producers
            .iter()
            .zip(&other.producers)
            .map(|(a, b)| {
                a.iter().zip(b).map(|(x, y)| u64::from((x & y).count_ones())).sum::<u64>()
            })
            .sum()
    }

    pub fn union_with(&mut self, other: &RecordSet) {
        if self.producers.len() < other.producers.len() {
            self.producers.resize(other.producers.len(), Vec::new());
        }
        for (mine, theirs) in self.producers.iter_mut().zip(&other.producers) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m |= t;
            }
        }
        self.count = self
            .producers
            .iter()
            .map(|w| w.iter().map(|x| u64::from(x.count_ones())).sum::<u64>())
            .sum();
        self.untracked += other.untracked;
    }
}

/// A histogram for the whole run and one for the current reporting interval.
#[derive(Default)]
pub struct LatencyRecorder {
    pub total: Histogram,
    pub interval: Histogram,
}

impl LatencyRecorder {
    pub fn record(&mut self, value_us: u64) {
        self.total.record(value_us);
        self.interval.record(value_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_map_latency_and_cleanup() {
        let map = AckMap::new(2);
        map.acked(1, 100);
        assert_eq!(map.consumed(1, 150), Some(50));
        assert_eq!(map.len(), 1, "one reader left");
        assert_eq!(map.consumed(1, 400), Some(300));
        assert!(map.is_empty());
        // Read before the ack arrives: latency 0 and the entry waits for the ack.
        assert_eq!(map.consumed(2, 10), Some(0));
        assert_eq!(map.consumed(2, 11), Some(0));
        assert_eq!(map.len(), 1);
        map.acked(2, 20);
        assert!(map.is_empty());
        assert_eq!(map.consumed_before_ack.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn record_sets() {
        let mut a = RecordSet::default();
        assert!(a.insert(5));
        assert!(!a.insert(5));
        assert!(a.insert((3 << PRODUCER_SHIFT) | 1000));
        assert!(a.contains(5) && !a.contains(6));
        let mut b = RecordSet::default();
        b.insert(5);
        b.insert(7);
        assert_eq!(a.intersection_count(&b), 1);
        a.union_with(&b);
        assert_eq!(a.count, 3);
    }
}
