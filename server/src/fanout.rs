//! Enhanced fan-out: SubscribeToShard event streams.
//!
//! The core that received the request checks the consumer and shard in its catalog snapshot,
//! then asks the shard's owning core to start a subscription. The owner runs a pusher task that
//! waits on the shard's append notification (no polling), reads what became durable, and sends
//! encoded event-stream messages into a bounded channel (capacity `EVENTS_IN_FLIGHT_MAX`). The
//! receiving core's HTTP response body drains that channel, so a slow subscriber is paced by
//! HTTP/2 flow control or TCP backpressure all the way back to the pusher, never by buffering.
//!
//! Cross-core path: the events go from the owner core's pusher to the HTTP connection's core
//! on a bounded `futures_channel::mpsc` channel per subscription, not through the channel mesh
//! (`mesh.rs`). Each subscription is a long-lived, backpressured byte stream with a single
//! producer and consumer: multiplexing it over the mesh's shared per-core-pair queue would let
//! one slow subscriber's events block every message between those two cores. The channel is
//! created on the receiving core and its sending end travels to the owner inside
//! `msg::FanoutMsg::Subscribe`; `futures_channel` senders and receivers are `Send` and wake
//! across threads. This is the only cross-core path besides the mesh (and the oneshot replies).
//!
//! Rules, as on AWS: the first event is `initial-response`; a subscription lasts 5 minutes; a
//! second subscription by the same consumer to the same shard within 5 seconds gets
//! ResourceInUseException; each consumer gets its own 2 MiB/s per shard; at the end of a
//! closed shard the last event carries ChildShards.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use engine::SequenceNumber;
use engine::notify::Notify;
use engine::quota::TokenBucket;
use futures_channel::{mpsc, oneshot};
use spate_proto::eventstream;
use spate_proto::requests::{ConsumerRef, SubscribeToShardInput};
use spate_proto::responses as out;
use spate_proto::{ApiError, IteratorPosition};

use crate::catalog;
use crate::core::{Core, OwnedShard};
use crate::msg::{FanoutMsg, Msg, SubscribeRequest};
use crate::wire::{child_shards, wire_record};

/// A second subscription (same consumer, same shard) within this window is refused.
pub const RESUBSCRIBE_WINDOW_MS: i64 = 5_000;
/// Events encoded but not yet taken by the HTTP connection, per subscription.
pub const EVENTS_IN_FLIGHT_MAX: usize = 2;
/// An empty event is pushed after this long without records, so clients see liveness.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often a pusher at the end of a sealed shard looks for the reshard's commit.
const SEAL_COMMIT_POLL: Duration = Duration::from_millis(10);
/// Bytes per second per consumer per shard.
pub const CONSUMER_BYTES_PER_SECOND: f64 = (2 << 20) as f64;
/// Bytes of keys and data in one event at most.
pub const EVENT_BYTES_MAX: usize = 2 << 20;

type Key = (u64, u32, String);

struct Live {
    started_ms: i64,
    cancelled: Rc<Cell<Option<&'static str>>>,
    wake: Rc<Notify>,
}

/// The live subscriptions of the shards this core owns.
#[derive(Default)]
pub struct Subscriptions {
    live: RefCell<HashMap<Key, Live>>,
    /// When each (stream, shard, consumer) last subscribed: SubscribeToShard is limited to once
    /// per second per consumer per shard. Bounded by consumers x shards; cleared with the stream.
    last_start_ms: RefCell<HashMap<Key, i64>>,
}

/// SubscribeToShard calls allowed per consumer per shard: one per this many milliseconds.
pub const SUBSCRIBE_INTERVAL_MS: i64 = 1_000;

impl Subscriptions {
    fn cancel_where(&self, reason: &'static str, f: impl Fn(&Key) -> bool) {
        for (key, live) in self.live.borrow().iter() {
            if f(key) {
                live.cancelled.set(Some(reason));
                live.wake.notify_all();
            }
        }
    }

    pub fn end_consumer(&self, incarnation: u64, consumer: &str) {
        self.cancel_where("consumer", |k| k.0 == incarnation && k.2 == consumer);
    }

    pub fn end_stream(&self, incarnation: u64) {
        self.cancel_where("stream", |k| k.0 == incarnation);
        self.last_start_ms.borrow_mut().retain(|k, _| k.0 != incarnation);
    }
}

