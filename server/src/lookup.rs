//! Catalog lookups shared by the API modules (`api/`), the controller (`control/`) and
//! fan-out (`fanout.rs`), with the AWS-worded errors they answer: a stream by name or ARN in
//! this core's snapshot, a shard of it, a consumer, and what a shard's owner refused.
//!
//! It exists so that those modules use the same lookups without importing each other.

use spate_proto::requests::ConsumerRef;
use spate_proto::{ApiError, StreamRef};
use std::sync::Arc;

use crate::catalog::{self, Catalog, ConsumerMeta, ShardMeta, StreamMeta, StreamStatus};
use crate::core::Core;
use crate::msg::ShardError;

/// A JSON body, or the error to answer.
pub type ApiResult = Result<Vec<u8>, ApiError>;

/// LimitExceededException for a control-plane call over its rate.
pub fn rate_exceeded(core: &Core, operation: &str) -> ApiError {
    ApiError::limit_exceeded(format!(
        "Rate exceeded for {operation} under account {}.",
        core.config().account_id
    ))
}

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

pub fn require_active(core: &Core, stream: &StreamMeta) -> Result<(), ApiError> {
    match stream.status {
        StreamStatus::Active | StreamStatus::Updating => Ok(()),
        StreamStatus::Creating | StreamStatus::Deleting => {
            Err(ApiError::stream_not_found(&stream.name, &core.config().account_id))
        }
    }
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

pub fn find_shard<'a>(
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

pub fn arn_ref(arn: spate_proto::StreamArn) -> StreamRef {
    StreamRef::Arn { region: arn.region, account: arn.account, name: arn.name }
}

/// Resolves a consumer reference against a catalog.
pub fn find_consumer<'a>(
    core: &Core,
    catalog: &'a Catalog,
    consumer: &ConsumerRef,
) -> Result<(&'a StreamMeta, &'a ConsumerMeta), ApiError> {
    let config = core.config();
    let (stream_name, consumer_name, created, shown) = match consumer {
        ConsumerRef::Arn(a) => (
            a.stream_name.clone(),
            a.consumer_name.clone(),
            Some(a.creation_secs),
            a.consumer_name.clone(),
        ),
        ConsumerRef::Name { stream, consumer_name } => {
            (stream.name.clone(), consumer_name.clone(), None, consumer_name.clone())
        }
    };
    let stream_arn =
        format!("arn:aws:kinesis:{}:{}:stream/{stream_name}", config.region, config.account_id);
    let stream = catalog
        .streams
        .get(&stream_name)
        .ok_or_else(|| ApiError::consumer_not_found(&shown, &stream_arn))?;
    let found = stream
        .consumers
        .iter()
        .find(|c| {
            c.name == consumer_name && created.is_none_or(|t| t as i64 == c.creation_epoch_seconds)
        })
        .ok_or_else(|| ApiError::consumer_not_found(&shown, &stream_arn))?;
    Ok((stream, found))
}

pub fn resolve_consumer(
    core: &Core,
    consumer: &ConsumerRef,
) -> Result<(StreamHandle, ConsumerMeta), ApiError> {
    let catalog = core.catalog();
    let (stream, found) = find_consumer(core, &catalog, consumer)?;
    let (name, found) = (stream.name.clone(), found.clone());
    Ok((StreamHandle { catalog, name }, found))
}
