//! The data directory as users write it, and catalog transitions that fail halfway.
//!
//! `spated`'s default data directory is the relative `./spate-data`, and glommio opened relative
//! paths against an invalid directory descriptor, so on a fresh machine the README's own command
//! failed every CreateStream with EBADF and left the stream CREATING forever. These tests start
//! the real `spated` from a working directory of their own with relative, `.`, `..` and symlinked
//! data directories (`tests/readme.sh` runs the README itself), and inject storage failures into
//! CreateStream and the catalog's directory sync.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;

use tests::{free_port, healthy};

/// A fresh working directory under the system's temporary directory.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spate-datadir-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `spated` in `cwd` with `--data-dir data_dir` (as given, not resolved).
fn start(cwd: &Path, data_dir: &str, port: u16, failpoint: Option<&str>) -> Child {
    let log = cwd.join("spated.log");
    let mut cmd = Command::new(tests::spated_binary());
    cmd.current_dir(cwd)
        .args(["--data-dir", data_dir, "--listen", &format!("127.0.0.1:{port}")])
        .args(["--cores", "2", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    cmd.env_remove("SPATE_FAILPOINT");
    if let Some(fp) = failpoint {
        cmd.env("SPATE_FAILPOINT", fp);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(port) {
        let log = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("spated exited during startup ({status}):\n{}", log());
        }
        assert!(Instant::now() < deadline, "spated did not become healthy:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "spated exited with {status} on SIGTERM");
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

/// Creates `stream`, puts one record and reads it back from its shard.
async fn create_put_get(c: &Client, stream: &str) {
    c.create_stream().stream_name(stream).shard_count(2).send().await.expect("CreateStream");
    let summary = c.describe_stream_summary().stream_name(stream).send().await.unwrap();
    assert_eq!(summary.stream_description_summary().unwrap().stream_status().as_str(), "ACTIVE");
    let put = c
        .put_record()
        .stream_name(stream)
        .partition_key("k1")
        .data(Blob::new(b"hello".to_vec()))
        .send()
        .await
        .expect("PutRecord");
    assert_eq!(read_shard(c, stream, put.shard_id()).await, vec![b"hello".to_vec()]);
}

async fn read_shard(c: &Client, stream: &str, shard: &str) -> Vec<Vec<u8>> {
    let contents = tests::read_shard(c, stream, shard).await;
    contents.records.iter().map(|r| r.data().as_ref().to_vec()).collect()
}

/// Relative, `.`, `..` and symlinked data directories all work, and survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_the_data_directory_works() {
    let cwd = workdir("spellings");
    std::fs::create_dir_all(cwd.join("sub")).unwrap();
    std::fs::create_dir_all(cwd.join("real")).unwrap();
    std::os::unix::fs::symlink(cwd.join("real"), cwd.join("link")).unwrap();
    std::fs::create_dir_all(cwd.join("dot")).unwrap();
    for (i, data_dir) in
        ["spate-data", "./spate-data-2", "sub/../up", "link", "."].iter().enumerate()
    {
        // `.` is the working directory itself: give it one of its own.
        let run_in = if *data_dir == "." { cwd.join("dot") } else { cwd.clone() };
        let port = free_port();
        let child = start(&run_in, data_dir, port, None);
        let c = client(port).await;
        let stream = format!("s{i}");
        create_put_get(&c, &stream).await;
        stop(child);
        let child = start(&run_in, data_dir, port, None);
        let put = c.list_shards().stream_name(&stream).send().await.unwrap();
        let mut all = Vec::new();
        for shard in put.shards() {
            all.extend(read_shard(&c, &stream, shard.shard_id()).await);
        }
        assert_eq!(all, vec![b"hello".to_vec()], "{data_dir}: the record after a restart");
        stop(child);
    }
    assert!(cwd.join("real/streams").is_dir(), "the symlink's target holds the data");
    assert!(cwd.join("up/streams").is_dir(), "sub/../up resolves to ./up");
    let _ = std::fs::remove_dir_all(&cwd);
}

/// A CreateStream whose shards cannot be opened (an I/O error, injected once with
/// `SPATE_FAILPOINT=error-once:open-shards`) answers the error and leaves no stream behind: not
/// CREATING forever, invisible to ListStreams, and the name is free for the next CreateStream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_stream_that_cannot_open_its_shards_is_removed() {
    let cwd = workdir("create-fails");
    let port = free_port();
    let child = start(&cwd, "data", port, Some("error-once:open-shards"));
    let c = client(port).await;
    let failed = c.create_stream().stream_name("demo").shard_count(2).send().await;
    let failed = failed.expect_err("the injected failure");
    assert_eq!(failed.raw_response().map(|r| r.status().as_u16()), Some(500), "{failed:?}");
    let streams = c.list_streams().send().await.unwrap();
    assert!(streams.stream_names().is_empty(), "left behind: {:?}", streams.stream_names());
    let missing = c.describe_stream_summary().stream_name("demo").send().await;
    assert_eq!(tests::error_code(missing), "ResourceNotFoundException");
    create_put_get(&c, "demo").await;
    stop(child);
    let _ = std::fs::remove_dir_all(&cwd);
}

/// When the catalog's directory cannot be synced after the new catalog was renamed into place,
/// the change is not published as if it were durable: the server retries, then stops (systemd
/// restarts it), and the client does not get a success. After a restart the stream is there
/// whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_that_cannot_be_synced_stops_the_server() {
    let cwd = workdir("dir-sync-fails");
    let port = free_port();
    let mut child = start(&cwd, "data", port, Some("error:catalog-dir-sync"));
    let c = client(port).await;
    let answer = c.create_stream().stream_name("demo").shard_count(2).send().await;
    assert!(answer.is_err(), "CreateStream succeeded on a catalog that is not durable");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "spated kept serving");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "spated stops with status 1");
    let log = std::fs::read_to_string(cwd.join("spated.log")).unwrap();
    assert!(log.contains("cannot be synced"), "{log}");
    let child = start(&cwd, "data", port, None);
    let streams = c.list_streams().send().await.unwrap();
    match streams.stream_names() {
        [] => {}
        [name] if name == "demo" => {
            let summary = c.describe_stream_summary().stream_name("demo").send().await.unwrap();
            let status = summary.stream_description_summary().unwrap().stream_status().clone();
            assert_eq!(status.as_str(), "ACTIVE", "startup finishes the creation");
        }
        other => panic!("unexpected streams {other:?}"),
    }
    c.create_stream().stream_name("other").shard_count(1).send().await.expect("CreateStream");
    stop(child);
    let _ = std::fs::remove_dir_all(&cwd);
}

