//! Crash injection for tests: `SPATE_FAILPOINT=<name>` makes the process abort (as `kill -9`
//! would stop it) when it reaches the named point. Unset, a failpoint is one cached load.

use std::sync::OnceLock;

static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process if `SPATE_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    let armed = FAILPOINT.get_or_init(|| std::env::var("SPATE_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("spated: failpoint {name} reached; aborting");
        std::process::abort();
    }
}
