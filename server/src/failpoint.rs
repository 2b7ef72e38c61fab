//! Fault injection for tests: `SPATE_FAILPOINT=<name>` makes the process abort (as `kill -9`
//! would stop it) when it reaches the named point; `SPATE_FAILPOINT=error-once:<name>` makes
//! the named step fail (as an I/O error would) the first time it runs, and
//! `SPATE_FAILPOINT=error:<name>` every time, and `slow-error-once:<name>` once after hanging
//! for a while; `slow:<name>` makes the step a second slower every time. Unset, a failpoint is one cached load.

use std::sync::OnceLock;

static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();

/// True, once, if `SPATE_FAILPOINT` is `error-once:<name>`: the caller fails this step.
pub fn fails_once(name: &str) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    armed.as_deref().and_then(|a| a.strip_prefix("error-once:")) == Some(name)
        && !FIRED.swap(true, Ordering::Relaxed)
}

/// How long a `slow-error-once:<name>` step hangs before it fails.
pub const SLOW_FAILURE: std::time::Duration = std::time::Duration::from_secs(7);

/// True, once, if `SPATE_FAILPOINT` is `slow-error-once:<name>`: the caller hangs for
/// [`SLOW_FAILURE`], then fails this step.
pub fn fails_slowly_once(name: &str) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    armed.as_deref().and_then(|a| a.strip_prefix("slow-error-once:")) == Some(name)
        && !FIRED.swap(true, Ordering::Relaxed)
}

/// How long a `slow:<name>` step takes longer than it would.
pub const SLOW_STEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits [`SLOW_STEP`] if `SPATE_FAILPOINT` is `slow:<name>` (every time): a slow disk.
pub async fn slow(name: &str) {
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    if armed.as_deref().and_then(|a| a.strip_prefix("slow:")) == Some(name) {
        glommio::timer::sleep(SLOW_STEP).await;
    }
}

/// True if `SPATE_FAILPOINT` is `error:<name>`: the caller fails this step every time.
pub fn fails_always(name: &str) -> bool {
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    armed.as_deref().and_then(|a| a.strip_prefix("error:")) == Some(name)
}

/// Aborts the process if `SPATE_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("spated: failpoint {name} reached; aborting");
        std::process::abort();
    }
}

/// The test hook `SPATE_TEST_CLOCK_OFFSET_MS`: milliseconds the server's wall clock stands ahead
/// of the real one (see `engine::OffsetClock`). Never set in production.
pub fn test_clock_offset_ms() -> Option<i64> {
    std::env::var("SPATE_TEST_CLOCK_OFFSET_MS").ok().and_then(|v| v.parse().ok())
}
