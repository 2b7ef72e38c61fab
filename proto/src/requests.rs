//! Request shapes for every supported operation (`#[derive(Deserialize, Serialize)]`, PascalCase
//! member names exactly as in the botocore model), the [`Operation`] list, the [`Request`] enum
//! produced by [`crate::parse_request`], and typed views of how a request addresses its target:
//! [`StreamRef`] (StreamName or StreamARN), [`ConsumerRef`] (ConsumerARN or StreamARN +
//! ConsumerName), [`ResourceRef`] (tagging ARNs) and [`IteratorPosition`].
//!
//! Members the model marks required are plain fields; optional members are `Option`s. Blobs
//! are `bytes::Bytes` (base64 on the wire); timestamps are [`Timestamp`]s.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::limits::{RETENTION_HOURS_MAX, RETENTION_HOURS_MIN};
use crate::types::{ScalingType, ShardFilterType, ShardIteratorType, StreamModeDetails, Timestamp};

/// The `X-Amz-Target` prefix: targets look like `Kinesis_20131202.PutRecord`.
pub const TARGET_PREFIX: &str = "Kinesis_20131202";

/// Splits an `X-Amz-Target` header value into its operation name, if the service prefix is
/// Kinesis's (`Kinesis_20131202.PutRecord` -> `PutRecord`).
pub fn operation_from_target(target: &str) -> Option<&str> {
    let (service, op) = target.split_once('.')?;
    (service == TARGET_PREFIX && !op.is_empty()).then_some(op)
}

macro_rules! operations {
    ($($name:ident),+ $(,)?) => {
        /// The supported operations.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name
            ),+
        }

        impl Operation {
            /// Every supported operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),+];

            /// The operation name as used in `X-Amz-Target`.
            pub const fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),+ }
            }

            /// Looks up an operation by its exact (case-sensitive) name.
            pub fn from_name(name: &str) -> Option<Operation> {
                match name { $(stringify!($name) => Some(Operation::$name),)+ _ => None }
            }
        }
    };
}

operations!(
    AddTagsToStream,
    CreateStream,
    DecreaseStreamRetentionPeriod,
    DeleteStream,
    DeregisterStreamConsumer,
    DescribeLimits,
    DescribeStream,
    DescribeStreamConsumer,
    DescribeStreamSummary,
    GetRecords,
    GetShardIterator,
    IncreaseStreamRetentionPeriod,
    ListShards,
    ListStreamConsumers,
    ListStreams,
    ListTagsForResource,
    ListTagsForStream,
    MergeShards,
    PutRecord,
    PutRecords,
    RegisterStreamConsumer,
    RemoveTagsFromStream,
    SplitShard,
    SubscribeToShard,
    TagResource,
    UntagResource,
    UpdateShardCount,
    UpdateStreamMode,
);

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed, validated request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// AddTagsToStream.
    AddTagsToStream(AddTagsToStreamInput),
    /// CreateStream.
    CreateStream(CreateStreamInput),
    /// DecreaseStreamRetentionPeriod.
    DecreaseStreamRetentionPeriod(RetentionPeriodInput),
    /// DeleteStream.
    DeleteStream(DeleteStreamInput),
    /// DeregisterStreamConsumer.
    DeregisterStreamConsumer(ConsumerInput),
    /// DescribeLimits.
    DescribeLimits(DescribeLimitsInput),
    /// DescribeStream.
    DescribeStream(DescribeStreamInput),
    /// DescribeStreamConsumer.
    DescribeStreamConsumer(ConsumerInput),
    /// DescribeStreamSummary.
    DescribeStreamSummary(DescribeStreamSummaryInput),
    /// GetRecords.
    GetRecords(GetRecordsInput),
    /// GetShardIterator.
    GetShardIterator(GetShardIteratorInput),
    /// IncreaseStreamRetentionPeriod.
    IncreaseStreamRetentionPeriod(RetentionPeriodInput),
    /// ListShards.
    ListShards(ListShardsInput),
    /// ListStreamConsumers.
    ListStreamConsumers(ListStreamConsumersInput),
    /// ListStreams.
    ListStreams(ListStreamsInput),
    /// ListTagsForResource.
    ListTagsForResource(ListTagsForResourceInput),
    /// ListTagsForStream.
    ListTagsForStream(ListTagsForStreamInput),
    /// MergeShards.
    MergeShards(MergeShardsInput),
    /// PutRecord.
    PutRecord(PutRecordInput),
    /// PutRecords.
    PutRecords(PutRecordsInput),
    /// RegisterStreamConsumer.
    RegisterStreamConsumer(RegisterStreamConsumerInput),
    /// RemoveTagsFromStream.
    RemoveTagsFromStream(RemoveTagsFromStreamInput),
    /// SplitShard.
    SplitShard(SplitShardInput),
    /// SubscribeToShard.
    SubscribeToShard(SubscribeToShardInput),
    /// TagResource.
    TagResource(TagResourceInput),
    /// UntagResource.
    UntagResource(UntagResourceInput),
    /// UpdateShardCount.
    UpdateShardCount(UpdateShardCountInput),
    /// UpdateStreamMode.
    UpdateStreamMode(UpdateStreamModeInput),
}

