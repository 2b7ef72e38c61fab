//! AWS errors as Kinesis returns them: [`ErrorKind`] (the `__type` and HTTP status) and
//! [`ApiError`] (kind plus message), rendered as the JSON 1.1 error body
//! `{"__type":"...","message":"..."}`. Also owns constructors for the exact messages real
//! Kinesis uses for common failures (stream not found, already exists, not ACTIVE, shard
//! limits, iterator problems, retention bounds, ...), so every crate words them identically.

use std::fmt;

use crate::limits::RETENTION_HOURS_MIN;
use crate::types::format_java_utc;

/// The error types Kinesis reports in `__type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A member violated a model constraint (length, pattern, range, required).
    ValidationException,
    /// The body was not valid JSON, or a member had the wrong JSON type.
    SerializationException,
    /// The `X-Amz-Target` operation is not known.
    UnknownOperationException,
    /// The stream, shard or consumer does not exist.
    ResourceNotFoundException,
    /// The resource exists already, or is not in a state that allows the operation.
    ResourceInUseException,
    /// A parameter is semantically invalid.
    InvalidArgumentException,
    /// The shard iterator is older than five minutes.
    ExpiredIteratorException,
    /// The pagination token has expired.
    ExpiredNextTokenException,
    /// A quota (shards, streams, consumers, call rate on control operations) was exceeded.
    LimitExceededException,
    /// The per-shard read or write rate was exceeded.
    ProvisionedThroughputExceededException,
    /// Not authorized.
    AccessDeniedException,
    /// Authentication token missing (no `Authorization` header nor presigned query).
    MissingAuthenticationTokenException,
    /// An unexpected server-side failure (HTTP 500).
    InternalFailure,
    /// The service is temporarily unable to handle the request (HTTP 503).
    ServiceUnavailable,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::ValidationException,
        ErrorKind::SerializationException,
        ErrorKind::UnknownOperationException,
        ErrorKind::ResourceNotFoundException,
        ErrorKind::ResourceInUseException,
        ErrorKind::InvalidArgumentException,
        ErrorKind::ExpiredIteratorException,
        ErrorKind::ExpiredNextTokenException,
        ErrorKind::LimitExceededException,
        ErrorKind::ProvisionedThroughputExceededException,
        ErrorKind::AccessDeniedException,
        ErrorKind::MissingAuthenticationTokenException,
        ErrorKind::InternalFailure,
        ErrorKind::ServiceUnavailable,
    ];

    /// The `__type` value (and `x-amzn-ErrorType` header value).
    pub const fn type_name(self) -> &'static str {
        match self {
            ErrorKind::ValidationException => "ValidationException",
            ErrorKind::SerializationException => "SerializationException",
            ErrorKind::UnknownOperationException => "UnknownOperationException",
            ErrorKind::ResourceNotFoundException => "ResourceNotFoundException",
            ErrorKind::ResourceInUseException => "ResourceInUseException",
            ErrorKind::InvalidArgumentException => "InvalidArgumentException",
            ErrorKind::ExpiredIteratorException => "ExpiredIteratorException",
            ErrorKind::ExpiredNextTokenException => "ExpiredNextTokenException",
            ErrorKind::LimitExceededException => "LimitExceededException",
            ErrorKind::ProvisionedThroughputExceededException => {
                "ProvisionedThroughputExceededException"
            }
            ErrorKind::AccessDeniedException => "AccessDeniedException",
            ErrorKind::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            ErrorKind::InternalFailure => "InternalFailure",
            ErrorKind::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// Parses a `__type` value (also accepts the `namespace#Name` form).
    pub fn from_type_name(name: &str) -> Option<ErrorKind> {
        let short = name.rsplit('#').next().unwrap_or(name);
        ErrorKind::ALL.iter().copied().find(|k| k.type_name() == short)
    }

    /// HTTP status: 500 for `InternalFailure`, 503 for `ServiceUnavailable`, 400 otherwise
    /// (AWS JSON services answer `MissingAuthenticationTokenException` with 400 too).
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// True for the retryable server-side kinds (5xx) and throughput/limit throttling.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::InternalFailure
                | ErrorKind::ServiceUnavailable
                | ErrorKind::ProvisionedThroughputExceededException
                | ErrorKind::LimitExceededException
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// An error to return to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The error type.
    pub kind: ErrorKind,
    /// Human-readable message; empty means the body carries no `message` member (AWS sends
    /// bare `{"__type":"UnknownOperationException"}` and `{"__type":"SerializationException"}`
    /// for unknown targets and unparseable bodies).
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into() }
    }

    /// The `__type` value.
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The JSON 1.1 error body: `{"__type":"...","message":"..."}` (no `message` member when
    /// the message is empty).
    ///
    /// AWS's JSON front end names the member `Message` (capital M) for a
    /// `SerializationException`, and `message` for every other type; the SDKs read both.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            __type: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            message: &'a str,
        }
        #[derive(serde::Serialize)]
        struct SerializationBody<'a> {
            __type: &'a str,
            #[serde(rename = "Message", skip_serializing_if = "str::is_empty")]
            message: &'a str,
        }
        let (kind, message) = (self.type_name(), self.message.as_str());
        let body = if self.kind == ErrorKind::SerializationException {
            serde_json::to_vec(&SerializationBody { __type: kind, message })
        } else {
            serde_json::to_vec(&Body { __type: kind, message })
        };
        body.unwrap_or_else(|_| format!("{{\"__type\":\"{kind}\"}}").into_bytes())
    }

    /// The payload of an event-stream exception message: `{"message":"..."}`.
    pub fn to_event_payload(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            message: &'a str,
        }
        serde_json::to_vec(&Body { message: &self.message }).unwrap_or_else(|_| b"{}".to_vec())
    }

    // ----- generic constructors -----

    /// `ValidationException` with `message`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValidationException, message)
    }

    /// `SerializationException` with `message` (may be empty).
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::SerializationException, message)
    }

    /// `UnknownOperationException` with no message, as AWS sends it.
    pub fn unknown_operation() -> Self {
        Self::new(ErrorKind::UnknownOperationException, "")
    }

    /// `InvalidArgumentException` with `message`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgumentException, message)
    }

    /// `ResourceNotFoundException` with `message`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFoundException, message)
    }

    /// `ResourceInUseException` with `message`.
    pub fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceInUseException, message)
    }

    /// `LimitExceededException` with `message`.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceededException, message)
    }

    /// `ProvisionedThroughputExceededException` with `message`.
    pub fn throughput_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProvisionedThroughputExceededException, message)
    }

    /// `ExpiredNextTokenException` with `message`.
    pub fn expired_next_token(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ExpiredNextTokenException, message)
    }

    /// `AccessDeniedException` with `message`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDeniedException, message)
    }

    /// `InternalFailure` with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalFailure, message)
    }

    /// `ServiceUnavailable` with `message`.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ServiceUnavailable, message)
    }

    // ----- streams -----

    /// `ResourceNotFoundException`: `Stream {name} under account {account} not found.`
    pub fn stream_not_found(name: &str, account: &str) -> Self {
        Self::resource_not_found(format!("Stream {name} under account {account} not found."))
    }

    /// `ResourceInUseException` (CreateStream on an existing name):
    /// `Stream {name} under account {account} already exists.`
    pub fn stream_in_use(name: &str, account: &str) -> Self {
        Self::resource_in_use(format!("Stream {name} under account {account} already exists."))
    }

    /// `ResourceInUseException` for an operation that needs an ACTIVE stream:
    /// `Stream {name} under account {account} not ACTIVE, instead in state {status}`
    pub fn stream_not_active(name: &str, account: &str, status: &str) -> Self {
        Self::resource_in_use(format!(
            "Stream {name} under account {account} not ACTIVE, instead in state {status}"
        ))
    }

    /// `InvalidArgumentException` when a stream-addressed request names no stream.
    /// (Wording not verified against live AWS.)
    pub fn stream_name_or_arn_required() -> Self {
        Self::invalid_argument("Either StreamName or StreamARN should be provided.")
    }

    /// `InvalidArgumentException` when StreamName and StreamARN disagree.
    /// (Wording not verified against live AWS.)
    pub fn stream_name_arn_mismatch(name: &str, arn: &str) -> Self {
        Self::invalid_argument(format!(
            "StreamName {name} does not match the stream name in StreamARN {arn}."
        ))
    }

    /// `InvalidArgumentException` for a StreamARN that passed the model pattern but cannot be
    /// split into region, account and name. (Wording not verified against live AWS.)
    pub fn invalid_stream_arn(arn: &str) -> Self {
        Self::invalid_argument(format!("StreamARN {arn} is not a valid stream ARN."))
    }

    /// `LimitExceededException` for CreateStream/SplitShard/UpdateShardCount beyond the
    /// account's shard quota (AWS wording).
    pub fn shard_limit_exceeded(
        account: &str,
        region: &str,
        current: u64,
        limit: u64,
        additional: u64,
    ) -> Self {
        Self::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {account} in {region}. \
             Current shard count for the account: {current}. Limit: {limit}. Number of \
             additional shards that would have resulted from this request: {additional}. Refer \
             to the AWS Service Limits page \
             (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current \
             limits and how to request higher limits."
        ))
    }

    /// `LimitExceededException` when UpdateShardCount would more than double the open shards.
    pub fn update_shard_count_scale_up(open: u64, target: u64) -> Self {
        Self::limit_exceeded(format!(
            "UpdateShardCount cannot scale up over double your current open shard count. \
             Current open shard count: {open}, Target shard count: {target}"
        ))
    }

    /// `LimitExceededException` when UpdateShardCount would go below half the open shards.
    pub fn update_shard_count_scale_down(open: u64, target: u64) -> Self {
        Self::limit_exceeded(format!(
            "UpdateShardCount cannot scale down below half your current open shard count. \
             Current open shard count: {open}, Target shard count: {target}"
        ))
    }

    // ----- shards -----

    /// `ResourceNotFoundException` (SplitShard, MergeShards, GetShardIterator with an
    /// unparseable ID): `Could not find shard {shard} in stream {stream} under account {account}.`
    pub fn shard_not_found(shard: &str, stream: &str, account: &str) -> Self {
        Self::resource_not_found(format!(
            "Could not find shard {shard} in stream {stream} under account {account}."
        ))
    }

    /// `ResourceNotFoundException` (GetShardIterator/GetRecords on a well-formed but missing
    /// shard): `Shard {shard} in stream {stream} under account {account} does not exist`
    pub fn shard_does_not_exist(shard: &str, stream: &str, account: &str) -> Self {
        Self::resource_not_found(format!(
            "Shard {shard} in stream {stream} under account {account} does not exist"
        ))
    }

    /// `InvalidArgumentException` (MergeShards on non-adjacent shards).
    pub fn shards_not_adjacent(shard: &str, adjacent: &str, stream: &str, account: &str) -> Self {
        Self::invalid_argument(format!(
            "Shards {shard} and {adjacent} in stream {stream} under account {account} are not \
             an adjacent pair of shards eligible for merging"
        ))
    }

    /// `InvalidArgumentException` (SplitShard with a hash key outside the shard).
    pub fn invalid_new_starting_hash_key(
        key: &str,
        shard: &str,
        stream: &str,
        account: &str,
        starting: &str,
        ending: &str,
    ) -> Self {
        Self::invalid_argument(format!(
            "NewStartingHashKey {key} used in SplitShard() on shard {shard} in stream {stream} \
             under account {account} is not both greater than one plus the shard's \
             StartingHashKey {starting} and less than the shard's EndingHashKey {ending}."
        ))
    }

    /// `InvalidArgumentException` (PutRecord/PutRecords with ExplicitHashKey >= 2^128).
    pub fn explicit_hash_key_out_of_range(value: &str) -> Self {
        Self::invalid_argument(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
             Specified value was {value}"
        ))
    }

    /// `InvalidArgumentException` (PutRecord with a malformed SequenceNumberForOrdering).
    pub fn invalid_sequence_number_for_ordering(seq: &str, stream: &str, account: &str) -> Self {
        Self::invalid_argument(format!(
            "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {stream} under \
             account {account} is invalid."
        ))
    }

    /// `ProvisionedThroughputExceededException` for a write (also the PutRecords per-record
    /// `ErrorMessage`): `Rate exceeded for shard {shard} in stream {stream} under account {account}.`
    pub fn write_throughput_exceeded(shard: &str, stream: &str, account: &str) -> Self {
        Self::throughput_exceeded(format!(
            "Rate exceeded for shard {shard} in stream {stream} under account {account}."
        ))
    }

    // ----- iterators -----

    /// `InvalidArgumentException`: `Invalid ShardIterator.`
    pub fn invalid_shard_iterator() -> Self {
        Self::invalid_argument("Invalid ShardIterator.")
    }

    /// `ExpiredIteratorException` for an iterator created at `created_ms` and used at `now_ms`
    /// (epoch milliseconds); AWS tolerates 300000 ms.
    pub fn expired_iterator(created_ms: i64, now_ms: i64) -> Self {
        Self::new(
            ErrorKind::ExpiredIteratorException,
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} \
                 which is further in the future than the tolerated delay of 300000 milliseconds.",
                format_java_utc(created_ms),
                format_java_utc(now_ms)
            ),
        )
    }

    /// `InvalidArgumentException` for an iterator type / StartingSequenceNumber mismatch.
    /// `has_sequence` says whether the request carried a StartingSequenceNumber.
    pub fn iterator_type_sequence_mismatch(iterator_type: &str, has_sequence: bool) -> Self {
        Self::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
             StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. \
             Request specified {iterator_type} and {}.",
            if has_sequence {
                "also a StartingSequenceNumber"
            } else {
                "no StartingSequenceNumber"
            }
        ))
    }

    /// `InvalidArgumentException` for AT_TIMESTAMP without a Timestamp.
    pub fn timestamp_required() -> Self {
        Self::invalid_argument(
            "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current \
             request has no timestamp parameter.",
        )
    }

    /// `InvalidArgumentException` for a StartingSequenceNumber that does not belong to the shard.
    pub fn sequence_number_wrong_shard(encoded_shard: &str, shard: &str) -> Self {
        Self::invalid_argument(format!(
            "Invalid StartingSequenceNumber. It encodes {encoded_shard}, while it was used in a \
             call to a shard with {shard}"
        ))
    }

    /// `InvalidArgumentException` for an unparseable StartingSequenceNumber.
    pub fn invalid_starting_sequence_number(
        seq: &str,
        shard: &str,
        stream: &str,
        account: &str,
    ) -> Self {
        Self::invalid_argument(format!(
            "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard} in stream \
             {stream} under account {account} is invalid."
        ))
    }

    /// `InvalidArgumentException` for a StartingSequenceNumber from another stream.
    pub fn sequence_number_wrong_stream(
        seq: &str,
        shard: &str,
        stream: &str,
        account: &str,
    ) -> Self {
        Self::invalid_argument(format!(
            "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard} in stream \
             {stream} under account {account} is invalid because it did not come from this \
             stream."
        ))
    }

    // ----- retention -----

    /// `InvalidArgumentException`: retention below the minimum (`RETENTION_HOURS_MIN`).
    pub fn retention_too_short(hours: i64) -> Self {
        Self::invalid_argument(format!(
            "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention \
             period ({hours} hours) is too short."
        ))
    }

    /// `InvalidArgumentException`: retention above the maximum (`max_hours`, `RETENTION_HOURS_MAX` today).
    pub fn retention_too_long(hours: i64, max_hours: i64) -> Self {
        Self::invalid_argument(format!(
            "Maximum allowed retention period is {max_hours} hours. Requested retention period \
             ({hours} hours) is too long."
        ))
    }

    /// `InvalidArgumentException`: IncreaseStreamRetentionPeriod below the current value.
    pub fn retention_increase_too_short(hours: i64, stream: &str, current: i64) -> Self {
        Self::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {stream} can not be shorter \
             than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
        ))
    }

    /// `InvalidArgumentException`: DecreaseStreamRetentionPeriod above the current value.
    pub fn retention_decrease_too_long(hours: i64, stream: &str, current: i64) -> Self {
        Self::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {stream} can not be longer \
             than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
        ))
    }

    // ----- tags -----

    /// `InvalidArgumentException` for tag keys/values with characters outside
    /// `Unicode letters, digits, white space, _ . / = + - % @ :`.
    /// Checks tag keys and values against the characters AWS allows in tags.
    pub fn check_tag_characters<'a>(
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<(), Self> {
        let valid = |s: &str| {
            s.chars().all(|c| {
                c.is_alphanumeric()
                    || (c.is_whitespace() && !c.is_control())
                    || "_./=+-%@:".contains(c)
            })
        };
        match tags.into_iter().all(|(key, value)| valid(key) && valid(value)) {
            true => Ok(()),
            false => Err(Self::invalid_tag_characters()),
        }
    }

    pub fn invalid_tag_characters() -> Self {
        Self::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, \
             white space, _ . / = + - % @ :.",
        )
    }

    /// `InvalidArgumentException` when a stream would exceed `max` tags.
    pub fn too_many_tags(stream: &str, account: &str, max: usize) -> Self {
        Self::invalid_argument(format!(
            "Failed to add tags to stream {stream} under account {account} because a given \
             stream cannot have more than {max} tags associated with it."
        ))
    }

    // ----- ListShards -----

    /// `InvalidArgumentException`: ListShards with both NextToken and StreamName.
    pub fn next_token_and_stream_name() -> Self {
        Self::invalid_argument("NextToken and StreamName cannot be provided together.")
    }

    /// `InvalidArgumentException`: ListShards with NextToken and a member the model says
    /// cannot go with it (`ExclusiveStartShardId`, `StreamCreationTimestamp`).
    pub fn next_token_and(member: &str) -> Self {
        Self::invalid_argument(format!("NextToken and {member} cannot be provided together."))
    }

    /// `InvalidArgumentException`: ListShards with neither NextToken nor StreamName.
    pub fn next_token_or_stream_name_required() -> Self {
        Self::invalid_argument("Either NextToken or StreamName should be provided.")
    }

    /// `InvalidArgumentException`: a NextToken that this server did not issue.
    /// (Wording not verified against live AWS.)
    pub fn invalid_next_token() -> Self {
        Self::invalid_argument("Invalid NextToken.")
    }

    // ----- consumers -----

    /// `InvalidArgumentException` when a consumer-addressed request has neither ConsumerARN nor
    /// StreamARN + ConsumerName. (Wording not verified against live AWS.)
    pub fn consumer_ref_required() -> Self {
        Self::invalid_argument(
            "Either ConsumerARN or both ConsumerName and StreamARN must be provided.",
        )
    }

    /// `ResourceNotFoundException` for a missing consumer (wording not verified).
    pub fn consumer_not_found(consumer: &str, stream_arn: &str) -> Self {
        Self::resource_not_found(format!(
            "Consumer {consumer} under stream {stream_arn} not found."
        ))
    }

    /// `ResourceInUseException` for RegisterStreamConsumer on an existing name (wording not
    /// verified).
    pub fn consumer_in_use(consumer: &str, stream_arn: &str) -> Self {
        Self::resource_in_use(format!(
            "Consumer {consumer} under stream {stream_arn} already exists."
        ))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.type_name())
        } else {
            write!(f, "{}: {}", self.type_name(), self.message)
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body() {
        let e = ApiError::stream_not_found("foo", "123456789012");
        assert_eq!(e.status(), 400);
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"__type":"ResourceNotFoundException","message":"Stream foo under account 123456789012 not found."}"#
        );
        assert_eq!(
            String::from_utf8(ApiError::unknown_operation().to_json()).unwrap(),
            r#"{"__type":"UnknownOperationException"}"#
        );
        // AWS writes a SerializationException's message as `Message`.
        let e = ApiError::new(
            ErrorKind::SerializationException,
            "Start of list found where not expected",
        );
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"__type":"SerializationException","Message":"Start of list found where not expected"}"#
        );
        let e = ApiError::validation("quote \" and \\ and \n");
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"__type":"ValidationException","message":"quote \" and \\ and \n"}"#
        );
        assert_eq!(ApiError::internal("x").status(), 500);
        assert_eq!(
            String::from_utf8(ApiError::internal("boom").to_event_payload()).unwrap(),
            r#"{"message":"boom"}"#
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for &k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_type_name(k.type_name()), Some(k));
        }
        assert_eq!(
            ErrorKind::from_type_name("com.amazonaws.kinesis.v20131202#ResourceInUseException"),
            Some(ErrorKind::ResourceInUseException)
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            ApiError::stream_in_use("s", "000000000000").message,
            "Stream s under account 000000000000 already exists."
        );
        assert_eq!(
            ApiError::expired_iterator(1_421_889_722_000, 1_421_890_025_000).message,
            "Iterator expired. The iterator was created at time Thu Jan 22 01:22:02 UTC 2015 \
             while right now it is Thu Jan 22 01:27:05 UTC 2015 which is further in the future \
             than the tolerated delay of 300000 milliseconds."
        );
        assert_eq!(
            ApiError::iterator_type_sequence_mismatch("LATEST", true).message,
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
             StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. \
             Request specified LATEST and also a StartingSequenceNumber."
        );
        assert_eq!(
            ApiError::shard_limit_exceeded("000000000000", "us-east-1", 3, 10, 1000).message,
            "This request would exceed the shard limit for the account 000000000000 in \
             us-east-1. Current shard count for the account: 3. Limit: 10. Number of additional \
             shards that would have resulted from this request: 1000. Refer to the AWS Service \
             Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) \
             for current limits and how to request higher limits."
        );
    }
}
