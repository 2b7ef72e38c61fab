//! The harness's readers. A *reader* is one consumer application that reads every shard: a
//! polling reader is one thread looping GetRecords over its shards; an enhanced fan-out reader
//! is one SubscribeToShard thread per shard. Both follow child shards after a reshard, recognise
//! this run's records by their header, time them end to end and mark them in the reader's
//! seen-set for verification.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spate_proto::base64;

use crate::bench::Shared;
use crate::bench::tracking::{LatencyRecorder, RecordSet};
use crate::bench::workload::Header;
use crate::http::{Timeouts, Url};
use crate::kinesis::{self, ChildShard, Client, Event, GetRecordsRef, Position, Subscription};

/// State one reader's threads share, read by the reporter.
pub struct ReaderShared {
    pub name: String,
    pub seen: Mutex<RecordSet>,
    pub deliveries: AtomicU64,
    pub duplicates: AtomicU64,
    pub bytes: AtomicU64,
    pub foreign: AtomicU64,
    pub get_records_calls: AtomicU64,
    pub throttled: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub e2e: Mutex<LatencyRecorder>,
    pub e2e_from_send: Mutex<LatencyRecorder>,
    /// Shards fully read (closed and drained) and shards some thread has taken on.
    done_shards: Mutex<HashSet<String>>,
    claimed_shards: Mutex<HashSet<String>>,
}

impl ReaderShared {
    pub fn new(name: String) -> ReaderShared {
        ReaderShared {
            name,
            seen: Mutex::default(),
            deliveries: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            get_records_calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            errors: Mutex::default(),
            e2e: Mutex::default(),
            e2e_from_send: Mutex::default(),
            done_shards: Mutex::default(),
            claimed_shards: Mutex::default(),
        }
    }

