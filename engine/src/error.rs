//! Operating errors of the engine: small enums, one per failure kind a caller must handle.
//!
//! Bugs (broken invariants) panic; everything the disk or a caller can cause is an `Error`.

use std::fmt;
use std::io;

/// What went wrong, in terms a caller can act on.
#[derive(Debug)]
pub enum Error {
    /// The disk is full (ENOSPC). Nothing acknowledged was harmed; retry after freeing space.
    DiskFull,
    /// Any other I/O failure.
    Io(io::Error),
    /// Stored bytes failed validation (CRC, header, ordering). Never served.
    Corruption { path: String, position: u64, detail: String },
    /// A caller exceeded a bound from `limits.rs` (record too large, batch too large, ...).
    LimitExceeded(String),
    /// The shard is sealed; appends are rejected.
    Sealed { ending_offset: u64 },
    /// An argument is invalid (e.g. a sequence number from another shard or incarnation).
    InvalidArgument(String),
    /// A batch split over several writes (a segment roll, or the flush size) failed after its
    /// first `count` records were written and synced: those are durable, visible and
    /// acknowledged at `first_offset..first_offset + count`; the rest failed with `cause`.
    PartiallyAppended { first_offset: u64, count: usize, arrival_ms: i64, cause: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn from_io(error: io::Error) -> Error {
        if error.raw_os_error() == Some(libc::ENOSPC) || error.kind() == io::ErrorKind::StorageFull
        {
            Error::DiskFull
        } else {
            Error::Io(error)
        }
    }

    /// A copy for fan-out to several waiters (io::Error is not Clone).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::DiskFull => Error::DiskFull,
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::Corruption { path, position, detail } => Error::Corruption {
                path: path.clone(),
                position: *position,
                detail: detail.clone(),
            },
            Error::LimitExceeded(s) => Error::LimitExceeded(s.clone()),
            Error::Sealed { ending_offset } => Error::Sealed { ending_offset: *ending_offset },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::PartiallyAppended { first_offset, count, arrival_ms, cause } => {
                Error::PartiallyAppended {
                    first_offset: *first_offset,
                    count: *count,
                    arrival_ms: *arrival_ms,
                    cause: Box::new(cause.duplicate()),
                }
            }
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::from_io(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DiskFull => write!(f, "disk full (ENOSPC)"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Corruption { path, position, detail } => {
                write!(f, "corruption in {path} at byte {position}: {detail}")
            }
            Error::LimitExceeded(s) => write!(f, "limit exceeded: {s}"),
            Error::Sealed { ending_offset } => {
                write!(f, "shard is sealed at ending offset {ending_offset}")
            }
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::PartiallyAppended { count, cause, .. } => {
                write!(f, "only the first {count} records of the batch were written: {cause}")
            }
        }
    }
}

impl std::error::Error for Error {}
