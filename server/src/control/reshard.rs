//! Resharding on the controller: SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode.
//!
//! Every reshard follows one crash-safe order:
//! 1. publish the stream as UPDATING (not persisted; writes keep flowing);
//! 2. create the children's logs on their cores (empty; nothing routes to them yet);
//! 3. seal each parent's log on its owning core (durable seal marker = ending offset);
//! 4. commit the catalog: parents closed with their ending offsets, children added, ACTIVE.
//!
//! A crash before 4 leaves the catalog as it was: on restart a parent that is sealed on disk
//! but open in the catalog is unsealed, and the children's empty directories are never routed
//! to (their indexes are reused). A crash after 4 finds the logs already sealed. Either way the
//! catalog and the logs agree on one shard set, and appends acknowledged by a parent stay in it.
//! Writes that reach a parent between 3 and 4 get `Sealed` and are re-routed by the API layer.

use std::rc::Rc;

use spate_proto::ApiError;
use spate_proto::limits::SHARD_COUNT_UPDATES_PER_DAY_MAX;
use spate_proto::requests::{
    MergeShardsInput, SplitShardInput, UpdateShardCountInput, UpdateStreamModeInput,
};
use spate_proto::responses as out;

use super::{Controller, master_stream, open_shards};
use crate::catalog::{self, Catalog, ShardMeta, StreamMeta, StreamMode, StreamStatus};
use crate::core::Core;
use crate::hash;
use crate::lookup::ApiResult;
use crate::msg::{AdminMsg, Msg};
use crate::placement::{self, least_loaded_core};

/// A reshard: which open shards close, and the new shards (children, and any intermediate
/// shards, which are created closed and empty to keep each shard's parents at most two).
pub struct Plan {
    pub close: Vec<u32>,
    pub children: Vec<ShardMeta>,
    /// UpdateShardCount's rolling-day record, committed with the reshard itself (one commit).
    pub shard_count_updates_ms: Option<Vec<i64>>,
}

fn require_active(core: &Core, stream: &StreamMeta) -> Result<(), ApiError> {
    if stream.status != StreamStatus::Active {
        return Err(ApiError::stream_not_active(
            &stream.name,
            &core.config().account_id,
            stream.status.as_str(),
        ));
    }
    Ok(())
}

fn open_shard<'a>(
    core: &Core,
    stream: &'a StreamMeta,
    shard_id: &str,
) -> Result<&'a ShardMeta, ApiError> {
    let account = &core.config().account_id;
    let shard = catalog::parse_shard_id(shard_id)
        .and_then(|i| stream.shard(i))
        .ok_or_else(|| ApiError::shard_not_found(shard_id, &stream.name, account))?;
    if !shard.is_open() {
        return Err(ApiError::resource_in_use(format!(
            "Shard {shard_id} in stream {} under account {account} has already been merged or \
             split, and thus is not eligible for merging or splitting.",
            stream.name
        )));
    }
    Ok(shard)
}

fn check_shard_limits(
    core: &Core,
    catalog: &Catalog,
    stream: &StreamMeta,
    added_open: i64,
) -> Result<(), ApiError> {
    let config = core.config();
    let stream_open = stream.open_shard_count() as i64 + added_open;
    let total_open = catalog.shard_count_total() as i64 + added_open;
    if stream_open > config.shards_per_stream_max as i64 || total_open > config.shards_max as i64 {
        return Err(ApiError::shard_limit_exceeded(
            &config.account_id,
            &config.region,
            catalog.shard_count_total() as u64,
            config.shards_max as u64,
            added_open.max(0) as u64,
        ));
    }
    Ok(())
}

fn new_shard(
    catalog: &Catalog,
    core: &Core,
    placed: &mut Vec<usize>,
    index: u32,
    range: (u128, u128),
    parents: (Option<u32>, Option<u32>),
    now: i64,
) -> ShardMeta {
    let owner = least_loaded_core(catalog, core.cores(), placed);
    placed.push(owner);
    ShardMeta {
        index,
        starting_hash_key: range.0,
        ending_hash_key: range.1,
        parent: parents.0,
        adjacent_parent: parents.1,
        core: owner,
        created_ms: now,
        ending_offset: None,
        closed_ms: None,
    }
}

