//! The HTTP edge and the Kinesis operations: one `match` over actions.
//!
//! Data-path operations (PutRecord(s), GetShardIterator, GetRecords) and read-only catalog
//! operations run on the core that received the request, using its catalog snapshot, and send
//! typed messages to the shards' owning cores. Operations that change the catalog are
//! forwarded whole to the controller on core 0 (`control.rs`).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use engine::{NewRecord, SequenceNumber, parse_position, shard_start};
use futures_channel::oneshot;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use spate_proto::limits::{
    DESCRIBE_STREAM_SHARDS_PAGE_MAX, LIST_SHARDS_PAGE_MAX, LIST_STREAMS_PAGE_MAX,
    LIST_TAGS_LIMIT_MAX, ON_DEMAND_STREAM_COUNT_LIMIT,
};
use spate_proto::requests::{
    DescribeStreamInput, GetRecordsInput, GetShardIteratorInput, ListShardsInput, ListStreamsInput,
    ListTagsForStreamInput, PutRecordInput, PutRecordsInput, ShardFilter,
};
use spate_proto::responses::{self as out, CONTENT_TYPE};
use spate_proto::types::{ShardFilterType, StreamModeDetails, Timestamp};
use spate_proto::{ApiError, IteratorPosition, Request as ApiRequest, StreamRef, parse_request};

use crate::catalog::{self, Catalog, ShardMeta, StreamMeta, StreamMode, StreamStatus};
use crate::core::{Core, Msg, PositionQuery, ShardError};
use crate::http::{Body, BodyError, full, read_body_limited};
use crate::iterator::{IteratorError, IteratorToken};
use crate::{hash, placement};

/// Largest request body accepted: a PutRecords of 500 records of up to 1 MiB each is capped at
/// 5 MiB of payload by Kinesis; base64 and JSON overhead stay well within this.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 << 20;

pub type ApiResult = Result<Vec<u8>, ApiError>;

/// Entry point for every HTTP request on every core.
pub async fn handle_http(core: Rc<Core>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = core.request_id();
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/health") | (&Method::GET, "/healthz") => {
            return plain(StatusCode::OK, "text/plain", "ok\n".into(), &request_id);
        }
        (&Method::GET, "/metrics") => {
            let text = core.scrape().await;
            return plain(StatusCode::OK, "text/plain; version=0.0.4", text.into(), &request_id);
        }
        (&Method::POST, _) => {}
        _ => {
            let error = ApiError::new(
                spate_proto::ErrorKind::UnknownOperationException,
                "Spate serves the Kinesis API with POST /, GET /health and GET /metrics.",
            );
            return json(404, error.to_json(), &request_id);
        }
    }
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(spate_proto::operation_from_target)
        .unwrap_or("")
        .to_string();
    // The AWS SDKs for Java (and so the KCL) send CBOR to Kinesis unless told not to. Spate
    // speaks AWS JSON 1.1 only; say so instead of failing to parse the body as JSON.
    let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok());
    if content_type.is_some_and(|t| t.starts_with("application/x-amz-cbor")) {
        let error = ApiError::serialization(
            "Spate speaks AWS JSON 1.1 (application/x-amz-json-1.1), not CBOR. Disable CBOR in \
             the client: AWS_CBOR_DISABLE=true in the environment or -Daws.cborEnabled=false \
             for the AWS SDK for Java and the KCL.",
        );
        core.metrics.request(metric_operation(&operation), error.type_name(), 0.0);
        return json(400, error.to_json(), &request_id);
    }
    let body = read_body_limited(
        request.into_body(),
        REQUEST_BODY_BYTES_MAX,
        crate::http::BODY_STALL_TIMEOUT,
    );
    let body = match body.await {
        Ok(body) => body,
        Err(BodyError::TooLarge { .. }) => {
            let error = ApiError::validation(format!(
                "1 validation error detected: Request body exceeds the limit of \
                 {REQUEST_BODY_BYTES_MAX} bytes"
            ));
            core.metrics.request(metric_operation(&operation), error.type_name(), 0.0);
            return json(413, error.to_json(), &request_id);
        }
        Err(BodyError::Read(_)) => {
            let error = ApiError::serialization("Could not read the request body");
            return json(400, error.to_json(), &request_id);
        }
        Err(BodyError::Stalled) => {
            let error = ApiError::serialization(format!(
                "No part of the request body arrived for {} seconds",
                crate::http::BODY_STALL_TIMEOUT.as_secs()
            ));
            core.metrics.request(metric_operation(&operation), error.type_name(), 0.0);
            return json(408, error.to_json(), &request_id);
        }
    };
    // Parsed once, here: everything after this works on the typed request.
    let result = match parse_request(&operation, &body) {
        Ok(request) => dispatch(&core, request).await,
        Err(error) => Err(error),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(error) => error.type_name(),
    };
    core.metrics.request(metric_operation(&operation), outcome, started.elapsed().as_secs_f64());
    match result {
        Ok(Reply::Json(payload)) => json(200, payload, &request_id),
        Ok(Reply::Events(events)) => Response::builder()
            .status(200)
            .header("content-type", spate_proto::eventstream::CONTENT_TYPE)
            .header("x-amzn-RequestId", &request_id)
            .body(crate::http::stream_body_until(events, &core.shutdown))
            .expect("valid response"),
        Err(error) => json(error.status(), error.to_json(), &request_id),
    }
}

fn metric_operation(operation: &str) -> &str {
    if spate_proto::requests::Operation::from_name(operation).is_some() {
        operation
    } else {
        "unknown"
    }
}

fn plain(status: StatusCode, content_type: &str, body: Bytes, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}

