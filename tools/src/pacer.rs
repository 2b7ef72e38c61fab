//! The open-loop pacer: a fixed schedule of intended send times (`start + i / rate`) that does
//! not slip when a request is slow. Latency measured from the intended time, not from the actual
//! send, includes the queueing a stalled server causes, so a stall cannot hide its own effect
//! (no coordinated omission; the wrk2 approach).

use std::time::{Duration, Instant};

pub struct Pacer {
    start: Instant,
    interval_seconds: f64,
    issued: u64,
}

impl Pacer {
    /// `per_second` sends per second, the first at `start`.
    pub fn new(start: Instant, per_second: f64) -> Pacer {
        assert!(per_second > 0.0 && per_second.is_finite());
        Pacer { start, interval_seconds: 1.0 / per_second, issued: 0 }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_seconds)
    }

    /// The intended time of the next send.
    pub fn next_intended(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.issued as f64 * self.interval_seconds)
    }

    /// Sleeps until the next intended time (not at all when behind schedule), then returns that
    /// intended time and advances the schedule by one send.
    pub fn wait_next(&mut self) -> Instant {
        let intended = self.next_intended();
        let now = Instant::now();
        if intended > now {
            std::thread::sleep(intended - now);
        }
        self.issued += 1;
        intended
    }

    /// Sends issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Sends whose intended time is before `deadline` (what a perfect sender would have issued).
    pub fn due_before(&self, deadline: Instant) -> u64 {
        let elapsed = deadline.saturating_duration_since(self.start).as_secs_f64();
        (elapsed / self.interval_seconds).ceil() as u64
    }
}

/// The offset of thread `index`'s first send when `threads` threads each send at
/// `per_thread_rate`: the threads' schedules interleave evenly, so together they send at
/// `threads * per_thread_rate` with one interval between consecutive sends, never in bursts.
pub fn stagger(index: usize, threads: usize, per_thread_rate: f64) -> Duration {
    assert!(index < threads && per_thread_rate > 0.0 && per_thread_rate.is_finite());
    Duration::from_secs_f64(index as f64 / threads as f64 / per_thread_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merged schedule of staggered threads is one evenly spaced schedule at the total
    /// rate: no two threads share a send time (the old stagger put every thread past the
    /// eighth on the same phase, a burst per interval).
    #[test]
    fn staggered_threads_send_evenly() {
        for (threads, per_thread) in [(1, 100.0), (16, 231.25), (64, 57.8), (100, 3.0)] {
            let start = Instant::now();
            let mut pacers: Vec<Pacer> = (0..threads)
                .map(|i| Pacer::new(start + stagger(i, threads, per_thread), per_thread))
                .collect();
            let mut sends: Vec<Duration> = Vec::new();
            for pacer in &mut pacers {
                for _ in 0..4 {
                    sends.push(pacer.next_intended() - start);
                    pacer.issued += 1;
                }
            }
            sends.sort();
            let gap = 1.0 / (threads as f64 * per_thread);
            for (i, pair) in sends.windows(2).enumerate() {
                let actual = (pair[1] - pair[0]).as_secs_f64();
                assert!(
                    (actual - gap).abs() < gap * 1e-6 + 1e-9,
                    "{threads} threads: gap {actual} s after send {i}, want {gap} s"
                );
            }
        }
    }

    /// Runs a pacer against a no-op sink for `run`, returning sends per second achieved.
    fn achieved_rate(per_second: f64, run: Duration) -> f64 {
        let start = Instant::now();
        let deadline = start + run;
        let mut pacer = Pacer::new(start, per_second);
        let mut sink = 0u64;
        while pacer.next_intended() < deadline {
            let intended = pacer.wait_next();
            sink = sink.wrapping_add(intended.elapsed().as_nanos() as u64); // the no-op send
        }
        std::hint::black_box(sink);
        assert_eq!(pacer.issued(), pacer.due_before(deadline));
        // The last send is due up to one interval before the deadline: count the whole window.
        pacer.issued() as f64 / start.elapsed().max(run).as_secs_f64()
    }

    #[test]
    fn holds_target_rate_within_two_percent() {
        let run = Duration::from_secs(2);
        let rates = [100.0, 5_000.0, 20_000.0];
        let handles: Vec<_> = rates
            .iter()
            .map(|&rate| std::thread::spawn(move || (rate, achieved_rate(rate, run))))
            .collect();
        for handle in handles {
            let (target, achieved) = handle.join().unwrap();
            let error = (achieved - target).abs() / target;
            assert!(error < 0.02, "target {target}/s achieved {achieved:.1}/s");
        }
    }

    #[test]
    fn schedule_does_not_slip_after_a_stall() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 1_000.0);
        pacer.wait_next();
        std::thread::sleep(Duration::from_millis(50));
        // The next intended time is still 1 ms after start, so the stall shows as latency.
        let intended = pacer.wait_next();
        assert_eq!(intended, start + Duration::from_millis(1));
        assert!(pacer.due_before(Instant::now()) >= 50);
    }
}
