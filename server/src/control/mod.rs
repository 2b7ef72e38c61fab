//! The controller (core 0): every operation that changes the catalog runs here, one at a time.
//!
//! A change is: validate against the master catalog, do the storage work on the owning cores
//! (open, seal or drop shard logs), persist the new catalog (atomic write + fsync), publish the
//! snapshot to every core, and only then answer. Reads of the catalog run on any core from its
//! snapshot (see `api/`). Resharding and the on-demand autoscaler: `reshard.rs`.
//!
//! The controller's state (`Controller`: the master catalog, the lock that serializes changes,
//! the exact rate limits of catalog-changing operations) is held by core 0's `node::Services`;
//! operations arrive typed, as `msg::ControlMsg::Request`.

pub mod reshard;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use engine::{GlommioStorage, Storage};
use spate_proto::limits::TAGS_PER_STREAM_MAX;
use spate_proto::requests::{
    ConsumerInput, ConsumerRef, CreateStreamInput, DeleteStreamInput, RegisterStreamConsumerInput,
    ResourceRef, RetentionPeriodInput,
};
use spate_proto::responses as out;
use spate_proto::types::ConsumerStatus;
use spate_proto::{ApiError, Request, StreamRef};

use crate::catalog::{
    self, CATALOG_FILE, Catalog, ConsumerMeta, ShardMeta, StreamMeta, StreamMode, StreamStatus,
};
use crate::core::Core;
use crate::lookup::{ApiResult, arn_ref, find_consumer};
use crate::msg::{AdminMsg, FanoutMsg, Msg};
use crate::placement::least_loaded_core;
use crate::wire::wire_consumer;
use crate::{hash, placement};

/// Shards of a new ON_DEMAND stream, as on AWS.
pub const ON_DEMAND_INITIAL_SHARDS: u32 = 4;

pub struct Controller {
    catalog: RefCell<Catalog>,
    pub(crate) lock: glommio::sync::Semaphore,
    /// Account-wide rate limits of catalog-changing operations (exact: they all run here).
    limits: crate::quota::OperationLimits,
}

impl Controller {
    pub fn new(catalog: Catalog, quotas_enabled: bool) -> Controller {
        Controller {
            catalog: RefCell::new(catalog),
            lock: glommio::sync::Semaphore::new(1),
            limits: crate::quota::OperationLimits::new(quotas_enabled, 1.0),
        }
    }

