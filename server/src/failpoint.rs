//! Fault injection for tests, armed by `SPATE_FAILPOINT` (unset, a failpoint is one cached
//! load):
//! - `<name>` aborts the process (as `kill -9` would stop it) when it reaches the named point;
//! - `error-once:<name>` makes the named step fail (as an I/O error would) the first time it
//!   runs, `error:<name>` every time;
//! - `slow-error-once:<name>` makes it hang for [`SLOW_FAILURE`], then fail, once;
//! - `slow:<name>` makes it [`SLOW_STEP`] slower every time (a slow disk).
//!
//! Also the clock hook `SPATE_TEST_CLOCK_OFFSET_MS` ([`test_clock_offset_ms`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();

/// How long a `slow-error-once:<name>` step hangs before it fails.
pub const SLOW_FAILURE: Duration = Duration::from_secs(7);
/// How much slower a `slow:<name>` step is.
pub const SLOW_STEP: Duration = Duration::from_secs(1);

/// True if `SPATE_FAILPOINT` is `<mode><name>` (`mode` is a prefix such as `"error:"`).
fn armed(mode: &str, name: &str) -> bool {
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    armed.as_deref().and_then(|a| a.strip_prefix(mode)) == Some(name)
}

/// True, once, if `SPATE_FAILPOINT` is `error-once:<name>`: the caller fails this step.
pub fn fails_once(name: &str) -> bool {
    static FIRED: AtomicBool = AtomicBool::new(false);
    armed("error-once:", name) && !FIRED.swap(true, Ordering::Relaxed)
}

/// True, once, if `SPATE_FAILPOINT` is `slow-error-once:<name>`: the caller hangs for
/// [`SLOW_FAILURE`], then fails this step.
pub fn fails_slowly_once(name: &str) -> bool {
    static FIRED: AtomicBool = AtomicBool::new(false);
    armed("slow-error-once:", name) && !FIRED.swap(true, Ordering::Relaxed)
}

/// True if `SPATE_FAILPOINT` is `error:<name>`: the caller fails this step every time.
pub fn fails_always(name: &str) -> bool {
    armed("error:", name)
}

/// Waits [`SLOW_STEP`] if `SPATE_FAILPOINT` is `slow:<name>`.
pub async fn slow(name: &str) {
    if armed("slow:", name) {
        glommio::timer::sleep(SLOW_STEP).await;
    }
}

/// Aborts the process if `SPATE_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    if armed("", name) {
        eprintln!("spated: failpoint {name} reached; aborting");
        std::process::abort();
    }
}

/// The test hook `SPATE_TEST_CLOCK_OFFSET_MS`: milliseconds the server's wall clock stands ahead
/// of the real one (see `engine::OffsetClock`). Never set in production.
pub fn test_clock_offset_ms() -> Option<i64> {
    std::env::var("SPATE_TEST_CLOCK_OFFSET_MS").ok().and_then(|v| v.parse().ok())
}