pub fn json(status: u16, body: Vec<u8>, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}

/// What a successful operation answers: a JSON body, or (SubscribeToShard) the events the
/// shard's owning core pushes, streamed as the response body.
pub enum Reply {
    Json(Vec<u8>),
    Events(futures_channel::mpsc::Receiver<Bytes>),
}

/// Whether an operation changes the catalog, and so runs on the controller (core 0).
pub fn changes_catalog(request: &ApiRequest) -> bool {
    matches!(
        request,
        ApiRequest::CreateStream(_)
            | ApiRequest::DeleteStream(_)
            | ApiRequest::IncreaseStreamRetentionPeriod(_)
            | ApiRequest::DecreaseStreamRetentionPeriod(_)
            | ApiRequest::AddTagsToStream(_)
            | ApiRequest::RemoveTagsFromStream(_)
            | ApiRequest::TagResource(_)
            | ApiRequest::UntagResource(_)
            | ApiRequest::RegisterStreamConsumer(_)
            | ApiRequest::DeregisterStreamConsumer(_)
            | ApiRequest::SplitShard(_)
            | ApiRequest::MergeShards(_)
            | ApiRequest::UpdateShardCount(_)
            | ApiRequest::UpdateStreamMode(_)
    )
}

/// Runs one parsed operation: the one `match` over every operation.
pub async fn dispatch(core: &Rc<Core>, request: ApiRequest) -> Result<Reply, ApiError> {
    let operation = request.operation().name();
    if changes_catalog(&request) {
        // Everything that changes the catalog runs on the controller (core 0), which counts
        // these operations' rate limits exactly.
        let request = Box::new(request);
        return core
            .call(0, |reply| Msg::Control { request, reply })
            .await
            .unwrap_or_else(|| Err(ApiError::internal("controller unavailable")))
            .map(Reply::Json);
    }
    if !core.operation_limits.admit(operation, core.clock.monotonic_ns()) {
        return Err(rate_exceeded(core, operation));
    }
    let result = match request {
        ApiRequest::PutRecord(r) => put_record(core, r).await,
        ApiRequest::PutRecords(r) => put_records(core, r).await,
        ApiRequest::GetShardIterator(r) => get_shard_iterator(core, r).await,
        ApiRequest::GetRecords(r) => get_records(core, r).await,
        ApiRequest::SubscribeToShard(r) => {
            return crate::fanout::start(core, r).await.map(Reply::Events);
        }
        ApiRequest::DescribeStream(r) => describe_stream(core, r),
        ApiRequest::DescribeStreamSummary(r) => {
            r.stream_ref().and_then(|s| stream_handle(core, &s)).map(|h| describe_summary(core, &h))
        }
        ApiRequest::ListStreams(r) => list_streams(core, r),
        ApiRequest::ListShards(r) => list_shards(core, r),
        ApiRequest::ListTagsForStream(r) => list_tags_for_stream(core, r),
        ApiRequest::ListTagsForResource(r) => crate::control::list_tags_for_resource(core, r),
        ApiRequest::DescribeLimits(_) => Ok(describe_limits(core)),
        ApiRequest::DescribeStreamConsumer(r) => crate::control::describe_consumer(core, r),
        ApiRequest::ListStreamConsumers(r) => crate::control::list_consumers(core, r),
        other => Err(ApiError::internal(format!(
            "{} has no handler outside the controller",
            other.operation().name()
        ))),
    };
    result.map(Reply::Json)
}

/// LimitExceededException for a control-plane call over its rate.
pub fn rate_exceeded(core: &Core, operation: &str) -> ApiError {
    ApiError::limit_exceeded(format!(
        "Rate exceeded for {operation} under account {}.",
        core.config().account_id
    ))
}

// ---------------------------------------------------------------------------------------------
// Stream lookup.

/// A stream found in a catalog snapshot.
pub struct StreamHandle {
    pub catalog: Arc<Catalog>,
    pub name: String,
}

impl StreamHandle {
    pub fn meta(&self) -> &StreamMeta {
        &self.catalog.streams[&self.name]
    }
}

/// A stream ARN naming another region or account names a stream this server does not have.
pub fn check_arn_home(core: &Core, stream: &StreamRef) -> Result<(), ApiError> {
    let config = core.config();
    match stream {
        StreamRef::Arn { region, account, name }
            if region != &config.region || account != &config.account_id =>
        {
            Err(ApiError::stream_not_found(name, account))
        }
        _ => Ok(()),
    }
}

pub fn stream_handle(core: &Core, stream: &StreamRef) -> Result<StreamHandle, ApiError> {
    let config = core.config();
    check_arn_home(core, stream)?;
    let name = stream.name();
    let catalog = core.catalog();
    if !catalog.streams.contains_key(name) {
        return Err(ApiError::stream_not_found(name, &config.account_id));
    }
    Ok(StreamHandle { catalog, name: name.to_string() })
}

fn require_active(core: &Core, stream: &StreamMeta) -> Result<(), ApiError> {
    match stream.status {
        StreamStatus::Active | StreamStatus::Updating => Ok(()),
        StreamStatus::Creating | StreamStatus::Deleting => {
            Err(ApiError::stream_not_found(&stream.name, &core.config().account_id))
        }
    }
}

pub fn sequence_string(incarnation: u64, shard: u32, offset: u64) -> String {
    SequenceNumber { incarnation, shard_index: shard, offset }.to_string()
}