    /// Startup work once every core is serving: finish interrupted creations and deletions.
    pub async fn start(self: &Rc<Self>, core: &Rc<Core>) {
        glommio::spawn_local(reshard::autoscaler(core.clone(), self.clone())).detach();
        let _permit = self.lock.acquire_permit(1).await;
        let pending: Vec<StreamMeta> = self
            .catalog
            .borrow()
            .streams
            .values()
            .filter(|s| {
                matches!(
                    s.status,
                    StreamStatus::Creating | StreamStatus::Deleting | StreamStatus::Updating
                )
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            return;
        }
        let mut catalog = self.catalog.borrow().clone();
        for stream in pending {
            match stream.status {
                StreamStatus::Deleting => {
                    drop_stream_everywhere(core, stream.incarnation).await;
                    catalog.streams.remove(&stream.name);
                }
                _ => {
                    if let Some(s) = catalog.streams.get_mut(&stream.name) {
                        s.status = StreamStatus::Active;
                    }
                }
            }
        }
        if let Err(e) = self.commit(core, catalog).await {
            tracing::error!("finishing interrupted catalog changes: {}", e.message);
        }
    }

    /// Persists and publishes a new catalog version.
    pub(crate) async fn commit(
        &self,
        core: &Rc<Core>,
        mut catalog: Catalog,
    ) -> Result<(), ApiError> {
        catalog.version = self.catalog.borrow().version + 1;
        crate::failpoint::failpoint("catalog-before-persist");
        let persisted = match persist(core, &catalog).await {
            Ok(()) if crate::failpoint::fails_always("catalog-dir-sync") => {
                Err(ApiError::internal("injected failure syncing the catalog's directory"))
            }
            other => other,
        };
        if let Err(error) = persisted {
            // Failing after the rename (syncing the directory) leaves the new catalog in place
            // but not durable: a power loss could bring the old one back, and startup's orphan
            // cleanup would then delete directories holding acknowledged records. So the
            // directory sync is retried, and if it keeps failing the server stops rather than
            // publish a catalog it cannot keep. Otherwise the old file stands and the caller
            // undoes (a reshard reopens its parents).
            let on_disk = std::fs::read(core.config().data_dir.join(CATALOG_FILE))
                .ok()
                .and_then(|bytes| Catalog::from_json(&bytes).ok());
            if on_disk.is_none_or(|c| c.version != catalog.version) {
                return Err(error);
            }
            tracing::warn!("catalog replaced, but its directory was not synced: {}", error.message);
            sync_catalog_dir_or_stop(core).await;
        }
        *self.catalog.borrow_mut() = catalog.clone();
        core.publish(Arc::new(catalog.clone())).await;
        core.metrics().set_streams(
            catalog
                .streams
                .values()
                .map(|s| {
                    let gauges = crate::metrics::StreamGauges {
                        open_shards: s.open_shard_count() as u64,
                        mode: s.mode.as_str().to_string(),
                    };
                    (s.name.clone(), gauges)
                })
                .collect(),
        );
        Ok(())
    }

    /// Publishes without persisting (transient states such as UPDATING).
    pub(crate) async fn publish_transient(&self, core: &Rc<Core>, mut catalog: Catalog) {
        catalog.version = self.catalog.borrow().version + 1;
        *self.catalog.borrow_mut() = catalog.clone();
        core.publish(Arc::new(catalog)).await;
    }

    pub fn snapshot(&self) -> Catalog {
        self.catalog.borrow().clone()
    }
}

/// Syncs the data directory after a catalog rename whose own sync failed, a few times; stops
/// the process if it cannot (systemd restarts it, and startup reads whichever catalog the disk
/// kept, with nothing published that the disk may not have).
async fn sync_catalog_dir_or_stop(core: &Core) {
    let data_dir = &core.config().data_dir;
    let mut last = String::new();
    for attempt in 0..CATALOG_SYNC_ATTEMPTS {
        if attempt > 0 {
            glommio::timer::sleep(std::time::Duration::from_millis(10 << attempt)).await;
        }
        let injected = crate::failpoint::fails_always("catalog-dir-sync");
        match GlommioStorage.sync_dir(data_dir).await {
            Ok(()) if !injected => return,
            Ok(()) => last = "injected failure".into(),
            Err(e) => last = e.to_string(),
        }
    }
    tracing::error!(
        "stopping: the catalog's directory {} cannot be synced ({last}); a committed catalog \
         change would not survive a power loss",
        data_dir.display()
    );
    eprintln!("spated: stopping: the catalog's directory cannot be synced ({last})");
    std::process::exit(1);
}

/// How often a failed catalog directory sync is retried before the server stops.
const CATALOG_SYNC_ATTEMPTS: u32 = 4;

/// Commits a catalog change that finishes a transition already durable (a stream leaving
/// CREATING or DELETING). It must not stay half-done after the operation answers, so a
/// failure is retried; if it keeps failing the server stops, and startup finishes the
/// transition from the catalog on disk.
async fn commit_finishing(core: &Rc<Core>, controller: &Controller, catalog: Catalog) {
    let mut last = String::new();
    for attempt in 0..CATALOG_SYNC_ATTEMPTS {
        if attempt > 0 {
            glommio::timer::sleep(std::time::Duration::from_millis(10 << attempt)).await;
        }
        match controller.commit(core, catalog.clone()).await {
            Ok(()) => return,
            Err(e) => last = e.message,
        }
    }
    tracing::error!("stopping: a catalog transition cannot be committed: {last}");
    eprintln!("spated: stopping: a catalog transition cannot be committed ({last})");
    std::process::exit(1);
}

async fn persist(core: &Core, catalog: &Catalog) -> Result<(), ApiError> {
    engine::log::write_file_atomic(
        &GlommioStorage,
        &core.config().data_dir,
        CATALOG_FILE,
        catalog.to_json(),
    )
    .await
    .map_err(|e| ApiError::internal(format!("persisting the catalog: {e}")))
}

/// Runs one catalog-changing operation on the controller (parsed once, on the receiving core).
pub async fn execute(core: &Rc<Core>, controller: &Controller, request: Request) -> ApiResult {
    let operation = request.operation().name();
    if !controller.limits.admit(operation, core.clock().monotonic_ns()) {
        return Err(crate::lookup::rate_exceeded(core, operation));
    }
    let _permit = controller.lock.acquire_permit(1).await;
    run(core, controller, request).await
}

async fn run(core: &Rc<Core>, controller: &Controller, request: Request) -> ApiResult {
    match request {
        Request::CreateStream(r) => create_stream(core, controller, r).await,
        Request::DeleteStream(r) => delete_stream(core, controller, r).await,
        Request::IncreaseStreamRetentionPeriod(r) => retention(core, controller, r, true).await,
        Request::DecreaseStreamRetentionPeriod(r) => retention(core, controller, r, false).await,
        Request::AddTagsToStream(r) => {
            let stream = r.stream_ref()?;
            add_tags(core, controller, &stream, r.tags).await
        }
        Request::RemoveTagsFromStream(r) => {
            let stream = r.stream_ref()?;
            remove_tags(core, controller, &stream, r.tag_keys).await
        }
        Request::TagResource(r) => match r.resource_ref()? {
            ResourceRef::Stream(s) => add_tags(core, controller, &arn_ref(s), r.tags).await,
            ResourceRef::Consumer(c) => {
                ApiError::check_tag_characters(&r.tags)?;
                let tags = r.tags;
                change_consumer_tags(core, controller, &ConsumerRef::Arn(c), |t| t.extend(tags))
                    .await
            }
        },
        Request::UntagResource(r) => match r.resource_ref()? {
            ResourceRef::Stream(s) => remove_tags(core, controller, &arn_ref(s), r.tag_keys).await,
            ResourceRef::Consumer(c) => {
                let keys = r.tag_keys;
                change_consumer_tags(core, controller, &ConsumerRef::Arn(c), |t| {
                    keys.iter().for_each(|k| drop(t.remove(k)))
                })
                .await
            }
        },
        Request::RegisterStreamConsumer(r) => register_consumer(core, controller, r).await,
        Request::DeregisterStreamConsumer(r) => deregister_consumer(core, controller, r).await,
        // The autoscaler splits and merges on-demand streams through the same functions; a
        // client may not ("only supported for the data streams with the provisioned capacity
        // mode", ValidationException).
        Request::SplitShard(r) => {
            let stream = master_stream(core, controller, &r.stream_ref()?)?;
            reshard::require_provisioned(&stream, "SplitShard")?;
            reshard::split_shard(core, controller, r).await
        }
        Request::MergeShards(r) => {
            let stream = master_stream(core, controller, &r.stream_ref()?)?;
            reshard::require_provisioned(&stream, "MergeShards")?;
            reshard::merge_shards(core, controller, r).await
        }
        Request::UpdateShardCount(r) => reshard::update_shard_count(core, controller, r).await,
        Request::UpdateStreamMode(r) => reshard::update_stream_mode(core, controller, r).await,
        other => Err(ApiError::internal(format!(
            "{} is not a controller operation",
            other.operation().name()
        ))),
    }
}

/// Looks a stream up in the controller's master catalog (not a snapshot).
pub fn master_stream(
    core: &Core,
    controller: &Controller,
    stream: &StreamRef,
) -> Result<StreamMeta, ApiError> {
    let config = core.config();
    crate::lookup::check_arn_home(core, stream)?;
    controller
        .catalog
        .borrow()
        .streams
        .get(stream.name())
        .cloned()
        .ok_or_else(|| ApiError::stream_not_found(stream.name(), &config.account_id))
}

/// Opens the given shards' logs on their owning cores.
pub async fn open_shards(
    core: &Rc<Core>,
    incarnation: u64,
    shards: &[ShardMeta],
) -> Result<(), ApiError> {
    let mut by_core: BTreeMap<usize, Vec<(u64, u32)>> = BTreeMap::new();
    for s in shards {
        by_core.entry(placement::owner(s, core.cores())).or_default().push((incarnation, s.index));
    }
    for (owner, list) in by_core {
        let result = core
            .call(owner, |reply| Msg::Admin(AdminMsg::Open { shards: list, reply }))
            .await
            .unwrap_or_else(|| Err("core unavailable".into()));
        result.map_err(ApiError::internal)?;
    }
    Ok(())
}

async fn drop_stream_everywhere(core: &Rc<Core>, incarnation: u64) {
    for owner in 0..core.cores() {
        core.call(owner, |reply| Msg::Admin(AdminMsg::DropStream { incarnation, reply })).await;
    }
    let _ = std::fs::remove_dir_all(catalog::stream_dir(&core.config().data_dir, incarnation));
}

async fn create_stream(
    core: &Rc<Core>,
    controller: &Controller,
    r: CreateStreamInput,
) -> ApiResult {
    let config = core.config();
    let mode = match r.stream_mode_details.map(|d| d.stream_mode) {
        Some(spate_proto::types::StreamMode::OnDemand) => StreamMode::OnDemand,
        _ => StreamMode::Provisioned,
    };
    let shard_count = match (mode, r.shard_count) {
        (StreamMode::OnDemand, _) => ON_DEMAND_INITIAL_SHARDS,
        (StreamMode::Provisioned, Some(n)) => n as u32,
        (StreamMode::Provisioned, None) => {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'shardCount' failed to satisfy \
                 constraint: Member must not be null",
            ));
        }
    };
    let mut catalog = controller.snapshot();
    if catalog.streams.contains_key(&r.stream_name) {
        return Err(ApiError::stream_in_use(&r.stream_name, &config.account_id));
    }
    if shard_count > config.shards_per_stream_max
        || catalog.shard_count_total() as u64 + shard_count as u64 > config.shards_max as u64
    {
        return Err(ApiError::shard_limit_exceeded(
            &config.account_id,
            &config.region,
            catalog.shard_count_total() as u64,
            config.shards_max as u64,
            shard_count as u64,
        ));
    }
    if let Some(tags) = &r.tags {
        ApiError::check_tag_characters(tags)?;
        if tags.len() > TAGS_PER_STREAM_MAX {
            return Err(ApiError::too_many_tags(
                &r.stream_name,
                &config.account_id,
                TAGS_PER_STREAM_MAX,
            ));
        }
    }
    let now = core.now_ms();
    let incarnation = catalog.next_incarnation.max(1);
    catalog.next_incarnation = incarnation + 1;
    let mut placed = Vec::new();
    let shards: Vec<ShardMeta> = hash::even_ranges(shard_count)
        .into_iter()
        .enumerate()
        .map(|(i, (start, end))| {
            let owner = least_loaded_core(&catalog, core.cores(), &placed);
            placed.push(owner);
            ShardMeta {
                index: i as u32,
                starting_hash_key: start,
                ending_hash_key: end,
                parent: None,
                adjacent_parent: None,
                core: owner,
                created_ms: now,
                ending_offset: None,
                closed_ms: None,
            }
        })
        .collect();
    let stream = StreamMeta {
        name: r.stream_name.clone(),
        incarnation,
        created_ms: now,
        status: StreamStatus::Creating,
        mode,
        retention_hours: spate_proto::limits::RETENTION_HOURS_DEFAULT,
        tags: r.tags.unwrap_or_default(),
        shards: shards.clone(),
        next_shard_index: shard_count,
        consumers: Vec::new(),
        shard_count_updates_ms: Vec::new(),
    };
    catalog.streams.insert(stream.name.clone(), stream);
    controller.commit(core, catalog.clone()).await?;
    // The logs exist on disk before the stream turns ACTIVE. If they cannot be made, the
    // stream is removed again: no CREATING stream outlives the answer.
    let opened = if crate::failpoint::fails_once("open-shards") {
        Err(ApiError::internal("injected failure opening the shards"))
    } else {
        open_shards(core, incarnation, &shards).await
    };
    if let Err(error) = opened {
        tracing::error!("CreateStream {}: {}; removing the stream", r.stream_name, error.message);
        drop_stream_everywhere(core, incarnation).await;
        catalog.streams.remove(&r.stream_name);
        commit_finishing(core, controller, catalog).await;
        return Err(error);
    }
    if let Some(s) = catalog.streams.get_mut(&r.stream_name) {
        s.status = StreamStatus::Active;
    }
    commit_finishing(core, controller, catalog).await;
    Ok(Vec::new())
}

