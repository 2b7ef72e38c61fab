//! One core: the shards it owns, its catalog snapshot, its metrics, and the cross-core messages
//! it serves. Every core runs the same code; core 0 also runs the controller (see `control.rs`).
//!
//! Cross-core traffic goes only through the channel mesh (`mesh.rs`, `Msg`), with replies on
//! oneshot channels. A shard's log is touched only by its owning core, so the data path takes
//! no locks. Appended records cross cores as `Bytes`; GetRecords pages come back as JSON that the
//! owner wrote while verifying each record (see `ReadReply`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use engine::{
    AppendResult, Clock, DigitsCursor, FrameRef, GlommioStorage, LogConfig, NewRecord, ReadSink,
    SequenceNumber, ShardIdentity, ShardLog, Storage, SystemClock,
};
use futures_channel::oneshot;
use spate_proto::limits::GET_RECORDS_BYTES_MAX;
use spate_proto::responses::RecordsWriter;
use spate_proto::types::Timestamp;

use crate::catalog::{self, Catalog, ShardMeta, StreamStatus};
use crate::config::{Config, Durability};
use crate::http::ShutdownSignal;
use crate::iterator::IteratorKeys;
use crate::mesh::{Mesh, Senders};
use crate::metrics::{CoreMetrics, MetricsSnapshot};
use crate::placement;
use crate::quota::ShardQuotas;

