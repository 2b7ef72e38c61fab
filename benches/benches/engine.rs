//! Engine benchmarks on real files (glommio io_uring + mmap): append throughput with group
//! commit, warm read throughput, recovery time after `kill -9`, index lookups.
//!
//! `cargo bench -p benches --bench engine -- <what> [options]`, where <what> is one of
//! `append`, `read`, `lookup`, `recovery`, or `all` (the default). `benches/engine.sh` runs
//! them next to `fio` on the same disk. Output: one line of `key=value` per result.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use engine::{
    Clock, Durability, GlommioStorage, LogConfig, NewRecord, ShardIdentity, ShardLog, SystemClock,
};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_arg() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("spate-bench-{}", std::process::id())))
}

fn run<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .io_memory(1 << 20)
        .make()
        .expect("executor")
        .run(f)
}

async fn open(dir: &Path, index: u32, durability: Durability) -> ShardLog<GlommioStorage> {
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    ShardLog::open(
        GlommioStorage,
        clock,
        dir.to_path_buf(),
        ShardIdentity { incarnation: 1, shard_index: index },
        LogConfig { durability, ..LogConfig::default() },
    )
    .await
    .expect("open")
}

fn batch(records: usize, size: usize, seed: u64) -> Vec<NewRecord> {
    (0..records)
        .map(|i| NewRecord {
            partition_key: Bytes::from(format!("key-{seed}-{i}")),
            data: Bytes::from(vec![(i as u8) ^ (seed as u8); size]),
        })
        .collect()
}