impl Request {
    /// The operation this request is for.
    pub fn operation(&self) -> Operation {
        match self {
            Request::AddTagsToStream(_) => Operation::AddTagsToStream,
            Request::CreateStream(_) => Operation::CreateStream,
            Request::DecreaseStreamRetentionPeriod(_) => Operation::DecreaseStreamRetentionPeriod,
            Request::DeleteStream(_) => Operation::DeleteStream,
            Request::DeregisterStreamConsumer(_) => Operation::DeregisterStreamConsumer,
            Request::DescribeLimits(_) => Operation::DescribeLimits,
            Request::DescribeStream(_) => Operation::DescribeStream,
            Request::DescribeStreamConsumer(_) => Operation::DescribeStreamConsumer,
            Request::DescribeStreamSummary(_) => Operation::DescribeStreamSummary,
            Request::GetRecords(_) => Operation::GetRecords,
            Request::GetShardIterator(_) => Operation::GetShardIterator,
            Request::IncreaseStreamRetentionPeriod(_) => Operation::IncreaseStreamRetentionPeriod,
            Request::ListShards(_) => Operation::ListShards,
            Request::ListStreamConsumers(_) => Operation::ListStreamConsumers,
            Request::ListStreams(_) => Operation::ListStreams,
            Request::ListTagsForResource(_) => Operation::ListTagsForResource,
            Request::ListTagsForStream(_) => Operation::ListTagsForStream,
            Request::MergeShards(_) => Operation::MergeShards,
            Request::PutRecord(_) => Operation::PutRecord,
            Request::PutRecords(_) => Operation::PutRecords,
            Request::RegisterStreamConsumer(_) => Operation::RegisterStreamConsumer,
            Request::RemoveTagsFromStream(_) => Operation::RemoveTagsFromStream,
            Request::SplitShard(_) => Operation::SplitShard,
            Request::SubscribeToShard(_) => Operation::SubscribeToShard,
            Request::TagResource(_) => Operation::TagResource,
            Request::UntagResource(_) => Operation::UntagResource,
            Request::UpdateShardCount(_) => Operation::UpdateShardCount,
            Request::UpdateStreamMode(_) => Operation::UpdateStreamMode,
        }
    }

