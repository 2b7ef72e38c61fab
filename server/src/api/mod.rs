//! The Kinesis operations: `dispatch`, the one `match` over every parsed request.
//!
//! The edge (`edge.rs`) parses a request once and hands the typed `Request` here. Data-path
//! operations (`records.rs`) and read-only catalog operations (`streams.rs`, `consumers.rs`) run
//! on the core that received the request, using its catalog snapshot, and send typed messages
//! (`msg::DataMsg`) to the shards' owning cores; SubscribeToShard starts a pusher on the
//! owning core (`fanout.rs`). Operations that change the catalog go, still typed, to the
//! controller on core 0 (`msg::ControlMsg::Request`, `control/`).

mod consumers;
mod records;
mod streams;

use std::rc::Rc;

use bytes::Bytes;
use spate_proto::{ApiError, Request};

use crate::core::Core;
use crate::lookup::rate_exceeded;
use crate::msg::{ControlMsg, Msg};

/// What a successful operation answers: a JSON body, or (SubscribeToShard) the events the
/// shard's owning core pushes, streamed as the response body.
pub enum Reply {
    Json(Vec<u8>),
    Events(futures_channel::mpsc::Receiver<Bytes>),
}

/// Whether an operation changes the catalog, and so runs on the controller (core 0).
pub fn changes_catalog(request: &Request) -> bool {
    matches!(
        request,
        Request::CreateStream(_)
            | Request::DeleteStream(_)
            | Request::IncreaseStreamRetentionPeriod(_)
            | Request::DecreaseStreamRetentionPeriod(_)
            | Request::AddTagsToStream(_)
            | Request::RemoveTagsFromStream(_)
            | Request::TagResource(_)
            | Request::UntagResource(_)
            | Request::RegisterStreamConsumer(_)
            | Request::DeregisterStreamConsumer(_)
            | Request::SplitShard(_)
            | Request::MergeShards(_)
            | Request::UpdateShardCount(_)
            | Request::UpdateStreamMode(_)
    )
}

/// Runs one parsed operation: the one `match` over every operation.
pub async fn dispatch(core: &Rc<Core>, request: Request) -> Result<Reply, ApiError> {
    let operation = request.operation().name();
    if changes_catalog(&request) {
        // Everything that changes the catalog runs on the controller (core 0), which counts
        // these operations' rate limits exactly.
        let request = Box::new(request);
        return core
            .call(0, |reply| Msg::Control(ControlMsg::Request { request, reply }))
            .await
            .unwrap_or_else(|| Err(ApiError::internal("controller unavailable")))
            .map(Reply::Json);
    }
    if !core.operation_limits().admit(operation, core.clock().monotonic_ns()) {
        return Err(rate_exceeded(core, operation));
    }
    let result = match request {
        Request::PutRecord(r) => records::put_record(core, r).await,
        Request::PutRecords(r) => records::put_records(core, r).await,
        Request::GetShardIterator(r) => records::get_shard_iterator(core, r).await,
        Request::GetRecords(r) => records::get_records(core, r).await,
        Request::SubscribeToShard(r) => {
            return crate::fanout::start(core, r).await.map(Reply::Events);
        }
        Request::DescribeStream(r) => streams::describe_stream(core, r),
        Request::DescribeStreamSummary(r) => streams::describe_stream_summary(core, r),
        Request::ListStreams(r) => streams::list_streams(core, r),
        Request::ListShards(r) => streams::list_shards(core, r),
        Request::ListTagsForStream(r) => streams::list_tags_for_stream(core, r),
        Request::ListTagsForResource(r) => streams::list_tags_for_resource(core, r),
        Request::DescribeLimits(_) => Ok(streams::describe_limits(core)),
        Request::DescribeStreamConsumer(r) => consumers::describe_consumer(core, r),
        Request::ListStreamConsumers(r) => consumers::list_consumers(core, r),
        other => Err(ApiError::internal(format!(
            "{} has no handler outside the controller",
            other.operation().name()
        ))),
    };
    result.map(Reply::Json)
}

pub fn encode_token(text: &str) -> String {
    spate_proto::base64::encode(text.as_bytes())
}

/// A NextToken's issue time (`issued`, ms, from the decoded token) is at most 300 seconds
/// ago, as the model says of ListShards and ListStreamConsumers tokens.
pub fn check_token_age(core: &Core, token: &str, issued: &str) -> Result<(), ApiError> {
    let issued: i64 = issued.parse().map_err(|_| ApiError::invalid_next_token())?;
    // Saturating: the token is the client's to forge (i64::MIN must not overflow).
    if core.now_ms().saturating_sub(issued) > 300_000 {
        return Err(ApiError::expired_next_token(format!(
            "The timestamp in the nextToken {token} is expired."
        )));
    }
    Ok(())
}

pub fn decode_token(token: &str) -> Option<String> {
    spate_proto::base64::decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}
