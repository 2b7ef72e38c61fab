//! Facts about the machine and this process for reports: host name, CPU count, kernel, and the
//! process's own CPU time and peak memory (getrusage), so a benchmark can show that the harness
//! was not the bottleneck.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Environment {
    pub hostname: String,
    pub nproc: usize,
    pub kernel: String,
    pub os: String,
    pub arch: String,
    pub cpu_model: String,
    /// RFC 3339, UTC, when the run started.
    pub time: String,
    pub harness_version: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

impl Environment {
    pub fn capture() -> Environment {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        Environment {
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpu_model,
            time: crate::timefmt::rfc3339(crate::timefmt::epoch_seconds_now()),
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// CPU time this process has used, in seconds, and its peak resident set in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub max_resident_kib: u64,
}

impl Usage {
    pub fn cpu_seconds(&self) -> f64 {
        self.user_seconds + self.system_seconds
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn usage() -> Usage {
    #[repr(C)]
    struct TimeVal {
        seconds: i64,
        microseconds: i64,
    }
    #[repr(C)]
    struct RUsage {
        user: TimeVal,
        system: TimeVal,
        max_rss: i64,
        rest: [i64; 13],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut RUsage) -> i32;
    }
    const RUSAGE_SELF: i32 = 0;
    let mut raw = RUsage {
        user: TimeVal { seconds: 0, microseconds: 0 },
        system: TimeVal { seconds: 0, microseconds: 0 },
        max_rss: 0,
        rest: [0; 13],
    };
    // SAFETY: `raw` is a live, writable struct laid out as Linux's 64-bit `struct rusage`
    // (two timevals and fourteen longs), and getrusage writes only within it.
    let rc = unsafe { getrusage(RUSAGE_SELF, &mut raw) };
    if rc != 0 {
        return Usage::default();
    }
    let seconds = |t: &TimeVal| t.seconds as f64 + t.microseconds as f64 / 1e6;
    Usage {
        user_seconds: seconds(&raw.user),
        system_seconds: seconds(&raw.system),
        max_resident_kib: raw.max_rss.max(0) as u64,
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn usage() -> Usage {
    Usage::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_with_work() {
        let before = usage();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 50 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = usage();
        assert!(after.cpu_seconds() > before.cpu_seconds() + 0.02, "{before:?} {after:?}");
        assert!(after.max_resident_kib > 0);
        let env = Environment::capture();
        assert!(env.nproc >= 1);
        assert!(!env.time.is_empty());
    }
}
