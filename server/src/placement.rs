//! Shard placement: which core owns a shard's log, and where a new shard goes.
//!
//! The catalog records the core each shard was placed on (`ShardMeta::core`). The server may
//! restart with fewer cores than it had when the shard was placed, so the owner is that core
//! modulo the running core count: [`owner`] is the only place that says so, and every message
//! to a shard's owning core is addressed with it.

use crate::catalog::{Catalog, ShardMeta};

/// The core that owns `shard`'s log when the server runs `cores` cores.
pub fn owner(shard: &ShardMeta, cores: usize) -> usize {
    shard.core % cores
}

/// The core with the fewest open shards (ties: lowest id), counting `extra` placements.
pub fn least_loaded_core(catalog: &Catalog, cores: usize, extra: &[usize]) -> usize {
    let mut load = vec![0usize; cores];
    for stream in catalog.streams.values() {
        for shard in stream.open_shards() {
            load[owner(shard, cores)] += 1;
        }
    }
    for &c in extra {
        load[c] += 1;
    }
    (0..cores).min_by_key(|&c| (load[c], c)).unwrap_or(0)
}