    /// The stream this request addresses by StreamName/StreamARN, for operations whose input
    /// has those members (`None` for the others, and for ListShards called with NextToken).
    pub fn stream_ref(&self) -> Option<Result<StreamRef, ApiError>> {
        Some(match self {
            Request::AddTagsToStream(r) => r.stream_ref(),
            Request::DecreaseStreamRetentionPeriod(r)
            | Request::IncreaseStreamRetentionPeriod(r) => r.stream_ref(),
            Request::DeleteStream(r) => r.stream_ref(),
            Request::DescribeStream(r) => r.stream_ref(),
            Request::DescribeStreamSummary(r) => r.stream_ref(),
            Request::GetShardIterator(r) => r.stream_ref(),
            Request::ListShards(r) => return r.stream_ref().transpose(),
            Request::ListTagsForStream(r) => r.stream_ref(),
            Request::MergeShards(r) => r.stream_ref(),
            Request::PutRecord(r) => r.stream_ref(),
            Request::PutRecords(r) => r.stream_ref(),
            Request::RemoveTagsFromStream(r) => r.stream_ref(),
            Request::SplitShard(r) => r.stream_ref(),
            Request::UpdateShardCount(r) => r.stream_ref(),
            Request::CreateStream(r) => Ok(StreamRef::Name(r.stream_name.clone())),
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Addressing helpers
// ---------------------------------------------------------------------------------------------

/// How a request names its stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamRef {
    /// By StreamName (in the caller's account and region).
    Name(String),
    /// By StreamARN `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
    Arn {
        /// Region segment of the ARN.
        region: String,
        /// 12-digit account segment.
        account: String,
        /// Stream name after `stream/`.
        name: String,
    },
}

impl StreamRef {
    /// The stream name, however it was given.
    pub fn name(&self) -> &str {
        match self {
            StreamRef::Name(n) => n,
            StreamRef::Arn { name, .. } => name,
        }
    }
}

/// A stream ARN split into its parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamArn {
    /// Partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// Region.
    pub region: String,
    /// 12-digit account ID.
    pub account: String,
    /// Stream name.
    pub name: String,
}

impl StreamArn {
    /// Formats `arn:aws:kinesis:{region}:{account}:stream/{name}`.
    pub fn format(region: &str, account: &str, name: &str) -> String {
        format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
    }
}

impl From<StreamArn> for StreamRef {
    fn from(a: StreamArn) -> Self {
        StreamRef::Arn { region: a.region, account: a.account, name: a.name }
    }
}

/// Parses `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
pub fn parse_stream_arn(arn: &str) -> Option<StreamArn> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("kinesis:")?;
    let idx = rest.find(":stream/")?;
    let (region, account) = rest[..idx].rsplit_once(':')?;
    let name = &rest[idx + ":stream/".len()..];
    if !partition.starts_with("aws") || name.is_empty() || account.is_empty() {
        return None;
    }
    Some(StreamArn {
        partition: partition.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        name: name.to_owned(),
    })
}

/// A consumer ARN split into its parts:
/// `arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<consumer>:<creation epoch s>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerArn {
    /// Partition.
    pub partition: String,
    /// Region.
    pub region: String,
    /// 12-digit account ID.
    pub account: String,
    /// Stream name.
    pub stream_name: String,
    /// Consumer name.
    pub consumer_name: String,
    /// The trailing creation timestamp, epoch seconds (saturating).
    pub creation_secs: u64,
}

impl ConsumerArn {
    /// Formats a consumer ARN.
    pub fn format(
        region: &str,
        account: &str,
        stream: &str,
        consumer: &str,
        creation_secs: u64,
    ) -> String {
        format!(
            "arn:aws:kinesis:{region}:{account}:stream/{stream}/consumer/{consumer}:{creation_secs}"
        )
    }

    /// The ARN of the stream this consumer belongs to.
    pub fn stream_arn(&self) -> String {
        format!(
            "arn:{}:kinesis:{}:{}:stream/{}",
            self.partition, self.region, self.account, self.stream_name
        )
    }
}

/// Parses a consumer ARN.
pub fn parse_consumer_arn(arn: &str) -> Option<ConsumerArn> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("kinesis:")?;
    let (head, creation) = rest.rsplit_once(':')?;
    if creation.is_empty() || !creation.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let creation_secs = creation
        .bytes()
        .fold(0u64, |acc, d| acc.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    let (stream_part, consumer_name) = head.rsplit_once("/consumer/")?;
    let idx = stream_part.find(":stream/")?;
    let (region, account) = stream_part[..idx].rsplit_once(':')?;
    let stream_name = &stream_part[idx + ":stream/".len()..];
    if !partition.starts_with("aws")
        || stream_name.is_empty()
        || consumer_name.is_empty()
        || consumer_name.contains('/')
    {
        return None;
    }
    Some(ConsumerArn {
        partition: partition.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        stream_name: stream_name.to_owned(),
        consumer_name: consumer_name.to_owned(),
        creation_secs,
    })
}

