//! Enhanced fan-out on the real `spated` through the AWS SDK for Rust: consumer registration
//! (register, describe, list with paging, deregister) and DeleteStream's EnforceConsumerDeletion;
//! SubscribeToShard delivering the initial response and then every record written after the
//! subscription, in order; a second subscription within 5 s refused with ResourceInUse; a
//! consumer deregistered mid-stream ending its subscription with an error event; two consumers
//! on one shard each receiving the full stream; a subscription ending cleanly at the end of its
//! lifetime and a resubscription continuing after the last record (or, on an empty shard,
//! after the shard's start); no continuation in the last event of a closed shard.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, ShardIteratorType, StartingPosition,
    SubscribeToShardEventStream,
};
use tests::{Server, create_stream, decode_chunked, error_code, wait_active};

const SHARD: &str = "shardId-000000000000";

fn stream_arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
}

async fn register(client: &Client, stream: &str, name: &str) -> String {
    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn(stream))
        .consumer_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterStreamConsumer {name}: {e:?}"));
    let consumer = out.consumer().expect("Consumer");
    assert_eq!(consumer.consumer_name(), name);
    consumer.consumer_arn().to_string()
}

/// Waits (bounded) until DescribeStreamConsumer shows the consumer ACTIVE.
async fn wait_consumer_active(client: &Client, consumer_arn: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = client
            .describe_stream_consumer()
            .consumer_arn(consumer_arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        if out.consumer_description().unwrap().consumer_status() == &ConsumerStatus::Active {
            return;
        }
        assert!(Instant::now() < deadline, "consumer {consumer_arn} not ACTIVE within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe_latest(
    client: &Client,
    consumer_arn: &str,
) -> Result<SubscribeToShardOutput, String> {
    subscribe_latest_to(client, consumer_arn, SHARD).await
}

async fn subscribe_latest_to(
    client: &Client,
    consumer_arn: &str,
    shard: &str,
) -> Result<SubscribeToShardOutput, String> {
    let position = StartingPosition::builder().r#type(ShardIteratorType::Latest).build().unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        client
            .subscribe_to_shard()
            .consumer_arn(consumer_arn)
            .shard_id(shard)
            .starting_position(position)
            .send(),
    )
    .await
    .expect("SubscribeToShard answers within 10 s");
    result.map_err(|e| {
        e.as_service_error()
            .and_then(|s| s.code())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{e:?}"))
    })
}

/// SubscribeToShard on `SHARD` from AFTER_SEQUENCE_NUMBER `sequence_number`.
async fn subscribe_after(
    client: &Client,
    consumer_arn: &str,
    sequence_number: &str,
) -> Result<SubscribeToShardOutput, impl std::fmt::Debug> {
    let position = StartingPosition::builder()
        .r#type(ShardIteratorType::AfterSequenceNumber)
        .sequence_number(sequence_number)
        .build()
        .unwrap();
    client
        .subscribe_to_shard()
        .consumer_arn(consumer_arn)
        .shard_id(SHARD)
        .starting_position(position)
        .send()
        .await
}

/// Puts `count` records `"{tag}-{i}"` (one shard), in order; returns their sequence numbers.
async fn put_numbered(client: &Client, stream: &str, tag: &str, count: usize) -> Vec<String> {
    let mut seqs = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(10) {
        let entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("key{}", i % 3))
                    .data(Blob::new(format!("{tag}-{i}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(out.failed_record_count(), Some(0));
        seqs.extend(out.records().iter().map(|r| r.sequence_number().unwrap().to_string()));
    }
    seqs
}

/// Receives events until `count` records arrived (bounded: 15 s); returns (sequence, data).
async fn receive(output: &mut SubscribeToShardOutput, count: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(event) = tokio::time::timeout(left, output.event_stream.recv()).await else {
            panic!("only {} of {count} records within 15 s", got.len());
        };
        match event {
            Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => {
                for r in event.records() {
                    let data = String::from_utf8(r.data().as_ref().to_vec()).unwrap();
                    got.push((r.sequence_number().to_string(), data));
                }
                if let Some(last) = event.records().last() {
                    assert_eq!(
                        event.continuation_sequence_number(),
                        last.sequence_number(),
                        "ContinuationSequenceNumber is the last record delivered"
                    );
                }
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => panic!("the event stream ended after {} of {count} records", got.len()),
            Err(e) => panic!("event stream error after {} records: {e:?}", got.len()),
        }
    }
    got
}

fn expected(tag: &str, seqs: &[String]) -> Vec<(String, String)> {
    seqs.iter().enumerate().map(|(i, s)| (s.clone(), format!("{tag}-{i}"))).collect()
}

/// Reads a subscription until it ends, within `within`; only empty events may come first.
/// `Ok` for a clean end, the modeled error for an exception event (the SDK decodes the
/// `:exception-type` into a variant; its metadata carries no code for event-stream exceptions).
async fn end_of_stream(
    output: &mut SubscribeToShardOutput,
    within: Duration,
    what: &str,
) -> Result<(), SubscribeToShardEventStreamError> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(event) = tokio::time::timeout(left, output.event_stream.recv()).await else {
            panic!("{what}: the subscription is still open after {within:?}");
        };
        match event {
            Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))) => {
                assert!(e.records().is_empty(), "{what}: records before the end: {e:?}");
            }
            Ok(Some(other)) => panic!("{what}: unexpected event {other:?}"),
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.into_service_error()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_registration_and_enforced_deletion() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;

    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn("s"))
        .consumer_name("c1")
        .send()
        .await
        .expect("RegisterStreamConsumer");
    let c1 = out.consumer().unwrap();
    assert!(
        c1.consumer_arn().starts_with(&format!("{}/consumer/c1:", stream_arn("s"))),
        "consumer ARN {}",
        c1.consumer_arn()
    );
    assert!(
        [ConsumerStatus::Creating, ConsumerStatus::Active].contains(c1.consumer_status()),
        "{:?}",
        c1.consumer_status()
    );
    let c1_arn = c1.consumer_arn().to_string();
    wait_consumer_active(&client, &c1_arn).await;
    let duplicate = client
        .register_stream_consumer()
        .stream_arn(stream_arn("s"))
        .consumer_name("c1")
        .send()
        .await;
    assert_eq!(error_code(duplicate), "ResourceInUseException");
    let c2_arn = register(&client, "s", "c2").await;

    // Consumer tags: set at registration, then through the resource operations on its ARN.
    let tagged = client
        .register_stream_consumer()
        .stream_arn(stream_arn("s"))
        .consumer_name("c3")
        .tags("team", "a")
        .send()
        .await
        .expect("RegisterStreamConsumer with tags");
    let c3_arn = tagged.consumer().unwrap().consumer_arn().to_string();
    let consumer_tags = |arn: String| {
        let client = client.clone();
        async move {
            let out = client.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
            out.tags()
                .iter()
                .map(|t| format!("{}={}", t.key(), t.value().unwrap_or("")))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(consumer_tags(c3_arn.clone()).await, ["team=a"]);
    client.tag_resource().resource_arn(&c3_arn).tags("tier", "gold").send().await.unwrap();
    assert_eq!(consumer_tags(c3_arn.clone()).await, ["team=a", "tier=gold"]);
    client.untag_resource().resource_arn(&c3_arn).tag_keys("team").send().await.unwrap();
    assert_eq!(consumer_tags(c3_arn.clone()).await, ["tier=gold"]);
    assert_eq!(consumer_tags(c2_arn.clone()).await, Vec::<String>::new());
    let bad = client.tag_resource().resource_arn(&c3_arn).tags("a!", "b").send().await;
    assert_eq!(error_code(bad), "InvalidArgumentException");
    client.deregister_stream_consumer().consumer_arn(&c3_arn).send().await.unwrap();

    // Describe by ARN and by stream ARN + name.
    let by_arn = client.describe_stream_consumer().consumer_arn(&c1_arn).send().await.unwrap();
    let d = by_arn.consumer_description().unwrap();
    assert_eq!(d.consumer_name(), "c1");
    assert_eq!(d.stream_arn(), stream_arn("s"));
    assert_eq!(d.consumer_status(), &ConsumerStatus::Active);
    let by_name = client
        .describe_stream_consumer()
        .stream_arn(stream_arn("s"))
        .consumer_name("c1")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.consumer_description().unwrap().consumer_arn(), c1_arn);
    let summary = client.describe_stream_summary().stream_name("s").send().await.unwrap();
    assert_eq!(summary.stream_description_summary().unwrap().consumer_count(), Some(2));

    // List with paging.
    let first = client
        .list_stream_consumers()
        .stream_arn(stream_arn("s"))
        .max_results(1)
        .send()
        .await
        .expect("ListStreamConsumers");
    assert_eq!(first.consumers().len(), 1);
    let token = first.next_token().expect("a second page").to_string();
    let second = client
        .list_stream_consumers()
        .stream_arn(stream_arn("s"))
        .next_token(token)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(second.next_token(), None);
    let mut names: Vec<&str> =
        first.consumers().iter().chain(second.consumers()).map(|c| c.consumer_name()).collect();
    names.sort();
    assert_eq!(names, ["c1", "c2"]);

    // Deregister c2 by stream ARN + name: it is gone.
    client
        .deregister_stream_consumer()
        .stream_arn(stream_arn("s"))
        .consumer_name("c2")
        .send()
        .await
        .expect("DeregisterStreamConsumer by name");
    let gone = client.describe_stream_consumer().consumer_arn(&c2_arn).send().await;
    assert_eq!(error_code(gone), "ResourceNotFoundException");
    let all = client.list_stream_consumers().stream_arn(stream_arn("s")).send().await.unwrap();
    let names: Vec<&str> = all.consumers().iter().map(|c| c.consumer_name()).collect();
    assert_eq!(names, ["c1"]);

    // DeleteStream refuses while c1 is registered, unless EnforceConsumerDeletion.
    let refused = client.delete_stream().stream_name("s").send().await;
    assert_eq!(error_code(refused), "ResourceInUseException");
    let refused =
        client.delete_stream().stream_name("s").enforce_consumer_deletion(false).send().await;
    assert_eq!(error_code(refused), "ResourceInUseException");
    client.describe_stream_summary().stream_name("s").send().await.expect("still there");
    client
        .delete_stream()
        .stream_name("s")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .expect("DeleteStream with EnforceConsumerDeletion");
    let deleted = client.describe_stream_summary().stream_name("s").send().await;
    assert_eq!(error_code(deleted), "ResourceNotFoundException");
    let consumer = client.describe_stream_consumer().consumer_arn(&c1_arn).send().await;
    assert_eq!(error_code(consumer), "ResourceNotFoundException");

    // Deregister by consumer ARN on a fresh stream.
    create_stream(&client, "t", 1).await;
    let c3 = register(&client, "t", "c3").await;
    client
        .deregister_stream_consumer()
        .consumer_arn(&c3)
        .send()
        .await
        .expect("DeregisterStreamConsumer by ARN");
    let all = client.list_stream_consumers().stream_arn(stream_arn("t")).send().await.unwrap();
    assert!(all.consumers().is_empty());
    client.delete_stream().stream_name("t").send().await.expect("no consumers left");
}