/// Appends `total_mb` of 1 KiB records in batches of 500 from `writers` concurrent tasks on one
/// shard (their batches share syncs: group commit), durability `always`.
fn bench_append(dir: &Path) {
    let total_mb = arg("--mb", 512);
    let writers = arg("--writers", 4) as usize;
    let record_bytes = 1024usize;
    let batch_records = 500usize;
    let batches = (total_mb as usize * 1024 * 1024) / (record_bytes * batch_records);
    let dir = dir.join("append");
    let _ = std::fs::remove_dir_all(&dir);
    let (elapsed, bytes) = run(async move {
        let log = Rc::new(open(&dir, 0, Durability::Always).await);
        let template = Rc::new(batch(batch_records, record_bytes, 1));
        let start = Instant::now();
        let per_writer = batches / writers;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let log = log.clone();
                let template = template.clone();
                glommio::spawn_local(async move {
                    for _ in 0..per_writer {
                        log.append(&template).await.expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let elapsed = start.elapsed();
        let bytes = (per_writer * writers * batch_records * record_bytes) as f64;
        log.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (elapsed, bytes)
    });
    let mib_s = bytes / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!(
        "bench=append writers={writers} record_bytes={record_bytes} batch={batch_records} durability=always \
         mib={:.0} seconds={:.3} mib_per_s={mib_s:.1} records_per_s={:.0}",
        bytes / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        bytes / record_bytes as f64 / elapsed.as_secs_f64()
    );
}

/// Reads a warm segment in GetRecords-sized reads (10,000 records, 10 MiB cap), verifying CRCs.
fn bench_read(dir: &Path) {
    let total_mb = arg("--mb", 256);
    let dir = dir.join("read");
    let _ = std::fs::remove_dir_all(&dir);
    run(async move {
        let log = open(&dir, 0, Durability::Never).await;
        let template = batch(500, 1024, 2);
        let batches = total_mb as usize * 1024 * 1024 / (500 * 1024);
        for _ in 0..batches {
            log.append(&template).await.unwrap();
        }
        let end = log.next_offset();
        // Warm pass, then timed passes.
        let mut best = f64::MAX;
        let mut bytes = 0u64;
        for pass in 0..4 {
            let start = Instant::now();
            let mut offset = 0;
            bytes = 0;
            while offset < end {
                let b = log.read(offset, 10_000, 10 << 20).unwrap();
                for r in &b.records {
                    bytes += (r.data.len() + r.partition_key.len()) as u64;
                }
                offset = b.next_offset;
            }
            if pass > 0 {
                best = best.min(start.elapsed().as_secs_f64());
            }
        }
        println!(
            "bench=read records={end} mib={:.0} seconds={best:.3} gb_per_s={:.2}",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / best / 1e9
        );
        log.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// Index lookups by offset (a 1-record read at a random offset) and by timestamp.
fn bench_lookup(dir: &Path) {
    let dir = dir.join("lookup");
    let _ = std::fs::remove_dir_all(&dir);
    run(async move {
        let log = open(&dir, 0, Durability::Never).await;
        let template = batch(100, 1024, 3);
        for _ in 0..2000 {
            log.append(&template).await.unwrap();
        }
        let end = log.next_offset();
        let first_ms = log.read(0, 1, 1 << 20).unwrap().records[0].arrival_ms;
        let last_ms = log.last_arrival_ms().unwrap();
        let n = 100_000u64;
        let mut x = 88172645463325252u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let start = Instant::now();
        for _ in 0..n {
            let offset = next() % end;
            let b = log.read(offset, 1, 1 << 20).unwrap();
            assert_eq!(b.records[0].offset, offset);
        }
        let by_offset = start.elapsed().as_secs_f64() / n as f64 * 1e6;
        let span = (last_ms - first_ms).max(1) as u64;
        let start = Instant::now();
        for _ in 0..n {
            let ts = first_ms + (next() % span) as i64;
            let o = log.offset_at_timestamp(ts).unwrap();
            assert!(o <= end);
        }
        let by_time = start.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!(
            "bench=lookup records={end} segments={} offset_lookup_us={by_offset:.2} timestamp_lookup_us={by_time:.2}",
            log.segment_count()
        );
        log.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// Fills `--shards` shards with `--mb-per-shard` each in a child process, kills it with
/// SIGKILL, then times reopening (recovering) every shard.
fn bench_recovery(dir: &Path) {
    let shards = arg("--shards", 1000) as u32;
    let mb_per_shard = arg("--mb-per-shard", 10);
    let dir = dir.join(format!("recovery-{shards}x{mb_per_shard}"));
    if std::env::var("SPATE_RECOVERY_CHILD").is_ok() {
        // Child: fill, then report and wait to be killed.
        run(async move {
            let template = Rc::new(batch(500, 1024, 4));
            let batches = (mb_per_shard as usize * 1024 * 1024) / (500 * 1024);
            let mut logs = Vec::new();
            for s in 0..shards {
                logs.push(Rc::new(open(&dir.join(format!("{s:06}")), s, Durability::Never).await));
            }
            for round in 0..batches {
                for log in &logs {
                    log.append(&template).await.unwrap();
                }
                let _ = round;
            }
            // Durable data plus an unsynced tail, like a live server: sync, then append more.
            for log in &logs {
                log.sync().await.unwrap();
                log.append(&template[..50]).await.unwrap();
            }
            println!("FILLED");
            use std::io::Write;
            std::io::stdout().flush().unwrap();
            glommio::timer::sleep(std::time::Duration::from_secs(3600)).await;
        });
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(std::env::args().skip(1))
        .env("SPATE_RECOVERY_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let fill_start = Instant::now();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("FILLED") => break,
            Some(_) => {}
            None => panic!("child died"),
        }
    }
    let fill = fill_start.elapsed();
    unsafe { libc_kill(child.id() as i32) };
    let _ = child.wait();
    // Drop the page cache? Not possible without root on every machine; recovery reads only
    // headers, indexes and the tail, which is what we measure.
    let d = dir.clone();
    let (elapsed, records) = run(async move {
        let start = Instant::now();
        // Shards recover concurrently on the core, as spated opens them: their I/O overlaps in
        // io_uring.
        let tasks: Vec<_> = (0..shards)
            .map(|s| {
                let d = d.clone();
                glommio::spawn_local(async move {
                    let log = open(&d.join(format!("{s:06}")), s, Durability::Always).await;
                    log.next_offset()
                })
            })
            .collect();
        let mut records = 0u64;
        for t in tasks {
            records += t.await;
        }
        (start.elapsed(), records)
    });
    let total_mib = shards as u64 * mb_per_shard;
    println!(
        "bench=recovery shards={shards} mib={total_mib} records={records} fill_seconds={:.1} recovery_seconds={:.3}",
        fill.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

unsafe fn libc_kill(pid: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    unsafe {
        kill(pid, 9);
    }
}

fn main() {
    let what =
        std::env::args().nth(1).filter(|a| !a.starts_with('-')).unwrap_or_else(|| "all".into());
    // `cargo bench` passes `--bench`; ignore it.
    let dir = dir_arg();
    std::fs::create_dir_all(&dir).unwrap();
    match what.as_str() {
        "append" => bench_append(&dir),
        "read" => bench_read(&dir),
        "lookup" => bench_lookup(&dir),
        "recovery" => bench_recovery(&dir),
        _ => {
            bench_append(&dir);
            bench_read(&dir);
            bench_lookup(&dir);
        }
    }
}
