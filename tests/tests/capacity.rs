//! Capacity of the real `spated` through the AWS SDK for Rust: per-shard write quotas throttle
//! a 2 MiB/s producer on one shard to about half, and UpdateShardCount to two shards lets the
//! same load through; a KCL-style reader that follows ChildShards (parents before children)
//! reads every acknowledged record exactly once and in per-key order across a SplitShard and a
//! MergeShards done while a producer writes; ON_DEMAND streams start with four shards and
//! UpdateStreamMode switches the mode.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ScalingType, Shard, ShardIteratorType, StreamMode, StreamModeDetails,
};
use tests::{Rng, Server, create_stream, error_code, list_all_shards, seq_cmp, wait_active};

fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

fn ending_sequence(shard: &Shard) -> Option<&str> {
    shard.sequence_number_range().and_then(|r| r.ending_sequence_number())
}

/// What one paced load run saw, counting only batches started after the warm-up.
#[derive(Debug, Default)]
struct LoadOutcome {
    offered: usize,
    throttled: usize,
    /// Failed entries with any other error code, and failed calls.
    other_failures: Vec<String>,
    batches: usize,
}

impl LoadOutcome {
    fn throttled_fraction(&self) -> f64 {
        self.throttled as f64 / self.offered.max(1) as f64
    }
}

const RECORD_BYTES: usize = 10 << 10;
const RECORDS_PER_BATCH: usize = 100;
const KEY_LEN: usize = 16;
const TARGET_BYTES_PER_SECOND: f64 = (2 << 20) as f64;

/// PutRecords batches of 100 x 10 KiB records with random 16-character keys, each batch
/// started on schedule (not after the previous one returned) so that the offered rate is
/// 2 MiB/s of data plus keys (what the quota counts) whatever the latency. Batches started
/// before `warmup` are sent but not counted; then `measure` long is counted.
async fn paced_load(
    client: &Client,
    stream: &str,
    warmup: Duration,
    measure: Duration,
) -> LoadOutcome {
    let batch_bytes = (RECORD_BYTES + KEY_LEN) * RECORDS_PER_BATCH;
    let interval = Duration::from_secs_f64(batch_bytes as f64 / TARGET_BYTES_PER_SECOND);
    let mut rng = Rng::new();
    let start = tokio::time::Instant::now();
    let end = warmup + measure;
    let mut tasks = Vec::new();
    for i in 0u32.. {
        let at = interval * i;
        if at >= end {
            break;
        }
        tokio::time::sleep_until(start + at).await;
        let entries: Vec<PutRecordsRequestEntry> = (0..RECORDS_PER_BATCH)
            .map(|_| {
                let key: String =
                    (0..KEY_LEN).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(rng.bytes(RECORD_BYTES)))
                    .build()
                    .unwrap()
            })
            .collect();
        let client = client.clone();
        let stream = stream.to_string();
        let counted = at >= warmup;
        tasks.push(tokio::spawn(async move {
            let result =
                client.put_records().stream_name(stream).set_records(Some(entries)).send().await;
            (counted, result)
        }));
    }
    let mut outcome = LoadOutcome::default();
    for task in tasks {
        let (counted, result) = task.await.expect("load task");
        if !counted {
            continue;
        }
        outcome.batches += 1;
        outcome.offered += RECORDS_PER_BATCH;
        match result {
            Ok(out) => {
                let failed = out.records().iter().filter(|r| r.error_code().is_some()).count();
                assert_eq!(out.failed_record_count(), Some(failed as i32), "FailedRecordCount");
                assert_eq!(out.records().len(), RECORDS_PER_BATCH);
                for r in out.records() {
                    match r.error_code() {
                        None => assert!(r.sequence_number().is_some() && r.shard_id().is_some()),
                        Some("ProvisionedThroughputExceededException") => {
                            outcome.throttled += 1;
                            let message = r.error_message().unwrap_or("");
                            assert!(message.contains("Rate exceeded"), "message {message:?}");
                        }
                        Some(other) => outcome.other_failures.push(other.to_string()),
                    }
                }
            }
            Err(e) => outcome.other_failures.push(format!("{e:?}")),
        }
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_halves_2mib_per_s_on_one_shard_and_two_shards_pass() {
    // Quotas are on by default (1 MiB/s and 1000 records/s per shard, 1 s of burst).
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "load", 1).await;

    // A shard's bucket starts full: one second of quota (1 MiB) passes as a burst. The first
    // second of load drains it and is not counted; the 3 s after it should see the steady
    // state: 1 MiB/s admitted of 2 MiB/s offered, so about half of the entries throttled.
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs(3);
    let one = paced_load(&client, "load", warmup, measure).await;
    eprintln!("1 shard: {one:?}, throttled fraction {:.3}", one.throttled_fraction());
    assert!(one.other_failures.is_empty(), "unexpected failures: {:?}", one.other_failures);
    assert!(one.batches >= 5, "too few batches measured: {}", one.batches);
    let fraction = one.throttled_fraction();
    assert!(
        (0.3..=0.7).contains(&fraction),
        "2 MiB/s into one 1 MiB/s shard: throttled fraction {fraction:.3} is not about half"
    );

    let out = client
        .update_shard_count()
        .stream_name("load")
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount");
    assert_eq!(out.current_shard_count(), Some(1));
    assert_eq!(out.target_shard_count(), Some(2));
    wait_active(&client, "load").await;
    let open: Vec<Shard> = list_all_shards(&client, "load")
        .await
        .into_iter()
        .filter(|s| ending_sequence(s).is_none())
        .collect();
    assert_eq!(open.len(), 2, "two open shards after UpdateShardCount: {open:?}");

    // Random keys split the load evenly on average: each shard sees ~1 MiB/s, its quota. The
    // new shards' full buckets (1 s of quota each) absorb the random imbalance between them
    // (a few percent over 4 s), so nearly nothing should be throttled; < 10% leaves room for
    // scheduling jitter that bunches batches together.
    let two = paced_load(&client, "load", warmup, measure).await;
    eprintln!("2 shards: {two:?}, throttled fraction {:.3}", two.throttled_fraction());
    assert!(two.other_failures.is_empty(), "unexpected failures: {:?}", two.other_failures);
    assert!(
        two.throttled_fraction() < 0.1,
        "the same load on two shards: throttled fraction {:.3}",
        two.throttled_fraction()
    );
}