/// Reads one event-stream message of a raw HTTP/1.1 SubscribeToShard response and returns
/// its string headers. Independent of the SDK: this checks the wire format itself.
fn first_raw_event_headers(server: &Server, consumer_arn: &str) -> Vec<(String, String)> {
    let body = serde_json::json!({
        "ConsumerARN": consumer_arn,
        "ShardId": SHARD,
        "StartingPosition": {"Type": "LATEST"},
    })
    .to_string();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Kinesis_20131202.SubscribeToShard\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no complete first event within 5 s: {bytes:?}");
        let n = stream.read(&mut buffer).expect("reading the event stream");
        assert!(n > 0, "connection closed before the first event: {bytes:?}");
        bytes.extend_from_slice(&buffer[..n]);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&bytes[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "SubscribeToShard answered {head}");
        assert!(
            head.to_ascii_lowercase().contains("application/vnd.amazon.eventstream"),
            "event-stream content type: {head}"
        );
        let body = &bytes[end + 4..];
        let decoded = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            decode_chunked(body).0
        } else {
            body.to_vec()
        };
        if decoded.len() < 12 {
            continue;
        }
        let total = u32::from_be_bytes(decoded[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(decoded[4..8].try_into().unwrap()) as usize;
        if decoded.len() < total {
            continue;
        }
        assert!(12 + headers_len + 4 <= total, "message lengths {total}/{headers_len}");
        let mut headers = Vec::new();
        let mut h = &decoded[12..12 + headers_len];
        while !h.is_empty() {
            let name_len = h[0] as usize;
            let name = String::from_utf8(h[1..1 + name_len].to_vec()).unwrap();
            let kind = h[1 + name_len];
            assert_eq!(kind, 7, "header {name} is not a string");
            let at = 2 + name_len;
            let value_len = u16::from_be_bytes([h[at], h[at + 1]]) as usize;
            let value = String::from_utf8(h[at + 2..at + 2 + value_len].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[at + 2 + value_len..];
        }
        return headers;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_shard_delivers_records_in_order_and_refuses_a_second_subscription() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    put_numbered(&client, "s", "before", 5).await;
    let consumer = register(&client, "s", "reader").await;
    wait_consumer_active(&client, &consumer).await;

    // On the wire, the first message is the initial response.
    let raw_consumer = register(&client, "s", "raw").await;
    wait_consumer_active(&client, &raw_consumer).await;
    let headers = first_raw_event_headers(&server, &raw_consumer);
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header(":message-type"), Some("event"), "{headers:?}");
    assert_eq!(header(":event-type"), Some("initial-response"), "{headers:?}");

    // The SDK's send() returns once it has read the initial response.
    let mut output = subscribe_latest(&client, &consumer).await.expect("SubscribeToShard");
    // The same consumer on the same shard again within 5 s: refused.
    let second = subscribe_latest(&client, &consumer).await;
    assert_eq!(second.err().as_deref(), Some("ResourceInUseException"));

    // LATEST: only what is written after the subscription, all of it, in order.
    let seqs = put_numbered(&client, "s", "after", 60).await;
    let got = receive(&mut output, 60).await;
    assert_eq!(got, expected("after", &seqs));
    let more = put_numbered(&client, "s", "more", 7).await;
    assert_eq!(receive(&mut output, 7).await, expected("more", &more));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistering_a_consumer_ends_its_subscription_with_an_error() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "doomed").await;
    wait_consumer_active(&client, &consumer).await;
    let mut output = subscribe_latest(&client, &consumer).await.expect("SubscribeToShard");
    let seqs = put_numbered(&client, "s", "x", 5).await;
    assert_eq!(receive(&mut output, 5).await, expected("x", &seqs));

    client
        .deregister_stream_consumer()
        .consumer_arn(&consumer)
        .send()
        .await
        .expect("DeregisterStreamConsumer");
    // The next thing the subscriber sees (after any empty events) is an error, not a clean end.
    let error = end_of_stream(&mut output, Duration::from_secs(10), "after the deregistration")
        .await
        .expect_err("the stream ended without an error event");
    assert!(
        matches!(error, SubscribeToShardEventStreamError::ResourceNotFoundException(_)),
        "expected ResourceNotFoundException, got {error:?}"
    );
}

