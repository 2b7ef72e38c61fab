//! The kill -9 soak: `spated` is killed with SIGKILL again and again under mixed load, and after
//! the last cycle every record is read back and counted against what was acknowledged.
//!
//! Each cycle starts `spated` on the same data directory (`--durability always`), runs for a
//! random 0.3–1.5 s with three producers (PutRecord and 20-entry PutRecords on stream `steady`,
//! PutRecords on stream `reshard`) and a resharder that splits `reshard`'s widest open shard
//! (up to 16 open shards), then sends SIGKILL while they are all in flight. Clients do not
//! retry: a record is acknowledged only if this server process answered it.
//!
//! At the end every shard of both streams is read from TRIM_HORIZON, and the soak prints
//! acknowledged, read back, lost (acknowledged but missing, or changed) and duplicated (the same
//! unique payload twice). Records in flight at a kill may or may not be stored: they were never
//! acknowledged, so they are neither lost nor duplicated. Exits 1 if anything is lost or
//! duplicated, or if sequence numbers do not increase within a shard.
//!
//! `benches/kill9_soak.sh [CYCLES]` runs it (100 cycles by default).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tests::{Rng, Server, create_stream, list_all_shards, read_shard, seq_cmp};

/// (stream, sequence number) of each acknowledged payload.
type Acked = Arc<Mutex<HashMap<Vec<u8>, (String, String)>>>;

const OPEN_SHARDS_MAX: usize = 16;

fn payload(rng: &mut Rng, cycle: u32, producer: u32, n: u64) -> Vec<u8> {
    let mut data = format!("c{cycle}-p{producer}-n{n}-").into_bytes();
    let len = rng.below(1500) as usize;
    data.extend(rng.bytes(len));
    data
}

async fn produce(client: Client, stream: &'static str, producer: u32, cycle: u32, acked: Acked) {
    let stop = Instant::now() + Duration::from_secs(20);
    let mut rng = Rng::with_seed(((cycle as u64) << 8) | producer as u64);
    let mut n = 0u64;
    while Instant::now() < stop {
        n += 1;
        if stream == "steady" && n % 2 == 1 {
            let data = payload(&mut rng, cycle, producer, n);
            let result = client
                .put_record()
                .stream_name(stream)
                .partition_key(rng.key())
                .data(Blob::new(data.clone()))
                .send()
                .await;
            let Ok(out) = result else { return };
            acked.lock().unwrap().insert(data, (stream.into(), out.sequence_number().into()));
        } else {
            let entries: Vec<(String, Vec<u8>)> = (0..20)
                .map(|i| (rng.key(), payload(&mut rng, cycle, producer, n * 100 + i)))
                .collect();
            let records = entries
                .iter()
                .map(|(key, data)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data.clone()))
                        .build()
                        .expect("entry")
                })
                .collect();
            let result =
                client.put_records().stream_name(stream).set_records(Some(records)).send().await;
            let Ok(out) = result else { return };
            let mut acked = acked.lock().unwrap();
            for (entry, (_, data)) in out.records().iter().zip(entries) {
                if let Some(seq) = entry.sequence_number() {
                    acked.insert(data, (stream.into(), seq.into()));
                }
            }
        }
    }
}

/// Splits the open shard with the widest hash range until `OPEN_SHARDS_MAX` are open.
async fn reshard(client: Client) {
    let stop = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stop {
        let Ok(shards) = client.list_shards().stream_name("reshard").send().await else { return };
        let open: Vec<_> = shards
            .shards()
            .iter()
            .filter(|s| {
                s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none()
            })
            .collect();
        if open.len() >= OPEN_SHARDS_MAX {
            return;
        }
        let range = |s: &aws_sdk_kinesis::types::Shard| {
            let r = s.hash_key_range().expect("range");
            let start: u128 = r.starting_hash_key().parse().expect("start");
            let end: u128 = r.ending_hash_key().parse().expect("end");
            (start, end)
        };
        let Some(widest) = open.iter().max_by_key(|s| {
            let (start, end) = range(s);
            end - start
        }) else {
            return;
        };
        let (start, end) = range(widest);
        let result = client
            .split_shard()
            .stream_name("reshard")
            .shard_to_split(widest.shard_id())
            .new_starting_hash_key((start + (end - start) / 2 + 1).to_string())
            .send()
            .await;
        if result.is_err() {
            // Killed, or still UPDATING from the previous split: look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cycles: u32 = std::env::args().nth(1).map_or(100, |c| c.parse().expect("CYCLES"));
    let started = Instant::now();
    let mut server = Server::start(&["--quotas", "off", "--durability", "always"]);
    create_stream(&server.client(), "steady", 4).await;
    create_stream(&server.client(), "reshard", 2).await;
    let acked: Acked = Arc::default();
    for cycle in 0..cycles {
        if cycle > 0 {
            server.start_again();
        }
        let client = server.client_with_retries(RetryConfig::disabled());
        let mut tasks = Vec::new();
        for producer in 0..2 {
            tasks.push(tokio::spawn(produce(
                client.clone(),
                "steady",
                producer,
                cycle,
                acked.clone(),
            )));
        }
        tasks.push(tokio::spawn(produce(client.clone(), "reshard", 2, cycle, acked.clone())));
        tasks.push(tokio::spawn(reshard(client.clone())));
        let mut rng = Rng::with_seed(cycle as u64 + 1);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1200))).await;
        server.kill9();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("clients stop once the server is gone")
                .expect("client task");
        }
        eprintln!("cycle {cycle}: {} acknowledged so far", acked.lock().unwrap().len());
    }
    server.start_again();
    let client = server.client();
    // Read everything back: every shard, open and closed, of both streams.
    let mut seen: HashMap<Vec<u8>, (String, String)> = HashMap::new();
    let (mut read_back, mut duplicated, mut unordered) = (0u64, 0u64, 0u64);
    for stream in ["steady", "reshard"] {
        for shard in list_all_shards(&client, stream).await {
            let contents = read_shard(&client, stream, shard.shard_id()).await;
            for pair in contents.records.windows(2) {
                if seq_cmp(pair[0].sequence_number(), pair[1].sequence_number()).is_ge() {
                    unordered += 1;
                }
            }
            for r in contents.records {
                read_back += 1;
                let value = (stream.to_string(), r.sequence_number().to_string());
                if seen.insert(r.data().as_ref().to_vec(), value).is_some() {
                    duplicated += 1;
                }
            }
        }
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let lost = acked.iter().filter(|(data, at)| seen.get(*data) != Some(at)).count();
    println!(
        "kill -9 soak: {cycles} cycles in {:.0} s: acknowledged {}, read back {read_back}, \
         lost {lost}, duplicated {duplicated}, out of order {unordered}",
        started.elapsed().as_secs_f64(),
        acked.len()
    );
    let open = list_all_shards(&client, "reshard").await.len();
    println!("stream reshard has {open} shards (open and closed) after the soak");
    if lost > 0 || duplicated > 0 || unordered > 0 {
        std::process::exit(1);
    }
}
