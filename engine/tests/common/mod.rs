//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use engine::{Clock, LogConfig, ManualClock, NewRecord, ShardIdentity, ShardLog, Storage};

/// A small deterministic PRNG (xorshift64*), so every failure replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

pub const IDENTITY: ShardIdentity = ShardIdentity { incarnation: 77, shard_index: 3 };

pub fn record(key: &str, data: Vec<u8>) -> NewRecord {
    NewRecord { partition_key: Bytes::copy_from_slice(key.as_bytes()), data: Bytes::from(data) }
}

pub async fn open<S: Storage>(storage: &S, clock: &ManualClock, segment_bytes: u64) -> ShardLog<S> {
    try_open(storage, clock, segment_bytes).await.expect("open")
}

pub async fn try_open<S: Storage>(
    storage: &S,
    clock: &ManualClock,
    segment_bytes: u64,
) -> engine::Result<ShardLog<S>> {
    let clock: Rc<dyn Clock> = Rc::new(clock.clone());
    ShardLog::open(
        storage.clone(),
        clock,
        PathBuf::from("/data/stream/shard"),
        IDENTITY,
        LogConfig { segment_bytes, durability: engine::Durability::Always },
    )
    .await
}

/// Runs a future on a fresh glommio executor on this thread.
pub fn run_local<T: 'static>(future: impl Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("glommio executor")
        .run(future)
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "spate-test-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