/// A subscription ends cleanly when its lifetime is up (5 minutes in Kinesis; 2 s here through
/// `--subscription-lifetime-secs`), not before, and the consumer resubscribes after the last
/// record it got and misses nothing written in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_cleanly_after_its_lifetime_and_resubscribing_continues() {
    let server = Server::start(&["--subscription-lifetime-secs", "2"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "lives").await;
    wait_consumer_active(&client, &consumer).await;
    let subscribed = Instant::now();
    let mut output = subscribe_latest(&client, &consumer).await.expect("SubscribeToShard");
    let first = put_numbered(&client, "s", "a", 5).await;
    assert_eq!(receive(&mut output, 5).await, expected("a", &first));

    // Then only empty events until the stream ends, without an error, after about 2 s.
    end_of_stream(&mut output, Duration::from_secs(10), "a 2 s subscription")
        .await
        .unwrap_or_else(|e| panic!("the subscription ended with an error: {e:?}"));
    let ended = subscribed.elapsed();
    assert!(ended >= Duration::from_millis(1900), "ended after only {ended:?}");

    // Written while no subscription is open, then read by resubscribing after the last record.
    let second = put_numbered(&client, "s", "b", 5).await;
    let mut again = subscribe_after(&client, &consumer, first.last().unwrap())
        .await
        .expect("resubscribing after the lifetime");
    assert_eq!(receive(&mut again, 5).await, expected("b", &second));
}