/// How a consumer-addressed request names its consumer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConsumerRef {
    /// By ConsumerARN (StreamARN/ConsumerName, if also given, matched it).
    Arn(ConsumerArn),
    /// By StreamARN + ConsumerName.
    Name {
        /// The stream.
        stream: StreamArn,
        /// The consumer's name.
        consumer_name: String,
    },
}

/// What a tagging operation's ResourceARN designates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceRef {
    /// A stream.
    Stream(StreamArn),
    /// A stream consumer.
    Consumer(ConsumerArn),
}

/// Parses a tagging ResourceARN (consumer ARNs are recognized first).
pub fn parse_resource_arn(arn: &str) -> Option<ResourceRef> {
    if arn.contains("/consumer/")
        && let Some(c) = parse_consumer_arn(arn)
    {
        return Some(ResourceRef::Consumer(c));
    }
    parse_stream_arn(arn).map(ResourceRef::Stream)
}

/// Resolves StreamName/StreamARN into a [`StreamRef`], with the errors AWS gives when neither
/// is present or they disagree.
pub fn resolve_stream_ref(name: Option<&str>, arn: Option<&str>) -> Result<StreamRef, ApiError> {
    match (name, arn) {
        (None, None) => Err(ApiError::stream_name_or_arn_required()),
        (Some(n), None) => Ok(StreamRef::Name(n.to_owned())),
        (name, Some(a)) => {
            let parsed = parse_stream_arn(a).ok_or_else(|| ApiError::invalid_stream_arn(a))?;
            if let Some(n) = name
                && n != parsed.name
            {
                return Err(ApiError::stream_name_arn_mismatch(n, a));
            }
            Ok(parsed.into())
        }
    }
}

/// Where a GetShardIterator / SubscribeToShard read starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IteratorPosition {
    /// At the record with this sequence number.
    AtSequenceNumber(String),
    /// Just after the record with this sequence number.
    AfterSequenceNumber(String),
    /// At the first record at or after this time.
    AtTimestamp(Timestamp),
    /// At the oldest untrimmed record.
    TrimHorizon,
    /// After the most recent record.
    Latest,
}

fn iterator_position(
    kind: ShardIteratorType,
    sequence: Option<&str>,
    timestamp: Option<Timestamp>,
) -> Result<IteratorPosition, ApiError> {
    use ShardIteratorType as T;
    match (kind, sequence) {
        (T::AtSequenceNumber, Some(s)) => Ok(IteratorPosition::AtSequenceNumber(s.to_owned())),
        (T::AfterSequenceNumber, Some(s)) => {
            Ok(IteratorPosition::AfterSequenceNumber(s.to_owned()))
        }
        (T::AtSequenceNumber | T::AfterSequenceNumber, None) => {
            Err(ApiError::iterator_type_sequence_mismatch(kind.as_str(), false))
        }
        (T::TrimHorizon | T::Latest, Some(_)) => {
            Err(ApiError::iterator_type_sequence_mismatch(kind.as_str(), true))
        }
        (T::TrimHorizon, None) => Ok(IteratorPosition::TrimHorizon),
        (T::Latest, None) => Ok(IteratorPosition::Latest),
        (T::AtTimestamp, _) => {
            timestamp.map(IteratorPosition::AtTimestamp).ok_or_else(ApiError::timestamp_required)
        }
    }
}

