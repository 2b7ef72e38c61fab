//! A small in-memory Kinesis endpoint for the harness's own tests: enough of CreateStream,
//! DescribeStreamSummary, ListShards, PutRecord(s), GetShardIterator, GetRecords and the
//! enhanced fan-out calls (SubscribeToShard as a chunked event stream) to run `spate bench`
//! end to end, with optional per-entry throttling and EFO switched off like on kinesalite.
//! Test-only; it is not a reference for Kinesis semantics.

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_proto::eventstream;

use crate::http::Reader;

#[derive(Default)]
struct Stream {
    arn: String,
    /// Per shard: (sequence number, partition key, base64 data).
    shards: Vec<Vec<(String, String, String)>>,
    consumers: HashMap<String, String>,
}

#[derive(Default)]
pub struct Fake {
    streams: Mutex<HashMap<String, Stream>>,
    pub efo: bool,
    /// Fail every n-th PutRecords entry with ProvisionedThroughputExceededException (0: never).
    pub throttle_every: u64,
    /// Start event streams with a first SubscribeToShardEvent, as kinesis-mock does.
    pub no_initial_response: bool,
    entries: AtomicU64,
}

fn error(kind: &str, message: &str) -> (u16, Value) {
    (400, json!({ "__type": kind, "message": message }))
}

fn shard_index(key: &str, shard_count: usize) -> usize {
    (((spate_proto::hash_key(key.as_bytes()) >> 64) * shard_count as u128) >> 64) as usize
}

