//! The Kinesis Data Streams wire protocol (AWS JSON 1.1), with no I/O: request parsing and
//! validation with AWS's exact error types and messages, response shapes, AWS errors, base64,
//! the event-stream codec used by SubscribeToShard, the partition-key hash and every Kinesis
//! limit ([`limits`]). Clients (the `spate` tools) use the same shapes and codecs.
//!
//! Typical server flow:
//!
//! 1. [`operation_from_target`] on the `X-Amz-Target` header, then [`parse_request`] on the
//!    body: a typed [`Request`] or an [`ApiError`] to send back (`status()` + `to_json()`).
//! 2. Execute; use [`Request::stream_ref`] / the inputs' `stream_ref()`, `consumer_ref()`,
//!    `position()` helpers and the `ApiError` constructors for AWS-worded failures.
//! 3. Answer with [`to_json`] of the matching `responses::*Output` (or an empty body for
//!    operations without output), content type [`responses::CONTENT_TYPE`].
//! 4. SubscribeToShard: [`eventstream::encode_initial_response`], then
//!    [`eventstream::encode_subscribe_event`] per batch, [`eventstream::encode_error`] on failure.

pub mod base64;
pub mod error;
pub mod eventstream;
pub mod hash_key;
pub mod limits;
pub mod requests;
pub mod responses;
pub mod types;
pub mod validate;

pub use error::{ApiError, ErrorKind};
pub use hash_key::hash_key;
pub use requests::{
    ConsumerArn, ConsumerRef, IteratorPosition, Operation, Request, ResourceRef, StreamArn,
    StreamRef, TARGET_PREFIX, operation_from_target, parse_consumer_arn, parse_resource_arn,
    parse_stream_arn,
};
pub use responses::to_json;
pub use types::Timestamp;
pub use validate::parse_request;