/// UpdateShardCount commits its reshard and its rolling-day record in one catalog commit: with
/// two, a crash between them kept the new shards but lost the record (and with it the daily
/// limit), and the second commit could fail after the first had answered nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_shard_count_commits_the_catalog_once() {
    let server = tests::Server::start(&["--quotas", "off"]);
    let c = server.client();
    tests::create_stream(&c, "u", 2).await;
    let catalog = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(server.data_dir().join("catalog.json")).unwrap())
            .unwrap()
    };
    let before = catalog()["version"].as_u64().unwrap();
    c.update_shard_count()
        .stream_name("u")
        .target_shard_count(4)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    let after = catalog();
    // One in-memory publish of UPDATING (a version, not written), then one commit.
    assert_eq!(after["version"].as_u64().unwrap(), before + 2, "{after}");
    assert_eq!(after["streams"]["u"]["shard_count_updates_ms"].as_array().unwrap().len(), 1);
    assert_eq!(after["streams"]["u"]["status"], "ACTIVE");
}

/// UpdateShardCount seals its parents all at once. Each seal is made a second slower
/// (`SPATE_FAILPOINT=slow:seal`, the shard sealed meanwhile); one after another, eight parents
/// kept writers to the first one waiting eight seconds, past their retry budget (about 3.5 s,
/// then 503). Concurrently, the reshard takes about one second and every write succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_shard_count_seals_its_parents_concurrently() {
    let server =
        tests::Server::start_with_env(&["--quotas", "off"], &[("SPATE_FAILPOINT", "slow:seal")]);
    let c = server.client_with_retries(aws_sdk_kinesis::config::retry::RetryConfig::disabled());
    tests::create_stream(&c, "wide", 8).await;
    let writer = c.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let writes = tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut i = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            i += 1;
            let put = writer
                .put_record()
                .stream_name("wide")
                .partition_key(format!("k{i}"))
                .data(Blob::new(format!("r{i}")))
                .send()
                .await;
            match put {
                Ok(_) => ok += 1,
                Err(e) => failed.push(format!("{e:?}")),
            }
        }
        (ok, failed)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    c.update_shard_count()
        .stream_name("wide")
        .target_shard_count(16)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount");
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = writes.await.unwrap();
    // Eight one-second seals: about 1 s together, 8 s one after another.
    assert!(took < Duration::from_secs(4), "UpdateShardCount took {took:?}");
    assert!(ok > 0 && failed.is_empty(), "{ok} writes succeeded, failed: {failed:?}");
}
