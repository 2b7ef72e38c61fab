//! Crash and fault tests: a crash at every write and sync point, torn tails, bit flips,
//! missing indexes, ENOSPC, group commit, and a real `kill -9` of a child process.

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::*;
use engine::{
    Clock, Durability, Error, GlommioStorage, LogConfig, ManualClock, ShardLog, SimStorage,
};
use futures_lite::future::block_on;

/// One acknowledged record: (offset, key, data).
type Acked = Vec<(u64, Vec<u8>, Vec<u8>)>;

/// Appends batches until the storage crashes or the workload ends. Returns what was acked.
async fn workload(storage: &SimStorage, clock: &ManualClock, seed: u64) -> Acked {
    let mut rng = Rng::new(seed);
    let mut acked = Acked::new();
    let Ok(log) = try_open(storage, clock, 4096).await else { return acked };
    for round in 0..30 {
        let n = 1 + rng.below(6) as usize;
        let batch: Vec<_> = (0..n)
            .map(|i| {
                let len = rng.below(700) as usize;
                record(&format!("k{round}-{i}"), rng.bytes(len))
            })
            .collect();
        match log.append(&batch).await {
            Ok(result) => {
                for (i, r) in batch.iter().enumerate() {
                    acked.push((
                        result.first_offset + i as u64,
                        r.partition_key.to_vec(),
                        r.data.to_vec(),
                    ));
                }
            }
            Err(_) => break,
        }
        if round % 7 == 6 && log.enforce_retention(1).await.is_err() {
            break;
        }
        clock.advance_ms(10);
    }
    acked
}

async fn check_recovered(storage: &SimStorage, clock: &ManualClock, acked: &Acked, label: &str) {
    let log =
        try_open(storage, clock, 4096).await.unwrap_or_else(|e| panic!("{label}: reopen: {e}"));
    let horizon = log.trim_horizon();
    let next = log.next_offset();
    let last_acked = acked.last().map_or(0, |a| a.0 + 1);
    assert!(next >= last_acked, "{label}: next {next} < acked end {last_acked}");
    // Every acknowledged record at or above the horizon is present and intact; nothing damaged
    // is ever served (the read checks CRCs).
    let batch =
        log.read(0, usize::MAX, usize::MAX).unwrap_or_else(|e| panic!("{label}: read: {e}"));
    assert_eq!(
        batch.records.len() as u64,
        next - horizon,
        "{label}: records missing in the middle"
    );
    for (offset, key, data) in acked.iter().filter(|a| a.0 >= horizon) {
        let r = &batch.records[(offset - horizon) as usize];
        assert_eq!(r.offset, *offset, "{label}");
        assert_eq!(&r.partition_key[..], &key[..], "{label}: key of {offset}");
        assert_eq!(&r.data[..], &data[..], "{label}: data of {offset}");
    }
    // Offsets continue strictly increasing after recovery.
    let result = log.append(&[record("after", b"x".to_vec())]).await.expect("append after");
    assert_eq!(result.first_offset, next, "{label}");
    let again = log.read(next, 1, usize::MAX).unwrap();
    assert_eq!(&again.records[0].data[..], b"x");
}

#[test]
fn crash_at_every_write_and_sync_point() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        // Count the operations of a full run first.
        let probe = SimStorage::new();
        workload(&probe, &clock, 1).await;
        let total = probe.operations();
        assert!(total > 100, "workload too small: {total} operations");
        for crash_at in 1..=total {
            for image_seed in 0..3 {
                let clock = ManualClock::new(1_700_000_000_000);
                let storage = SimStorage::new();
                storage.crash_at_operation(crash_at);
                let acked = workload(&storage, &clock, 1).await;
                let image = storage.crash_image(crash_at * 31 + image_seed);
                let label = format!("crash at op {crash_at}/{total}, image {image_seed}");
                check_recovered(&image, &clock, &acked, &label).await;
            }
            // Unsynced writes surviving as a random subset of (512-byte) pages, not a prefix.
            for image_seed in 0..2 {
                let clock = ManualClock::new(1_700_000_000_000);
                let storage = SimStorage::new();
                storage.crash_at_operation(crash_at);
                let acked = workload(&storage, &clock, 1).await;
                let image = storage.crash_image_scattered(crash_at * 31 + image_seed, 512);
                let label = format!("crash at op {crash_at}/{total}, scattered image {image_seed}");
                check_recovered(&image, &clock, &acked, &label).await;
            }
        }
    });
}