/// On an empty shard the continuation is the shard's start (its StartingSequenceNumber, below
/// every record), so resubscribing after it, as the KCL does after every subscription, begins
/// at the first record instead of skipping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribing_after_an_empty_shards_continuation_delivers_the_first_record() {
    let server = Server::start(&["--subscription-lifetime-secs", "6"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "early").await;
    wait_consumer_active(&client, &consumer).await;
    let mut output = subscribe_latest(&client, &consumer).await.expect("SubscribeToShard");
    // The heartbeat (every 5 s) on the still-empty shard carries the continuation.
    let mut continuation = None;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), output.event_stream.recv())
            .await
            .expect("the 6 s subscription ends within 15 s");
        match event {
            Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))) => {
                assert!(e.records().is_empty(), "{e:?}");
                continuation = Some(e.continuation_sequence_number().to_string());
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => break,
            Err(e) => panic!("the subscription failed: {e:?}"),
        }
    }
    let continuation = continuation.expect("a heartbeat within the subscription's 6 s");
    let shards = tests::list_all_shards(&client, "s").await;
    let start = shards[0].sequence_number_range().unwrap().starting_sequence_number();
    assert_eq!(continuation, start, "the continuation of an empty shard is its start");

    let first = put_numbered(&client, "s", "a", 3).await;
    let mut again = subscribe_after(&client, &consumer, &continuation)
        .await
        .expect("resubscribing after the continuation");
    assert_eq!(receive(&mut again, 3).await, expected("a", &first), "record 0 included");
}

