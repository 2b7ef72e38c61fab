//! The time seam: all engine time comes from a `Clock`, so tests can move time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch, plus a monotonic reading for rates.
pub trait Clock {
    fn now_ms(&self) -> i64;
    /// Monotonic nanoseconds (arbitrary origin), for token buckets and latencies.
    fn monotonic_ns(&self) -> u64;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
    fn monotonic_ns(&self) -> u64 {
        use std::sync::OnceLock;
        use std::time::Instant;
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// The real clock moved by a fixed number of milliseconds. `spated` runs on it when the test
/// hook `SPATE_TEST_CLOCK_OFFSET_MS` is set, so tests of the real binary can stand hours or days
/// ahead (retention, reclaiming closed shards) without waiting. Monotonic time is not moved.
#[derive(Clone, Copy, Debug)]
pub struct OffsetClock {
    pub offset_ms: i64,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms().saturating_add(self.offset_ms)
    }
    fn monotonic_ns(&self) -> u64 {
        SystemClock.monotonic_ns()
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    ms: Rc<Cell<i64>>,
    ns: Rc<Cell<u64>>,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock { ms: Rc::new(Cell::new(now_ms)), ns: Rc::new(Cell::new(0)) }
    }
    pub fn advance_ms(&self, ms: i64) {
        self.ms.set(self.ms.get() + ms);
        self.ns.set(self.ns.get() + (ms.max(0) as u64) * 1_000_000);
    }
    pub fn advance_ns(&self, ns: u64) {
        self.ns.set(self.ns.get() + ns);
        self.ms.set(self.ms.get() + (ns / 1_000_000) as i64);
    }
    pub fn set_ms(&self, ms: i64) {
        self.ms.set(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.get()
    }
    fn monotonic_ns(&self) -> u64 {
        self.ns.get()
    }
}