fn segment_paths(storage: &SimStorage) -> Vec<PathBuf> {
    storage.file_names().into_iter().filter(|p| p.extension().is_some_and(|e| e == "log")).collect()
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 1 << 20).await;
        for i in 0..10 {
            log.append(&[record("k", vec![i; 100])]).await.unwrap();
        }
        drop(log);
        // Tear the last frame: cut 50 bytes off the end of the written data.
        let path = segment_paths(&storage).pop().unwrap();
        let contents = storage.contents(&path).unwrap();
        let end = contents.iter().rposition(|&b| b != 0).unwrap() + 1;
        let file_storage = storage.clone();
        {
            use engine::{Storage, StorageFile};
            let f = file_storage.open(&path).await.unwrap();
            f.write_at(end as u64 - 50, vec![0xAB; 50]).await.unwrap();
            f.sync().await.unwrap();
        }
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 9, "the damaged last record is cut");
        let r = log.append(&[record("k", vec![42; 10])]).await.unwrap();
        assert_eq!(r.first_offset, 9);
        drop(log);
        let log = open(&storage, &clock, 1 << 20).await;
        let batch = log.read(0, 100, usize::MAX).unwrap();
        assert_eq!(batch.records.len(), 10);
        assert_eq!(&batch.records[9].data[..], &[42; 10]);
    });
}

#[test]
fn bit_flip_in_old_segment_is_detected_not_served() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        for i in 0..60u8 {
            log.append(&[record("key", vec![i; 200])]).await.unwrap();
        }
        assert!(log.segment_count() > 3);
        drop(log);
        let mut paths = segment_paths(&storage);
        paths.sort();
        let old = &paths[0];
        // Flip a bit inside the data of the third record of the oldest segment.
        let position = 64 + 2 * (32 + 3 + 200) + 32 + 3 + 17;
        storage.flip_bit(old, position as u64, 5);
        let log = open(&storage, &clock, 4096).await;
        // Records before the damage are served; the damaged one never is.
        let batch = log.read(0, 100, usize::MAX).unwrap();
        assert_eq!(batch.records.len(), 2);
        match log.read(2, 100, usize::MAX) {
            Err(Error::Corruption { path, .. }) => assert!(path.ends_with(".log")),
            other => panic!("expected corruption, got {other:?}"),
        }
        // Records in later segments are still readable.
        let later = log.read(40, 5, usize::MAX).unwrap();
        assert_eq!(later.records[0].offset, 40);
        assert_eq!(&later.records[0].data[..], &[40u8; 200]);
        // The offline checker reports it by file and position.
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert!(problems.iter().any(|p| p.path == *old), "{problems:?}");
    });
}

#[test]
fn missing_or_corrupt_index_is_rebuilt() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 8192).await;
        for i in 0..200u32 {
            clock.advance_ms(1);
            log.append(&[record("key", i.to_le_bytes().repeat(20))]).await.unwrap();
        }
        let expected = log.read(0, 1000, usize::MAX).unwrap().records;
        let ts = expected[77].arrival_ms;
        drop(log);
        let mut indexes: Vec<PathBuf> = storage
            .file_names()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "idx"))
            .collect();
        indexes.sort();
        assert!(indexes.len() >= 3);
        storage.delete_now(&indexes[0]);
        storage.flip_bit(&indexes[1], 40, 1);
        storage.delete_now(indexes.last().unwrap());
        let log = open(&storage, &clock, 8192).await;
        assert_eq!(log.next_offset(), 200);
        assert_eq!(log.read(0, 1000, usize::MAX).unwrap().records, expected);
        assert_eq!(log.offset_at_timestamp(ts).unwrap(), 77);
        assert!(storage.contents(&indexes[0]).is_some(), "index rebuilt on disk");
    });
}

#[test]
fn disk_full_fails_cleanly_and_recovers() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        for i in 0..5u8 {
            log.append(&[record("k", vec![i; 300])]).await.unwrap();
        }
        storage.set_disk_full(true);
        let mut saw_disk_full = false;
        for i in 0..20u8 {
            match log.append(&[record("k", vec![100 + i; 300])]).await {
                Err(Error::DiskFull) => saw_disk_full = true,
                Err(other) => panic!("unexpected error {other}"),
                Ok(_) => {}
            }
        }
        assert!(saw_disk_full, "ENOSPC surfaced as DiskFull");
        let before = log.next_offset();
        let acked_before = log.read(0, 1000, usize::MAX).unwrap().records;
        storage.set_disk_full(false);
        let r = log.append(&[record("k", vec![7; 10])]).await.unwrap();
        assert_eq!(r.first_offset, before);
        drop(log);
        let log = open(&storage, &clock, 4096).await;
        let all = log.read(0, 1000, usize::MAX).unwrap().records;
        assert_eq!(&all[..acked_before.len()], &acked_before[..]);
        assert_eq!(all.len(), acked_before.len() + 1);
    });
}