/// A subscriber that never reads still has its subscription ended at the end of its lifetime:
/// the pusher, blocked waiting for room for the next event, gives up then (and frees what it
/// holds) instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_ended_at_its_lifetime() {
    let server = Server::start(&["--quotas", "off", "--subscription-lifetime-secs", "2"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let stalled = register(&client, "s", "stalled").await;
    wait_consumer_active(&client, &stalled).await;
    let _never_read = subscribe_latest(&client, &stalled).await.expect("subscribe");
    // 32 MiB: far more than the event channel, HTTP/2 windows and socket buffers hold.
    let record = vec![b'x'; 64 << 10];
    for _ in 0..32 {
        let entries: Vec<PutRecordsRequestEntry> = (0..16)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{i}"))
                    .data(Blob::new(record.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client.put_records().stream_name("s").set_records(Some(entries)).send().await;
        assert_eq!(out.expect("put").failed_record_count(), Some(0));
    }
    let active = || {
        let metrics = tests::raw_request(server.addr(), "GET", "/metrics", &[], b"").unwrap();
        let text = String::from_utf8(metrics.body).unwrap();
        text.lines()
            .find(|l| {
                l.starts_with("spate_consumer_subscription_active")
                    && l.contains("consumer=\"stalled\"")
            })
            .map(|l| l.ends_with(" 1"))
            .expect("the stalled consumer's gauge")
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    while active() {
        assert!(Instant::now() < deadline, "the stalled subscription outlived its 2 s by 6 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_each_receive_the_full_stream() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let a = register(&client, "s", "a").await;
    let b = register(&client, "s", "b").await;
    wait_consumer_active(&client, &a).await;
    wait_consumer_active(&client, &b).await;
    let mut sub_a = subscribe_latest(&client, &a).await.expect("subscribe a");
    let mut sub_b = subscribe_latest(&client, &b).await.expect("subscribe b");
    let seqs = put_numbered(&client, "s", "both", 50).await;
    let want = expected("both", &seqs);
    let (got_a, got_b) = tokio::join!(receive(&mut sub_a, 50), receive(&mut sub_b, 50));
    assert_eq!(got_a, want, "consumer a");
    assert_eq!(got_b, want, "consumer b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscription_does_not_hold_up_a_graceful_shutdown() {
    let mut server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "live").await;
    wait_consumer_active(&client, &consumer).await;
    let mut output = subscribe_latest(&client, &consumer).await.expect("SubscribeToShard");
    let seqs = put_numbered(&client, "s", "x", 3).await;
    assert_eq!(receive(&mut output, 3).await, expected("x", &seqs));

    // SIGTERM while the subscription is live (and just delivered records): the event stream
    // ends at once and the server exits well within its 10 s shutdown timeout. A server that
    // only notices at the subscription's next 5 s heartbeat fails this.
    let started = Instant::now();
    let stopper = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    });
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match output.event_stream.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return started.elapsed(),
            }
        }
    })
    .await
    .expect("the event stream ends when the server shuts down");
    let _server = stopper.await.expect("stop");
    let stopped = started.elapsed();
    eprintln!("event stream ended after {ended:?}, server exited after {stopped:?}");
    assert!(
        stopped < Duration::from_secs(2),
        "graceful shutdown with a live subscription took {stopped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stream_ends_live_subscriptions_with_an_error() {
    // One core: both shards and both subscriptions live on it.
    let server = Server::start(&["--cores", "1"]);
    let client = server.client();
    create_stream(&client, "s", 2).await;
    let consumer = register(&client, "s", "c").await;
    wait_consumer_active(&client, &consumer).await;
    let mut subscriptions = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        subscriptions.push(subscribe_latest_to(&client, &consumer, shard).await.expect(shard));
    }
    // Both subscriptions just delivered records.
    let low = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .explicit_hash_key("0")
        .data(Blob::new("low"))
        .send()
        .await
        .unwrap();
    let high = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new("high"))
        .send()
        .await
        .unwrap();
    let low_got = receive(&mut subscriptions[0], 1).await;
    assert_eq!(low_got, [(low.sequence_number().to_string(), "low".to_string())]);
    let high_got = receive(&mut subscriptions[1], 1).await;
    assert_eq!(high_got, [(high.sequence_number().to_string(), "high".to_string())]);

    let started = Instant::now();
    client
        .delete_stream()
        .stream_name("s")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .expect("DeleteStream with EnforceConsumerDeletion");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "DeleteStream with live subscriptions took {took:?}");
    for (i, subscription) in subscriptions.iter_mut().enumerate() {
        let what = format!("subscription {i} after DeleteStream");
        let error = end_of_stream(subscription, Duration::from_secs(10), &what)
            .await
            .expect_err("the stream ended without an error event");
        assert!(
            matches!(error, SubscribeToShardEventStreamError::ResourceNotFoundException(_)),
            "subscription {i}: expected ResourceNotFoundException, got {error:?}"
        );
    }
}