/// Removes closed shards whose records have all passed retention from the catalog, then has
/// their owners delete their logs: they leave ListShards and DescribeStream, GetShardIterator
/// on them is ResourceNotFoundException, and startup no longer opens them (as on Kinesis).
/// Their ids stay reserved, and their children keep naming them as parents.
pub async fn reclaim_shards(
    core: &Rc<Core>,
    controller: &Controller,
    incarnation: u64,
    shards: &[u32],
) {
    let _permit = controller.lock.acquire_permit(1).await;
    let mut catalog = controller.snapshot();
    let Some(stream) = catalog.streams.values_mut().find(|s| s.incarnation == incarnation) else {
        return;
    };
    if stream.status != StreamStatus::Active {
        return;
    }
    let now = core.now_ms();
    let retention_ms = stream.retention_ms();
    let mut removed = Vec::new();
    stream.shards.retain(|shard| {
        // Checked again on the controller: the catalog may have changed since the owner looked,
        // and a retention increase in between keeps the shard. The owner checked its newest
        // record; the closing time bounds it from above here.
        let keep = !shards.contains(&shard.index)
            || !crate::owner::reclaimable(shard, shard.closed_ms, retention_ms, now);
        if !keep {
            removed.push((shard.index, placement::owner(shard, core.cores())));
        }
        keep
    });
    if removed.is_empty() {
        return;
    }
    let name = stream.name.clone();
    if let Err(e) = controller.commit(core, catalog).await {
        tracing::warn!("reclaiming closed shards of {name}: {}", e.message);
        return;
    }
    tracing::info!("reclaimed {} closed shard(s) of {name} past retention", removed.len());
    let mut by_core: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for (index, owner) in removed {
        by_core.entry(owner).or_default().push(index);
    }
    for (owner, shards) in by_core {
        core.call(owner, |reply| Msg::Admin(AdminMsg::DropShards { incarnation, shards, reply }))
            .await;
    }
}

