//! On-demand capacity: sustained writes above what the open shards can take make the autoscaler
//! split shards until throttling stops; when the load goes away, cold shards merge back down to
//! the configured floor.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamMode, StreamModeDetails};

use tests::{free_port, healthy};

fn spated() -> PathBuf {
    tests::spated_binary()
}

async fn open_shards(client: &Client, stream: &str) -> usize {
    let s = client.describe_stream_summary().stream_name(stream).send().await.unwrap();
    s.stream_description_summary().unwrap().open_shard_count() as usize
}

/// Sends one PutRecords of 100 x 10 KiB records with random keys; returns (sent, throttled).
async fn put_batch(client: &Client, stream: &str, seed: &mut u64) -> (usize, usize) {
    let mut entries = Vec::new();
    for _ in 0..100 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        entries.push(
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{}", *seed))
                .data(Blob::new(vec![7u8; 10 << 10]))
                .build()
                .unwrap(),
        );
    }
    let out =
        client.put_records().stream_name(stream).set_records(Some(entries)).send().await.unwrap();
    let throttled = out
        .records()
        .iter()
        .filter(|r| r.error_code() == Some("ProvisionedThroughputExceededException"))
        .count();
    let other: Vec<_> = out
        .records()
        .iter()
        .filter_map(|r| {
            r.error_code()
                .filter(|c| *c != "ProvisionedThroughputExceededException")
                .map(|c| (c.to_string(), r.error_message().unwrap_or("").to_string()))
        })
        .collect();
    assert!(other.is_empty(), "only throttling fails: {other:?}");
    (100, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_splits_under_load_and_merges_when_idle() {
    let dir = std::env::temp_dir().join(format!("spate-autoscale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let mut server = Command::new(spated())
        .args(["--data-dir", dir.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--cores", "2", "--log-level", "warn", "--autoscale-interval-secs", "1"])
        .args(["--on-demand-min-shards", "2", "--on-demand-max-shards", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(port) {
        assert!(Instant::now() < deadline, "spated did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region("us-east-1")
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new("A", "s", None, None, "t"))
        .load()
        .await;
    let client = Client::new(&config);
    let stream = "elastic";
    client
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(open_shards(&client, stream).await, 4, "ON_DEMAND starts with 4 shards");
    // 6 MiB/s against 4 shards of 1 MiB/s each: about a third is throttled at first.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let start = Instant::now();
    let mut first_second_throttled = None;
    let mut calm_seconds = 0;
    while start.elapsed() < Duration::from_secs(40) && calm_seconds < 3 {
        let second = Instant::now();
        let (mut sent, mut throttled) = (0, 0);
        for _ in 0..6 {
            let (s, t) = put_batch(&client, stream, &mut seed).await;
            sent += s;
            throttled += t;
        }
        first_second_throttled.get_or_insert(throttled as f64 / sent as f64);
        calm_seconds = if throttled == 0 { calm_seconds + 1 } else { 0 };
        if let Some(rest) = Duration::from_secs(1).checked_sub(second.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let first = first_second_throttled.unwrap();
    assert!(first > 0.15, "the load exceeded 4 shards at first (throttled {first:.2})");
    assert_eq!(calm_seconds, 3, "throttling stopped within 40 s");
    let grown = open_shards(&client, stream).await;
    assert!(grown > 4, "the autoscaler added shards ({grown})");
    let metrics = reqwest_metrics(port);
    assert!(
        metrics.contains("spate_autoscaler_decisions_total{stream=\"elastic\",action=\"split\""),
        "{metrics}"
    );
    // Idle: cold adjacent shards merge down to the floor of 2.
    let idle = Instant::now();
    while open_shards(&client, stream).await > 2 && idle.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(open_shards(&client, stream).await, 2, "merged back down to the floor");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn reqwest_metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