/// A consumer that subscribes and then stops reading must not slow the producer or a second
/// consumer, and the server must not buffer the stalled consumer's backlog: its pusher waits on
/// HTTP/2 flow control with at most a couple of events in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_slows_no_one_and_memory_stays_bounded() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let stalled = register(&client, "s", "stalled").await;
    let fast = register(&client, "s", "fast").await;
    wait_consumer_active(&client, &stalled).await;
    wait_consumer_active(&client, &fast).await;
    let _never_read = subscribe_latest(&client, &stalled).await.expect("subscribe stalled");
    let mut fast_output = subscribe_latest(&client, &fast).await.expect("subscribe fast");
    let rss_before = server.rss_kib().expect("rss");
    // 64 MiB through the shard: far more than any in-flight window.
    let record = vec![b'x'; 64 << 10];
    let batches = 64;
    let producer = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            for _ in 0..batches {
                let entries: Vec<PutRecordsRequestEntry> = (0..16)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("k{i}"))
                            .data(Blob::new(record.clone()))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let out =
                    client.put_records().stream_name("s").set_records(Some(entries)).send().await;
                assert_eq!(out.expect("put").failed_record_count(), Some(0));
            }
            started.elapsed()
        })
    };
    let mut received = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < batches * 16 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), fast_output.event_stream.recv()).await {
            Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                received += e.records().len();
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("fast consumer stream ended early: {other:?}"),
        }
    }
    let producer_time = producer.await.unwrap();
    assert_eq!(received, batches * 16, "the fast consumer got the whole stream");
    assert!(producer_time < Duration::from_secs(30), "producer took {producer_time:?}");
    let rss_after = server.rss_kib().expect("rss");
    eprintln!("spated RssAnon: {rss_before} KiB before, {rss_after} KiB after 64 MiB");
    // 64 MiB went through; the stalled subscription may hold a few events (each at most 2 MiB
    // of records) but not the backlog.
    assert!(
        rss_after < rss_before + 40 * 1024,
        "server memory grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// A subscription on a shard that is split delivers the parent's records, then an event with
/// ChildShards, and ends; subscriptions to the children (TRIM_HORIZON) deliver the rest, so a
/// consumer that follows ChildShards gets every record written after it subscribed, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_follows_child_shards_across_a_split() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "follower").await;
    wait_consumer_active(&client, &consumer).await;
    let mut parent = subscribe_latest(&client, &consumer).await.expect("subscribe parent");
    let before = put_numbered(&client, "s", "before", 12).await;
    client
        .split_shard()
        .stream_name("s")
        .shard_to_split(SHARD)
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, "s").await;
    let after = put_numbered(&client, "s", "after", 30).await;
    // The parent's stream: the 12 records, then ChildShards, then the end.
    let mut got = Vec::new();
    let mut children: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "parent stream did not end");
        match tokio::time::timeout(Duration::from_secs(10), parent.event_stream.recv()).await {
            Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                for r in e.records() {
                    got.push(String::from_utf8(r.data().as_ref().to_vec()).unwrap());
                }
                if e.child_shards().is_empty() {
                    assert!(!e.continuation_sequence_number().is_empty(), "{e:?}");
                }
                if !e.child_shards().is_empty() {
                    // No continuation at the shard's end (the KCL reads null as "shard ended").
                    assert_eq!(e.continuation_sequence_number(), "", "{e:?}");
                    children = e.child_shards().iter().map(|c| c.shard_id().to_string()).collect();
                    for c in e.child_shards() {
                        assert_eq!(c.parent_shards(), [SHARD.to_string()]);
                    }
                }
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => break,
            other => panic!("parent stream failed: {other:?}"),
        }
    }
    let want_before: Vec<String> = (0..12).map(|i| format!("before-{i}")).collect();
    assert_eq!(got, want_before, "the parent delivered exactly its records, in order");
    assert_eq!(children.len(), 2, "ChildShards names both children");
    // Follow the children from their start.
    let mut after_got: Vec<(String, String)> = Vec::new();
    for child in &children {
        let position =
            StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build().unwrap();
        let mut output = client
            .subscribe_to_shard()
            .consumer_arn(&consumer)
            .shard_id(child)
            .starting_position(position)
            .send()
            .await
            .expect("subscribe child");
        let deadline = Instant::now() + Duration::from_secs(10);
        let expected_here = after.len();
        while after_got.len() < expected_here && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(1500), output.event_stream.recv())
                .await
            {
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                    if e.records().is_empty() {
                        break; // caught up on this child
                    }
                    for r in e.records() {
                        let data = String::from_utf8(r.data().as_ref().to_vec()).unwrap();
                        after_got.push((r.partition_key().unwrap_or_default().to_string(), data));
                    }
                }
                Ok(Ok(Some(_))) => {}
                _ => break,
            }
        }
    }
    assert_eq!(after_got.len(), after.len(), "every post-split record arrived once");
    // Per partition key, the post-split records arrive in the order they were put.
    for key in ["key0", "key1", "key2"] {
        let order: Vec<usize> = after_got
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, d)| d.trim_start_matches("after-").parse().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "per-key order for {key}");
    }
    let _ = before;
}

