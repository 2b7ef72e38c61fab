//! Every bound the engine enforces, in one place, with compile-time checks on how they relate.
//!
//! These are storage bounds: frame, segment, index and flush sizes, chosen from measurements
//! on the target machine (see `BENCHMARKS.md`). The Kinesis API's limits live in
//! `spate_proto::limits`; the engine does not depend on `proto`. Where a storage bound must
//! cover an API limit, the bound says which, and `server/src/lib.rs` asserts it at compile time.

/// Largest data field a frame holds, in bytes. Must cover
/// `spate_proto::limits::RECORD_DATA_BYTES_MAX`.
pub const RECORD_DATA_BYTES_MAX: usize = 1 << 20;
/// Largest partition-key field a frame holds, in bytes. Must cover
/// `spate_proto::limits::PARTITION_KEY_BYTES_MAX` (256 UTF-16 units, at most 3 UTF-8 bytes each;
/// 4 each here, with room to spare).
pub const PARTITION_KEY_BYTES_MAX: usize = 256 * 4;

/// Frame header size on disk (see `record.rs`).
pub const FRAME_HEADER_BYTES: usize = 32;
/// Largest frame on disk.
pub const FRAME_BYTES_MAX: usize =
    FRAME_HEADER_BYTES + PARTITION_KEY_BYTES_MAX + RECORD_DATA_BYTES_MAX;

/// Segment header size on disk (see `segment.rs`).
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Default size at which a segment rolls.
pub const SEGMENT_BYTES_DEFAULT: u64 = 128 << 20;
/// Smallest configurable segment size (tests use small segments to exercise rolling).
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest configurable segment size. Positions inside a segment are u32-safe below this.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;
/// First preallocation step of a new segment; each later step doubles, up to this maximum.
/// Idle shards then cost 1 MiB of disk, not a whole segment.
pub const SEGMENT_ALLOCATE_STEP_MIN: u64 = 1 << 20;
pub const SEGMENT_ALLOCATE_STEP_MAX: u64 = 32 << 20;

/// A sparse index point is written at least every this many bytes of log.
/// The page of the page cache and of the file system's writeback: the unit a torn write loses.
pub const PAGE_BYTES: u64 = 4096;
pub const INDEX_INTERVAL_BYTES: u64 = 64 << 10;
/// Index header and entry sizes on disk (see `segment.rs`).
pub const INDEX_HEADER_BYTES: usize = 32;
pub const INDEX_ENTRY_BYTES: usize = 32;

/// Bytes one group-commit flush writes at most; larger pending buffers are split.
pub const FLUSH_BYTES_MAX: usize = 8 << 20;
/// Failed flushes a shard log remembers, so that a group-commit waiter woken late still learns
/// whether an earlier chunk of the failed flush made its batch durable. A waiter that slept
/// through more failures than this is told its append failed (it may then be written twice).
pub const FLUSH_FAILURES_REMEMBERED: usize = 64;
/// Bytes appended but not yet flushed, per shard. Appends beyond this wait (backpressure).
pub const PENDING_BYTES_MAX: usize = 32 << 20;

const _: () = assert!(SEGMENT_BYTES_MIN as usize > SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES);
const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
const _: () = assert!(FRAME_BYTES_MAX <= FLUSH_BYTES_MAX);
const _: () = assert!(FLUSH_BYTES_MAX <= PENDING_BYTES_MAX);
const _: () = assert!(INDEX_ENTRY_BYTES == 32 && INDEX_HEADER_BYTES == 32);