/// Messages between cores. Every request carries its reply channel.
pub enum Msg {
    Append {
        incarnation: u64,
        shard: u32,
        records: Vec<NewRecord>,
        reply: oneshot::Sender<Result<AppendOutcome, ShardError>>,
    },
    Read {
        incarnation: u64,
        shard: u32,
        offset: u64,
        limit: usize,
        reply: oneshot::Sender<Result<ReadReply, ShardError>>,
    },
    Position {
        incarnation: u64,
        shard: u32,
        query: PositionQuery,
        /// Charge the shard's GetShardIterator quota (5 calls/s).
        charge_iterator: bool,
        reply: oneshot::Sender<Result<u64, ShardError>>,
    },
    Open {
        shards: Vec<(u64, u32)>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Seal {
        incarnation: u64,
        shard: u32,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    DropStream {
        incarnation: u64,
        reply: oneshot::Sender<()>,
    },
    Publish {
        catalog: Arc<Catalog>,
        reply: oneshot::Sender<()>,
    },
    /// A catalog-changing operation, parsed once on the receiving core, for the controller.
    Control {
        request: Box<spate_proto::Request>,
        reply: oneshot::Sender<Result<Vec<u8>, spate_proto::ApiError>>,
    },
    Metrics {
        reply: oneshot::Sender<MetricsSnapshot>,
    },
    /// Starts a SubscribeToShard pusher on the shard's owning core.
    Subscribe(Box<crate::fanout::SubscribeRequest>),
    /// Ends the live subscriptions of a deregistered consumer.
    EndConsumer {
        incarnation: u64,
        consumer: String,
        reply: oneshot::Sender<()>,
    },
    /// Reopens a sealed shard whose reshard never reached the catalog (crash recovery).
    Unseal {
        incarnation: u64,
        shard: u32,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
    /// To the controller: these closed shards' records have all passed retention; remove them
    /// from the catalog.
    Reclaim {
        incarnation: u64,
        shards: Vec<u32>,
        reply: oneshot::Sender<()>,
    },
    /// To the owner: close reclaimed shards' logs and delete their directories durably.
    DropShards {
        incarnation: u64,
        shards: Vec<u32>,
        reply: oneshot::Sender<()>,
    },
}

#[derive(Debug)]
pub enum ShardError {
    /// This core does not own (or no longer has) the shard.
    Missing,
    /// Over the shard's quota.
    Throttled,
    Engine(engine::Error),
}

/// Per-record outcome of an append: the first offset of the accepted records, plus, in request
/// order within the shard, which records were throttled.
#[derive(Debug)]
pub struct AppendOutcome {
    /// The accepted records that were appended: all of them, or, when `failed` is set, the
    /// first `result.count` (a batch split over two writes whose second write failed).
    pub result: Option<AppendResult>,
    /// Why the accepted records after the first `result.count` were not appended.
    pub failed: Option<engine::Error>,
    /// `accepted[i]` is false for a record rejected by the write quota.
    pub accepted: Vec<bool>,
}

#[derive(Debug)]
pub struct ReadReply {
    /// The records read, already written as the start of a GetRecords response: the owning
    /// core encodes each record right after verifying it, while it is in the CPU's cache.
    pub records: RecordsWriter,
    pub last_arrival_ms: Option<i64>,
    pub next_offset: u64,
    /// The shard's next offset (its tip).
    pub tip: u64,
    pub tip_arrival_ms: Option<i64>,
    pub sealed: Option<u64>,
}

/// Writes records as GetRecords JSON as the log verifies them (see `ReadReply::records`).
struct JsonSink {
    writer: RecordsWriter,
    digits: DigitsCursor,
    incarnation: u64,
    shard: u32,
    limit: usize,
    last_arrival_ms: Option<i64>,
}

impl ReadSink for JsonSink {
    fn expect(&mut self, frame_bytes: usize) {
        // Base64 of whole frames (a 32-byte header more than covers a record's digits and
        // timestamp), plus the member names of at most one record per minimal frame. An
        // overestimate only reserves address space; pages are touched as they are written.
        let records = self.limit.min(frame_bytes / engine::limits::FRAME_HEADER_BYTES);
        self.writer.reserve(frame_bytes / 3 * 4 + 4 + records.saturating_mul(112));
    }

    fn record(&mut self, frame: FrameRef<'_>) {
        let sequence = SequenceNumber {
            incarnation: self.incarnation,
            shard_index: self.shard,
            offset: frame.offset,
        };
        self.writer.record(
            self.digits.digits(sequence),
            Timestamp::from_millis(frame.arrival_ms),
            frame.data(),
            frame.partition_key(),
            None,
        );
        self.last_arrival_ms = Some(frame.arrival_ms);
    }
}

#[derive(Clone, Copy, Debug)]
pub enum PositionQuery {
    Latest,
    TrimHorizon,
    Timestamp(i64),
}

/// What every core shares: set up once by `main`.
pub struct Shared {
    pub config: Config,
    pub iterator_key: [u8; 32],
    pub catalog: Catalog,
    pub signals: crate::systemd::SignalFlag,
    pub ready: std::sync::mpsc::Sender<Result<usize, String>>,
    /// Cores that have opened their shards. No core serves requests before all have: a request
    /// may arrive at any core and be routed to any other.
    pub opened: std::sync::atomic::AtomicUsize,
    /// Cores that have stopped serving HTTP at shutdown. No core closes its logs before all
    /// have (or the shutdown timeout passes): a peer's last requests may still need them.
    pub drained: std::sync::atomic::AtomicUsize,
}

pub struct OwnedShard {
    pub log: Rc<ShardLog<GlommioStorage>>,
    pub quotas: ShardQuotas,
    pub stream: String,
    pub shard_id: String,
}

pub struct Core {
    pub id: usize,
    pub cores: usize,
    pub shared: Arc<Shared>,
    pub catalog: RefCell<Arc<Catalog>>,
    /// Woken whenever a newer catalog is installed (writers waiting out a reshard).
    pub catalog_installed: engine::notify::Notify,
    pub shards: RefCell<HashMap<(u64, u32), Rc<OwnedShard>>>,
    senders: Option<Senders<Msg>>,
    pub metrics: CoreMetrics,
    pub keys: IteratorKeys,
    pub clock: Rc<dyn Clock>,
    pub controller: Option<crate::control::Controller>,
    pub shutdown: ShutdownSignal,
    pub subscriptions: crate::fanout::Subscriptions,
    /// Control-plane rate limits for the operations this core runs.
    pub operation_limits: crate::quota::OperationLimits,
    request_counter: std::cell::Cell<u64>,
}

impl Core {
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A fresh request id (per core, unique within the process run).
    pub fn request_id(&self) -> String {
        let n = self.request_counter.get() + 1;
        self.request_counter.set(n);
        let salt = (self.shared.iterator_key[0] as u64) << 8 | self.shared.iterator_key[1] as u64;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (self.now_ms() as u64) & 0xffff_ffff,
            self.id,
            salt & 0xfff,
            (n >> 48) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    /// Sends `msg` to `core` (or handles it here) and awaits the reply.
    pub async fn call<T>(
        self: &Rc<Self>,
        core: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let msg = make(tx);
        self.send(core, msg).await;
        rx.await.ok()
    }

    /// Delivers a message without waiting for its reply.
    pub async fn send(self: &Rc<Self>, core: usize, msg: Msg) {
        if core == self.id || self.senders.is_none() {
            let me = self.clone();
            glommio::spawn_local(async move { me.handle(msg).await }).detach();
        } else if let Some(senders) = &self.senders
            && senders.send_to(core, msg).await.is_err()
        {
            tracing::warn!(core, "peer core is gone; message dropped");
        }
    }

    pub fn owned(&self, incarnation: u64, shard: u32) -> Option<Rc<OwnedShard>> {
        self.shards.borrow().get(&(incarnation, shard)).cloned()
    }

    fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.config().segment_bytes,
            durability: self.config().durability,
        }
    }

    async fn open_shard(self: &Rc<Self>, incarnation: u64, index: u32) -> Result<(), String> {
        if self.owned(incarnation, index).is_some() {
            return Ok(());
        }
        let catalog = self.catalog();
        let (stream, shard_id) = match catalog.stream_by_incarnation(incarnation) {
            Some(s) => (s.name.clone(), catalog::shard_id(index)),
            None => (format!("incarnation-{incarnation}"), catalog::shard_id(index)),
        };
        let dir: PathBuf = catalog::shard_dir(&self.config().data_dir, incarnation, index);
        let log = ShardLog::open(
            GlommioStorage,
            self.clock.clone(),
            dir.clone(),
            ShardIdentity { incarnation, shard_index: index },
            self.log_config(),
        )
        .await
        .map_err(|e| format!("opening {}: {e}", dir.display()))?;
        let quotas = ShardQuotas::new(
            &crate::quota::QuotaLimits::from_config(self.config()),
            self.clock.monotonic_ns(),
        );
        let owned = OwnedShard { log: Rc::new(log), quotas, stream, shard_id };
        let anomalies = owned.log.anomalies().len() as u64;
        self.metrics.shard(&owned.stream, &owned.shard_id, |c| {
            c.open = Some(true);
            c.log_anomalies = anomalies;
        });
        self.shards.borrow_mut().insert((incarnation, index), Rc::new(owned));
        Ok(())
    }

    /// Serves one message (on the owning core).
    pub async fn handle(self: Rc<Self>, msg: Msg) {
        match msg {
            Msg::Append { incarnation, shard, records, reply } => {
                let result = self.append_local(incarnation, shard, records).await;
                let _ = reply.send(result);
            }
            Msg::Read { incarnation, shard, offset, limit, reply } => {
                let _ = reply.send(self.read_local(incarnation, shard, offset, limit));
            }
            Msg::Position { incarnation, shard, query, charge_iterator, reply } => {
                let now_ns = self.clock.monotonic_ns();
                let result = match self.owned(incarnation, shard) {
                    None => Err(ShardError::Missing),
                    Some(owned)
                        if charge_iterator && !owned.quotas.try_get_shard_iterator(now_ns) =>
                    {
                        Err(ShardError::Throttled)
                    }
                    Some(owned) => match query {
                        PositionQuery::Latest => Ok(owned.log.next_offset()),
                        PositionQuery::TrimHorizon => Ok(owned.log.trim_horizon()),
                        PositionQuery::Timestamp(ms) => {
                            owned.log.offset_at_timestamp(ms).map_err(ShardError::Engine)
                        }
                    },
                };
                let _ = reply.send(result);
            }
            Msg::Open { shards, reply } => {
                let mut result = Ok(());
                for (incarnation, index) in shards {
                    if let Err(e) = self.open_shard(incarnation, index).await {
                        result = Err(e);
                        break;
                    }
                }
                let _ = reply.send(result);
            }
            Msg::Seal { incarnation, shard, reply } => {
                let result = match self.owned(incarnation, shard) {
                    None => {
                        Err(format!("shard {shard} of {incarnation} is not on core {}", self.id))
                    }
                    Some(owned) => owned.log.seal().await.map_err(|e| e.to_string()),
                };
                if let Some(owned) = self.owned(incarnation, shard) {
                    self.metrics.shard(&owned.stream, &owned.shard_id, |c| c.open = Some(false));
                }
                let _ = reply.send(result);
            }
            Msg::DropStream { incarnation, reply } => {
                let doomed: Vec<Rc<OwnedShard>> = {
                    let mut shards = self.shards.borrow_mut();
                    let keys: Vec<(u64, u32)> =
                        shards.keys().filter(|k| k.0 == incarnation).copied().collect();
                    keys.iter().filter_map(|k| shards.remove(k)).collect()
                };
                // End live subscriptions first: they send their error event and stop.
                self.subscriptions.end_stream(incarnation);
                for owned in &doomed {
                    let _ = owned.log.close().await;
                    self.metrics.forget_stream(&owned.stream);
                    let _ = std::fs::remove_dir_all(owned.log.dir());
                }
                let _ = reply.send(());
            }
            Msg::Publish { catalog, reply } => {
                self.install_catalog(catalog);
                let _ = reply.send(());
            }
            Msg::Control { request, reply } => {
                let answer = match &self.controller {
                    Some(_) => crate::control::execute(&self, *request).await,
                    None => Err(spate_proto::ApiError::internal(
                        "control request reached a non-controller core",
                    )),
                };
                let _ = reply.send(answer);
            }
            Msg::Metrics { reply } => {
                let _ = reply.send(self.metrics.snapshot(self.id));
            }
            Msg::Subscribe(request) => crate::fanout::start_on_owner(&self, *request).await,
            Msg::EndConsumer { incarnation, consumer, reply } => {
                self.subscriptions.end_consumer(incarnation, &consumer);
                let _ = reply.send(());
            }
            Msg::Unseal { incarnation, shard, reply } => {
                let result = match self.owned(incarnation, shard) {
                    None => {
                        Err(format!("shard {shard} of {incarnation} is not on core {}", self.id))
                    }
                    Some(owned) => owned.log.unseal().await.map_err(|e| e.to_string()),
                };
                let _ = reply.send(result);
            }
            Msg::Reclaim { incarnation, shards, reply } => {
                if self.controller.is_some() {
                    crate::control::reclaim_shards(&self, incarnation, &shards).await;
                }
                let _ = reply.send(());
            }
            Msg::DropShards { incarnation, shards, reply } => {
                self.drop_shards(incarnation, &shards).await;
                let _ = reply.send(());
            }
            Msg::Stop { reply } => {
                self.shutdown.trigger();
                let _ = reply.send(());
            }
        }
    }

    /// Closes reclaimed shards' logs and deletes their directories, then syncs the stream's
    /// directory so the deletion survives a power loss. (If it does not finish, startup removes
    /// what the catalog no longer names.)
    async fn drop_shards(&self, incarnation: u64, shards: &[u32]) {
        let doomed: Vec<Rc<OwnedShard>> = {
            let mut owned = self.shards.borrow_mut();
            shards.iter().filter_map(|&index| owned.remove(&(incarnation, index))).collect()
        };
        for owned in &doomed {
            let _ = owned.log.close().await;
            self.metrics.forget_shard(&owned.stream, &owned.shard_id);
            if let Err(e) = std::fs::remove_dir_all(owned.log.dir()) {
                tracing::warn!("removing {}: {e}", owned.log.dir().display());
            }
        }
        let stream_dir = catalog::stream_dir(&self.config().data_dir, incarnation);
        if !doomed.is_empty()
            && let Err(e) = GlommioStorage.sync_dir(&stream_dir).await
        {
            tracing::warn!("syncing {}: {e}", stream_dir.display());
        }
    }

    pub fn install_catalog(&self, catalog: Arc<Catalog>) {
        let mut current = self.catalog.borrow_mut();
        if catalog.version >= current.version {
            *current = catalog;
            drop(current);
            self.catalog_installed.notify_all();
        }
    }

    async fn append_local(
        &self,
        incarnation: u64,
        shard: u32,
        records: Vec<NewRecord>,
    ) -> Result<AppendOutcome, ShardError> {
        let owned = self.owned(incarnation, shard).ok_or(ShardError::Missing)?;
        let now = self.clock.monotonic_ns();
        // Quotas decide per record, in order; throttled records are left out of the batch.
        let accepted: Vec<bool> = records
            .iter()
            .map(|r| owned.quotas.try_write(now, (r.data.len() + r.partition_key.len()) as u64))
            .collect();
        let throttled = accepted.iter().filter(|a| !**a).count() as u64;
        let batch: Vec<NewRecord> =
            records.into_iter().zip(accepted.iter()).filter_map(|(r, a)| a.then_some(r)).collect();
        let bytes: u64 = batch.iter().map(|r| (r.data.len() + r.partition_key.len()) as u64).sum();
        let count = batch.len() as u64;
        let (result, failed) = if batch.is_empty() {
            (None, None)
        } else {
            match owned.log.append(&batch).await {
                Ok(result) => (Some(result), None),
                // The first records landed (durable, visible): they get their sequence numbers.
                Err(engine::Error::PartiallyAppended {
                    first_offset,
                    count,
                    arrival_ms,
                    cause,
                }) => (Some(AppendResult { first_offset, count, arrival_ms }), Some(*cause)),
                Err(e) => return Err(ShardError::Engine(e)),
            }
        };
        self.metrics.shard(&owned.stream, &owned.shard_id, |c| {
            c.incoming_bytes += bytes;
            c.incoming_records += count;
            c.write_throttled += throttled;
            c.write_utilization = owned.quotas.write_utilization(now);
        });
        Ok(AppendOutcome { result, failed, accepted })
    }

    fn read_local(
        &self,
        incarnation: u64,
        shard: u32,
        offset: u64,
        limit: usize,
    ) -> Result<ReadReply, ShardError> {
        let owned = self.owned(incarnation, shard).ok_or(ShardError::Missing)?;
        let now = self.clock.monotonic_ns();
        if !owned.quotas.try_read_call(now) {
            self.metrics.shard(&owned.stream, &owned.shard_id, |c| c.read_throttled += 1);
            return Err(ShardError::Throttled);
        }
        let mut sink = JsonSink {
            writer: RecordsWriter::with_capacity(0),
            digits: DigitsCursor::new(),
            incarnation,
            shard,
            limit,
            last_arrival_ms: None,
        };
        let read = owned
            .log
            .read_each(offset, limit, GET_RECORDS_BYTES_MAX, &mut sink)
            .map_err(ShardError::Engine)?;
        let bytes = read.bytes as u64;
        owned.quotas.charge_read_bytes(now, bytes);
        let tip = owned.log.next_offset();
        let tip_arrival_ms = owned.log.last_arrival_ms();
        self.metrics.shard(&owned.stream, &owned.shard_id, |c| {
            c.outgoing_bytes += bytes;
            c.outgoing_records += read.records as u64;
            c.get_records_calls += 1;
            c.read_utilization = owned.quotas.read_utilization(now);
        });
        Ok(ReadReply {
            records: sink.writer,
            last_arrival_ms: sink.last_arrival_ms,
            next_offset: read.next_offset,
            tip,
            tip_arrival_ms,
            sealed: owned.log.sealed(),
        })
    }

    /// Every core's metrics, merged into Prometheus text.
    pub async fn scrape(self: &Rc<Self>) -> String {
        let mut snapshots = Vec::with_capacity(self.cores);
        for core in 0..self.cores {
            if let Some(s) = self.call(core, |reply| Msg::Metrics { reply }).await {
                snapshots.push(s);
            }
        }
        crate::metrics::render(&snapshots)
    }

    /// Publishes a catalog snapshot to every core and waits until all have installed it.
    pub async fn publish(self: &Rc<Self>, catalog: Arc<Catalog>) {
        self.install_catalog(catalog.clone());
        for core in 0..self.cores {
            if core != self.id {
                let catalog = catalog.clone();
                self.call(core, |reply| Msg::Publish { catalog, reply }).await;
            }
        }
    }
}

/// Runs one core until shutdown: joins the mesh, opens its shards, serves HTTP.
pub async fn run(shared: Arc<Shared>, mesh: Option<Arc<Mesh<Msg>>>) -> Result<(), String> {
    let (id, senders, receivers) = match mesh {
        Some(mesh) => {
            let (senders, receivers) = mesh.join().await?;
            (senders.peer_id(), Some(senders), Some(receivers))
        }
        None => (0, None, None),
    };
    let cores = shared.config.cores;
    let clock: Rc<dyn Clock> = match crate::failpoint::test_clock_offset_ms() {
        Some(offset_ms) => Rc::new(engine::OffsetClock { offset_ms }),
        None => Rc::new(SystemClock),
    };
    let controller = (id == 0).then(|| {
        crate::control::Controller::new(shared.catalog.clone(), shared.config.quotas_enabled)
    });
    let core = Rc::new(Core {
        id,
        cores,
        catalog: RefCell::new(Arc::new(shared.catalog.clone())),
        catalog_installed: engine::notify::Notify::default(),
        shards: RefCell::new(HashMap::new()),
        senders,
        metrics: CoreMetrics::default(),
        keys: IteratorKeys::new(shared.iterator_key),
        clock,
        controller,
        shutdown: ShutdownSignal::new(),
        subscriptions: crate::fanout::Subscriptions::default(),
        operation_limits: crate::quota::OperationLimits::new(
            shared.config.quotas_enabled,
            1.0 / cores as f64,
        ),
        request_counter: std::cell::Cell::new(0),
        shared: shared.clone(),
    });
    // Serve peers: one task per incoming channel, one task per message (bounded).
    let inflight = Rc::new(glommio::sync::Semaphore::new(8192));
    if let Some(receivers) = receivers {
        for stream in receivers {
            let core = core.clone();
            let inflight = inflight.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = stream.recv().await {
                    let Ok(permit) = inflight.acquire_static_permit(1).await else { break };
                    let core = core.clone();
                    glommio::spawn_local(async move {
                        core.handle(msg).await;
                        drop(permit);
                    })
                    .detach();
                }
            })
            .detach();
        }
    }
    // Open the shards placed on this core (open and closed: closed ones stay readable).
    let catalog = core.catalog();
    // Recover this core's shards concurrently: their I/O overlaps in io_uring.
    let opening: Vec<_> = catalog
        .streams
        .values()
        .filter(|s| s.status != StreamStatus::Deleting)
        .flat_map(|s| s.shards.iter().map(move |shard| (s.incarnation, shard)))
        .filter(|&(_, shard)| placement::owner(shard, cores) == id)
        .map(|(incarnation, shard)| {
            let index = shard.index;
            let core = core.clone();
            glommio::spawn_local(async move { core.open_shard(incarnation, index).await })
        })
        .collect();
    for task in opening {
        task.await?;
    }
    for stream in catalog.streams.values() {
        if stream.status == StreamStatus::Deleting {
            continue;
        }
        for shard in &stream.shards {
            if placement::owner(shard, cores) == id {
                let Some(owned) = core.owned(stream.incarnation, shard.index) else { continue };
                match (shard.ending_offset, owned.log.sealed()) {
                    // Closed in the catalog: the log was sealed before the commit; idempotent.
                    (Some(_), _) => {
                        owned.log.seal().await.map_err(|e| e.to_string())?;
                        core.metrics
                            .shard(&owned.stream, &owned.shard_id, |c| c.open = Some(false));
                    }
                    // Sealed on disk but open in the catalog: a reshard crashed before its
                    // catalog commit. The catalog is the truth; reopen the log.
                    (None, Some(_)) => owned.log.unseal().await.map_err(|e| e.to_string())?,
                    (None, None) => {}
                }
            }
        }
    }
    // Bridge process signals to this core's shutdown.
    {
        let signals = shared.signals.clone();
        let shutdown = core.shutdown.clone();
        glommio::spawn_local(async move {
            signals.wait().await;
            shutdown.trigger();
        })
        .detach();
    }
    spawn_maintenance(&core);
    // Startup barrier: a core that listened before its peers had opened their shards would
    // route requests to shards that are not there yet ("does not exist" right after a restart).
    all_cores_reach(&shared.opened, cores, None).await;
    let listener = glommio::net::TcpListener::bind(shared.config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", shared.config.listen))?;
    let _ = shared.ready.send(Ok(id));
    if let Some(controller) = &core.controller {
        controller.start(&core).await;
    }
    let options = crate::http::ServeOptions {
        shutdown_timeout: shared.config.shutdown_timeout,
        ..Default::default()
    };
    let handler_core = core.clone();
    crate::http::serve_with(
        listener,
        move |request| crate::api::handle_http(handler_core.clone(), request),
        core.shutdown.clone(),
        options,
    )
    .await;
    // Shutdown barrier: peers may still be finishing requests routed to this core's shards.
    // A busy peer arrives up to the shutdown timeout plus the forced-close wait after an idle
    // one, so this core waits at least that long (plus a margin) before closing its logs; the
    // bound only matters for a peer that never arrives.
    let longest_peer =
        shared.config.shutdown_timeout + crate::http::FORCED_CLOSE_WAIT + Duration::from_secs(1);
    all_cores_reach(&shared.drained, cores, Some(longest_peer)).await;
    // Drain: close every log (flush + sync).
    let owned: Vec<Rc<OwnedShard>> = core.shards.borrow().values().cloned().collect();
    for shard in owned {
        if let Err(e) = shard.log.close().await {
            tracing::error!("closing {}: {e}", shard.log.dir().display());
        }
    }
    // Give peers a moment to finish talking to us before the executor exits.
    glommio::timer::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// A barrier between cores: counts this core in `reached`, then waits (polling an executor
/// timer, so the core keeps serving its peers' messages) until all `cores` have, or `timeout`.
async fn all_cores_reach(
    reached: &std::sync::atomic::AtomicUsize,
    cores: usize,
    timeout: Option<Duration>,
) {
    use std::sync::atomic::Ordering;
    reached.fetch_add(1, Ordering::AcqRel);
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    while reached.load(Ordering::Acquire) < cores
        && deadline.is_none_or(|d| std::time::Instant::now() < d)
    {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// How often each core enforces retention and looks for closed shards to reclaim.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// One retention pass over this core's shards; closed shards whose every record has passed
/// retention are handed to the controller to be reclaimed, as Kinesis drops them.
async fn retention_pass(core: &Rc<Core>) {
    let catalog = core.catalog();
    let owned: Vec<((u64, u32), Rc<OwnedShard>)> =
        core.shards.borrow().iter().map(|(k, v)| (*k, v.clone())).collect();
    let now = core.now_ms();
    let mut reclaim: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for ((incarnation, index), shard) in owned {
        let Some(stream) = catalog.stream_by_incarnation(incarnation) else { continue };
        if let Err(e) = shard.log.enforce_retention(stream.retention_ms()).await {
            tracing::warn!("retention on {}: {e}", shard.log.dir().display());
        }
        let Some(meta) = stream.shard(index) else { continue };
        if stream.status == StreamStatus::Active
            && reclaimable(meta, shard.log.last_arrival_ms(), stream.retention_ms(), now)
        {
            reclaim.entry(incarnation).or_default().push(index);
        }
    }
    for (incarnation, shards) in reclaim {
        core.call(0, |reply| Msg::Reclaim { incarnation, shards, reply }).await;
    }
}

/// A closed shard is reclaimed once retention has passed its newest record (or its closing, if
/// it holds none): nothing in it can be read any more.
pub fn reclaimable(
    shard: &ShardMeta,
    last_arrival_ms: Option<i64>,
    retention_ms: i64,
    now_ms: i64,
) -> bool {
    if shard.is_open() {
        return false;
    }
    let newest = last_arrival_ms.or(shard.closed_ms).unwrap_or(shard.created_ms);
    newest.saturating_add(retention_ms) <= now_ms
}

/// Periodic work on each core: retention trims and reclaiming (at start, then every
/// [`MAINTENANCE_INTERVAL`]), interval syncs.
fn spawn_maintenance(core: &Rc<Core>) {
    let retention_core = core.clone();
    glommio::spawn_local(async move {
        loop {
            if retention_core.shutdown.is_triggered() {
                break;
            }
            retention_pass(&retention_core).await;
            glommio::timer::sleep(MAINTENANCE_INTERVAL).await;
        }
    })
    .detach();
    if let Durability::Interval { interval_ms } = core.config().durability {
        let interval = Duration::from_millis(interval_ms);
        let sync_core = core.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                if sync_core.shutdown.is_triggered() {
                    break;
                }
                let owned: Vec<Rc<OwnedShard>> =
                    sync_core.shards.borrow().values().cloned().collect();
                for shard in owned {
                    if let Err(e) = shard.log.sync().await {
                        tracing::warn!("sync of {}: {e}", shard.log.dir().display());
                    }
                }
            }
        })
        .detach();
    }
}