    fn count_error(&self, error: &kinesis::Error) {
        if error.is_api(kinesis::THROTTLED) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        } else {
            *self.errors.lock().unwrap().entry(error.kind()).or_default() += 1;
        }
    }

    pub fn claim(&self, shard_id: &str) -> bool {
        self.claimed_shards.lock().unwrap().insert(shard_id.to_string())
    }

    /// Marks `shard_id` finished and returns the children now ready to read (all their parents
    /// finished) that no other thread has claimed.
    fn finish_shard(&self, shard_id: &str, children: &[ChildShard]) -> Vec<String> {
        let mut done = self.done_shards.lock().unwrap();
        done.insert(shard_id.to_string());
        let claimed = self.claimed_shards.lock().unwrap();
        children
            .iter()
            .filter(|c| c.parent_shards.iter().all(|p| done.contains(p) || !claimed.contains(p)))
            .filter(|c| !claimed.contains(&c.shard_id))
            .map(|c| c.shard_id.clone())
            .collect()
    }

    /// Consumes one response's records, all received at the same instant.
    fn consume<'a>(&self, shared: &Shared, data: impl Iterator<Item = &'a str>) -> usize {
        let now = Instant::now();
        let now_us = shared.micros_at(now);
        let now_epoch_ns = shared.epoch_ns_at(now);
        let mut seen = self.seen.lock().unwrap();
        let mut e2e = self.e2e.lock().unwrap();
        let mut e2e_from_send = self.e2e_from_send.lock().unwrap();
        let (mut count, mut bytes, mut foreign, mut duplicates) = (0, 0, 0, 0);
        for d in data {
            count += 1;
            bytes += base64::decoded_len(d) as u64;
            match Header::decode_base64(d) {
                Some(header) if header.run_id == shared.run_id => {
                    if !seen.insert(header.record_id) {
                        duplicates += 1;
                        continue;
                    }
                    if let Some(latency) = shared.acks.consumed(header.record_id, now_us) {
                        e2e.record(latency);
                    }
                    e2e_from_send.record(now_epoch_ns.saturating_sub(header.send_epoch_ns) / 1000);
                }
                _ => foreign += 1,
            }
        }
        self.deliveries.fetch_add(count - foreign, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.foreign.fetch_add(foreign, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        count as usize
    }
}

/// Children of `shard_id` from the shard list, for servers whose responses omit ChildShards.
fn children_from_listing(client: &mut Client, stream: &str, shard_id: &str) -> Vec<ChildShard> {
    match client.list_shards(stream) {
        Ok(shards) => shards
            .iter()
            .filter(|s| s.parents().any(|p| p == shard_id))
            .map(|s| ChildShard {
                shard_id: s.shard_id.clone(),
                parent_shards: s.parents().map(str::to_string).collect(),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub struct ShardCursor {
    pub shard_id: String,
    pub iterator: String,
    pub last_sequence: Option<String>,
    pub start: Position,
    pub paused_until: Option<Instant>,
}

pub struct PollingConfig {
    pub url: Url,
    pub region: String,
    pub timeouts: Timeouts,
    pub stream: String,
    pub limit: u32,
    pub poll_interval: Duration,
}

/// A polling reader: round-robin GetRecords over its shards until `shared.stop_consumers`.
pub fn run_polling(
    config: PollingConfig,
    mut cursors: Vec<ShardCursor>,
    shared: Arc<Shared>,
    reader: Arc<ReaderShared>,
) {
    let mut client = Client::new(&config.url, &config.region, config.timeouts);
    while !shared.stop_consumers() {
        let mut received = 0;
        let mut index = 0;
        while index < cursors.len() && !shared.stop_consumers() {
            let cursor = &mut cursors[index];
            index += 1;
            if cursor.paused_until.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            cursor.paused_until = None;
            reader.get_records_calls.fetch_add(1, Ordering::Relaxed);
            let body = match client.get_records_raw(&cursor.iterator, config.limit) {
                Ok(body) => body,
                Err(error) => {
                    reader.count_error(&error);
                    if error.is_api("ExpiredIteratorException") {
                        let position = match &cursor.last_sequence {
                            Some(s) => Position::AfterSequence(s.clone()),
                            None => cursor.start.clone(),
                        };
                        if let Ok(iterator) =
                            client.get_shard_iterator(&config.stream, &cursor.shard_id, &position)
                        {
                            cursor.iterator = iterator;
                            continue;
                        }
                    }
                    cursor.paused_until = Some(Instant::now() + Duration::from_millis(200));
                    continue;
                }
            };
            let parsed: GetRecordsRef = match serde_json::from_slice(&body) {
                Ok(parsed) => parsed,
                Err(_) => {
                    reader.count_error(&kinesis::Error::Protocol(String::new()));
                    cursor.paused_until = Some(Instant::now() + Duration::from_millis(200));
                    continue;
                }
            };
            if let Some(last) = parsed.records.last() {
                cursor.last_sequence = Some(last.sequence_number.to_string());
            }
            received += reader.consume(&shared, parsed.records.iter().map(|r| r.data.as_ref()));
            match parsed.next_shard_iterator {
                Some(next) => cursor.iterator = next,
                None => {
                    // The shard is closed and fully read: move on to its children.
                    let shard_id = cursor.shard_id.clone();
                    let children = match parsed.child_shards {
                        Some(children) if !children.is_empty() => children,
                        _ => children_from_listing(&mut client, &config.stream, &shard_id),
                    };
                    index -= 1;
                    cursors.remove(index);
                    let ready = reader.finish_shard(&shard_id, &children);
                    for child in ready.into_iter().filter(|child| reader.claim(child)) {
                        let position = Position::TrimHorizon;
                        match client.get_shard_iterator(&config.stream, &child, &position) {
                            Ok(iterator) => cursors.push(ShardCursor {
                                shard_id: child,
                                iterator,
                                last_sequence: None,
                                start: position,
                                paused_until: None,
                            }),
                            Err(error) => reader.count_error(&error),
                        }
                    }
                }
            }
        }
        if received == 0 {
            std::thread::sleep(config.poll_interval);
        }
    }
}

pub struct EfoConfig {
    pub url: Url,
    pub region: String,
    pub timeouts: Timeouts,
    pub stream: String,
    pub consumer_arn: String,
}

/// How long a subscription read blocks before the thread checks whether to stop.
const EFO_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens a subscription and waits for its first event: `initial-response` as AWS sends it, or
/// (kinesis-mock) a first `SubscribeToShardEvent`, which is kept for the reader.
pub fn subscribe(
    client: &mut Client,
    consumer_arn: &str,
    shard_id: &str,
    position: &Position,
) -> Result<Subscription, kinesis::Error> {
    let mut subscription =
        client.subscribe_to_shard(consumer_arn, shard_id, position, EFO_READ_TIMEOUT)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match subscription.next_event() {
            Ok(Some(Event::InitialResponse)) => return Ok(subscription),
            Ok(Some(event)) => {
                subscription.push_back(event);
                return Ok(subscription);
            }
            Ok(None) => return Err(kinesis::Error::Protocol("subscription ended at once".into())),
            Err(kinesis::Error::Transport { source, .. })
                if is_timeout(&source) && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// An enhanced fan-out reader's thread for one shard (and, after a reshard, its children).
/// Spawned threads for further children are pushed to `threads`.
pub fn run_efo(
    config: Arc<EfoConfig>,
    shard_id: String,
    mut subscription: Option<Subscription>,
    mut position: Position,
    shared: Arc<Shared>,
    reader: Arc<ReaderShared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut client = Client::new(&config.url, &config.region, config.timeouts);
    let mut shard_id = shard_id;
    'subscriptions: while !shared.stop_consumers() {
        let mut current = match subscription.take() {
            Some(s) => s,
            None => match subscribe(&mut client, &config.consumer_arn, &shard_id, &position) {
                Ok(s) => s,
                Err(error) => {
                    reader.count_error(&error);
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            },
        };
        loop {
            if shared.stop_consumers() {
                return;
            }
            match current.next_event() {
                Ok(Some(Event::InitialResponse)) => {}
                Ok(Some(Event::Shard(event))) => {
                    reader.consume(&shared, event.records.iter().map(|r| r.data.as_str()));
                    if let Some(continuation) = event.continuation_sequence_number {
                        position = Position::AfterSequence(continuation);
                        continue;
                    }
                    // No continuation: the shard is closed. Follow its children.
                    let children = match event.child_shards {
                        Some(children) if !children.is_empty() => children,
                        _ => children_from_listing(&mut client, &config.stream, &shard_id),
                    };
                    let ready: Vec<String> = reader
                        .finish_shard(&shard_id, &children)
                        .into_iter()
                        .filter(|child| reader.claim(child))
                        .collect();
                    let mut ready = ready.into_iter();
                    let Some(next) = ready.next() else { return };
                    for extra in ready {
                        let (config, shared, reader, threads_for_child) = (
                            Arc::clone(&config),
                            Arc::clone(&shared),
                            Arc::clone(&reader),
                            Arc::clone(&threads),
                        );
                        let handle = std::thread::spawn(move || {
                            run_efo(
                                config,
                                extra,
                                None,
                                Position::TrimHorizon,
                                shared,
                                reader,
                                threads_for_child,
                            )
                        });
                        threads.lock().unwrap().push(handle);
                    }
                    shard_id = next;
                    position = Position::TrimHorizon;
                    continue 'subscriptions;
                }
                Ok(None) => continue 'subscriptions, // Subscription expired: resubscribe.
                Err(kinesis::Error::Transport { source, .. }) if is_timeout(&source) => {}
                Err(error) => {
                    reader.count_error(&error);
                    std::thread::sleep(Duration::from_millis(200));
                    continue 'subscriptions;
                }
            }
        }
    }
}