/// Runs a plan through the crash-safe order above.
pub async fn execute_plan(
    core: &Rc<Core>,
    controller: &Controller,
    stream_name: &str,
    plan: Plan,
) -> Result<(), ApiError> {
    let base = controller.snapshot();
    let stream = base
        .streams
        .get(stream_name)
        .cloned()
        .ok_or_else(|| ApiError::stream_not_found(stream_name, &core.config().account_id))?;
    // 1. UPDATING, visible to DescribeStream.
    let mut updating = base.clone();
    updating.streams.get_mut(stream_name).expect("present").status = StreamStatus::Updating;
    controller.publish_transient(core, updating).await;
    crate::failpoint::failpoint("reshard-updating");
    let result = async {
        // 2. Children's logs.
        open_shards(core, stream.incarnation, &plan.children).await?;
        crate::failpoint::failpoint("reshard-children-created");
        for child in plan.children.iter().filter(|c| c.ending_offset.is_some()) {
            seal(core, stream.incarnation, child).await?;
        }
        // 3. Seal the parents, all at once: writers to a sealed parent wait (bounded) for the
        // commit, so sealing many parents one after another could outlast their retry budget.
        let sealing: Vec<_> = plan
            .close
            .iter()
            .map(|&index| {
                let parent = stream.shard(index).expect("planned from this stream").clone();
                let (core, incarnation) = (core.clone(), stream.incarnation);
                glommio::spawn_local(
                    async move { (index, seal(&core, incarnation, &parent).await) },
                )
            })
            .collect();
        let mut ends = Vec::new();
        let mut failed = None;
        // Every seal is awaited, failed or not, so an undo finds them all finished.
        for task in sealing {
            match task.await {
                (index, Ok(end)) => {
                    ends.push((index, end));
                    crate::failpoint::failpoint("reshard-parent-sealed");
                }
                (_, Err(error)) => drop(failed.get_or_insert(error)),
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok::<Vec<(u32, u64)>, ApiError>(ends),
        }
    }
    .await;
    let now = core.now_ms();
    let mut catalog = base.clone();
    let meta = catalog.streams.get_mut(stream_name).expect("present");
    meta.status = StreamStatus::Active;
    // Child indexes are used up even if the reshard fails: their directories may exist (startup
    // removes them), so the next reshard must not open a leftover, possibly sealed, log.
    let next = plan.children.iter().map(|c| c.index + 1).max().unwrap_or(meta.next_shard_index);
    meta.next_shard_index = meta.next_shard_index.max(next);
    let undo_catalog = catalog.clone();
    let committed = match result {
        Ok(ends) => {
            let meta = catalog.streams.get_mut(stream_name).expect("present");
            for (index, end) in ends {
                let shard = meta.shards.iter_mut().find(|s| s.index == index).expect("present");
                shard.ending_offset = Some(end);
                shard.closed_ms = Some(now);
            }
            meta.shards.extend(plan.children);
            if let Some(updates) = plan.shard_count_updates_ms {
                meta.shard_count_updates_ms = updates;
            }
            // 4. The commit point.
            let committed = if crate::failpoint::fails_once("reshard-commit") {
                Err(ApiError::internal("injected failure: reshard-commit"))
            } else if crate::failpoint::fails_slowly_once("reshard-commit") {
                // A commit that hangs (a slow disk) before it fails, with the parents sealed.
                glommio::timer::sleep(crate::failpoint::SLOW_FAILURE).await;
                Err(ApiError::internal("injected slow failure: reshard-commit"))
            } else {
                controller.commit(core, catalog).await
            };
            crate::failpoint::failpoint("reshard-committed");
            committed
        }
        Err(error) => Err(error),
    };
    if let Err(error) = committed {
        // Undo: reopen every parent (sealed or not); the catalog on disk never changed (a
        // failed commit leaves the old file: it is replaced by rename only after the new one
        // is synced). Without this the parents would stay sealed, refusing writes, until a
        // restart.
        for &index in &plan.close {
            let shard = stream.shard(index).expect("present");
            let owner = placement::owner(shard, core.cores());
            let incarnation = stream.incarnation;
            let unsealed = core
                .call(owner, |reply| {
                    Msg::Admin(AdminMsg::Unseal { incarnation, shard: index, reply })
                })
                .await;
            if !matches!(unsealed, Some(Ok(()))) {
                tracing::error!(
                    shard = %catalog::shard_id(index),
                    "could not reopen a parent after a failed reshard: {unsealed:?}"
                );
            }
        }
        controller.publish_transient(core, undo_catalog).await;
        return Err(error);
    }
    Ok(())
}

async fn seal(core: &Rc<Core>, incarnation: u64, shard: &ShardMeta) -> Result<u64, ApiError> {
    let index = shard.index;
    core.call(placement::owner(shard, core.cores()), |reply| {
        Msg::Admin(AdminMsg::Seal { incarnation, shard: index, reply })
    })
    .await
    .unwrap_or_else(|| Err("core unavailable".into()))
    .map_err(|e| ApiError::internal(format!("sealing {}: {e}", catalog::shard_id(index))))
}

/// ValidationException for a client's SplitShard, MergeShards or UpdateShardCount on an
/// ON_DEMAND stream (the autoscaler reshards those itself).
pub fn require_provisioned(stream: &StreamMeta, operation: &str) -> Result<(), ApiError> {
    if stream.mode == StreamMode::OnDemand {
        return Err(ApiError::validation(format!(
            "{operation} is not supported for stream {} in ON_DEMAND capacity mode.",
            stream.name
        )));
    }
    Ok(())
}

pub async fn split_shard(
    core: &Rc<Core>,
    controller: &Controller,
    r: SplitShardInput,
) -> ApiResult {
    let stream = master_stream(core, controller, &r.stream_ref()?)?;
    require_active(core, &stream)?;
    let parent = open_shard(core, &stream, &r.shard_to_split)?.clone();
    let account = &core.config().account_id;
    // The key must exceed the shard's start by more than one and stay below its end (so each
    // child gets at least two hash keys). A key past 2^128 - 1 is past every end.
    let key: Option<u128> = r.new_starting_hash_key.parse().ok();
    let key = key
        .filter(|&k| k > parent.starting_hash_key.saturating_add(1) && k < parent.ending_hash_key);
    let Some(key) = key else {
        return Err(ApiError::invalid_new_starting_hash_key(
            &r.new_starting_hash_key,
            &r.shard_to_split,
            &stream.name,
            account,
            &parent.starting_hash_key.to_string(),
            &parent.ending_hash_key.to_string(),
        ));
    };
    let catalog = controller.snapshot();
    check_shard_limits(core, &catalog, &stream, 1)?;
    let now = core.now_ms();
    let mut placed = Vec::new();
    let n = stream.next_shard_index;
    let children = vec![
        new_shard(
            &catalog,
            core,
            &mut placed,
            n,
            (parent.starting_hash_key, key - 1),
            (Some(parent.index), None),
            now,
        ),
        new_shard(
            &catalog,
            core,
            &mut placed,
            n + 1,
            (key, parent.ending_hash_key),
            (Some(parent.index), None),
            now,
        ),
    ];
    execute_plan(
        core,
        controller,
        &stream.name,
        Plan { close: vec![parent.index], children, shard_count_updates_ms: None },
    )
    .await?;
    Ok(Vec::new())
}

pub async fn merge_shards(
    core: &Rc<Core>,
    controller: &Controller,
    r: MergeShardsInput,
) -> ApiResult {
    let stream = master_stream(core, controller, &r.stream_ref()?)?;
    require_active(core, &stream)?;
    let a = open_shard(core, &stream, &r.shard_to_merge)?.clone();
    let b = open_shard(core, &stream, &r.adjacent_shard_to_merge)?.clone();
    let adjacent = a.ending_hash_key.checked_add(1) == Some(b.starting_hash_key)
        || b.ending_hash_key.checked_add(1) == Some(a.starting_hash_key);
    if !adjacent || a.index == b.index {
        return Err(ApiError::shards_not_adjacent(
            &r.shard_to_merge,
            &r.adjacent_shard_to_merge,
            &stream.name,
            &core.config().account_id,
        ));
    }
    let catalog = controller.snapshot();
    let now = core.now_ms();
    let mut placed = Vec::new();
    let range =
        (a.starting_hash_key.min(b.starting_hash_key), a.ending_hash_key.max(b.ending_hash_key));
    let child = new_shard(
        &catalog,
        core,
        &mut placed,
        stream.next_shard_index,
        range,
        (Some(a.index), Some(b.index)),
        now,
    );
    execute_plan(
        core,
        controller,
        &stream.name,
        Plan { close: vec![a.index, b.index], children: vec![child], shard_count_updates_ms: None },
    )
    .await?;
    Ok(Vec::new())
}

/// Plans a uniform reshard of all open shards into `target` even ranges. A final shard that
/// overlaps more than two old shards gets a chain of closed, empty intermediate shards so that
/// every shard has at most a parent and an adjacent parent, and a reader that finishes all of a
/// shard's parents before reading it keeps per-key order.
pub fn plan_uniform(
    catalog: &Catalog,
    core: &Core,
    stream: &StreamMeta,
    target: u32,
    now: i64,
) -> Plan {
    let mut old: Vec<&ShardMeta> = stream.open_shards().collect();
    old.sort_by_key(|s| s.starting_hash_key);
    let mut next = stream.next_shard_index;
    let mut placed = Vec::new();
    let mut children = Vec::new();
    for (start, end) in hash::even_ranges(target) {
        let overlapping: Vec<&ShardMeta> = old
            .iter()
            .copied()
            .filter(|s| s.starting_hash_key <= end && s.ending_hash_key >= start)
            .collect();
        let mut parents: Vec<(u32, (u128, u128))> = overlapping
            .iter()
            .map(|s| (s.index, (s.starting_hash_key, s.ending_hash_key)))
            .collect();
        while parents.len() > 2 {
            // Merge the first two into a closed, empty intermediate shard.
            let (a, ra) = parents.remove(0);
            let (b, rb) = parents.remove(0);
            let mut intermediate = new_shard(
                catalog,
                core,
                &mut placed,
                next,
                (ra.0.min(rb.0), ra.1.max(rb.1)),
                (Some(a), Some(b)),
                now,
            );
            next += 1;
            intermediate.ending_offset = Some(0);
            intermediate.closed_ms = Some(now);
            let range = (intermediate.starting_hash_key, intermediate.ending_hash_key);
            parents.insert(0, (intermediate.index, range));
            children.push(intermediate);
        }
        let parent = parents.first().map(|p| p.0);
        let adjacent = parents.get(1).map(|p| p.0);
        children.push(new_shard(
            catalog,
            core,
            &mut placed,
            next,
            (start, end),
            (parent, adjacent),
            now,
        ));
        next += 1;
    }
    Plan { close: old.iter().map(|s| s.index).collect(), children, shard_count_updates_ms: None }
}

pub async fn update_shard_count(
    core: &Rc<Core>,
    controller: &Controller,
    r: UpdateShardCountInput,
) -> ApiResult {
    let stream = master_stream(core, controller, &r.stream_ref()?)?;
    require_active(core, &stream)?;
    require_provisioned(&stream, "UpdateShardCount")?;
    let open = stream.open_shard_count() as u64;
    let target = r.target_shard_count as u64;
    if target > open * 2 {
        return Err(ApiError::update_shard_count_scale_up(open, target));
    }
    if target * 2 < open {
        return Err(ApiError::update_shard_count_scale_down(open, target));
    }
    let now = core.now_ms();
    let recent: Vec<i64> = stream
        .shard_count_updates_ms
        .iter()
        .copied()
        .filter(|t| now - t < 24 * 3_600_000)
        .collect();
    if recent.len() >= SHARD_COUNT_UPDATES_PER_DAY_MAX {
        return Err(ApiError::limit_exceeded(format!(
            "Stream {} under account {} has exceeded its limit of {SHARD_COUNT_UPDATES_PER_DAY_MAX} \
             UpdateShardCount calls in a rolling 24-hour period.",
            stream.name,
            core.config().account_id
        )));
    }
    let catalog = controller.snapshot();
    check_shard_limits(core, &catalog, &stream, target as i64 - open as i64)?;
    let mut plan = plan_uniform(&catalog, core, &stream, target as u32, now);
    let mut updates = recent;
    updates.push(now);
    plan.shard_count_updates_ms = Some(updates);
    execute_plan(core, controller, &stream.name, plan).await?;
    let config = core.config();
    Ok(spate_proto::to_json(&out::UpdateShardCountOutput {
        stream_name: Some(stream.name.clone()),
        current_shard_count: Some(open as i32),
        target_shard_count: Some(target as i32),
        stream_arn: Some(stream.arn(&config.region, &config.account_id)),
    }))
}

pub async fn update_stream_mode(
    core: &Rc<Core>,
    controller: &Controller,
    r: UpdateStreamModeInput,
) -> ApiResult {
    let stream = master_stream(core, controller, &crate::lookup::arn_ref(r.stream()?))?;
    require_active(core, &stream)?;
    let mode = match r.stream_mode_details.stream_mode {
        spate_proto::types::StreamMode::OnDemand => StreamMode::OnDemand,
        spate_proto::types::StreamMode::Provisioned => StreamMode::Provisioned,
    };
    let mut catalog = controller.snapshot();
    catalog.streams.get_mut(&stream.name).expect("present").mode = mode;
    controller.commit(core, catalog).await?;
    Ok(Vec::new())
}

/// A shard's write load over one autoscaler window.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    bytes: u64,
    records: u64,
    throttled: u64,
}