async fn delete_stream(
    core: &Rc<Core>,
    controller: &Controller,
    r: DeleteStreamInput,
) -> ApiResult {
    let stream = master_stream(core, controller, &r.stream_ref()?)?;
    if !stream.consumers.is_empty() && !r.enforce_consumer_deletion.unwrap_or(false) {
        return Err(ApiError::resource_in_use(format!(
            "Stream {} under account {} has registered consumers. Set EnforceConsumerDeletion \
             to delete them with the stream.",
            stream.name,
            core.config().account_id
        )));
    }
    let mut catalog = controller.snapshot();
    if let Some(s) = catalog.streams.get_mut(&stream.name) {
        s.status = StreamStatus::Deleting;
    }
    controller.commit(core, catalog.clone()).await?;
    drop_stream_everywhere(core, stream.incarnation).await;
    catalog.streams.remove(&stream.name);
    commit_finishing(core, controller, catalog).await;
    Ok(Vec::new())
}

async fn retention(
    core: &Rc<Core>,
    controller: &Controller,
    r: RetentionPeriodInput,
    increase: bool,
) -> ApiResult {
    let stream = master_stream(core, controller, &r.stream_ref()?)?;
    r.check_bounds()?;
    let hours = r.retention_period_hours as i64;
    let current = stream.retention_hours as i64;
    if increase && hours < current {
        return Err(ApiError::retention_increase_too_short(hours, &stream.name, current));
    }
    if !increase && hours > current {
        return Err(ApiError::retention_decrease_too_long(hours, &stream.name, current));
    }
    let mut catalog = controller.snapshot();
    catalog.streams.get_mut(&stream.name).expect("present").retention_hours = hours as u32;
    controller.commit(core, catalog).await?;
    Ok(Vec::new())
}