/// A reshard whose commit hangs for 7 s and then fails (`SPATE_FAILPOINT=slow-error-once:
/// reshard-commit`) leaves the parent sealed all that time, then reopens it. A subscription to
/// the parent must not announce the shard's end while the seal is not committed: the parent takes
/// writes again after the failure, and the same subscription delivers them. (The pusher used to
/// wait 5 s for the commit and then end the shard, with no children, so the consumer never saw
/// the later records.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_whose_reshard_fails_is_not_ended_for_its_subscribers() {
    let server =
        Server::start_with_env(&[], &[("SPATE_FAILPOINT", "slow-error-once:reshard-commit")]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "patient").await;
    wait_consumer_active(&client, &consumer).await;
    let mut parent = subscribe_latest(&client, &consumer).await.expect("subscribe");
    let before = put_numbered(&client, "s", "before", 3).await;
    assert_eq!(receive(&mut parent, 3).await, expected("before", &before));
    // No retries: the SDK would otherwise retry the failed split, which then succeeds.
    let splitter =
        server.client_with_retries(aws_sdk_kinesis::config::retry::RetryConfig::disabled());
    let split = tokio::spawn(async move {
        splitter
            .split_shard()
            .stream_name("s")
            .shard_to_split(SHARD)
            .new_starting_hash_key("170141183460469231731687303715884105728")
            .send()
            .await
    });
    // While the split hangs (7 s, longer than the pusher's old 5 s wait), the parent's
    // subscription stays open and announces no end.
    let started = Instant::now();
    while !split.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(30), "the split never answered");
        match tokio::time::timeout(Duration::from_millis(200), parent.event_stream.recv()).await {
            Err(_) => {}
            Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                assert!(e.records().is_empty(), "no records were put: {e:?}");
                assert!(e.child_shards().is_empty(), "the parent was ended: {e:?}");
                assert!(!e.continuation_sequence_number().is_empty(), "{e:?}");
            }
            Ok(Ok(Some(_))) => {}
            Ok(other) => panic!("the parent's subscription ended during the split: {other:?}"),
        }
    }
    let failed = split.await.unwrap().expect_err("the injected slow failure");
    assert_eq!(failed.raw_response().map(|r| r.status().as_u16()), Some(500), "{failed:?}");
    assert!(started.elapsed() >= Duration::from_secs(6), "the failpoint did not hang");
    // The parent is open again: its next records reach the same subscription.
    let after = put_numbered(&client, "s", "after", 3).await;
    assert_eq!(receive(&mut parent, 3).await, expected("after", &after));
}