/// Split a shard whose write utilization reaches this fraction of its quota over the window.
pub const AUTOSCALE_SPLIT_UTILIZATION: f64 = 0.8;
/// Merge two adjacent shards that are both below this utilization.
pub const AUTOSCALE_MERGE_UTILIZATION: f64 = 0.1;

/// The on-demand autoscaler: every `autoscale_interval` it measures each shard's write load
/// (from the owning cores' counters), splits the hottest shard of an ON_DEMAND stream whose load
/// stays at or above 80% of its quota (or was throttled), or else merges an adjacent pair of
/// cold shards, within the configured bounds. One decision per stream per window, so every
/// decision is judged on a full window of load.
pub async fn autoscaler(core: Rc<Core>, controller: Rc<Controller>) {
    let interval = core.config().autoscale_interval;
    let window_seconds = interval.as_secs_f64();
    let mut previous: std::collections::HashMap<(String, String), Load> = Default::default();
    loop {
        glommio::timer::sleep(interval).await;
        if core.shutdown().is_triggered() {
            return;
        }
        let mut current: std::collections::HashMap<(String, String), Load> = Default::default();
        for owner in 0..core.cores() {
            let Some(snapshot) =
                core.call(owner, |reply| Msg::Admin(AdminMsg::Metrics { reply })).await
            else {
                continue;
            };
            for (key, c) in snapshot.shards {
                let l = current.entry(key).or_default();
                l.bytes += c.incoming_bytes;
                l.records += c.incoming_records;
                l.throttled += c.write_throttled;
            }
        }
        let delta = |key: &(String, String)| -> Load {
            let now = current.get(key).copied().unwrap_or_default();
            let before = previous.get(key).copied().unwrap_or_default();
            Load {
                bytes: now.bytes.saturating_sub(before.bytes),
                records: now.records.saturating_sub(before.records),
                throttled: now.throttled.saturating_sub(before.throttled),
            }
        };
        let utilization = |l: Load| -> f64 {
            let bytes = l.bytes as f64 / ((1 << 20) as f64 * window_seconds);
            let records = l.records as f64 / (1000.0 * window_seconds);
            bytes.max(records)
        };
        let streams: Vec<StreamMeta> = controller
            .snapshot()
            .streams
            .values()
            .filter(|s| s.mode == StreamMode::OnDemand && s.status == StreamStatus::Active)
            .cloned()
            .collect();
        let config = core.config().clone();
        for stream in streams {
            let mut open: Vec<&ShardMeta> = stream.open_shards().collect();
            open.sort_by_key(|s| s.starting_hash_key);
            let loads: Vec<(Load, f64)> = open
                .iter()
                .map(|s| {
                    let l = delta(&(stream.name.clone(), s.shard_id()));
                    (l, utilization(l))
                })
                .collect();
            let hottest = (0..open.len())
                .filter(|&i| loads[i].1 >= AUTOSCALE_SPLIT_UTILIZATION || loads[i].0.throttled > 0)
                .filter(|&i| open[i].ending_hash_key - open[i].starting_hash_key >= 2)
                .max_by(|&a, &b| loads[a].1.total_cmp(&loads[b].1));
            let decision = if let (Some(i), true) =
                (hottest, (open.len() as u32) < config.on_demand_shards_max)
            {
                let shard = open[i];
                let middle = shard.starting_hash_key
                    + (shard.ending_hash_key - shard.starting_hash_key) / 2
                    + 1;
                let reason = format!(
                    "write utilization {:.2} (throttled {}) over {window_seconds:.0}s",
                    loads[i].1, loads[i].0.throttled
                );
                let request = SplitShardInput {
                    stream_name: Some(stream.name.clone()),
                    shard_to_split: shard.shard_id(),
                    new_starting_hash_key: middle.to_string(),
                    stream_arn: None,
                };
                Some(("split", reason, Either::Split(request)))
            } else if (open.len() as u32) > config.on_demand_shards_min {
                (0..open.len().saturating_sub(1))
                    .find(|&i| {
                        loads[i].1 < AUTOSCALE_MERGE_UTILIZATION
                            && loads[i + 1].1 < AUTOSCALE_MERGE_UTILIZATION
                            && loads[i].0.throttled == 0
                            && loads[i + 1].0.throttled == 0
                            // Only shards that lived through a whole window are judged.
                            && core.now_ms() - open[i].created_ms >= interval.as_millis() as i64
                            && core.now_ms() - open[i + 1].created_ms >= interval.as_millis() as i64
                    })
                    .map(|i| {
                        let reason = format!(
                            "write utilization {:.2} and {:.2} over {window_seconds:.0}s",
                            loads[i].1,
                            loads[i + 1].1
                        );
                        let request = MergeShardsInput {
                            stream_name: Some(stream.name.clone()),
                            shard_to_merge: open[i].shard_id(),
                            adjacent_shard_to_merge: open[i + 1].shard_id(),
                            stream_arn: None,
                        };
                        ("merge", reason, Either::Merge(request))
                    })
            } else {
                None
            };
            let Some((action, reason, request)) = decision else { continue };
            let _permit = controller.lock.acquire_permit(1).await;
            let result = match request {
                Either::Split(r) => split_shard(&core, &controller, r).await,
                Either::Merge(r) => merge_shards(&core, &controller, r).await,
            };
            match result {
                Ok(_) => {
                    tracing::info!(stream = %stream.name, action, %reason, "autoscaler");
                    core.metrics().autoscaler_decision(&stream.name, action, &reason_label(action));
                }
                Err(e) => {
                    tracing::warn!(stream = %stream.name, action, "autoscaler: {}", e.message)
                }
            }
        }
        previous = current;
    }
}

enum Either {
    Split(SplitShardInput),
    Merge(MergeShardsInput),
}

/// A low-cardinality reason label for the decisions metric.
fn reason_label(action: &str) -> String {
    match action {
        "split" => format!("write_utilization_over_{AUTOSCALE_SPLIT_UTILIZATION}"),
        _ => format!("write_utilization_under_{AUTOSCALE_MERGE_UTILIZATION}"),
    }
}
