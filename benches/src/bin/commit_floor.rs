//! The disk's own floor for acknowledged-write latency: what an engine that answers a write only
//! after an fdatasync covers it could reach at a given arrival rate, with no HTTP, no JSON, no
//! runtime and no cross-core hop in the way.
//!
//! An open loop of RATE arrivals per second (evenly spaced, as `spate bench --rate` sends them) is
//! dealt round-robin over FILES files, like PutRecords over a stream's shards. Each file has one
//! committer thread doing ideal group commit: it takes every arrival pending, writes them
//! (SIZE bytes each) with one `pwrite`, then `fdatasync`s. An arrival's latency runs from its
//! intended time to the end of the sync that covers it, so a slow sync counts once for every
//! arrival that waited on it; fio's sync percentiles count it once.
//!
//! With MODE `pool` the files are not shards: every committer takes from one shared queue, so
//! while one file's sync is slow the next group is written and synced in another file.
//!
//!   commit_floor DIR [RATE=6000] [FILES=4] [SECONDS=10] [SIZE=1024] [MODE=shard|pool] [SPACING_US=0]
//!
//! SPACING_US: the least time between two sync starts of one file (a commit window).
//! With FLOOR_TRACE set in the environment, each sync slower than 4 ms is printed to stderr with
//! its start time, which shows whether slow syncs are random or periodic.
//!
//! Prints one JSON line: arrival latency p50/p90/p99/p999/max and sync p50/p99/p999/max in ms.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes preallocated per file before the run (fallocate, as the engine does for segments).
const FILE_BYTES: u64 = 256 * 1024 * 1024;
/// With FLOOR_TRACE set, every sync slower than this is printed to stderr.
const SLOW: Duration = Duration::from_millis(4);

struct Queue {
    pending: Mutex<(Vec<Instant>, bool)>,
    ready: Condvar,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: commit_floor DIR [RATE] [FILES] [SECONDS] [SIZE]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().expect("number"));
    let rate = arg(2, 6000).max(1);
    let files = arg(3, 4).clamp(1, 64) as usize;
    let seconds = arg(4, 10).clamp(1, 600);
    let size = arg(5, 1024).clamp(1, 1 << 20) as usize;
    let pool = match args.get(6).map(String::as_str) {
        None | Some("shard") => false,
        Some("pool") => true,
        Some(other) => panic!("MODE is shard or pool, not {other}"),
    };
    let spacing = Duration::from_micros(arg(7, 0).min(1_000_000));
    let total = (rate * seconds) as usize;
    let per_file_bytes = total as u64 * size as u64;
    assert!(per_file_bytes <= FILE_BYTES, "RATE x SECONDS x SIZE must fit in 256 MiB");

    std::fs::create_dir_all(&dir).expect("create DIR");
    let queues: Vec<Arc<Queue>> = (0..if pool { 1 } else { files })
        .map(|_| {
            Arc::new(Queue { pending: Mutex::new((Vec::new(), false)), ready: Condvar::new() })
        })
        .collect();
    let origin = Instant::now();
    let mut committers = Vec::new();
    for index in 0..files {
        let queue = &queues[index % queues.len()];
        let path = dir.join(format!("floor-{index}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("open file");
        fallocate(&file, FILE_BYTES);
        file.sync_all().expect("sync");
        let queue = Arc::clone(queue);
        committers.push(std::thread::spawn(move || {
            let committed = commit_loop(&file, &queue, size, total, spacing, origin);
            drop(file);
            let _ = std::fs::remove_file(&path);
            committed
        }));
    }

    let start = Instant::now() + Duration::from_millis(50);
    let interval = Duration::from_secs(1).as_nanos() as f64 / rate as f64;
    for i in 0..total {
        let at = start + Duration::from_nanos((i as f64 * interval) as u64);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let queue = &queues[i % queues.len()];
        queue.pending.lock().unwrap().0.push(at);
        queue.ready.notify_one();
    }
    for queue in &queues {
        queue.pending.lock().unwrap().1 = true;
        queue.ready.notify_all();
    }
    let mut latencies = Vec::with_capacity(total);
    let mut syncs = Vec::new();
    for committer in committers {
        let (l, s) = committer.join().expect("committer");
        latencies.extend(l);
        syncs.extend(s);
    }
    latencies.sort_unstable();
    syncs.sort_unstable();
    println!(
        "{{\"mode\": \"{}\", \"rate\": {rate}, \"files\": {files}, \"arrivals\": {}, \"syncs\": {}, \
         \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \"p999_ms\": {:.2}, \"max_ms\": {:.2}, \
         \"sync_p50_ms\": {:.2}, \"sync_p99_ms\": {:.2}, \"sync_p999_ms\": {:.2}, \"sync_max_ms\": {:.2}}}",
        if pool { "pool" } else { "shard" },
        latencies.len(),
        syncs.len(),
        pct(&latencies, 0.50),
        pct(&latencies, 0.90),
        pct(&latencies, 0.99),
        pct(&latencies, 0.999),
        pct(&latencies, 1.0),
        pct(&syncs, 0.50),
        pct(&syncs, 0.99),
        pct(&syncs, 0.999),
        pct(&syncs, 1.0),
    );
}

/// Group commit on one file until the arrivals end: returns arrival latencies and sync times (µs).
fn commit_loop(
    file: &File,
    queue: &Queue,
    size: usize,
    capacity: usize,
    spacing: Duration,
    origin: Instant,
) -> (Vec<u32>, Vec<u32>) {
    let buffer = vec![0xa5u8; size * 4096];
    let mut offset = 0u64;
    let mut latencies = Vec::with_capacity(capacity);
    let mut syncs = Vec::with_capacity(capacity);
    let mut group = Vec::new();
    let mut last_sync = Instant::now() - spacing;
    let trace = std::env::var_os("FLOOR_TRACE").map(|_| origin);
    loop {
        let now = Instant::now();
        if last_sync + spacing > now {
            std::thread::sleep(last_sync + spacing - now);
        }
        {
            let mut pending = queue.pending.lock().unwrap();
            while pending.0.is_empty() && !pending.1 {
                pending = queue.ready.wait(pending).unwrap();
            }
            if pending.0.is_empty() {
                break;
            }
            std::mem::swap(&mut group, &mut pending.0);
        }
        let mut left = group.len() * size;
        while left > 0 {
            let chunk = left.min(buffer.len());
            file.write_all_at(&buffer[..chunk], offset).expect("pwrite");
            offset += chunk as u64;
            left -= chunk;
        }
        let before = Instant::now();
        last_sync = before;
        file.sync_data().expect("fdatasync");
        let done = Instant::now();
        syncs.push(micros(done - before));
        if let Some(origin) = trace
            && done - before > SLOW
        {
            let at = before.saturating_duration_since(origin).as_secs_f64() * 1e3;
            let took = (done - before).as_secs_f64() * 1e3;
            eprintln!("slow sync at {at:.1} ms took {took:.1} ms ({} arrivals)", group.len());
        }
        latencies.extend(group.drain(..).map(|at| micros(done.saturating_duration_since(at))));
    }
    (latencies, syncs)
}

fn fallocate(file: &File, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}