/// On the receiving core: checks the consumer and shard in this core's catalog snapshot, asks
/// the owning core to start the subscription, and returns the events to stream to the client.
pub async fn start(
    core: &Rc<Core>,
    r: SubscribeToShardInput,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let SubscribeToShardInput { consumer_arn: _, shard_id, starting_position } = &r;
    let consumer = r.consumer()?;
    let position = starting_position.position()?;
    let (handle, consumer_meta) =
        crate::lookup::resolve_consumer(core, &ConsumerRef::Arn(consumer))?;
    let stream = handle.meta();
    let account = &core.config().account_id;
    // A closed shard past retention is gone, as in ListShards, even before it is reclaimed.
    let retention_start = stream.retention_start_ms(core.now_ms());
    let shard = catalog::parse_shard_id(shard_id)
        .and_then(|i| stream.shard(i))
        .filter(|s| !s.expired(retention_start))
        .ok_or_else(|| ApiError::shard_not_found(shard_id, &stream.name, account))?;
    let (events, receiver) = mpsc::channel(EVENTS_IN_FLIGHT_MAX);
    let (reply, answer) = oneshot::channel();
    let request = SubscribeRequest {
        incarnation: stream.incarnation,
        shard: shard.index,
        stream_name: stream.name.clone(),
        consumer_name: consumer_meta.name.clone(),
        position,
        events,
        reply,
    };
    core.send(
        crate::placement::owner(shard, core.cores()),
        Msg::Fanout(FanoutMsg::Subscribe(Box::new(request))),
    )
    .await;
    answer.await.map_err(|_| ApiError::internal("shard owner unavailable"))??;
    Ok(receiver)
}

/// On the owning core: registers the subscription and spawns its pusher.
pub async fn start_on_owner(
    core: &Rc<Core>,
    subscriptions: &Rc<Subscriptions>,
    request: SubscribeRequest,
) {
    let SubscribeRequest {
        incarnation,
        shard,
        stream_name,
        consumer_name,
        position,
        events,
        reply,
    } = request;
    let account = core.config().account_id.clone();
    let shard_id = catalog::shard_id(shard);
    let Some(owned) = core.owned(incarnation, shard) else {
        let _ = reply.send(Err(ApiError::shard_not_found(&shard_id, &stream_name, &account)));
        return;
    };
    let now = core.now_ms();
    let key: Key = (incarnation, shard, consumer_name.clone());
    {
        let mut live = subscriptions.live.borrow_mut();
        let mut last = subscriptions.last_start_ms.borrow_mut();
        let active = live.get(&key).is_some_and(|l| l.cancelled.get().is_none());
        if !active
            && core.config().quotas_enabled
            && last.get(&key).is_some_and(|t| now - t < SUBSCRIBE_INTERVAL_MS)
        {
            let _ = reply.send(Err(ApiError::limit_exceeded(format!(
                "Rate exceeded for consumer {consumer_name} and shard {shard_id} in stream \
                 {stream_name} under account {account}."
            ))));
            return;
        }
        last.insert(key.clone(), now);
        if let Some(existing) = live.get(&key) {
            if existing.cancelled.get().is_none()
                && now - existing.started_ms < RESUBSCRIBE_WINDOW_MS
            {
                let _ = reply.send(Err(ApiError::resource_in_use(format!(
                    "Another active subscription exists for consumer {consumer_name} on shard \
                     {shard_id} in stream {stream_name} under account {account}."
                ))));
                return;
            }
            // A newer subscription replaces the older one.
            existing.cancelled.set(Some("replaced"));
            existing.wake.notify_all();
        }
        let cancelled = Rc::new(Cell::new(None));
        let wake = Rc::new(Notify::default());
        live.insert(key.clone(), Live { started_ms: now, cancelled, wake });
    }
    let (cancelled, wake) = {
        let live = subscriptions.live.borrow();
        let l = &live[&key];
        (l.cancelled.clone(), l.wake.clone())
    };
    let start = match &position {
        IteratorPosition::TrimHorizon => Ok(owned.log.trim_horizon()),
        IteratorPosition::Latest => Ok(owned.log.next_offset()),
        IteratorPosition::AtTimestamp(t) => {
            crate::lookup::check_not_future(t.as_millis(), core.now_ms()).and_then(|()| {
                owned
                    .log
                    .offset_at_timestamp(t.as_millis())
                    .map_err(|e| ApiError::internal(e.to_string()))
            })
        }
        IteratorPosition::AtSequenceNumber(s) | IteratorPosition::AfterSequenceNumber(s) => {
            let after = matches!(position, IteratorPosition::AfterSequenceNumber(_));
            match engine::parse_position(s) {
                // Past the shard's tip is refused: a subscription from there would silently
                // skip every record written between the tip and it.
                Some(seq) if seq.incarnation == incarnation && seq.shard_index == shard => seq
                    .first_offset(after)
                    .filter(|&offset| offset <= owned.log.next_offset())
                    .ok_or_else(|| {
                        ApiError::invalid_argument(format!(
                            "Invalid StartingSequenceNumber {s} for shard {shard_id} in stream \
                             {stream_name} under account {account}."
                        ))
                    }),
                _ => Err(ApiError::invalid_argument(format!(
                    "Invalid StartingSequenceNumber {s} for shard {shard_id} in stream \
                     {stream_name} under account {account}."
                ))),
            }
        }
    };
    let start = match start {
        Ok(offset) => offset,
        Err(e) => {
            subscriptions.live.borrow_mut().remove(&key);
            let _ = reply.send(Err(e));
            return;
        }
    };
    let _ = reply.send(Ok(()));
    let core = core.clone();
    let subscriptions = subscriptions.clone();
    glommio::spawn_local(async move {
        let pusher = Pusher {
            core: core.clone(),
            owned,
            incarnation,
            shard,
            stream_name,
            consumer_name,
            cancelled,
            wake,
        };
        pusher.run(start, events).await;
        let mut live = subscriptions.live.borrow_mut();
        if live.get(&key).is_some_and(|l| l.started_ms == now) {
            live.remove(&key);
        }
    })
    .detach();
}