#[test]
fn retention_frees_space_on_a_full_disk() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        for i in 0..40u8 {
            log.append(&[record("k", vec![i; 300])]).await.unwrap();
        }
        let segments = segment_paths(&storage).len();
        assert!(segments >= 3, "{segments} segments");
        // Everything expires while the disk is full: the expired active segment cannot be
        // rolled (no space for the next one), but the older expired segments still go.
        clock.advance_ms(25 * 3_600_000);
        storage.set_disk_full(true);
        assert!(matches!(log.enforce_retention(24 * 3_600_000).await, Err(Error::DiskFull)));
        assert_eq!(segment_paths(&storage).len(), 1, "only the active segment is left");
        let left = log.read(0, 100, usize::MAX).unwrap().records;
        assert!(left[0].offset > 0, "the older segments' records are gone");
        assert_eq!(left.last().unwrap().offset, 39, "the active segment's are not");
        // With the space back, the next pass rolls and trims the rest.
        storage.set_disk_full(false);
        assert_eq!(log.enforce_retention(24 * 3_600_000).await.unwrap(), 1);
        assert!(log.read(0, 100, usize::MAX).unwrap().records.is_empty());
        assert_eq!(log.append(&[record("k", b"new".to_vec())]).await.unwrap().first_offset, 40);
    });
}

#[test]
fn a_failed_appends_frame_does_not_survive_a_seal() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 1 << 20).await;
        for i in 0..3u8 {
            log.append(&[record("k", vec![i; 50])]).await.unwrap();
        }
        // The write reaches the page cache, the fdatasync fails: the append is reported failed.
        storage.fail_next_syncs(1);
        assert!(log.append(&[record("k", b"failed".to_vec())]).await.is_err());
        // A reshard seals the shard right away (no later write cleans the failed bytes).
        assert_eq!(log.seal().await.unwrap(), 3);
        drop(log);
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.sealed(), Some(3));
        assert_eq!(log.next_offset(), 3, "the failed append's frame is no record");
        assert_eq!(log.read(0, 100, usize::MAX).unwrap().records.len(), 3);
    });
}

#[test]
fn concurrent_appends_share_one_sync() {
    run_local(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        storage.set_yield_on_sync(true);
        let log = Rc::new(open(&storage, &clock, 1 << 20).await);
        log.append(&[record("k", b"first".to_vec())]).await.unwrap();
        let syncs_before = storage.syncs();
        let tasks: Vec<_> = (0..50u8)
            .map(|i| {
                let log = log.clone();
                glommio::spawn_local(async move { log.append(&[record("k", vec![i; 10])]).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let syncs = storage.syncs() - syncs_before;
        assert!(syncs <= 3, "50 concurrent appends took {syncs} syncs");
        assert_eq!(log.next_offset(), 51);
    });
}

#[test]
fn seal_rejects_appends_and_survives_reopen() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        log.append(&[record("k", b"a".to_vec()), record("k", b"b".to_vec())]).await.unwrap();
        assert_eq!(log.seal().await.unwrap(), 2);
        assert!(matches!(
            log.append(&[record("k", b"c".to_vec())]).await,
            Err(Error::Sealed { ending_offset: 2 })
        ));
        drop(log);
        let log = open(&storage, &clock, 4096).await;
        assert_eq!(log.sealed(), Some(2));
        assert_eq!(log.read(0, 10, usize::MAX).unwrap().records.len(), 2);
        assert!(log.append(&[record("k", b"c".to_vec())]).await.is_err());
    });
}

#[test]
fn retention_trims_whole_segments_and_moves_the_horizon() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        for i in 0..40u8 {
            log.append(&[record("k", vec![i; 300])]).await.unwrap();
        }
        clock.advance_ms(23 * 3_600_000);
        assert_eq!(log.enforce_retention(24 * 3_600_000).await.unwrap(), 0, "nothing expired yet");
        assert_eq!(log.trim_horizon(), 0);
        clock.advance_ms(2 * 3_600_000);
        // The expired active segment is rolled, then every expired segment goes.
        let removed = log.enforce_retention(24 * 3_600_000).await.unwrap();
        assert!(removed > 0);
        assert_eq!(log.trim_horizon(), 40, "every old record went");
        for i in 0..5u8 {
            log.append(&[record("k", vec![i; 300])]).await.unwrap();
        }
        let batch = log.read(0, 100, usize::MAX).unwrap();
        assert_eq!(batch.records[0].offset, 40);
        assert_eq!(batch.records.len(), 5);
        drop(log);
        let log = open(&storage, &clock, 4096).await;
        assert_eq!(log.trim_horizon(), 40);
        assert_eq!(log.next_offset(), 45);
    });
}