macro_rules! impl_stream_ref {
    ($($t:ty),+ $(,)?) => {
        $(
            impl $t {
                /// The stream addressed by StreamName and/or StreamARN.
                pub fn stream_ref(&self) -> Result<StreamRef, ApiError> {
                    resolve_stream_ref(self.stream_name.as_deref(), self.stream_arn.as_deref())
                }
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Input shapes
// ---------------------------------------------------------------------------------------------

/// `CreateStreamInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    /// Required; 1..128, `[a-zA-Z0-9_.-]+`.
    pub stream_name: String,
    /// >= 1; required by AWS in PROVISIONED mode (not enforced here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_count: Option<i32>,
    /// Capacity mode (PROVISIONED when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// 1..200 tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `DeleteStreamInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Delete even if consumers are registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_consumer_deletion: Option<bool>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `DescribeStreamInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// 1..10000 (AWS returns at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// Start after this shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `DescribeStreamSummaryInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `DescribeLimitsInput` (no members).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DescribeLimitsInput {}

/// `ListStreamsInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    /// 1..10000 (AWS returns at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// Start after this stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_stream_name: Option<String>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ShardFilter` (ListShards).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    /// Filter type.
    pub r#type: ShardFilterType,
    /// For AFTER_SHARD_ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// For AT_TIMESTAMP / FROM_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl ShardFilter {
    /// AFTER_SHARD_ID needs `ShardId`; AT_TIMESTAMP / FROM_TIMESTAMP need `Timestamp`.
    /// (Messages follow kinesis-mock; not verified against live AWS.)
    pub fn check(&self) -> Result<(), ApiError> {
        match self.r#type {
            ShardFilterType::AfterShardId if self.shard_id.is_none() => {
                Err(ApiError::invalid_argument(
                    "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID",
                ))
            }
            ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp
                if self.timestamp.is_none() =>
            {
                Err(ApiError::invalid_argument(
                    "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP \
                     or AT_TIMESTAMP",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// `ListShardsInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    /// Stream name (not with NextToken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Pagination token (identifies the stream by itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Start after this shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
    /// 1..10000 (AWS returns at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    /// Disambiguates recreated streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
    /// Shard filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_filter: Option<ShardFilter>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl ListShardsInput {
    /// The addressed stream, or `None` when the request continues a listing via NextToken.
    pub fn stream_ref(&self) -> Result<Option<StreamRef>, ApiError> {
        let has_stream = self.stream_name.is_some() || self.stream_arn.is_some();
        match (&self.next_token, has_stream) {
            (Some(_), true) => Err(ApiError::next_token_and_stream_name()),
            (Some(_), false) if self.exclusive_start_shard_id.is_some() => {
                Err(ApiError::next_token_and("ExclusiveStartShardId"))
            }
            (Some(_), false) if self.stream_creation_timestamp.is_some() => {
                Err(ApiError::next_token_and("StreamCreationTimestamp"))
            }
            (Some(_), false) => Ok(None),
            (None, false) => Err(ApiError::next_token_or_stream_name_required()),
            (None, true) => {
                resolve_stream_ref(self.stream_name.as_deref(), self.stream_arn.as_deref())
                    .map(Some)
            }
        }
    }
}

/// `PutRecordInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Record payload, at most 1 MiB.
    #[serde(with = "crate::base64::blob")]
    pub data: Bytes,
    /// 1..256 characters.
    pub partition_key: String,
    /// Decimal hash key overriding the partition key hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// Ordering guarantee hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number_for_ordering: Option<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `PutRecordsRequestEntry`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsRequestEntry {
    /// Record payload, at most 1 MiB.
    #[serde(with = "crate::base64::blob")]
    pub data: Bytes,
    /// Decimal hash key overriding the partition key hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// 1..256 characters.
    pub partition_key: String,
}

/// `PutRecordsInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    /// 1..500 entries.
    pub records: Vec<PutRecordsRequestEntry>,
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `GetShardIteratorInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Shard ID (1..128, `[a-zA-Z0-9_.-]+`).
    pub shard_id: String,
    /// Iterator type.
    pub shard_iterator_type: ShardIteratorType,
    /// For AT_/AFTER_SEQUENCE_NUMBER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_sequence_number: Option<String>,
    /// For AT_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl GetShardIteratorInput {
    /// The start position, with AWS's errors for inconsistent type/sequence/timestamp.
    pub fn position(&self) -> Result<IteratorPosition, ApiError> {
        iterator_position(
            self.shard_iterator_type,
            self.starting_sequence_number.as_deref(),
            self.timestamp,
        )
    }
}

/// `GetRecordsInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    /// 1..512 characters.
    pub shard_iterator: String,
    /// 1..10000 records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// Stream ARN (optional; the iterator identifies the stream).
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `IncreaseStreamRetentionPeriodInput` / `DecreaseStreamRetentionPeriodInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionPeriodInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// New retention in hours (range checked by [`RetentionPeriodInput::check_bounds`]).
    pub retention_period_hours: i32,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl RetentionPeriodInput {
    /// AWS's absolute bounds (`RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX`), with its messages. Real Kinesis checks these
    /// after resolving the stream, so call this once the stream is known to exist.
    pub fn check_bounds(&self) -> Result<(), ApiError> {
        let h = i64::from(self.retention_period_hours);
        if h < i64::from(RETENTION_HOURS_MIN) {
            Err(ApiError::retention_too_short(h))
        } else if h > i64::from(RETENTION_HOURS_MAX) {
            Err(ApiError::retention_too_long(h, i64::from(RETENTION_HOURS_MAX)))
        } else {
            Ok(())
        }
    }
}

/// `AddTagsToStreamInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToStreamInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// 1..200 tags (AWS allows 50 per stream in total).
    pub tags: BTreeMap<String, String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `RemoveTagsFromStreamInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromStreamInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// 1..50 keys.
    pub tag_keys: Vec<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `ListTagsForStreamInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// List tags after this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_tag_key: Option<String>,
    /// 1..50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `TagResourceInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct TagResourceInput {
    /// Stream or consumer ARN.
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    /// 1..200 tags.
    #[serde(rename = "Tags")]
    pub tags: BTreeMap<String, String>,
}

/// `UntagResourceInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct UntagResourceInput {
    /// Stream or consumer ARN.
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    /// 1..50 keys.
    #[serde(rename = "TagKeys")]
    pub tag_keys: Vec<String>,
}

/// `ListTagsForResourceInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct ListTagsForResourceInput {
    /// Stream or consumer ARN.
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
}

macro_rules! impl_resource_ref {
    ($($t:ty),+) => {
        $(
            impl $t {
                /// What ResourceARN designates.
                pub fn resource_ref(&self) -> Result<ResourceRef, ApiError> {
                    parse_resource_arn(&self.resource_arn).ok_or_else(|| {
                        ApiError::invalid_argument(format!(
                            "ResourceARN {} is not a valid stream or consumer ARN.",
                            self.resource_arn
                        ))
                    })
                }
            }
        )+
    };
}

impl_resource_ref!(TagResourceInput, UntagResourceInput, ListTagsForResourceInput);

/// `SplitShardInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// The shard to split.
    pub shard_to_split: String,
    /// Decimal hash key where the upper child starts.
    pub new_starting_hash_key: String,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `MergeShardsInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// The lower shard.
    pub shard_to_merge: String,
    /// The adjacent shard.
    pub adjacent_shard_to_merge: String,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `UpdateShardCountInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    /// Stream name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// >= 1.
    pub target_shard_count: i32,
    /// Always UNIFORM_SCALING.
    pub scaling_type: ScalingType,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `UpdateStreamModeInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct UpdateStreamModeInput {
    /// Stream ARN (required).
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// New mode.
    #[serde(rename = "StreamModeDetails")]
    pub stream_mode_details: StreamModeDetails,
}

impl UpdateStreamModeInput {
    /// The stream, parsed from StreamARN.
    pub fn stream(&self) -> Result<StreamArn, ApiError> {
        parse_stream_arn(&self.stream_arn)
            .ok_or_else(|| ApiError::invalid_stream_arn(&self.stream_arn))
    }
}

/// `RegisterStreamConsumerInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct RegisterStreamConsumerInput {
    /// Stream ARN (required).
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// 1..128, `[a-zA-Z0-9_.-]+`.
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    /// Up to 50 tags for the consumer.
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl RegisterStreamConsumerInput {
    /// The stream, parsed from StreamARN.
    pub fn stream(&self) -> Result<StreamArn, ApiError> {
        parse_stream_arn(&self.stream_arn)
            .ok_or_else(|| ApiError::invalid_stream_arn(&self.stream_arn))
    }
}

/// `DeregisterStreamConsumerInput` / `DescribeStreamConsumerInput`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct ConsumerInput {
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// Consumer name (with StreamARN).
    #[serde(rename = "ConsumerName", default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    /// Consumer ARN.
    #[serde(rename = "ConsumerARN", default, skip_serializing_if = "Option::is_none")]
    pub consumer_arn: Option<String>,
}

impl ConsumerInput {
    /// The addressed consumer: by ConsumerARN, else by StreamARN + ConsumerName. When all
    /// three are given they must agree.
    pub fn consumer_ref(&self) -> Result<ConsumerRef, ApiError> {
        if let Some(arn) = &self.consumer_arn {
            let c = parse_consumer_arn(arn).ok_or_else(|| {
                ApiError::invalid_argument(format!("ConsumerARN {arn} is not a valid ARN."))
            })?;
            if let Some(name) = &self.consumer_name
                && *name != c.consumer_name
            {
                return Err(ApiError::invalid_argument(format!(
                    "ConsumerName {name} does not match the consumer name in ConsumerARN {arn}."
                )));
            }
            if let Some(s) = &self.stream_arn
                && parse_stream_arn(s).is_none_or(|s| s.name != c.stream_name)
            {
                return Err(ApiError::invalid_argument(format!(
                    "StreamARN {s} does not match the stream in ConsumerARN {arn}."
                )));
            }
            return Ok(ConsumerRef::Arn(c));
        }
        match (&self.stream_arn, &self.consumer_name) {
            (Some(s), Some(name)) => Ok(ConsumerRef::Name {
                stream: parse_stream_arn(s).ok_or_else(|| ApiError::invalid_stream_arn(s))?,
                consumer_name: name.clone(),
            }),
            _ => Err(ApiError::consumer_ref_required()),
        }
    }
}

/// `ListStreamConsumersInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersInput {
    /// Stream ARN (required).
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1..10000 (AWS returns at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    /// Disambiguates recreated streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
}

impl ListStreamConsumersInput {
    /// The stream, parsed from StreamARN.
    pub fn stream(&self) -> Result<StreamArn, ApiError> {
        parse_stream_arn(&self.stream_arn)
            .ok_or_else(|| ApiError::invalid_stream_arn(&self.stream_arn))
    }
}

/// `StartingPosition` (SubscribeToShard).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    /// Position type.
    pub r#type: ShardIteratorType,
    /// For AT_/AFTER_SEQUENCE_NUMBER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// For AT_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl StartingPosition {
    /// The start position (same consistency rules and messages as GetShardIterator).
    pub fn position(&self) -> Result<IteratorPosition, ApiError> {
        iterator_position(self.r#type, self.sequence_number.as_deref(), self.timestamp)
    }
}

/// `SubscribeToShardInput`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct SubscribeToShardInput {
    /// Consumer ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// Shard ID.
    #[serde(rename = "ShardId")]
    pub shard_id: String,
    /// Where to start.
    #[serde(rename = "StartingPosition")]
    pub starting_position: StartingPosition,
}

impl SubscribeToShardInput {
    /// The consumer, parsed from ConsumerARN.
    pub fn consumer(&self) -> Result<ConsumerArn, ApiError> {
        parse_consumer_arn(&self.consumer_arn).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "ConsumerARN {} is not a valid ARN.",
                self.consumer_arn
            ))
        })
    }
}