struct Pusher {
    core: Rc<Core>,
    owned: Rc<OwnedShard>,
    incarnation: u64,
    shard: u32,
    stream_name: String,
    consumer_name: String,
    cancelled: Rc<Cell<Option<&'static str>>>,
    wake: Rc<Notify>,
}

/// Sends one message, waiting while the channel is full. False if the subscriber is gone.
async fn send(events: &mut mpsc::Sender<Bytes>, message: Bytes) -> bool {
    let ready = futures_lite::future::poll_fn(|cx| events.poll_ready(cx)).await;
    ready.is_ok() && events.start_send(message).is_ok()
}

impl Pusher {
    /// Whether the subscription must end now: cancelled (deregistered, deleted, replaced), past
    /// its lifetime, shutting down, or its shard's log closed.
    fn must_stop(&self, deadline: std::time::Instant) -> bool {
        self.cancelled.get().is_some()
            || std::time::Instant::now() >= deadline
            || self.core.shutdown().is_triggered()
            || self.owned.log.is_closed()
    }

    /// `send`, but a subscriber that stops reading cannot hold the pusher (and the events
    /// queued for it) past the moment the subscription must end: the wait for room is checked
    /// against `must_stop` every second. False if the event was not sent.
    async fn send_until(
        &self,
        events: &mut mpsc::Sender<Bytes>,
        message: Bytes,
        deadline: std::time::Instant,
    ) -> bool {
        loop {
            let ready = futures_lite::future::or(
                async { Some(futures_lite::future::poll_fn(|cx| events.poll_ready(cx)).await) },
                async {
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                    None
                },
            )
            .await;
            match ready {
                Some(ready) => return ready.is_ok() && events.start_send(message).is_ok(),
                None if self.must_stop(deadline) => return false,
                None => {}
            }
        }
    }

