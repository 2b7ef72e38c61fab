//! The messages between cores (the channel mesh, `mesh.rs`), one enum per concern inside one
//! envelope, `Msg`. Every request carries its reply channel (a oneshot).
//!
//! - `DataMsg`: the data path, to a shard's owning core (append, read, position).
//! - `ControlMsg`: to the controller on core 0 (catalog-changing requests, reclaiming).
//! - `FanoutMsg`: enhanced fan-out subscriptions, to a shard's owning core.
//! - `AdminMsg`: storage and runtime work the controller asks of cores (open, seal, unseal and
//!   drop logs; install a catalog), metrics scrapes, stop.
//!
//! Who serves each message: `node::serve`.

use std::sync::Arc;

use bytes::Bytes;
use engine::{AppendResult, NewRecord};
use futures_channel::{mpsc, oneshot};
use spate_proto::responses::RecordsWriter;
use spate_proto::{ApiError, IteratorPosition, Request};

use crate::catalog::Catalog;
use crate::metrics::MetricsSnapshot;

/// A message from one core to another (or to itself).
pub enum Msg {
    Data(DataMsg),
    Control(ControlMsg),
    Fanout(FanoutMsg),
    Admin(AdminMsg),
}

// Messages cross threads on the mesh, typed requests included.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Msg>();
    assert_send::<Request>();
};

/// The data path, served by the shard's owning core.
pub enum DataMsg {
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
}

/// To the controller (core 0).
pub enum ControlMsg {
    /// A catalog-changing operation, parsed once on the receiving core.
    Request { request: Box<Request>, reply: oneshot::Sender<Result<Vec<u8>, ApiError>> },
    /// These closed shards' records have all passed retention: remove them from the catalog.
    Reclaim { incarnation: u64, shards: Vec<u32>, reply: oneshot::Sender<()> },
}

/// Enhanced fan-out.
pub enum FanoutMsg {
    /// Starts a SubscribeToShard pusher on the shard's owning core.
    Subscribe(Box<SubscribeRequest>),
    /// Ends the live subscriptions of a deregistered consumer.
    EndConsumer { incarnation: u64, consumer: String, reply: oneshot::Sender<()> },
}

/// Storage and runtime work on a core, mostly asked by the controller.
pub enum AdminMsg {
    Open {
        shards: Vec<(u64, u32)>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Seal {
        incarnation: u64,
        shard: u32,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Reopens a sealed shard whose reshard never reached the catalog.
    Unseal {
        incarnation: u64,
        shard: u32,
        reply: oneshot::Sender<Result<(), String>>,
    },
    DropStream {
        incarnation: u64,
        reply: oneshot::Sender<()>,
    },
    /// Close reclaimed shards' logs and delete their directories durably.
    DropShards {
        incarnation: u64,
        shards: Vec<u32>,
        reply: oneshot::Sender<()>,
    },
    Publish {
        catalog: Arc<Catalog>,
        reply: oneshot::Sender<()>,
    },
    Metrics {
        reply: oneshot::Sender<MetricsSnapshot>,
    },
    Stop {
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

#[derive(Clone, Copy, Debug)]
pub enum PositionQuery {
    Latest,
    TrimHorizon,
    Timestamp(i64),
}

/// What the receiving core sends the owner to start a subscription.
pub struct SubscribeRequest {
    pub incarnation: u64,
    pub shard: u32,
    pub stream_name: String,
    pub consumer_name: String,
    pub position: IteratorPosition,
    pub events: mpsc::Sender<Bytes>,
    pub reply: oneshot::Sender<Result<(), ApiError>>,
}