/// The child half of `kill_dash_nine_loses_nothing_acknowledged`: appends through real io_uring
/// files and prints each acknowledged offset, until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("SPATE_CRASH_CHILD_DIR") else { return };
    run_local(async move {
        let clock: Rc<dyn Clock> = Rc::new(engine::SystemClock);
        let log = ShardLog::open(
            GlommioStorage,
            clock,
            PathBuf::from(dir),
            IDENTITY,
            LogConfig { segment_bytes: 256 << 10, durability: Durability::Always },
        )
        .await
        .unwrap();
        use std::io::Write;
        let mut out = std::io::stdout();
        let start = log.next_offset();
        for i in 0u64..1_000_000 {
            let data = format!("record-{}", start + i).repeat(1 + (i % 50) as usize);
            let r = log.append(&[record("key", data.into_bytes())]).await.unwrap();
            writeln!(out, "ACK {}", r.first_offset).unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn kill_dash_nine_loses_nothing_acknowledged() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = temp_dir("kill9");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(std::process::id() as u64);
    let mut max_acked: Option<u64> = None;
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("SPATE_CRASH_CHILD_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let target = 20 + rng.below(400);
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let mut seen = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen < target && std::time::Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(offset) = line.trim().strip_prefix("ACK ") {
                let offset: u64 = offset.parse().unwrap();
                if let Some(prev) = max_acked {
                    assert!(offset > prev, "round {round}: offset {offset} after {prev}");
                }
                max_acked = Some(offset);
                seen += 1;
            }
        }
        assert!(seen > 0, "round {round}: child acknowledged nothing");
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        // Read whatever acks were already in the pipe: they were acknowledged too. (`line`
        // still holds the last line read above; `read_line` appends.)
        line.clear();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(offset) = line.trim().strip_prefix("ACK ") {
                max_acked = Some(offset.parse().unwrap());
            }
            line.clear();
        }
        let acked_end = max_acked.unwrap() + 1;
        let dir2 = dir.clone();
        run_local(async move {
            let clock: Rc<dyn Clock> = Rc::new(engine::SystemClock);
            let log = ShardLog::open(
                GlommioStorage,
                clock,
                dir2,
                IDENTITY,
                LogConfig { segment_bytes: 256 << 10, durability: Durability::Always },
            )
            .await
            .unwrap();
            assert!(log.next_offset() >= acked_end, "round {round}: lost acknowledged records");
            let mut offset = 0;
            while offset < acked_end {
                let batch = log.read(offset, 10_000, 10 << 20).unwrap();
                for r in &batch.records {
                    let expected = format!("record-{}", r.offset);
                    assert!(
                        r.data.starts_with(expected.as_bytes()),
                        "round {round}: record {} damaged",
                        r.offset
                    );
                }
                offset = batch.next_offset;
            }
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn records_recovery_makes_visible_survive_a_later_power_loss() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        for seed in 0..8 {
            let storage = SimStorage::new();
            let log = open(&storage, &clock, 1 << 20).await;
            for i in 0..5u8 {
                log.append(&[record("k", vec![i; 50])]).await.unwrap();
            }
            drop(log);
            // Frames a process wrote but never synced (killed before its fdatasync): they are
            // in the page cache, which a kill -9 does not lose.
            let unsynced = ShardLog::open(
                storage.clone(),
                Rc::new(clock.clone()) as Rc<dyn Clock>,
                PathBuf::from("/data/stream/shard"),
                IDENTITY,
                LogConfig { segment_bytes: 1 << 20, durability: Durability::Never },
            )
            .await
            .unwrap();
            for i in 5..9u8 {
                unsynced.append(&[record("k", vec![i; 50])]).await.unwrap();
            }
            drop(unsynced);
            // The restarted process recovers them and serves them to readers...
            let log = open(&storage, &clock, 1 << 20).await;
            assert_eq!(log.next_offset(), 9);
            let seen = log.read(0, 100, usize::MAX).unwrap().records;
            drop(log);
            // ...so a power loss afterwards must not take them back.
            let image = storage.crash_image(seed);
            let log = open(&image, &clock, 1 << 20).await;
            assert_eq!(log.read(0, 100, usize::MAX).unwrap().records, seen, "image {seed}");
        }
    });
}

/// A closed log of ten acknowledged records (key "key", 100 bytes of `i` each, so 135-byte
/// frames from byte 64) in one segment; returns its clock, storage and segment path.
async fn ten_frames_of_100_bytes() -> (ManualClock, SimStorage, PathBuf) {
    let clock = ManualClock::new(1_700_000_000_000);
    let storage = SimStorage::new();
    let log = open(&storage, &clock, 1 << 20).await;
    for i in 0..10u8 {
        log.append(&[record("key", vec![i; 100])]).await.unwrap();
    }
    drop(log);
    let path = segment_paths(&storage).pop().unwrap();
    (clock, storage, path)
}

#[test]
fn bit_flip_in_a_frame_length_is_damage_not_a_torn_tail() {
    block_on(async {
        let (clock, storage, path) = ten_frames_of_100_bytes().await;
        // Frames are 135 bytes from byte 64. Flip a bit in the length field of offset 1: the
        // length no longer says where offset 2 starts, and no index point lies past it.
        storage.flip_bit(&path, 64 + 135 + 1, 3);
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].path.clone(), problems[0].position), (path.clone(), 64 + 135));
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 10, "recovery must not cut acknowledged records");
        assert_eq!(&log.read(0, 1, usize::MAX).unwrap().records[0].data[..], &[0u8; 100]);
        assert!(matches!(log.read(1, 1, usize::MAX), Err(Error::Corruption { .. })));
        let rest = log.read(2, 10, usize::MAX).unwrap();
        assert_eq!(rest.records.len(), 8);
        assert_eq!(&rest.records[7].data[..], &[9u8; 100]);
    });
}

