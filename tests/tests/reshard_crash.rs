//! Crash injection during resharding: for each step of a split and of a merge, the real
//! `spated` aborts at that step (`SPATE_FAILPOINT`), is restarted, and then must show one
//! consistent shard set (either the old one or the new one), accept writes, and return every
//! acknowledged record exactly once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;

use tests::{free_port, healthy};

fn spated() -> PathBuf {
    tests::spated_binary()
}

fn start(dir: &Path, port: u16, failpoint: Option<&str>) -> Child {
    let mut cmd = Command::new(spated());
    cmd.args(["--data-dir", dir.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--cores", "2", "--quotas", "off", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.with_extension("log")).unwrap());
    cmd.env_remove("SPATE_FAILPOINT");
    if let Some(fp) = failpoint {
        cmd.env("SPATE_FAILPOINT", fp);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(port) {
        let log = || std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("spated exited during startup ({status}):\n{}", log());
        }
        assert!(Instant::now() < deadline, "spated did not become healthy:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

async fn client(port: u16) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region("us-east-1")
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new("A", "s", None, None, "t"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    Client::new(&config)
}

/// Every record of every shard, read from TRIM_HORIZON to the end: (shard, seq) -> data.
async fn read_all(client: &Client, stream: &str) -> BTreeMap<(String, String), Vec<u8>> {
    let mut all = BTreeMap::new();
    let shards = client.list_shards().stream_name(stream).send().await.unwrap();
    for shard in shards.shards() {
        let mut it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        for _ in 0..100 {
            let page = client.get_records().shard_iterator(&it).send().await.unwrap();
            let caught_up = page.millis_behind_latest() == Some(0);
            for r in page.records() {
                let key = (shard.shard_id().to_string(), r.sequence_number().to_string());
                assert!(all.insert(key, r.data().as_ref().to_vec()).is_none(), "a record twice");
            }
            match page.next_shard_iterator() {
                Some(next) if !(caught_up && page.records().is_empty()) => it = next.to_string(),
                _ => break,
            }
        }
    }
    all
}

async fn put_some(
    client: &Client,
    stream: &str,
    tag: &str,
    acked: &mut HashMap<Vec<u8>, (String, String)>,
) {
    for i in 0..40 {
        let data = format!("{tag}-{i}").into_bytes();
        let out = client
            .put_record()
            .stream_name(stream)
            .partition_key(format!("key-{i}"))
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        acked.insert(data, (out.shard_id().to_string(), out.sequence_number().to_string()));
    }
}

async fn run_case(operation: &str, failpoint: &str) {
    let dir = std::env::temp_dir()
        .join(format!("spate-reshard-crash-{}-{operation}-{failpoint}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let mut server = start(&dir, port, Some(failpoint));
    let c = client(port).await;
    let stream = "crashy";
    c.create_stream().stream_name(stream).shard_count(2).send().await.unwrap();
    let mut acked = HashMap::new();
    put_some(&c, stream, "before", &mut acked).await;
    let result = match operation {
        "split" => c
            .split_shard()
            .stream_name(stream)
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("85070591730234615865843651857942052864")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
        _ => c
            .merge_shards()
            .stream_name(stream)
            .shard_to_merge("shardId-000000000000")
            .adjacent_shard_to_merge("shardId-000000000001")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
    };
    assert!(result.is_err(), "{operation} at {failpoint}: the server should have died");
    let status = server.wait().unwrap();
    assert!(!status.success(), "{operation} at {failpoint}: aborted");
    // Restart without the failpoint.
    let mut server = start(&dir, port, None);
    let c = client(port).await;
    let shards = c.list_shards().stream_name(stream).send().await.unwrap();
    let open: Vec<_> = shards
        .shards()
        .iter()
        .filter(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
        .collect();
    let closed = shards.shards().len() - open.len();
    let committed = failpoint == "reshard-committed";
    match (operation, committed) {
        ("split", false) | ("merge", false) => {
            assert_eq!((open.len(), closed), (2, 0), "{operation} at {failpoint}: old shard set")
        }
        ("split", true) => assert_eq!((open.len(), closed), (3, 1), "split committed"),
        _ => assert_eq!((open.len(), closed), (1, 2), "merge committed"),
    }
    // Open shards cover the whole hash-key space without overlap.
    let mut ranges: Vec<(u128, u128)> = open
        .iter()
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (r.starting_hash_key().parse().unwrap(), r.ending_hash_key().parse().unwrap())
        })
        .collect();
    ranges.sort();
    assert_eq!(ranges.first().unwrap().0, 0);
    assert_eq!(ranges.last().unwrap().1, u128::MAX);
    for w in ranges.windows(2) {
        assert_eq!(w[0].1 + 1, w[1].0, "{operation} at {failpoint}: gap or overlap");
    }
    // Writes work (no shard is stuck sealed) and nothing acknowledged is lost or duplicated.
    put_some(&c, stream, "after", &mut acked).await;
    let all = read_all(&c, stream).await;
    for (data, (shard, seq)) in &acked {
        let got = all.get(&(shard.clone(), seq.clone()));
        assert_eq!(
            got,
            Some(data),
            "{operation} at {failpoint}: lost {}",
            String::from_utf8_lossy(data)
        );
    }
    assert_eq!(all.len(), acked.len(), "{operation} at {failpoint}: unexpected extra records");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_each_step_of_split_and_merge() {
    for operation in ["split", "merge"] {
        for failpoint in [
            "reshard-updating",
            "reshard-children-created",
            "reshard-parent-sealed",
            "reshard-committed",
        ] {
            run_case(operation, failpoint).await;
        }
    }
}

/// A reshard whose catalog commit fails (an I/O error, injected once with
/// `SPATE_FAILPOINT=error-once:reshard-commit`) is undone in the running server: the client gets
/// an InternalFailure, the parent is writable again at once (not sealed until a restart), the
/// stream is ACTIVE, and the next split works with fresh shard ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reshard_commit_reopens_the_parent() {
    let dir = std::env::temp_dir().join(format!("spate-reshard-undo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let mut server = start(&dir, port, Some("error-once:reshard-commit"));
    let c = client(port).await;
    let stream = "undo";
    c.create_stream().stream_name(stream).shard_count(2).send().await.unwrap();
    let mut acked = HashMap::new();
    put_some(&c, stream, "before", &mut acked).await;
    let split = |c: Client| async move {
        c.split_shard()
            .stream_name(stream)
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("85070591730234615865843651857942052864")
            .send()
            .await
    };
    let failed = split(c.clone()).await.expect_err("the injected commit failure");
    assert_eq!(failed.raw_response().map(|r| r.status().as_u16()), Some(500), "{failed:?}");
    let summary = c.describe_stream_summary().stream_name(stream).send().await.unwrap();
    let summary = summary.stream_description_summary().unwrap();
    assert_eq!(summary.stream_status().as_str(), "ACTIVE");
    assert_eq!(summary.open_shard_count(), 2);
    // Writes to the parent's range are accepted right away (40 keys cover both shards).
    let started = Instant::now();
    put_some(&c, stream, "after-failure", &mut acked).await;
    assert!(started.elapsed() < Duration::from_secs(3), "writes waited on a sealed parent");
    split(c.clone()).await.expect("the second split");
    let shards = c.list_shards().stream_name(stream).send().await.unwrap();
    let ids: Vec<&str> = shards.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000004",
            "shardId-000000000005"
        ],
        "the failed split's child ids (2, 3) are not reused"
    );
    put_some(&c, stream, "after-split", &mut acked).await;
    let all = read_all(&c, stream).await;
    for (data, (shard, seq)) in &acked {
        let got = all.get(&(shard.clone(), seq.clone()));
        assert_eq!(got, Some(data), "lost {}", String::from_utf8_lossy(data));
    }
    assert_eq!(all.len(), acked.len(), "unexpected extra records");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