impl_stream_ref!(
    DeleteStreamInput,
    DescribeStreamInput,
    DescribeStreamSummaryInput,
    PutRecordInput,
    PutRecordsInput,
    GetShardIteratorInput,
    RetentionPeriodInput,
    AddTagsToStreamInput,
    RemoveTagsFromStreamInput,
    ListTagsForStreamInput,
    SplitShardInput,
    MergeShardsInput,
    UpdateShardCountInput,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_operations() {
        assert_eq!(operation_from_target("Kinesis_20131202.PutRecord"), Some("PutRecord"));
        assert_eq!(operation_from_target("DynamoDB_20120810.PutItem"), None);
        assert_eq!(operation_from_target("Kinesis_20131202."), None);
        assert_eq!(operation_from_target("garbage"), None);
        assert_eq!(Operation::ALL.len(), 28);
        for &op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("putrecord"), None);
    }

    #[test]
    fn arns() {
        let a =
            parse_stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/my-stream").unwrap();
        assert_eq!(
            (a.partition.as_str(), a.region.as_str(), a.account.as_str(), a.name.as_str()),
            ("aws", "us-east-1", "123456789012", "my-stream")
        );
        assert_eq!(StreamArn::format("us-east-1", "123456789012", "my-stream"), {
            "arn:aws:kinesis:us-east-1:123456789012:stream/my-stream"
        });
        assert!(parse_stream_arn("arn:aws:sqs:us-east-1:123456789012:stream/x").is_none());
        assert!(parse_stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/").is_none());
        assert!(parse_stream_arn("").is_none());

        let arn = "arn:aws:kinesis:us-west-2:123456789012:stream/s1/consumer/c1:1532113838";
        let c = parse_consumer_arn(arn).unwrap();
        assert_eq!(c.stream_name, "s1");
        assert_eq!(c.consumer_name, "c1");
        assert_eq!(c.creation_secs, 1_532_113_838);
        assert_eq!(c.stream_arn(), "arn:aws:kinesis:us-west-2:123456789012:stream/s1");
        assert_eq!(
            ConsumerArn::format("us-west-2", "123456789012", "s1", "c1", 1_532_113_838),
            arn
        );
        assert_eq!(parse_resource_arn(arn), Some(ResourceRef::Consumer(c)));
        assert!(matches!(
            parse_resource_arn("arn:aws:kinesis:us-west-2:123456789012:stream/s1"),
            Some(ResourceRef::Stream(_))
        ));
    }

    #[test]
    fn stream_refs() {
        assert_eq!(resolve_stream_ref(Some("a"), None), Ok(StreamRef::Name("a".into())));
        assert_eq!(resolve_stream_ref(None, None), Err(ApiError::stream_name_or_arn_required()));
        let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/a";
        let want = StreamRef::Arn {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            name: "a".into(),
        };
        assert_eq!(resolve_stream_ref(None, Some(arn)), Ok(want.clone()));
        assert_eq!(resolve_stream_ref(Some("a"), Some(arn)), Ok(want));
        assert!(resolve_stream_ref(Some("b"), Some(arn)).is_err());
    }

    #[test]
    fn positions() {
        use ShardIteratorType as T;
        assert_eq!(iterator_position(T::Latest, None, None), Ok(IteratorPosition::Latest));
        assert_eq!(
            iterator_position(T::AtSequenceNumber, Some("5"), None),
            Ok(IteratorPosition::AtSequenceNumber("5".into()))
        );
        assert_eq!(
            iterator_position(T::AfterSequenceNumber, None, None),
            Err(ApiError::iterator_type_sequence_mismatch("AFTER_SEQUENCE_NUMBER", false))
        );
        assert_eq!(
            iterator_position(T::TrimHorizon, Some("5"), None),
            Err(ApiError::iterator_type_sequence_mismatch("TRIM_HORIZON", true))
        );
        assert_eq!(
            iterator_position(T::AtTimestamp, None, None),
            Err(ApiError::timestamp_required())
        );
        assert_eq!(
            iterator_position(T::AtTimestamp, None, Some(Timestamp(5))),
            Ok(IteratorPosition::AtTimestamp(Timestamp(5)))
        );
    }
}
