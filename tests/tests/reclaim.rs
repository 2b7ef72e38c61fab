//! Closed shards are reclaimed once retention has passed their records, as on Kinesis: they
//! leave ListShards and DescribeStream, GetShardIterator on them is ResourceNotFoundException,
//! their directories are deleted, and a restart does not bring them back. Time moves through
//! the clock seam: the restarted `spated` runs `SPATE_TEST_CLOCK_OFFSET_MS` ahead.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;

use tests::{Server, error_code, list_all_shards, read_shard};

const HOUR_MS: i64 = 3_600_000;

async fn shard_ids(c: &Client, stream: &str) -> Vec<String> {
    list_all_shards(c, stream).await.iter().map(|s| s.shard_id().to_string()).collect()
}

async fn described_ids(c: &Client, stream: &str) -> Vec<String> {
    let d = c.describe_stream().stream_name(stream).send().await.unwrap();
    d.stream_description().unwrap().shards().iter().map(|s| s.shard_id().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_shards_past_retention_are_reclaimed() {
    let mut server = Server::start(&["--quotas", "off"]);
    let c = server.client();
    let stream = "reclaim";
    tests::create_stream(&c, stream, 1).await;
    for i in 0..10 {
        let data = Blob::new(format!("before-{i}"));
        c.put_record()
            .stream_name(stream)
            .partition_key(format!("k{i}"))
            .data(data)
            .send()
            .await
            .unwrap();
    }
    c.split_shard()
        .stream_name(stream)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    tests::wait_active(&c, stream).await;
    for i in 0..10 {
        let data = Blob::new(format!("after-{i}"));
        c.put_record()
            .stream_name(stream)
            .partition_key(format!("k{i}"))
            .data(data)
            .send()
            .await
            .unwrap();
    }
    let parent_dir = server.data_dir().join("streams/1/000000000000");
    assert!(parent_dir.is_dir(), "{} exists before", parent_dir.display());
    let all = ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"];

    // 23 hours later, within the 24-hour retention: the closed parent stays.
    server.stop();
    server.set_env("SPATE_TEST_CLOCK_OFFSET_MS", &(23 * HOUR_MS).to_string());
    server.start_again();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(shard_ids(&c, stream).await, all);
    assert_eq!(read_shard(&c, stream, "shardId-000000000000").await.records.len(), 10);

    // 25 hours later: every record of the parent has passed retention, and it is reclaimed.
    server.stop();
    server.set_env("SPATE_TEST_CLOCK_OFFSET_MS", &(25 * HOUR_MS).to_string());
    server.start_again();
    // (ListShards already hid the expired parent before; the directory going is the reclaim.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while parent_dir.exists() {
        assert!(Instant::now() < deadline, "the closed parent was not reclaimed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let children = ["shardId-000000000001", "shardId-000000000002"];
    assert_eq!(shard_ids(&c, stream).await, children, "ListShards");
    assert_eq!(described_ids(&c, stream).await, children, "DescribeStream");
    let gone = c
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await;
    assert_eq!(error_code(gone), "ResourceNotFoundException");
    assert!(!parent_dir.exists(), "{} is deleted", parent_dir.display());
    // The children still name their parent, and keep working.
    let shards = list_all_shards(&c, stream).await;
    assert!(shards.iter().all(|s| s.parent_shard_id() == Some("shardId-000000000000")));
    let summary = c.describe_stream_summary().stream_name(stream).send().await.unwrap();
    assert_eq!(summary.stream_description_summary().unwrap().open_shard_count(), 2);
    let put = c
        .put_record()
        .stream_name(stream)
        .partition_key("k")
        .data(Blob::new("later"))
        .send()
        .await
        .unwrap();
    let got = read_shard(&c, stream, put.shard_id()).await;
    assert!(got.records.iter().any(|r| r.data().as_ref() == b"later"));

    // A restart does not bring it back.
    server.stop();
    server.start_again();
    assert_eq!(shard_ids(&c, stream).await, children, "after a restart");
    assert!(!parent_dir.exists());
    let metrics = tests::raw_request(server.addr(), "GET", "/metrics", &[], b"").unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(!text.contains("shard=\"shardId-000000000000\""), "no series for the reclaimed shard");
}