/// One acknowledged record of the KCL test's producer.
#[derive(Clone, Debug)]
struct Acked {
    key: usize,
    n: u32,
    shard: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_following_reader_reads_each_record_once_across_split_and_merge() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "kcl", 1).await;

    // Producer: keys k0..k9; each PutRecords has at most one entry per key, and a key's next
    // record is sent only after the previous one was acknowledged (a failed entry is retried
    // first), so per-key put order is acknowledgement order.
    let acked: Arc<Mutex<BTreeMap<String, Acked>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next = [0u32; 10];
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && calls < 20_000 {
                calls += 1;
                let entries: Vec<PutRecordsRequestEntry> = (0..10)
                    .map(|k| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("k{k}"))
                            .data(Blob::new(format!("k{k}#{}", next[k])))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let out = client
                    .put_records()
                    .stream_name("kcl")
                    .set_records(Some(entries))
                    .send()
                    .await
                    .expect("PutRecords call");
                {
                    let mut acked = acked.lock().unwrap();
                    for (k, r) in out.records().iter().enumerate() {
                        if let (Some(seq), Some(shard)) = (r.sequence_number(), r.shard_id()) {
                            let record = Acked { key: k, n: next[k], shard: shard.to_string() };
                            assert!(acked.insert(seq.to_string(), record).is_none(), "seq reused");
                            next[k] += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let wait_for_acks = |at_least: usize| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while acked.lock().unwrap().len() < at_least {
                assert!(Instant::now() < deadline, "producer too slow");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    wait_for_acks(200).await;
    client
        .split_shard()
        .stream_name("kcl")
        .shard_to_split(shard_id(0))
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, "kcl").await;
    let after_split = acked.lock().unwrap().len();
    wait_for_acks(after_split + 200).await;
    client
        .merge_shards()
        .stream_name("kcl")
        .shard_to_merge(shard_id(1))
        .adjacent_shard_to_merge(shard_id(2))
        .send()
        .await
        .expect("MergeShards");
    wait_active(&client, "kcl").await;
    let after_merge = acked.lock().unwrap().len();
    wait_for_acks(after_merge + 200).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(10), producer)
        .await
        .expect("producer stops")
        .expect("producer");
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    // Lineage as DescribeStream and ListShards show it.
    let shards = list_all_shards(&client, "kcl").await;
    let described = client.describe_stream().stream_name("kcl").send().await.unwrap();
    assert_eq!(described.stream_description().unwrap().shards(), shards.as_slice());
    let by_id: HashMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id(), s)).collect();
    assert_eq!(shards.len(), 4, "{shards:?}");
    let (s0, s1, s2, s3) = (shard_id(0), shard_id(1), shard_id(2), shard_id(3));
    assert_eq!(by_id[s1.as_str()].parent_shard_id(), Some(s0.as_str()));
    assert_eq!(by_id[s2.as_str()].parent_shard_id(), Some(s0.as_str()));
    assert_eq!(by_id[s3.as_str()].parent_shard_id(), Some(s1.as_str()));
    assert_eq!(by_id[s3.as_str()].adjacent_parent_shard_id(), Some(s2.as_str()));
    for closed in [&s0, &s1, &s2] {
        assert!(ending_sequence(by_id[closed.as_str()]).is_some(), "{closed} has no ending");
    }
    assert!(ending_sequence(by_id[s3.as_str()]).is_none(), "the merged shard is open");

    // The reader: roots first (no parent), a child only once all its parents are finished.
    let mut queue: VecDeque<String> = shards
        .iter()
        .filter(|s| s.parent_shard_id().is_none())
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(queue, std::slice::from_ref(&s0));
    let mut finished: HashSet<String> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut waiting: BTreeMap<String, Vec<String>> = BTreeMap::new(); // child -> parents
    let mut children_seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut read: Vec<(String, String, Vec<u8>, String)> = Vec::new(); // (shard, seq, data, key)
    let mut rounds = 0;
    while let Some(shard) = queue.pop_front() {
        rounds += 1;
        assert!(rounds <= 20, "the reader does not finish");
        started.insert(shard.clone());
        let mut iterator = client
            .get_shard_iterator()
            .stream_name("kcl")
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .unwrap()
            .to_string();
        let mut closed = false;
        let mut last_seq: Option<String> = None;
        for _call in 0..200 {
            let out =
                client.get_records().shard_iterator(&iterator).send().await.expect("GetRecords");
            for r in out.records() {
                read.push((
                    shard.clone(),
                    r.sequence_number().to_string(),
                    r.data().as_ref().to_vec(),
                    r.partition_key().unwrap_or("").to_string(),
                ));
                last_seq = Some(r.sequence_number().to_string());
            }
            match out.next_shard_iterator() {
                None => {
                    closed = true;
                    for child in out.child_shards() {
                        children_seen
                            .entry(shard.clone())
                            .or_default()
                            .insert(child.shard_id().to_string());
                        waiting
                            .insert(child.shard_id().to_string(), child.parent_shards().to_vec());
                    }
                    break;
                }
                Some(next) => iterator = next.to_string(),
            }
            if out.records().is_empty() && out.millis_behind_latest() == Some(0) {
                break; // an open shard, read to its tip (the producer has stopped)
            }
        }
        if closed {
            // A closed shard's EndingSequenceNumber is its last record's.
            assert_eq!(
                ending_sequence(by_id[shard.as_str()]),
                last_seq.as_deref(),
                "{shard}: EndingSequenceNumber vs the last record read"
            );
        }
        assert_eq!(closed, shard != s3, "{shard}: closed shards end, the open one does not");
        finished.insert(shard);
        let ready: Vec<String> = waiting
            .iter()
            .filter(|(child, parents)| {
                !started.contains(*child)
                    && !queue.contains(child)
                    && parents.iter().all(|p| finished.contains(p))
            })
            .map(|(child, _)| child.clone())
            .collect();
        queue.extend(ready);
    }
    assert_eq!(finished.len(), 4, "every shard was reached through ChildShards: {finished:?}");
    let expected_children: BTreeMap<String, BTreeSet<String>> = [
        (s0.clone(), BTreeSet::from([s1.clone(), s2.clone()])),
        (s1.clone(), BTreeSet::from([s3.clone()])),
        (s2.clone(), BTreeSet::from([s3.clone()])),
    ]
    .into();
    assert_eq!(children_seen, expected_children, "ChildShards of the closed shards");
    assert_eq!(waiting[&s3].iter().collect::<BTreeSet<_>>(), BTreeSet::from([&s1, &s2]));

    // Exactly once: the records read are the acknowledged ones, each once, where the put said.
    let mut read_seqs = HashSet::new();
    for (shard, seq, data, key) in &read {
        assert!(read_seqs.insert(seq.clone()), "{seq} read twice");
        let a = acked.get(seq).unwrap_or_else(|| panic!("{seq} was read but never acknowledged"));
        assert_eq!(&a.shard, shard, "{seq}: read from another shard than the put returned");
        assert_eq!(key, &format!("k{}", a.key));
        assert_eq!(data, format!("k{}#{}", a.key, a.n).as_bytes());
    }
    let missing: Vec<&String> = acked.keys().filter(|s| !read_seqs.contains(*s)).collect();
    assert!(missing.is_empty(), "{} acknowledged records never read: {missing:?}", missing.len());
    // Per-key order: each key's records come back as #0, #1, #2, ... in reading order.
    let mut next = [0u32; 10];
    for (_, seq, _, _) in &read {
        let a = &acked[seq];
        assert_eq!(
            a.n, next[a.key],
            "key k{}: read #{} where #{} was expected",
            a.key, a.n, next[a.key]
        );
        next[a.key] += 1;
    }
    // Every shard took writes, so the test crossed both reshards for real.
    for shard in [&s0, &s1, &s2, &s3] {
        assert!(read.iter().any(|(s, ..)| s == shard), "no record read from {shard}");
    }
    // Sequence numbers rise within each shard.
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (shard, seq, ..) in &read {
        if let Some(prev) = last.insert(shard, seq) {
            assert_eq!(seq_cmp(prev, seq), std::cmp::Ordering::Less);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_streams_and_update_stream_mode() {
    let server = Server::start(&["--cores", "1"]);
    let client = server.client();
    let on_demand = StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap();
    let provisioned =
        StreamModeDetails::builder().stream_mode(StreamMode::Provisioned).build().unwrap();
    client
        .create_stream()
        .stream_name("od")
        .stream_mode_details(on_demand.clone())
        .send()
        .await
        .expect("CreateStream ON_DEMAND");
    wait_active(&client, "od").await;
    let shards = list_all_shards(&client, "od").await;
    let open: Vec<&Shard> = shards.iter().filter(|s| ending_sequence(s).is_none()).collect();
    assert_eq!(open.len(), 4, "an ON_DEMAND stream starts with 4 open shards: {shards:?}");
    let mode = |client: Client| async move {
        let out = client.describe_stream_summary().stream_name("od").send().await.unwrap();
        let summary = out.stream_description_summary().unwrap();
        (summary.stream_mode_details().map(|m| m.stream_mode().clone()), summary.open_shard_count())
    };
    assert_eq!(mode(client.clone()).await, (Some(StreamMode::OnDemand), 4));
    // UpdateShardCount does not apply to ON_DEMAND streams.
    let refused = client
        .update_shard_count()
        .stream_name("od")
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await;
    assert_eq!(error_code(refused), "ValidationException");
    // Nor SplitShard and MergeShards: the engine reshards ON_DEMAND streams itself.
    let first = open[0];
    let range = first.hash_key_range().unwrap();
    let (start, end): (u128, u128) =
        (range.starting_hash_key().parse().unwrap(), range.ending_hash_key().parse().unwrap());
    let split = client
        .split_shard()
        .stream_name("od")
        .shard_to_split(first.shard_id())
        .new_starting_hash_key((start + (end - start) / 2).to_string())
        .send()
        .await;
    assert_eq!(error_code(split), "ValidationException");
    let merge = client
        .merge_shards()
        .stream_name("od")
        .shard_to_merge(open[0].shard_id())
        .adjacent_shard_to_merge(open[1].shard_id())
        .send()
        .await;
    assert_eq!(error_code(merge), "ValidationException");

    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/od";
    client
        .update_stream_mode()
        .stream_arn(arn)
        .stream_mode_details(provisioned)
        .send()
        .await
        .expect("UpdateStreamMode PROVISIONED");
    wait_active(&client, "od").await;
    assert_eq!(mode(client.clone()).await, (Some(StreamMode::Provisioned), 4));
    // NewStartingHashKey must exceed the shard's start by more than one and stay below its
    // end; a key past 2^128 - 1 gets the same message.
    for key in [start.to_string(), (start + 1).to_string(), end.to_string(), "9".repeat(39)] {
        let split = client
            .split_shard()
            .stream_name("od")
            .shard_to_split(first.shard_id())
            .new_starting_hash_key(&key)
            .send()
            .await
            .expect_err("a bad NewStartingHashKey");
        let error = split.into_service_error();
        assert!(error.is_invalid_argument_exception(), "{key}: {error:?}");
        assert!(
            error.meta().message().unwrap_or("").contains("is not both greater than one plus"),
            "{key}: {error:?}"
        );
    }
    // Now a provisioned stream, its shard count can be updated.
    client
        .update_shard_count()
        .stream_name("od")
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount on the now PROVISIONED stream");
    wait_active(&client, "od").await;
    assert_eq!(mode(client.clone()).await, (Some(StreamMode::Provisioned), 2));
    client
        .update_stream_mode()
        .stream_arn(arn)
        .stream_mode_details(on_demand)
        .send()
        .await
        .expect("UpdateStreamMode ON_DEMAND");
    wait_active(&client, "od").await;
    assert_eq!(mode(client.clone()).await.0, Some(StreamMode::OnDemand));
    let limits = client.describe_limits().send().await.unwrap();
    assert_eq!(limits.on_demand_stream_count(), 1);
}