    async fn run(self, mut offset: u64, mut events: mpsc::Sender<Bytes>) {
        let core = &self.core;
        let log = &self.owned.log;
        let shard_id = catalog::shard_id(self.shard);
        let metric = |f: &dyn Fn(&mut crate::metrics::ConsumerCursor)| {
            core.metrics().consumer(&self.stream_name, &self.consumer_name, &shard_id, |c| f(c));
        };
        metric(&|c| c.active = true);
        if !send(&mut events, eventstream::encode_initial_response()).await {
            metric(&|c| c.active = false);
            return;
        }
        let deadline = std::time::Instant::now() + core.config().subscription_lifetime;
        let mut budget = TokenBucket::new(
            CONSUMER_BYTES_PER_SECOND,
            CONSUMER_BYTES_PER_SECOND,
            core.clock().monotonic_ns(),
        );
        let mut last_event = std::time::Instant::now();
        loop {
            if let Some(reason) = self.cancelled.get() {
                if reason != "replaced" {
                    let error = ApiError::resource_not_found(match reason {
                        "consumer" => format!(
                            "Consumer {} of stream {} was deregistered.",
                            self.consumer_name, self.stream_name
                        ),
                        _ => format!("Stream {} was deleted.", self.stream_name),
                    });
                    // A second's grace for the error event: the subscriber may be reading.
                    let grace = std::time::Instant::now() + Duration::from_secs(1);
                    let stop = self.cancelled.take();
                    self.send_until(&mut events, eventstream::encode_error(&error), grace).await;
                    self.cancelled.set(stop);
                }
                break;
            }
            if self.must_stop(deadline) {
                break;
            }
            let now_ns = core.clock().monotonic_ns();
            if core.config().quotas_enabled && !budget.has_tokens(now_ns) {
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let batch =
                match log.read(offset, spate_proto::limits::GET_RECORDS_COUNT_MAX, EVENT_BYTES_MAX)
                {
                    Ok(batch) => batch,
                    Err(e) => {
                        let error = eventstream::encode_error(&ApiError::internal(e.to_string()));
                        self.send_until(&mut events, error, deadline).await;
                        break;
                    }
                };
            let tip = log.next_offset();
            let sealed_end = log.sealed();
            // The end is announced in its own event, after the last records were pushed.
            let mut at_end =
                batch.records.is_empty() && sealed_end.is_some_and(|end| batch.next_offset >= end);
            if at_end {
                // A shard ends on the committed catalog only, as GetRecords ends it. The seal
                // comes just before the reshard's catalog commit that names the children, and a
                // reshard that fails unseals its parent, which then takes writes again: so until
                // the commit is published, look again shortly (heartbeats still go out).
                let committed = core
                    .catalog()
                    .stream_by_incarnation(self.incarnation)
                    .and_then(|s| s.shard(self.shard).map(|s| s.ending_offset.is_some()))
                    .unwrap_or(false);
                if !committed {
                    at_end = false;
                    if last_event.elapsed() < HEARTBEAT {
                        glommio::timer::sleep(SEAL_COMMIT_POLL).await;
                        continue;
                    }
                }
            }
            let sealed_uncommitted = sealed_end.is_some() && !at_end;
            if !batch.records.is_empty() || at_end || last_event.elapsed() >= HEARTBEAT {
                let bytes: u64 = batch
                    .records
                    .iter()
                    .map(|r| (r.data.len() + r.partition_key.len()) as u64)
                    .sum();
                budget.charge(now_ns, bytes as f64);
                let count = batch.records.len() as u64;
                let last_arrival = batch.records.last().map(|r| r.arrival_ms);
                let now_ms = core.now_ms();
                let millis_behind_latest = if batch.next_offset >= tip {
                    0
                } else {
                    (now_ms - last_arrival.unwrap_or(now_ms)).max(0)
                };
                // The last record delivered so far, or the shard's start before any; none
                // at the end of a closed shard (the event that carries ChildShards).
                let continuation = match batch.next_offset {
                    _ if at_end => None,
                    0 => Some(engine::shard_start(self.incarnation, self.shard)),
                    next => Some(
                        SequenceNumber {
                            incarnation: self.incarnation,
                            shard_index: self.shard,
                            offset: next - 1,
                        }
                        .to_string(),
                    ),
                };
                let child_shards = at_end.then(|| {
                    let catalog = core.catalog();
                    catalog
                        .stream_by_incarnation(self.incarnation)
                        .map(|s| child_shards(s, self.shard))
                        .unwrap_or_default()
                });
                let event = out::SubscribeToShardEvent {
                    records: batch
                        .records
                        .into_iter()
                        .map(|r| wire_record(self.incarnation, self.shard, r))
                        .collect(),
                    continuation_sequence_number: continuation,
                    millis_behind_latest,
                    child_shards,
                };
                if !self
                    .send_until(&mut events, eventstream::encode_subscribe_event(&event), deadline)
                    .await
                {
                    break;
                }
                last_event = std::time::Instant::now();
                offset = batch.next_offset;
                metric(&|c| {
                    c.position = offset.saturating_sub(1);
                    c.lag_records = tip.saturating_sub(offset);
                    c.millis_behind_latest = millis_behind_latest;
                    c.bytes_pushed += bytes;
                    c.records_pushed += count;
                });
                if at_end {
                    break;
                }
                if count > 0 {
                    continue;
                }
            }
            if sealed_uncommitted {
                // No append can come to a sealed shard: look for the commit (or the unseal).
                glommio::timer::sleep(SEAL_COMMIT_POLL).await;
                continue;
            }
            // Wait for an append, a cancellation, or the heartbeat.
            let wait_append = log.wait_for(offset);
            let wait_cancel = self.wake.wait();
            let heartbeat = glommio::timer::sleep(HEARTBEAT.saturating_sub(last_event.elapsed()));
            let shutdown = core.shutdown().wait();
            futures_lite::future::or(
                async {
                    wait_append.await;
                },
                futures_lite::future::or(
                    wait_cancel,
                    futures_lite::future::or(
                        async {
                            heartbeat.await;
                        },
                        async {
                            shutdown.await;
                        },
                    ),
                ),
            )
            .await;
        }
        metric(&|c| c.active = false);
    }
}