impl Fake {
    /// Serves on an ephemeral loopback port; returns the endpoint URL.
    pub fn start(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(self);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let fake = Arc::clone(&fake);
                std::thread::spawn(move || fake.serve(stream));
            }
        });
        url
    }

    fn serve(&self, stream: TcpStream) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = Reader::new(stream);
        loop {
            let Ok(request_line) = reader.read_line() else { return };
            if request_line.is_empty() {
                return;
            }
            let (mut target, mut length) = (String::new(), 0);
            loop {
                let Ok(line) = reader.read_line() else { return };
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "x-amz-target" => target = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = Vec::new();
            while body.len() < length {
                let wanted = length - body.len();
                if reader.read_some(&mut body, wanted).unwrap_or(0) == 0 {
                    return;
                }
            }
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let operation = target.rsplit('.').next().unwrap_or("").to_string();
            if operation == "SubscribeToShard" && self.efo {
                self.subscribe(&request, &mut writer);
                return;
            }
            let (status, response) = self.handle(&operation, &request);
            let body = response.to_string();
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            if writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(body.as_bytes()))
                .is_err()
            {
                return;
            }
        }
    }

    fn handle(&self, operation: &str, request: &Value) -> (u16, Value) {
        let mut streams = self.streams.lock().unwrap();
        let name = request["StreamName"].as_str().unwrap_or("").to_string();
        let by_arn = |streams: &HashMap<String, Stream>, arn: &str| {
            streams.iter().find(|(_, s)| s.arn == arn).map(|(n, _)| n.clone())
        };
        match operation {
            "CreateStream" => {
                let count = request["ShardCount"].as_u64().unwrap_or(1) as usize;
                let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}");
                streams.insert(
                    name,
                    Stream { arn, shards: vec![Vec::new(); count], ..Default::default() },
                );
                (200, json!({}))
            }
            "DescribeStreamSummary" => match streams.get(&name) {
                Some(s) => (
                    200,
                    json!({ "StreamDescriptionSummary": {
                        "StreamName": name, "StreamARN": s.arn, "StreamStatus": "ACTIVE",
                        "OpenShardCount": s.shards.len() } }),
                ),
                None => error("ResourceNotFoundException", "no such stream"),
            },
            "ListShards" => match streams.get(&name) {
                Some(s) => {
                    let shards: Vec<Value> = (0..s.shards.len())
                        .map(|i| {
                            json!({
                            "ShardId": format!("shardId-{i:012}"),
                            "HashKeyRange": { "StartingHashKey": "0", "EndingHashKey": "1" },
                            "SequenceNumberRange": { "StartingSequenceNumber": "0" } })
                        })
                        .collect();
                    (200, json!({ "Shards": shards }))
                }
                None => error("ResourceNotFoundException", "no such stream"),
            },
            "PutRecord" | "PutRecords" => {
                let Some(stream) = streams.get_mut(&name) else {
                    return error("ResourceNotFoundException", "no such stream");
                };
                let entries: Vec<Value> = if operation == "PutRecord" {
                    vec![request.clone()]
                } else {
                    request["Records"].as_array().cloned().unwrap_or_default()
                };
                let mut results = Vec::new();
                let mut failed = 0;
                for entry in entries {
                    let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
                    if self.throttle_every > 0 && n.is_multiple_of(self.throttle_every) {
                        failed += 1;
                        results
                            .push(json!({ "ErrorCode": "ProvisionedThroughputExceededException",
                                              "ErrorMessage": "slow down" }));
                        continue;
                    }
                    let key = entry["PartitionKey"].as_str().unwrap_or("").to_string();
                    let shard = shard_index(&key, stream.shards.len());
                    let records = &mut stream.shards[shard];
                    let sequence = format!("{shard:03}{:020}", records.len());
                    records.push((
                        sequence.clone(),
                        key,
                        entry["Data"].as_str().unwrap_or("").to_string(),
                    ));
                    let shard_id = format!("shardId-{shard:012}");
                    results.push(json!({ "ShardId": shard_id, "SequenceNumber": sequence }));
                }
                if operation == "PutRecord" {
                    (200, results.remove(0))
                } else {
                    (200, json!({ "FailedRecordCount": failed, "Records": results }))
                }
            }
            "GetShardIterator" => {
                let Some(stream) = streams.get(&name) else {
                    return error("ResourceNotFoundException", "no such stream");
                };
                let shard: usize = request["ShardId"].as_str().unwrap()[8..].parse().unwrap();
                let position = match request["ShardIteratorType"].as_str() {
                    Some("LATEST") => stream.shards[shard].len(),
                    _ => 0,
                };
                (200, json!({ "ShardIterator": format!("{name}|{shard}|{position}") }))
            }
            "GetRecords" => {
                let iterator = request["ShardIterator"].as_str().unwrap_or("");
                let parts: Vec<&str> = iterator.split('|').collect();
                let (stream, shard, position) = (
                    parts[0],
                    parts[1].parse::<usize>().unwrap(),
                    parts[2].parse::<usize>().unwrap(),
                );
                let limit = request["Limit"].as_u64().unwrap_or(10_000) as usize;
                let records = &streams[stream].shards[shard];
                let end = records.len().min(position + limit);
                let out: Vec<Value> = records[position..end]
                    .iter()
                    .map(|(s, k, d)| json!({ "SequenceNumber": s, "PartitionKey": k, "Data": d }))
                    .collect();
                (
                    200,
                    json!({ "Records": out, "NextShardIterator": format!("{stream}|{shard}|{end}"),
                            "MillisBehindLatest": 0 }),
                )
            }
            _ if !self.efo => error("UnknownOperationException", ""),
            "DescribeStreamConsumer" | "RegisterStreamConsumer" | "DeregisterStreamConsumer" => {
                let arn = request["StreamARN"].as_str().unwrap_or("");
                let consumer = request["ConsumerName"].as_str().unwrap_or("").to_string();
                let Some(name) = by_arn(&streams, arn) else {
                    return error("ResourceNotFoundException", "no such stream");
                };
                let stream = streams.get_mut(&name).unwrap();
                let consumer_arn = format!("{arn}/consumer/{consumer}");
                let description = json!({ "ConsumerName": consumer, "ConsumerARN": consumer_arn,
                                          "ConsumerStatus": "ACTIVE" });
                match operation {
                    "RegisterStreamConsumer" => {
                        stream.consumers.insert(consumer, consumer_arn);
                        (200, json!({ "Consumer": description }))
                    }
                    "DeregisterStreamConsumer" => {
                        stream.consumers.remove(&consumer);
                        (200, json!({}))
                    }
                    _ if stream.consumers.contains_key(&consumer) => {
                        (200, json!({ "ConsumerDescription": description }))
                    }
                    _ => error("ResourceNotFoundException", "no such consumer"),
                }
            }
            _ => error("UnknownOperationException", ""),
        }
    }

    /// Streams events for one shard until the client goes away or 10 seconds pass.
    fn subscribe(&self, request: &Value, writer: &mut TcpStream) {
        let consumer_arn = request["ConsumerARN"].as_str().unwrap_or("");
        let stream_arn = consumer_arn.split("/consumer/").next().unwrap_or("").to_string();
        let shard: usize = request["ShardId"].as_str().unwrap()[8..].parse().unwrap();
        let mut position = {
            let streams = self.streams.lock().unwrap();
            let stream = streams.values().find(|s| s.arn == stream_arn).unwrap();
            match request["StartingPosition"]["Type"].as_str() {
                Some("LATEST") => stream.shards[shard].len(),
                _ => 0,
            }
        };
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        let send = |writer: &mut TcpStream, event_type: &str, payload: &Value| {
            let message = eventstream::encode_event(event_type, payload.to_string().as_bytes());
            write!(writer, "{:x}\r\n", message.len())
                .and_then(|()| writer.write_all(&message))
                .and_then(|()| writer.write_all(b"\r\n"))
        };
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        if !self.no_initial_response && send(writer, "initial-response", &json!({})).is_err() {
            return;
        }
        let started = Instant::now();
        let mut last_event = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let batch: Vec<Value> = {
                let streams = self.streams.lock().unwrap();
                let stream = streams.values().find(|s| s.arn == stream_arn).unwrap();
                stream.shards[shard][position..]
                    .iter()
                    .map(|(s, k, d)| json!({ "SequenceNumber": s, "PartitionKey": k, "Data": d }))
                    .collect()
            };
            if !batch.is_empty() || last_event.elapsed() > Duration::from_millis(200) {
                position += batch.len();
                let continuation = format!("{shard:03}{position:020}");
                let event = json!({ "Records": batch, "ContinuationSequenceNumber": continuation,
                                    "MillisBehindLatest": 0 });
                if send(writer, "SubscribeToShardEvent", &event).is_err() {
                    return;
                }
                last_event = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::Settings;

    fn settings(endpoint: String) -> Settings {
        Settings {
            endpoint,
            region: "us-east-1".into(),
            stream: None,
            shards: 2,
            mode: "provisioned".into(),
            api: "PutRecords".into(),
            batch_size: 20,
            record_size: "uniform:24-300".into(),
            keys: "uniform".into(),
            key_count: 10,
            connections: 2,
            rate_records_per_second: None,
            duration_seconds: 0.6,
            consumers: 1,
            efo_consumers: 1,
            poll_interval_ms: 5.0,
            get_records_limit: 10_000,
            drain_timeout_seconds: 10.0,
            request_timeout_seconds: 5.0,
            seed: 3,
            label: None,
        }
    }

    #[test]
    fn bench_end_to_end_with_polling_and_fan_out_readers() {
        let endpoint = Fake { efo: true, ..Default::default() }.start();
        let result = crate::bench::run(&settings(endpoint), false).unwrap();
        assert!(result.records_acked > 0);
        assert_eq!(result.consumers.efo_status, "ok");
        assert_eq!((result.consumers.polling, result.consumers.efo), (1, 1));
        assert!(result.consumers.verified, "{:?}", result.consumers.readers);
        for reader in &result.consumers.readers {
            assert_eq!(reader.acked_seen, result.records_acked, "{}", reader.name);
        }
        // Each record is timed once per reader.
        assert_eq!(result.e2e_latency.as_ref().unwrap().count, 2 * result.records_acked);
        assert_eq!(result.consumers.records_consumed, 2 * result.records_acked);
        assert_eq!(result.put_latency.count, result.requests);
        assert!(result.harness.cpu_user_seconds + result.harness.cpu_system_seconds > 0.0);
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["records_acked"], result.records_acked);
        assert!(json["stream"].as_str().unwrap().starts_with("spate-bench-"));
    }

    #[test]
    fn bench_counts_per_entry_throttling_and_skips_missing_fan_out() {
        let endpoint = Fake { efo: false, throttle_every: 7, ..Default::default() }.start();
        let mut s = settings(endpoint);
        s.rate_records_per_second = Some(2_000.0);
        let result = crate::bench::run(&s, false).unwrap();
        assert!(
            result.consumers.efo_status.starts_with("unsupported"),
            "{}",
            result.consumers.efo_status
        );
        assert_eq!(result.consumers.efo, 0);
        let offered = result.records_acked + result.records_throttled;
        assert_eq!(result.records_throttled, offered / 7, "every 7th entry throttled");
        assert_eq!(
            result.failed_records_by_type.get("ProvisionedThroughputExceededException"),
            Some(&result.records_throttled)
        );
        assert!(result.consumers.verified);
        let open = result.open_loop.as_ref().unwrap();
        assert_eq!(open.requests_sent, open.requests_due);
        // 2,000 records/s for 0.6 s in batches of 20: 60 requests.
        assert!((58..=62).contains(&open.requests_sent), "{}", open.requests_sent);
    }

    #[test]
    fn bench_put_record_zipf_and_fan_out_without_initial_response() {
        let endpoint = Fake { efo: true, no_initial_response: true, ..Default::default() }.start();
        let mut s = settings(endpoint);
        s.api = "PutRecord".into();
        s.batch_size = 1;
        s.keys = "zipf:1.2".into();
        s.consumers = 0;
        let result = crate::bench::run(&s, false).unwrap();
        assert_eq!(result.consumers.efo_status, "ok");
        assert!(result.records_acked > 0);
        assert_eq!(result.requests, result.records_acked);
        assert!(result.consumers.verified, "{:?}", result.consumers.readers);
    }

    #[test]
    fn bench_fails_cleanly_without_a_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = crate::bench::run(&settings(endpoint), false).unwrap_err();
        assert!(error.contains("CreateStream") && error.contains("cannot reach"), "{error}");
    }
}