pub fn shard_error(core: &Core, error: ShardError, stream: &str, shard: &str) -> ApiError {
    let account = &core.config().account_id;
    match error {
        ShardError::Missing => ApiError::shard_does_not_exist(shard, stream, account),
        ShardError::Throttled => ApiError::write_throughput_exceeded(shard, stream, account),
        ShardError::Engine(engine::Error::DiskFull) => {
            ApiError::service_unavailable("The server's disk is full; the record was not written.")
        }
        ShardError::Engine(engine::Error::Sealed { .. }) => ApiError::resource_in_use(format!(
            "Shard {shard} in stream {stream} under account {account} is closed; retry."
        )),
        ShardError::Engine(e) => ApiError::internal(e.to_string()),
    }
}

fn parse_hash_key(value: &str) -> Result<u128, ApiError> {
    value.parse::<u128>().map_err(|_| ApiError::explicit_hash_key_out_of_range(value))
}

// ---------------------------------------------------------------------------------------------
// Writes.

/// Attempts to route a write while a reshard closes its shard. Between attempts a writer
/// waits for this core to install a newer catalog (the reshard's commit, which names the
/// children), or at most 1, 2, 4, ... ms, capped at 500 ms: about 4 s in all, so a reshard
/// slowed by a busy disk is waited out rather than answered with an error.
const REROUTE_ATTEMPTS: u32 = 16;
const REROUTE_PAUSE_MAX_MS: u64 = 500;

/// Before attempt `attempt` (from 0), when the previous one routed with catalog version
/// `routed_version`.
async fn reroute_pause(core: &Core, attempt: u32, routed_version: u64) {
    if attempt == 0 || core.catalog().version > routed_version {
        return;
    }
    let pause = (1u64 << (attempt - 1).min(16)).min(REROUTE_PAUSE_MAX_MS);
    futures_lite::future::or(
        core.catalog_installed.wait(),
        glommio::timer::sleep(std::time::Duration::from_millis(pause)),
    )
    .await;
}

struct Routed {
    core: usize,
    incarnation: u64,
    shard: u32,
}

fn route(stream: &StreamMeta, hash_key: u128, cores: usize) -> Option<Routed> {
    stream.route(hash_key).map(|s| Routed {
        core: placement::owner(s, cores),
        incarnation: stream.incarnation,
        shard: s.index,
    })
}

async fn put_record(core: &Rc<Core>, r: PutRecordInput) -> ApiResult {
    let stream_ref = r.stream_ref()?;
    let hash_key = match &r.explicit_hash_key {
        Some(value) => parse_hash_key(value)?,
        None => hash::hash_key(r.partition_key.as_bytes()),
    };
    if let Some(seq) = &r.sequence_number_for_ordering
        && parse_position(seq).is_none()
    {
        return Err(ApiError::invalid_sequence_number_for_ordering(
            seq,
            stream_ref.name(),
            &core.config().account_id,
        ));
    }
    let record = NewRecord { partition_key: Bytes::from(r.partition_key), data: r.data };
    let mut results = append_routed(core, &stream_ref, &[hash_key], &[record]).await?;
    match results.pop().expect("one result per record") {
        Some(Ok(appended)) => Ok(spate_proto::to_json(&out::PutRecordOutput {
            shard_id: appended.shard_id,
            sequence_number: appended.sequence_number,
            encryption_type: None,
        })),
        Some(Err(error)) => Err(error),
        None => Err(ApiError::service_unavailable("The shard is being resharded; retry.")),
    }
}

async fn put_records(core: &Rc<Core>, r: PutRecordsInput) -> ApiResult {
    let stream_ref = r.stream_ref()?;
    let total: usize = r.records.iter().map(|e| e.data.len() + e.partition_key.len()).sum();
    if total > spate_proto::limits::PUT_RECORDS_BYTES_MAX {
        return Err(ApiError::invalid_argument("Records size exceeds 5 MB limit"));
    }
    let mut hash_keys = Vec::with_capacity(r.records.len());
    let mut new_records = Vec::with_capacity(r.records.len());
    for entry in r.records {
        hash_keys.push(match &entry.explicit_hash_key {
            Some(value) => parse_hash_key(value)?,
            None => hash::hash_key(entry.partition_key.as_bytes()),
        });
        new_records
            .push(NewRecord { partition_key: Bytes::from(entry.partition_key), data: entry.data });
    }
    let results = append_routed(core, &stream_ref, &hash_keys, &new_records).await?;
    let records: Vec<out::PutRecordsResultEntry> = results
        .into_iter()
        .map(|result| match result {
            Some(Ok(appended)) => {
                out::PutRecordsResultEntry::ok(appended.shard_id, appended.sequence_number)
            }
            // The entries say only "Internal Service Failure", as Kinesis does.
            Some(Err(error)) if error.status() >= 500 => out::PutRecordsResultEntry::failed(
                &ApiError::new(spate_proto::ErrorKind::InternalFailure, error.message),
            ),
            Some(Err(error)) => out::PutRecordsResultEntry::failed(&error),
            None => out::PutRecordsResultEntry::failed(&ApiError::internal(
                "The shard is being resharded; retry.",
            )),
        })
        .collect();
    let failed = records.iter().filter(|r| r.error_code.is_some()).count() as i32;
    Ok(spate_proto::to_json(&out::PutRecordsOutput {
        failed_record_count: Some(failed),
        records,
        encryption_type: None,
    }))
}

/// Where a record was appended.
struct Appended {
    shard_id: String,
    sequence_number: String,
}

