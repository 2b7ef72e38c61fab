//! Retention: deleting whole segments whose newest record is older than the retention period.
//!
//! Its own module because of its one crash-ordering rule: segments go oldest first, each
//! removal made durable (directory sync) before the next, so a crash part way leaves a
//! gap-free suffix and `open` can treat any gap as damage. It takes the flush leader role, and
//! rolls an expired active segment first so that it can go on the next pass.

use super::{Segment, ShardLog};
use crate::error::Result;
use crate::storage::Storage;

impl<S: Storage> ShardLog<S> {
    /// Deletes whole segments whose newest record is older than `retention_ms`. Returns how
    /// many were removed. The newest segment is never removed (it records the next offset);
    /// if it is expired and the log is open, it is rolled first so it can go next time.
    pub async fn enforce_retention(&self, retention_ms: i64) -> Result<usize> {
        let cutoff = self.clock.now_ms().saturating_sub(retention_ms);
        self.lead().await;
        let result = self.enforce_retention_led(cutoff).await;
        self.unlead();
        result
    }

    async fn enforce_retention_led(&self, cutoff: i64) -> Result<usize> {
        let roll_active = {
            let inner = self.inner.borrow();
            let active_expired =
                inner.segments.last().is_some_and(|s| !s.is_empty() && s.last_arrival_ms < cutoff);
            active_expired && !inner.sealing && inner.pending.is_empty() && !inner.closed
        };
        // Roll first so that an expired active segment can go too. If the roll fails (on a full
        // disk the next segment cannot be preallocated), still delete the older expired
        // segments: that frees the space the next pass needs to roll.
        let rolled = if roll_active { self.roll().await } else { Ok(()) };
        let doomed: Vec<Segment<S::File>> = {
            let mut inner = self.inner.borrow_mut();
            let keep_from = inner
                .segments
                .iter()
                .position(|s| s.is_empty() || s.last_arrival_ms >= cutoff)
                .unwrap_or(inner.segments.len())
                .min(inner.segments.len().saturating_sub(1));
            inner.segments.drain(..keep_from).collect()
        };
        if doomed.is_empty() {
            return rolled.map(|()| 0);
        }
        // Oldest first, each removal made durable before the next: removals in one directory
        // are not ordered on disk without a sync in between, and a crash part way must leave a
        // gap-free suffix (`open` reports a gap as damage).
        for segment in &doomed {
            self.storage.remove(&segment.path).await?;
            if self.storage.exists(&segment.index_path) {
                self.storage.remove(&segment.index_path).await?;
            }
            self.storage.sync_dir(&self.dir).await?;
        }
        rolled?;
        Ok(doomed.len())
    }
}