#[test]
fn bit_flip_in_the_active_segment_is_damage_not_a_torn_tail() {
    block_on(async {
        let (clock, storage, path) = ten_frames_of_100_bytes().await;
        // Flip a bit in the data of the first frame; nine acknowledged frames follow it.
        storage.flip_bit(&path, 64 + 32 + 3 + 10, 2);
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].path.clone(), problems[0].position), (path.clone(), 64));
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 10, "recovery must not cut acknowledged records");
        assert!(matches!(log.read(0, 10, usize::MAX), Err(Error::Corruption { .. })));
        let rest = log.read(1, 10, usize::MAX).unwrap();
        assert_eq!(rest.records.len(), 9);
        assert_eq!(&rest.records[8].data[..], &[9u8; 100]);
        // Appends continue after the last record, and survive another reopen.
        assert_eq!(log.append(&[record("key", b"next".to_vec())]).await.unwrap().first_offset, 10);
        drop(log);
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 11);
        assert_eq!(&log.read(10, 1, usize::MAX).unwrap().records[0].data[..], b"next");
    });
}

/// The last write was synced and acknowledged, and nothing was written after it: a bit flip in
/// its first frame has valid frames after it and no barrier frame after those. It is damage in
/// acknowledged data, not a torn write (no page of it is missing), so recovery keeps the frames
/// after it and `check` reports it. (With only the barrier rule, recovery cut all nine.)
#[test]
fn bit_flip_in_the_last_synced_write_is_damage_not_a_torn_write() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 1 << 20).await;
        log.append(&[record("key", vec![1; 100])]).await.unwrap();
        // One write of ten frames, synced and acknowledged: the last thing written.
        let batch: Vec<_> = (0..10u8).map(|i| record("key", vec![10 + i; 100])).collect();
        assert_eq!(log.append(&batch).await.unwrap().first_offset, 1);
        drop(log);
        let path = segment_paths(&storage).pop().unwrap();
        // Frames are 135 bytes from byte 64: offset 1 starts at 199; flip a bit of its data.
        storage.flip_bit(&path, 64 + 135 + 32 + 3 + 10, 2);
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].path.clone(), problems[0].position), (path.clone(), 64 + 135));
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 11, "recovery must not cut acknowledged records");
        assert!(matches!(log.read(1, 1, usize::MAX), Err(Error::Corruption { .. })));
        let rest = log.read(2, 20, usize::MAX).unwrap();
        assert_eq!(rest.records.len(), 9);
        assert_eq!(&rest.records[8].data[..], &[19u8; 100]);
    });
}

/// Polls `future` until it completes (each poll runs it as far as it goes without waiting).
async fn poll_until_ready<T>(
    future: &mut std::pin::Pin<Box<impl std::future::Future<Output = T>>>,
) -> T {
    loop {
        if let Some(output) = futures_lite::future::poll_once(&mut *future).await {
            return output;
        }
    }
}

#[test]
fn an_append_synced_by_an_earlier_chunk_of_a_failed_flush_is_acknowledged() {
    block_on(async {
        use futures_lite::future::poll_once;
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        storage.set_yield_on_sync(true);
        let log = open(&storage, &clock, 4096).await;
        // L leads a flush and stops in its sync; A and C queue behind it. A's frame fits in the
        // active segment (64 + 133 + 1033 bytes); C's (3033 bytes) needs a roll.
        let (first, second, third) = (
            [record("k", vec![0; 100])],
            [record("k", vec![1; 1000])],
            [record("k", vec![2; 3000])],
        );
        let mut leader = Box::pin(log.append(&first));
        assert!(poll_once(&mut leader).await.is_none());
        let mut waiter = Box::pin(log.append(&second));
        assert!(poll_once(&mut waiter).await.is_none());
        let mut roller = Box::pin(log.append(&third));
        assert!(poll_once(&mut roller).await.is_none());
        assert_eq!(poll_until_ready(&mut leader).await.unwrap().first_offset, 0);
        // C takes the leader role first and flushes two chunks: A's frame (synced), then its
        // own after a roll that cannot get space for the next segment.
        storage.set_disk_full(true);
        assert!(matches!(poll_until_ready(&mut roller).await, Err(Error::DiskFull)));
        // A's record was synced by the first chunk: it is acknowledged, not reported failed
        // (a client would retry it and write a duplicate).
        let acked = poll_until_ready(&mut waiter).await.expect("A's record is durable");
        assert_eq!(acked.first_offset, 1);
        drop((leader, waiter, roller));
        storage.set_disk_full(false);
        assert_eq!(log.append(&[record("k", b"next".to_vec())]).await.unwrap().first_offset, 2);
        drop(log);
        let log = open(&storage.crash_image(1), &clock, 4096).await;
        let records = log.read(0, 10, usize::MAX).unwrap().records;
        assert_eq!(records.len(), 3);
        assert_eq!(&records[1].data[..], &[1; 1000][..]);
        assert_eq!(&records[2].data[..], b"next");
    });
}