async fn add_tags(
    core: &Rc<Core>,
    controller: &Controller,
    stream: &StreamRef,
    tags: BTreeMap<String, String>,
) -> ApiResult {
    let meta = master_stream(core, controller, stream)?;
    ApiError::check_tag_characters(&tags)?;
    let mut merged = meta.tags.clone();
    merged.extend(tags);
    if merged.len() > TAGS_PER_STREAM_MAX {
        return Err(ApiError::too_many_tags(
            &meta.name,
            &core.config().account_id,
            TAGS_PER_STREAM_MAX,
        ));
    }
    let mut catalog = controller.snapshot();
    catalog.streams.get_mut(&meta.name).expect("present").tags = merged;
    controller.commit(core, catalog).await?;
    Ok(Vec::new())
}

async fn remove_tags(
    core: &Rc<Core>,
    controller: &Controller,
    stream: &StreamRef,
    keys: Vec<String>,
) -> ApiResult {
    let meta = master_stream(core, controller, stream)?;
    // Keys are held to the tag character set here too, as Kinesis does.
    ApiError::check_tag_characters(keys.iter().map(|k| (k, k)))?;
    let mut catalog = controller.snapshot();
    let tags = &mut catalog.streams.get_mut(&meta.name).expect("present").tags;
    for key in keys {
        tags.remove(&key);
    }
    controller.commit(core, catalog).await?;
    Ok(Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Consumers (enhanced fan-out registrations).

async fn register_consumer(
    core: &Rc<Core>,
    controller: &Controller,
    r: RegisterStreamConsumerInput,
) -> ApiResult {
    let arn = r.stream()?;
    let stream = master_stream(core, controller, &arn_ref(arn))?;
    let config = core.config();
    let stream_arn = stream.arn(&config.region, &config.account_id);
    if stream.consumers.iter().any(|c| c.name == r.consumer_name) {
        return Err(ApiError::consumer_in_use(&r.consumer_name, &stream_arn));
    }
    if stream.consumers.len() >= config.consumers_per_stream_max as usize {
        return Err(ApiError::limit_exceeded(format!(
            "Consumer limit of {} reached for stream {stream_arn}.",
            config.consumers_per_stream_max
        )));
    }
    let tags = r.tags.clone().unwrap_or_default();
    ApiError::check_tag_characters(&tags)?;
    if tags.len() > TAGS_PER_STREAM_MAX {
        return Err(ApiError::invalid_argument(format!(
            "A resource can have at most {TAGS_PER_STREAM_MAX} tags."
        )));
    }
    let consumer = ConsumerMeta {
        name: r.consumer_name.clone(),
        creation_epoch_seconds: core.now_ms() / 1000,
        status: "ACTIVE".into(),
        tags,
    };
    let mut catalog = controller.snapshot();
    catalog.streams.get_mut(&stream.name).expect("present").consumers.push(consumer.clone());
    controller.commit(core, catalog).await?;
    // Registration has no storage work: the consumer is ACTIVE once the catalog is durable.
    let mut answer = wire_consumer(core.config(), &stream, &consumer);
    answer.consumer_status = ConsumerStatus::Creating;
    Ok(spate_proto::to_json(&out::RegisterStreamConsumerOutput { consumer: answer }))
}

/// Applies `change` to a consumer's tags and commits, if it leaves at most the tag limit.
async fn change_consumer_tags(
    core: &Rc<Core>,
    controller: &Controller,
    consumer: &ConsumerRef,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> ApiResult {
    let mut catalog = controller.snapshot();
    let (stream, found) = find_consumer(core, &catalog, consumer)?;
    let (stream_name, consumer_name) = (stream.name.clone(), found.name.clone());
    let stream = catalog.streams.get_mut(&stream_name).expect("present");
    let found = stream.consumers.iter_mut().find(|c| c.name == consumer_name).expect("present");
    change(&mut found.tags);
    if found.tags.len() > TAGS_PER_STREAM_MAX {
        return Err(ApiError::invalid_argument(format!(
            "A resource can have at most {TAGS_PER_STREAM_MAX} tags."
        )));
    }
    controller.commit(core, catalog).await?;
    Ok(Vec::new())
}

async fn deregister_consumer(
    core: &Rc<Core>,
    controller: &Controller,
    r: ConsumerInput,
) -> ApiResult {
    let consumer = r.consumer_ref()?;
    let catalog = controller.snapshot();
    let (stream, found) = find_consumer(core, &catalog, &consumer)?;
    let (stream_name, consumer_name) = (stream.name.clone(), found.name.clone());
    let incarnation = stream.incarnation;
    let mut catalog = catalog.clone();
    catalog
        .streams
        .get_mut(&stream_name)
        .expect("present")
        .consumers
        .retain(|c| c.name != consumer_name);
    controller.commit(core, catalog).await?;
    // End live subscriptions of this consumer on every core.
    for owner in 0..core.cores() {
        let name = consumer_name.clone();
        core.call(owner, |reply| {
            Msg::Fanout(FanoutMsg::EndConsumer { incarnation, consumer: name, reply })
        })
        .await;
    }
    Ok(Vec::new())
}
