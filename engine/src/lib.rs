//! Spate's storage engine: crash-safe, segmented, per-shard logs on io_uring.
//!
//! The engine knows nothing of HTTP, JSON or Prometheus. All file I/O goes through
//! `storage::Storage` and all time through `clock::Clock`, so tests can crash the disk at any
//! operation and move time. See `ARCHITECTURE.md` for the map and `docs/format.md` for the
//! byte layout.

pub mod check;
pub mod clock;
pub mod error;
pub mod limits;
pub mod log;
pub mod notify;
pub mod quota;
pub mod record;
pub mod segment;
pub mod sequence;
pub mod storage;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use error::{Error, Result};
pub use log::{
    Anomaly, AppendResult, Durability, FrameRef, LogConfig, ReadBatch, ReadSink, ReadSummary,
    ShardIdentity, ShardLog,
};
pub use record::{NewRecord, Record};
pub use sequence::{
    DigitsCursor, ParsedSequence, SequenceNumber, SequencePosition, parse_position, shard_start,
};
pub use storage::{GlommioStorage, SimStorage, Storage, StorageFile};