/// SubscribeToShard from a sequence number past the shard's tip is InvalidArgumentException, as
/// in GetShardIterator: a subscription from there would silently skip every record written up
/// to it. AFTER the last record (the tip itself) is fine and delivers the next record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_past_the_shards_tip_is_refused() {
    let server = Server::start(&[]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    let consumer = register(&client, "s", "eager").await;
    wait_consumer_active(&client, &consumer).await;
    let seqs = put_numbered(&client, "s", "r", 3).await;
    let last = seqs.last().unwrap();
    let last_offset: u64 = last[36..].parse().unwrap();
    let at_offset = |offset: u64| format!("{}{offset:020}", &last[..36]);
    for (kind, offset) in [
        (ShardIteratorType::AtSequenceNumber, last_offset + 2),
        (ShardIteratorType::AfterSequenceNumber, last_offset + 1),
        (ShardIteratorType::AtSequenceNumber, last_offset + 1000),
    ] {
        let position = StartingPosition::builder()
            .r#type(kind.clone())
            .sequence_number(at_offset(offset))
            .build()
            .unwrap();
        let refused = client
            .subscribe_to_shard()
            .consumer_arn(&consumer)
            .shard_id(SHARD)
            .starting_position(position)
            .send()
            .await;
        assert_eq!(error_code(refused), "InvalidArgumentException", "{kind:?} {offset}");
        // A refused subscription leaves no live one behind; let the resubscribe window pass.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let mut tip = subscribe_after(&client, &consumer, last).await.expect("AFTER the last record");
    let next = put_numbered(&client, "s", "next", 1).await;
    assert_eq!(receive(&mut tip, 1).await, expected("next", &next));
}