/// One batch split over two writes by a roll: the first write lands (synced, visible), the roll
/// cannot get space. The append reports exactly the records that landed, with their offsets, so
/// PutRecords can give them sequence numbers (they were reported failed before, although
/// readers saw them and they survived a restart: a client retrying them wrote duplicates).
#[test]
fn a_batch_split_by_a_failed_roll_reports_the_records_that_landed() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        log.append(&[record("k", vec![0; 100])]).await.unwrap();
        storage.set_disk_full(true);
        // 64 + 133 bytes used; the 1,033-byte frame fits, the 3,033-byte one needs a roll.
        let batch = [record("k", vec![1; 1000]), record("k", vec![2; 3000])];
        match log.append(&batch).await {
            Err(Error::PartiallyAppended { first_offset, count, cause, .. }) => {
                assert_eq!((first_offset, count), (1, 1));
                assert!(matches!(*cause, Error::DiskFull), "{cause}");
            }
            other => panic!("expected a partial append, got {other:?}"),
        }
        assert_eq!(log.next_offset(), 2, "the landed record is visible");
        storage.set_disk_full(false);
        assert_eq!(log.append(&[record("k", b"next".to_vec())]).await.unwrap().first_offset, 2);
        drop(log);
        let log = open(&storage.crash_image(1), &clock, 4096).await;
        let records = log.read(0, 10, usize::MAX).unwrap().records;
        let data: Vec<&[u8]> = records.iter().map(|r| &r.data[..]).collect();
        assert_eq!(data, [&[0u8; 100][..], &[1u8; 1000][..], &b"next"[..]]);
    });
}

#[test]
fn a_failed_appends_frame_does_not_survive_a_close() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 1 << 20).await;
        for i in 0..3u8 {
            log.append(&[record("k", vec![i; 50])]).await.unwrap();
        }
        // The write reaches the page cache, the fdatasync fails: the append is reported failed.
        storage.fail_next_syncs(1);
        assert!(log.append(&[record("k", b"failed".to_vec())]).await.is_err());
        // A shutdown closes the log right away (no later write cleans the failed bytes).
        log.close().await.unwrap();
        drop(log);
        for image in [storage.clone(), storage.crash_image(1), storage.crash_image(2)] {
            let log = open(&image, &clock, 1 << 20).await;
            assert_eq!(log.next_offset(), 3, "the failed append's frame is no record");
            assert_eq!(log.read(0, 100, usize::MAX).unwrap().records.len(), 3);
        }
    });
}

#[test]
fn a_torn_header_on_the_newest_segment_is_an_interrupted_roll() {
    block_on(async {
        use engine::{Storage, StorageFile};
        let (clock, storage, path) = ten_frames_of_100_bytes().await;
        let header = storage.contents(&path).unwrap()[..64].to_vec();
        // A roll to offset 10 crashed while the new header was being written: the file was
        // preallocated and only the first 20 bytes of its header reached the disk.
        let next = Path::new("/data/stream/shard/00000000000000000010.log");
        let file = storage.create(next).await.unwrap();
        file.allocate(4096).await.unwrap();
        file.write_at(0, header[..20].to_vec()).await.unwrap();
        file.sync().await.unwrap();
        storage.sync_dir(Path::new("/data/stream/shard")).await.unwrap();
        drop(file);
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert!(problems.is_empty(), "{problems:?}");
        let log = try_open(&storage, &clock, 1 << 20).await.expect("the shard opens");
        assert_eq!(log.next_offset(), 10);
        assert_eq!(log.read(0, 100, usize::MAX).unwrap().records.len(), 10);
        assert_eq!(log.append(&[record("key", b"next".to_vec())]).await.unwrap().first_offset, 10);
        drop(log);
        let log = open(&storage, &clock, 1 << 20).await;
        assert_eq!(log.next_offset(), 11);
    });
}

#[test]
fn a_damaged_header_with_frames_after_it_is_corruption_not_a_torn_roll() {
    block_on(async {
        let (clock, storage, path) = ten_frames_of_100_bytes().await;
        // A bit flip in the header of a segment that holds acknowledged records: never removed.
        storage.flip_bit(&path, 20, 1);
        assert!(matches!(try_open(&storage, &clock, 1 << 20).await, Err(Error::Corruption { .. })));
        assert!(storage.contents(&path).is_some(), "the segment is kept");
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
    });
}