/// Appends `records` (routed by their `hash_keys`) on their shards' owning cores, for PutRecord
/// and PutRecords alike; answers one result per record, in request order. A record gets an
/// error if its shard refused it (write quota, disk full, ...), and `None` if a reshard kept
/// closing its shard for all [`REROUTE_ATTEMPTS`]. Errors for the whole request (unknown or
/// inactive stream) come back as `Err`.
///
/// Records are grouped by shard (request order kept within each group), every group is sent
/// before any reply is awaited (the owning cores work in parallel), and records that hit a
/// shard a reshard closed between lookup and append are routed again once this core has the
/// catalog that names the children.
async fn append_routed(
    core: &Rc<Core>,
    stream_ref: &StreamRef,
    hash_keys: &[u128],
    records: &[NewRecord],
) -> Result<Vec<Option<Result<Appended, ApiError>>>, ApiError> {
    let mut slots: Vec<Option<Result<Appended, ApiError>>> =
        std::iter::repeat_with(|| None).take(records.len()).collect();
    let account = core.config().account_id.clone();
    let mut routed_version = 0;
    for attempt in 0..REROUTE_ATTEMPTS {
        // Done: every record has its result. (Checked before the pause, which would otherwise
        // add a millisecond to every PutRecords.)
        if slots.iter().all(Option::is_some) {
            break;
        }
        reroute_pause(core, attempt, routed_version).await;
        routed_version = core.catalog().version;
        let handle = stream_handle(core, stream_ref)?;
        let stream = handle.meta();
        require_active(core, stream)?;
        // Group the still-pending records by shard, keeping request order within each group.
        let mut groups: Vec<(Routed, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<u32, usize> = HashMap::new();
        for (i, key) in hash_keys.iter().enumerate() {
            if slots[i].is_some() {
                continue;
            }
            let routed = route(stream, *key, core.cores)
                .ok_or_else(|| ApiError::internal("no open shard covers the hash key"))?;
            let g = *group_of.entry(routed.shard).or_insert_with(|| {
                groups.push((Routed { ..routed }, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        if groups.is_empty() {
            break;
        }
        // Send every group first, then collect: the owning cores work in parallel.
        let mut waiting = Vec::with_capacity(groups.len());
        for (routed, indexes) in &groups {
            let batch: Vec<NewRecord> = indexes.iter().map(|&i| records[i].clone()).collect();
            let (reply, rx) = oneshot::channel();
            core.send(
                routed.core,
                Msg::Append {
                    incarnation: routed.incarnation,
                    shard: routed.shard,
                    records: batch,
                    reply,
                },
            )
            .await;
            waiting.push(rx);
        }
        for ((routed, indexes), rx) in groups.iter().zip(waiting) {
            let shard_id = catalog::shard_id(routed.shard);
            match rx.await {
                Ok(Ok(outcome)) => {
                    let mut next = outcome.result.map(|r| r.first_offset);
                    let mut landed = outcome.result.map_or(0, |r| r.count);
                    // Accepted records past those that landed failed with `outcome.failed`.
                    let failed = outcome.failed.map(|e| {
                        let error =
                            shard_error(core, ShardError::Engine(e), &stream.name, &shard_id);
                        tracing::warn!(shard = %shard_id, cause = %error.message, "appends failed");
                        error
                    });
                    for (k, &i) in indexes.iter().enumerate() {
                        slots[i] = Some(if outcome.accepted[k] && landed == 0 {
                            Err(failed.clone().unwrap_or_else(|| {
                                ApiError::internal("an accepted record was not appended")
                            }))
                        } else if outcome.accepted[k] {
                            landed -= 1;
                            let offset = next.expect("accepted records were appended");
                            next = Some(offset + 1);
                            Ok(Appended {
                                shard_id: shard_id.clone(),
                                sequence_number: sequence_string(
                                    routed.incarnation,
                                    routed.shard,
                                    offset,
                                ),
                            })
                        } else {
                            Err(ApiError::write_throughput_exceeded(
                                &shard_id,
                                &stream.name,
                                &account,
                            ))
                        });
                    }
                }
                Ok(Err(ShardError::Engine(engine::Error::Sealed { .. })))
                | Ok(Err(ShardError::Missing)) => {} // re-routed on the next attempt
                Ok(Err(e)) => {
                    let error = shard_error(core, e, &stream.name, &shard_id);
                    if error.status() >= 500 {
                        tracing::warn!(shard = %shard_id, cause = %error.message, "appends failed");
                    }
                    for &i in indexes {
                        slots[i] = Some(Err(error.clone()));
                    }
                }
                Err(_) => {
                    for &i in indexes {
                        slots[i] = Some(Err(ApiError::internal("shard owner unavailable")));
                    }
                }
            }
        }
    }
    Ok(slots)
}

// ---------------------------------------------------------------------------------------------
// Reads.

/// AT_TIMESTAMP in the future is refused, with Kinesis's message.
pub fn check_not_future(timestamp_ms: i64, now_ms: i64) -> Result<(), ApiError> {
    if timestamp_ms > now_ms {
        return Err(ApiError::invalid_argument(format!(
            "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. \
             timestampInMillis: {timestamp_ms}, currentTimestampInMillis: {now_ms}"
        )));
    }
    Ok(())
}

fn find_shard<'a>(
    core: &Core,
    stream: &'a StreamMeta,
    shard_id: &str,
) -> Result<&'a ShardMeta, ApiError> {
    let account = &core.config().account_id;
    let index = catalog::parse_shard_id(shard_id)
        .ok_or_else(|| ApiError::shard_not_found(shard_id, &stream.name, account))?;
    // A closed shard past retention is gone, as in ListShards, even before it is reclaimed.
    let retention_start = stream.retention_start_ms(core.now_ms());
    stream
        .shard(index)
        .filter(|s| !s.expired(retention_start))
        .ok_or_else(|| ApiError::shard_does_not_exist(shard_id, &stream.name, account))
}

enum PositionKind {
    At,
    After,
}

async fn get_shard_iterator(core: &Rc<Core>, r: GetShardIteratorInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    require_active(core, stream)?;
    let shard = find_shard(core, stream, &r.shard_id)?;
    let account = &core.config().account_id;
    let position = r.position()?;
    // The first offset an iterator at (or after) `seq` reads.
    let check_sequence = |seq: &str, after: bool| -> Result<u64, ApiError> {
        let invalid =
            || ApiError::invalid_starting_sequence_number(seq, &r.shard_id, &stream.name, account);
        let parsed = parse_position(seq).ok_or_else(invalid)?;
        if parsed.incarnation != stream.incarnation {
            return Err(ApiError::sequence_number_wrong_stream(
                seq,
                &r.shard_id,
                &stream.name,
                account,
            ));
        }
        if parsed.shard_index != shard.index {
            return Err(ApiError::sequence_number_wrong_shard(
                &catalog::shard_id(parsed.shard_index),
                &r.shard_id,
            ));
        }
        parsed.first_offset(after).ok_or_else(invalid)
    };
    let stream_name = stream.name.as_str();
    let query = |q: PositionQuery| {
        let (incarnation, index, owner) =
            (stream.incarnation, shard.index, placement::owner(shard, core.cores));
        async move {
            core.call(owner, |reply| Msg::Position {
                incarnation,
                shard: index,
                query: q,
                charge_iterator: true,
                reply,
            })
            .await
            .ok_or_else(|| ApiError::internal("shard owner unavailable"))?
            .map_err(|e| shard_error(core, e, stream_name, &catalog::shard_id(index)))
        }
    };
    let position_kind = match position {
        IteratorPosition::AfterSequenceNumber(_) => PositionKind::After,
        _ => PositionKind::At,
    };
    let offset = match position {
        IteratorPosition::TrimHorizon => query(PositionQuery::TrimHorizon).await?,
        IteratorPosition::Latest => query(PositionQuery::Latest).await?,
        IteratorPosition::AtTimestamp(ts) => {
            check_not_future(ts.as_millis(), core.now_ms())?;
            query(PositionQuery::Timestamp(ts.as_millis())).await?
        }
        // A position past the shard's tip names a record that does not exist yet: reading
        // from it would silently skip every record written between the tip and it.
        IteratorPosition::AtSequenceNumber(seq) | IteratorPosition::AfterSequenceNumber(seq) => {
            let after = matches!(position_kind, PositionKind::After);
            let offset = check_sequence(&seq, after)?;
            let tip = query(PositionQuery::Latest).await?; // also charges the iterator quota
            if offset > tip {
                return Err(ApiError::invalid_starting_sequence_number(
                    &seq,
                    &r.shard_id,
                    &stream.name,
                    account,
                ));
            }
            offset
        }
    };
    let token = IteratorToken {
        incarnation: stream.incarnation,
        shard_index: shard.index,
        offset,
        issued_ms: core.now_ms(),
    };
    Ok(spate_proto::to_json(&out::GetShardIteratorOutput {
        shard_iterator: core.keys.encode(token),
    }))
}

pub fn child_shards(stream: &StreamMeta, index: u32) -> Vec<out::ChildShard> {
    stream
        .children_of(index)
        .into_iter()
        .map(|child| out::ChildShard {
            shard_id: child.shard_id(),
            parent_shards: [child.parent, child.adjacent_parent]
                .into_iter()
                .flatten()
                .map(catalog::shard_id)
                .collect(),
            hash_key_range: out::HashKeyRange {
                starting_hash_key: child.starting_hash_key.to_string(),
                ending_hash_key: child.ending_hash_key.to_string(),
            },
        })
        .collect()
}

pub fn wire_record(incarnation: u64, shard: u32, record: engine::Record) -> out::Record {
    out::Record {
        sequence_number: sequence_string(incarnation, shard, record.offset),
        approximate_arrival_timestamp: Timestamp::from_millis(record.arrival_ms),
        data: record.data,
        partition_key: String::from_utf8_lossy(&record.partition_key).into_owned(),
        encryption_type: None,
    }
}

async fn get_records(core: &Rc<Core>, r: GetRecordsInput) -> ApiResult {
    let now = core.now_ms();
    let token = match core.keys.decode(&r.shard_iterator, now) {
        Ok(token) => token,
        Err(IteratorError::Invalid) => return Err(ApiError::invalid_shard_iterator()),
        Err(IteratorError::Expired { issued_ms }) => {
            return Err(ApiError::expired_iterator(issued_ms, now));
        }
    };
    let catalog = core.catalog();
    let account = &core.config().account_id;
    let shard_id = catalog::shard_id(token.shard_index);
    let stream = catalog
        .stream_by_incarnation(token.incarnation)
        .filter(|s| s.status != StreamStatus::Deleting)
        .ok_or_else(|| {
            ApiError::resource_not_found(format!(
                "Shard {shard_id} in stream (deleted) under account {account} does not exist"
            ))
        })?;
    if let Some(arn) = &r.stream_arn
        && spate_proto::parse_stream_arn(arn).is_none_or(|a| a.name != stream.name)
    {
        return Err(ApiError::invalid_argument(format!(
            "StreamARN {arn} does not match the stream of the shard iterator."
        )));
    }
    let shard = stream
        .shard(token.shard_index)
        .ok_or_else(|| ApiError::shard_does_not_exist(&shard_id, &stream.name, account))?;
    let limit = r.limit.map_or(spate_proto::limits::GET_RECORDS_COUNT_MAX, |l| l as usize);
    let (incarnation, index, offset) = (token.incarnation, token.shard_index, token.offset);
    let reply = core
        .call(placement::owner(shard, core.cores), |reply| Msg::Read {
            incarnation,
            shard: index,
            offset,
            limit,
            reply,
        })
        .await
        .ok_or_else(|| ApiError::internal("shard owner unavailable"))?;
    let reply = match reply {
        Ok(reply) => reply,
        Err(ShardError::Throttled) => {
            return Err(ApiError::throughput_exceeded(format!(
                "Rate exceeded for shard {shard_id} in stream {} under account {account}.",
                stream.name
            )));
        }
        Err(e) => return Err(shard_error(core, e, &stream.name, &shard_id)),
    };
    let last_arrival = reply.last_arrival_ms;
    let millis_behind_latest = if reply.next_offset >= reply.tip {
        0
    } else {
        (now - last_arrival.or(reply.tip_arrival_ms).unwrap_or(now)).max(0)
    };
    // A shard ends for readers only once the catalog says so: its log is sealed a moment
    // before the reshard's catalog commit names the children, and a reader told "closed" with
    // no children would be stuck. Until then it keeps getting an iterator.
    let at_end = shard.ending_offset.is_some_and(|end| reply.next_offset >= end);
    let next_shard_iterator = (!at_end).then(|| {
        core.keys.encode(IteratorToken {
            incarnation,
            shard_index: index,
            offset: reply.next_offset,
            issued_ms: now,
        })
    });
    let child_shards = at_end.then(|| child_shards(stream, index));
    core.metrics.shard(&stream.name, &shard_id, |c| c.iterator_age_ms = millis_behind_latest);
    Ok(reply.records.finish_get_records(
        next_shard_iterator.as_deref(),
        millis_behind_latest,
        child_shards.as_deref(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Describing.

pub fn wire_status(status: StreamStatus) -> spate_proto::types::StreamStatus {
    use spate_proto::types::StreamStatus as W;
    match status {
        StreamStatus::Creating => W::Creating,
        StreamStatus::Active => W::Active,
        StreamStatus::Updating => W::Updating,
        StreamStatus::Deleting => W::Deleting,
    }
}

pub fn wire_mode(mode: StreamMode) -> StreamModeDetails {
    use spate_proto::types::StreamMode as W;
    StreamModeDetails {
        stream_mode: match mode {
            StreamMode::Provisioned => W::Provisioned,
            StreamMode::OnDemand => W::OnDemand,
        },
    }
}

pub fn wire_shard(stream: &StreamMeta, shard: &ShardMeta) -> out::Shard {
    out::Shard {
        shard_id: shard.shard_id(),
        parent_shard_id: shard.parent.map(catalog::shard_id),
        adjacent_parent_shard_id: shard.adjacent_parent.map(catalog::shard_id),
        hash_key_range: out::HashKeyRange {
            starting_hash_key: shard.starting_hash_key.to_string(),
            ending_hash_key: shard.ending_hash_key.to_string(),
        },
        // The start sits before the first record (see `engine::sequence`), so AT and
        // AFTER_SEQUENCE_NUMBER with it both begin at the first record, as on Kinesis. A
        // closed shard ends at its last record, or at its start if it never had one.
        sequence_number_range: out::SequenceNumberRange {
            starting_sequence_number: shard_start(stream.incarnation, shard.index),
            ending_sequence_number: shard.ending_offset.map(|end| match end {
                0 => shard_start(stream.incarnation, shard.index),
                end => sequence_string(stream.incarnation, shard.index, end - 1),
            }),
        },
    }
}

fn describe_stream(core: &Rc<Core>, r: DescribeStreamInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    let config = core.config();
    // "If you specify a value greater than 100, at most 100 results are returned."
    let limit = r
        .limit
        .map_or(DESCRIBE_STREAM_SHARDS_PAGE_MAX, |l| l as usize)
        .min(DESCRIBE_STREAM_SHARDS_PAGE_MAX);
    let start_after = r.exclusive_start_shard_id.as_deref().and_then(catalog::parse_shard_id);
    // Closed shards whose records have all passed retention are gone, as in ListShards.
    let retention_start = stream.retention_start_ms(core.now_ms());
    let mut shards: Vec<&ShardMeta> = stream
        .shards
        .iter()
        .filter(|s| !s.expired(retention_start))
        .filter(|s| start_after.is_none_or(|after| s.index > after))
        .collect();
    shards.sort_by_key(|s| s.index);
    let has_more_shards = shards.len() > limit;
    shards.truncate(limit);
    Ok(spate_proto::to_json(&out::DescribeStreamOutput {
        stream_description: out::StreamDescription {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(&config.region, &config.account_id),
            stream_status: wire_status(stream.status),
            stream_mode_details: Some(wire_mode(stream.mode)),
            shards: shards.into_iter().map(|s| wire_shard(stream, s)).collect(),
            has_more_shards,
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_millis(stream.created_ms),
            enhanced_monitoring: out::EnhancedMetrics::none(),
            encryption_type: Some(spate_proto::types::EncryptionType::None),
            key_id: None,
        },
    }))
}

pub fn describe_summary(core: &Core, handle: &StreamHandle) -> Vec<u8> {
    let stream = handle.meta();
    let config = core.config();
    spate_proto::to_json(&out::DescribeStreamSummaryOutput {
        stream_description_summary: out::StreamDescriptionSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(&config.region, &config.account_id),
            stream_status: wire_status(stream.status),
            stream_mode_details: Some(wire_mode(stream.mode)),
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_millis(stream.created_ms),
            enhanced_monitoring: out::EnhancedMetrics::none(),
            encryption_type: Some(spate_proto::types::EncryptionType::None),
            key_id: None,
            open_shard_count: stream.open_shard_count() as i32,
            consumer_count: Some(stream.consumers.len() as i32),
        },
    })
}

fn list_streams(core: &Rc<Core>, r: ListStreamsInput) -> ApiResult {
    let catalog = core.catalog();
    let config = core.config();
    // "If you specify a value greater than 100, at most 100 results are returned."
    let limit = r.limit.map_or(LIST_STREAMS_PAGE_MAX, |l| l as usize).min(LIST_STREAMS_PAGE_MAX);
    let after = match &r.next_token {
        Some(token) => Some(decode_token(token).ok_or_else(ApiError::invalid_next_token)?),
        None => r.exclusive_start_stream_name.clone(),
    };
    let mut names: Vec<&StreamMeta> = catalog
        .streams
        .values()
        .filter(|s| after.as_ref().is_none_or(|a| s.name.as_str() > a.as_str()))
        .collect();
    let has_more_streams = names.len() > limit;
    names.truncate(limit);
    let next_token = has_more_streams.then(|| encode_token(&names.last().unwrap().name));
    Ok(spate_proto::to_json(&out::ListStreamsOutput {
        stream_names: names.iter().map(|s| s.name.clone()).collect(),
        has_more_streams,
        next_token,
        stream_summaries: Some(
            names
                .iter()
                .map(|s| out::StreamSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn(&config.region, &config.account_id),
                    stream_status: wire_status(s.status),
                    stream_mode_details: Some(wire_mode(s.mode)),
                    stream_creation_timestamp: Some(Timestamp::from_millis(s.created_ms)),
                })
                .collect(),
        ),
    }))
}

pub(crate) fn encode_token(text: &str) -> String {
    spate_proto::base64::encode(text.as_bytes())
}

/// A NextToken's issue time (`issued`, ms, from the decoded token) is at most 300 seconds
/// ago, as the model says of ListShards and ListStreamConsumers tokens.
pub(crate) fn check_token_age(core: &Core, token: &str, issued: &str) -> Result<(), ApiError> {
    let issued: i64 = issued.parse().map_err(|_| ApiError::invalid_next_token())?;
    // Saturating: the token is the client's to forge (i64::MIN must not overflow).
    if core.now_ms().saturating_sub(issued) > 300_000 {
        return Err(ApiError::expired_next_token(format!(
            "The timestamp in the nextToken {token} is expired."
        )));
    }
    Ok(())
}

pub(crate) fn decode_token(token: &str) -> Option<String> {
    spate_proto::base64::decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}

fn list_shards(core: &Rc<Core>, r: ListShardsInput) -> ApiResult {
    // NextToken: "<stream name>\n<incarnation>\n<last shard index>\n<issued ms>\n<filter>",
    // the filter as JSON or empty: a continuation sends only the token and gets the same
    // filtered listing.
    let (handle, start_after, token_filter) = match r.stream_ref()? {
        Some(stream) => {
            let after = r.exclusive_start_shard_id.as_deref().and_then(catalog::parse_shard_id);
            (stream_handle(core, &stream)?, after, None)
        }
        None => {
            let token = r.next_token.as_deref().unwrap_or_default();
            let text = decode_token(token).ok_or_else(ApiError::invalid_next_token)?;
            let parts: Vec<&str> = text.split('\n').collect();
            let [name, incarnation, last, issued, filter] = parts[..] else {
                return Err(ApiError::invalid_next_token());
            };
            check_token_age(core, token, issued)?;
            let filter: Option<ShardFilter> = match filter {
                "" => None,
                json => {
                    Some(serde_json::from_str(json).map_err(|_| ApiError::invalid_next_token())?)
                }
            };
            let handle = stream_handle(core, &StreamRef::Name(name.to_string()))?;
            if handle.meta().incarnation.to_string() != incarnation {
                return Err(ApiError::invalid_next_token());
            }
            (handle, last.parse::<u32>().ok(), filter)
        }
    };
    let filter = r.shard_filter.as_ref().or(token_filter.as_ref());
    if let Some(filter) = filter {
        filter.check()?;
    }
    let stream = handle.meta();
    // "If you specify a value greater than 1000, at most 1000 results are returned."
    let limit =
        r.max_results.map_or(LIST_SHARDS_PAGE_MAX, |m| m as usize).min(LIST_SHARDS_PAGE_MAX);
    let now = core.now_ms();
    let mut selected: Vec<&ShardMeta> = listed_shards(stream, filter, now)
        .into_iter()
        .filter(|s| start_after.is_none_or(|a| s.index > a))
        .collect();
    let more = selected.len() > limit;
    selected.truncate(limit);
    let next_token = more.then(|| {
        let filter = filter.map(|f| String::from_utf8(spate_proto::to_json(f)).expect("JSON"));
        encode_token(&format!(
            "{}\n{}\n{}\n{}\n{}",
            stream.name,
            stream.incarnation,
            selected.last().unwrap().index,
            now,
            filter.unwrap_or_default()
        ))
    });
    Ok(spate_proto::to_json(&out::ListShardsOutput {
        shards: selected.into_iter().map(|s| wire_shard(stream, s)).collect(),
        next_token,
    }))
}

/// The shards ListShards returns for `filter` at `now_ms`, by index: never the expired ones
/// (closed and past retention), and of the rest those the filter keeps.
fn listed_shards<'a>(
    stream: &'a StreamMeta,
    filter: Option<&ShardFilter>,
    now_ms: i64,
) -> Vec<&'a ShardMeta> {
    let retention_start = stream.retention_start_ms(now_ms);
    let mut shards: Vec<&ShardMeta> =
        stream.shards.iter().filter(|s| !s.expired(retention_start)).collect();
    shards.sort_by_key(|s| s.index);
    let listed: Vec<u32> = shards.iter().map(|s| s.index).collect();
    let keep = |s: &ShardMeta| -> bool {
        let Some(filter) = filter else { return true };
        match filter.r#type {
            ShardFilterType::AfterShardId => {
                let after = filter.shard_id.as_deref().and_then(catalog::parse_shard_id);
                after.is_none_or(|a| s.index > a)
            }
            ShardFilterType::AtLatest => s.is_open(),
            // The shards open at the trim horizon: those whose parents have all expired.
            ShardFilterType::AtTrimHorizon => {
                ![s.parent, s.adjacent_parent].into_iter().flatten().any(|p| listed.contains(&p))
            }
            ShardFilterType::FromTrimHorizon => true,
            // Started at or before the timestamp, and ended at or after it or still open.
            ShardFilterType::AtTimestamp => {
                let t = filter.timestamp.map_or(now_ms, |t| t.as_millis());
                (s.created_ms <= t && s.closed_ms.is_none_or(|c| c >= t))
                    || (t < stream.created_ms && s.parent.is_none())
            }
            // Closed at or after the timestamp (moved up to the trim horizon), or open.
            ShardFilterType::FromTimestamp => {
                let t = filter.timestamp.map_or(now_ms, |t| t.as_millis()).max(retention_start);
                s.closed_ms.is_none_or(|c| c >= t)
            }
        }
    };
    shards.retain(|s| keep(s));
    shards
}

fn list_tags_for_stream(core: &Rc<Core>, r: ListTagsForStreamInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    let limit = r.limit.map_or(LIST_TAGS_LIMIT_MAX, |l| l as usize);
    let mut tags: Vec<(&String, &String)> = stream
        .tags
        .iter()
        .filter(|(k, _)| r.exclusive_start_tag_key.as_ref().is_none_or(|s| k.as_str() > s.as_str()))
        .collect();
    let has_more_tags = tags.len() > limit;
    tags.truncate(limit);
    Ok(spate_proto::to_json(&out::ListTagsForStreamOutput {
        tags: tags
            .into_iter()
            .map(|(k, v)| out::Tag { key: k.clone(), value: Some(v.clone()) })
            .collect(),
        has_more_tags,
    }))
}

fn describe_limits(core: &Rc<Core>) -> Vec<u8> {
    let catalog = core.catalog();
    let on_demand = catalog.streams.values().filter(|s| s.mode == StreamMode::OnDemand).count();
    spate_proto::to_json(&out::DescribeLimitsOutput {
        shard_limit: core.config().shards_max as i32,
        open_shard_count: catalog.shard_count_total() as i32,
        on_demand_stream_count: on_demand as i32,
        on_demand_stream_count_limit: ON_DEMAND_STREAM_COUNT_LIMIT as i32,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn shard(
        index: u32,
        parent: Option<u32>,
        created_ms: i64,
        closed_ms: Option<i64>,
    ) -> ShardMeta {
        ShardMeta {
            index,
            starting_hash_key: 0,
            ending_hash_key: u128::MAX,
            parent,
            adjacent_parent: None,
            core: 0,
            created_ms,
            ending_offset: closed_ms.map(|_| 10),
            closed_ms,
        }
    }

    /// Shards 0 and 1 created at 0; shard 0 split at 1 h into 2 and 3; 24 h retention.
    fn split_stream() -> StreamMeta {
        StreamMeta {
            name: "s".into(),
            incarnation: 1,
            created_ms: 0,
            status: StreamStatus::Active,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            tags: BTreeMap::new(),
            shards: vec![
                shard(0, None, 0, Some(HOUR)),
                shard(1, None, 0, None),
                shard(2, Some(0), HOUR, None),
                shard(3, Some(0), HOUR, None),
            ],
            next_shard_index: 4,
            consumers: vec![],
            shard_count_updates_ms: vec![],
        }
    }

    fn listed(
        stream: &StreamMeta,
        kind: Option<ShardFilterType>,
        at: Option<i64>,
        now: i64,
    ) -> Vec<u32> {
        let filter = kind.map(|r#type| ShardFilter {
            r#type,
            shard_id: None,
            timestamp: at.map(Timestamp::from_millis),
        });
        listed_shards(stream, filter.as_ref(), now).iter().map(|s| s.index).collect()
    }

    #[test]
    fn list_shards_filters_within_retention() {
        let stream = split_stream();
        let now = 2 * HOUR;
        assert_eq!(listed(&stream, None, None, now), [0, 1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [0, 1]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtLatest), None, now), [1, 2, 3]);
        // AT_TIMESTAMP includes a shard that ended exactly at the timestamp.
        assert_eq!(
            listed(&stream, Some(ShardFilterType::AtTimestamp), Some(HOUR), now),
            [0, 1, 2, 3]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::AtTimestamp), Some(HOUR - 1), now),
            [0, 1]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::FromTimestamp), Some(HOUR), now),
            [0, 1, 2, 3]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::FromTimestamp), Some(HOUR + 1), now),
            [1, 2, 3]
        );
    }

    #[test]
    fn list_shards_drops_expired_shards_and_their_trim_horizon_moves_on() {
        let stream = split_stream();
        // Shard 0 closed at 1 h; its records expire once 24 h have passed since.
        let now = 25 * HOUR + 1;
        assert_eq!(listed(&stream, None, None, now), [1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::FromTrimHorizon), None, now), [1, 2, 3]);
        // FROM_TIMESTAMP before the trim horizon is moved up to it.
        assert_eq!(listed(&stream, Some(ShardFilterType::FromTimestamp), Some(0), now), [1, 2, 3]);
        // One millisecond earlier shard 0 still holds records within retention.
        let now = 25 * HOUR - 1;
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [0, 1]);
    }
}