#[test]
fn a_gap_between_segments_is_reported_and_nothing_is_deleted() {
    block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        let log = open(&storage, &clock, 4096).await;
        for i in 0..60u8 {
            log.append(&[record("key", vec![i; 200])]).await.unwrap();
        }
        drop(log);
        let mut paths = segment_paths(&storage);
        paths.sort();
        assert!(paths.len() > 3);
        // A middle segment is lost (not by retention: it removes the oldest first).
        storage.delete_now(&paths[1]);
        let before = storage.file_names();
        let log = open(&storage, &clock, 4096).await;
        assert_eq!(storage.file_names(), before, "recovery deletes nothing on an anomaly");
        assert_eq!(log.anomalies().len(), 1, "{:?}", log.anomalies());
        assert_eq!(log.anomalies()[0].path, paths[2]);
        assert_eq!(log.trim_horizon(), 0, "the segments before the gap are kept");
        assert_eq!(log.next_offset(), 60);
        // The records before and after the gap are served; reads of the gap report it.
        let head = log.read(0, 100, usize::MAX).unwrap();
        assert!(!head.records.is_empty());
        assert_eq!(&head.records[0].data[..], &[0u8; 200]);
        assert!(matches!(log.read(head.next_offset, 1, usize::MAX), Err(Error::Corruption { .. })));
        assert_eq!(&log.read(59, 1, usize::MAX).unwrap().records[0].data[..], &[59u8; 200]);
        // The offline checker reports it too.
        let problems = engine::check::check_shard(&storage, Path::new("/data/stream/shard")).await;
        assert!(problems.iter().any(|p| p.path == paths[2]), "{problems:?}");
    });
}

/// A log of fifteen acknowledged records (235-byte frames) in one 4096-byte segment, and a
/// sixteenth append that needs a roll which fails after it synced the seal entry and the new
/// segment's header (the directory sync reports EIO, though the new entry reached the disk).
/// Two more appends fit into the old segment and are acknowledged: offsets 15 and 16.
async fn appends_after_a_failed_roll() -> (ManualClock, SimStorage, Acked) {
    let clock = ManualClock::new(1_700_000_000_000);
    let storage = SimStorage::new();
    let log = open(&storage, &clock, 4096).await;
    let mut acked = Acked::new();
    for i in 0..15u8 {
        log.append(&[record("key", vec![i; 200])]).await.unwrap();
        acked.push((i as u64, b"key".to_vec(), vec![i; 200]));
    }
    storage.fail_next_dir_syncs(1);
    assert!(log.append(&[record("key", vec![99; 600])]).await.is_err());
    for i in 15..17u8 {
        let r = log.append(&[record("key", vec![i; 50])]).await.unwrap();
        assert_eq!(r.first_offset, i as u64);
        acked.push((i as u64, b"key".to_vec(), vec![i; 50]));
    }
    drop(log);
    (clock, storage, acked)
}

#[test]
fn a_failed_roll_cannot_hide_later_appends_after_a_crash() {
    block_on(async {
        use engine::Storage;
        use engine::segment::{EntryKind, decode_index};
        let (clock, storage, acked) = appends_after_a_failed_roll().await;
        // The failed roll was undone: no seal entry, and the new segment is gone for good.
        let dir = Path::new("/data/stream/shard");
        let index = storage.contents(&dir.join("00000000000000000000.idx")).unwrap();
        let (_, entries) = decode_index(&index).unwrap();
        assert!(entries.iter().all(|e| e.kind == EntryKind::Point), "{entries:?}");
        for seed in 0..4 {
            let image = storage.crash_image(seed);
            assert!(!image.exists(&dir.join("00000000000000000015.log")), "image {seed}");
            let problems =
                engine::check::check_shard(&image, Path::new("/data/stream/shard")).await;
            assert!(problems.is_empty(), "image {seed}: {problems:?}");
            check_recovered(&image, &clock, &acked, &format!("image {seed}")).await;
        }
    });
}

#[test]
fn recovery_ignores_a_stale_seal_and_an_empty_segment_left_by_a_failed_roll() {
    block_on(async {
        use engine::segment::{EntryKind, IndexEntry, SegmentHeader, encode_index_header};
        use engine::{Storage, StorageFile};
        let (clock, storage, acked) = appends_after_a_failed_roll().await;
        // As if the failed roll could not be undone: segment 0's index ends with a seal at
        // offset 15 (where frames go on) and the empty segment 15 survived.
        let dir = Path::new("/data/stream/shard");
        let mut index = encode_index_header(0).to_vec();
        let seal = IndexEntry {
            offset: 15,
            position: 64 + 15 * 235,
            arrival_ms: 1_700_000_000_000,
            kind: EntryKind::Seal,
        };
        seal.encode(&mut index);
        let header = SegmentHeader {
            incarnation: IDENTITY.incarnation,
            shard_index: IDENTITY.shard_index,
            first_offset: 15,
            created_ms: 1_700_000_000_000,
        };
        for (name, bytes) in [
            ("00000000000000000000.idx", index),
            ("00000000000000000015.log", header.encode().to_vec()),
            ("00000000000000000015.idx", encode_index_header(15).to_vec()),
        ] {
            let file = storage.create(&dir.join(name)).await.unwrap();
            file.allocate(4096).await.unwrap();
            file.write_at(0, bytes).await.unwrap();
            file.sync().await.unwrap();
        }
        storage.sync_dir(dir).await.unwrap();
        let problems = engine::check::check_shard(&storage, dir).await;
        assert!(problems.is_empty(), "{problems:?}");
        check_recovered(&storage, &clock, &acked, "stale seal").await;
        assert!(!storage.exists(&dir.join("00000000000000000015.log")), "the empty one is gone");
    });
}

#[test]
fn a_wrong_older_index_point_cannot_make_at_timestamp_start_late() {
    block_on(async {
        use engine::segment::{EntryKind, decode_index, encode_index_header};
        use engine::{Storage, StorageFile};
        let clock = ManualClock::new(1_700_000_000_000);
        let storage = SimStorage::new();
        // Three 256 KiB segments of 1035-byte frames: a point every 64 KiB (63 frames).
        let log = open(&storage, &clock, 256 << 10).await;
        for i in 0..700u32 {
            clock.advance_ms(1);
            log.append(&[record("key", i.to_le_bytes().repeat(250))]).await.unwrap();
        }
        let all = log.read(0, 1000, usize::MAX).unwrap().records;
        drop(log);
        let mut indexes: Vec<PathBuf> = storage
            .file_names()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "idx"))
            .collect();
        indexes.sort();
        assert_eq!(indexes.len(), 3);
        // In a rolled segment's index and in the active one's, the second point (not the
        // newest) claims an arrival time far too early; its checksum is fine.
        let mut expected = Vec::new();
        for path in [&indexes[0], &indexes[2]] {
            let (first_offset, mut entries) =
                decode_index(&storage.contents(path).unwrap()).unwrap();
            let points = entries.iter().filter(|e| e.kind == EntryKind::Point).count();
            assert!(points >= 3, "{path:?}: {points} points");
            let wrong = entries[1];
            entries[1].arrival_ms -= 1_000_000;
            let mut bytes = encode_index_header(first_offset).to_vec();
            for e in &entries {
                e.encode(&mut bytes);
            }
            let file = storage.create(path).await.unwrap();
            file.write_at(0, bytes).await.unwrap();
            file.sync().await.unwrap();
            // A record a little before the damaged point: the lookup must find it, not the point.
            let target = wrong.offset - 5;
            expected.push((all[target as usize].arrival_ms, target));
        }
        let log = open(&storage, &clock, 256 << 10).await;
        for (timestamp_ms, offset) in expected {
            assert_eq!(log.offset_at_timestamp(timestamp_ms).unwrap(), offset, "at {timestamp_ms}");
        }
    });
}

#[test]
fn a_torn_write_whose_later_pages_survive_is_cut_not_kept_as_damage() {
    block_on(async {
        let (clock, storage, path) = ten_frames_of_100_bytes().await;
        let acked: Acked = (0..10u8).map(|i| (i as u64, b"key".to_vec(), vec![i; 100])).collect();
        let log = open(&storage, &clock, 1 << 20).await;
        // One write of four 10,033-byte frames (offsets 10..14, from byte 1,414 over ten pages)
        // reaches the page cache; the machine loses power during its fdatasync.
        storage.crash_at_operation(storage.operations() + 2);
        let batch: Vec<_> = (0..4u8).map(|i| record("k", vec![10 + i; 10_000])).collect();
        assert!(log.append(&batch).await.is_err());
        drop(log);
        let mut holes = 0;
        for seed in 0..64 {
            let image = storage.crash_image_scattered(seed, 4096);
            // A hole: offset 10's frame is damaged but a later frame of the write survived.
            let bytes = image.contents(&path).unwrap();
            let frame_at = |i: u64| {
                let at = 1414 + (i as usize - 10) * 10_033;
                bytes.get(at..).map(engine::record::check_frame)
            };
            let damaged = matches!(frame_at(10), Some(engine::record::Frame::Invalid(_)));
            let later_survived = (11..14).any(|i| {
                matches!(frame_at(i), Some(engine::record::Frame::Valid { offset, .. }) if offset == i)
            });
            if damaged && later_survived {
                holes += 1;
            }
            let label = format!("image {seed}");
            // (The active segment's index is written without a sync, so it may be torn too; a
            // torn tail of the segment itself is no problem.)
            let mut problems =
                engine::check::check_shard(&image, Path::new("/data/stream/shard")).await;
            problems.retain(|p| p.path == path);
            assert!(problems.is_empty(), "{label}: {problems:?}");
            check_recovered(&image, &clock, &acked, &label).await;
            let log = open(&image, &clock, 1 << 20).await;
            assert!(log.anomalies().is_empty(), "{label}");
            assert!(log.next_offset() <= 15, "{label}");
        }
        assert!(holes > 0, "no image had a hole: the test does not test anything");
    });
}
