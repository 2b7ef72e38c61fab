//! Response shapes for every operation with an output (`#[derive(Serialize, Deserialize)]`,
//! PascalCase member names exactly as in the botocore model) and [`to_json`]. Optional members
//! are omitted when `None`, except GetRecords' `NextShardIterator`, which AWS sends as JSON
//! `null` once a closed shard is exhausted. Blobs serialize as base64; timestamps as epoch
//! seconds with a millisecond fraction; hash keys and sequence numbers as decimal strings.
//!
//! Operations without an output shape (CreateStream, DeleteStream, AddTagsToStream,
//! RemoveTagsFromStream, Increase/DecreaseStreamRetentionPeriod, SplitShard, MergeShards,
//! UpdateStreamMode, DeregisterStreamConsumer, TagResource, UntagResource) answer HTTP 200
//! with an empty body, like AWS.
//!
//! The SubscribeToShard event payload ([`SubscribeToShardEvent`]) lives here too; its
//! event-stream framing is in [`crate::eventstream`].

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::types::{ConsumerStatus, EncryptionType, StreamModeDetails, StreamStatus, Timestamp};

/// Serializes a response shape to JSON bytes (never fails for the shapes in this crate; falls
/// back to `{}` if a foreign `Serialize` impl errors).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The JSON 1.1 content type for responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// `HashKeyRange` (decimal strings).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    /// First hash key, inclusive.
    pub starting_hash_key: String,
    /// Last hash key, inclusive.
    pub ending_hash_key: String,
}

/// `SequenceNumberRange`; `EndingSequenceNumber` is absent while the shard is open.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    /// First sequence number.
    pub starting_sequence_number: String,
    /// Last sequence number (closed shards only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

/// `Shard`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    /// `shardId-000000000000`.
    pub shard_id: String,
    /// Parent (split or merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    /// The other parent of a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    /// Hash key range.
    pub hash_key_range: HashKeyRange,
    /// Sequence number range.
    pub sequence_number_range: SequenceNumberRange,
}

/// `ChildShard`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    /// The child's shard ID.
    pub shard_id: String,
    /// Its parents (one for a split, two for a merge).
    pub parent_shards: Vec<String>,
    /// Its hash key range.
    pub hash_key_range: HashKeyRange,
}

/// `EnhancedMetrics` (Spate reports an empty `ShardLevelMetrics` list).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    /// Enabled shard-level metrics.
    pub shard_level_metrics: Vec<String>,
}

impl EnhancedMetrics {
    /// The `EnhancedMonitoring` list AWS returns for a stream without enhanced monitoring:
    /// `[{"ShardLevelMetrics":[]}]`.
    pub fn none() -> Vec<EnhancedMetrics> {
        vec![EnhancedMetrics::default()]
    }
}

/// `StreamDescription` (DescribeStream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// A page of shards.
    pub shards: Vec<Shard>,
    /// Whether more shards follow.
    pub has_more_shards: bool,
    /// Retention in hours.
    pub retention_period_hours: i32,
    /// Creation time.
    pub stream_creation_timestamp: Timestamp,
    /// Enhanced monitoring (use [`EnhancedMetrics::none`]).
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    /// Encryption type (`NONE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
    /// KMS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// `DescribeStreamOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    /// The description.
    pub stream_description: StreamDescription,
}

/// `StreamDescriptionSummary` (DescribeStreamSummary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Retention in hours.
    pub retention_period_hours: i32,
    /// Creation time.
    pub stream_creation_timestamp: Timestamp,
    /// Enhanced monitoring (use [`EnhancedMetrics::none`]).
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    /// Encryption type (`NONE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
    /// KMS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Number of open shards.
    pub open_shard_count: i32,
    /// Number of registered enhanced fan-out consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_count: Option<i32>,
}

/// `DescribeStreamSummaryOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    /// The summary.
    pub stream_description_summary: StreamDescriptionSummary,
}

/// `StreamSummary` (ListStreams).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
}

/// `ListStreamsOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    /// Names on this page.
    pub stream_names: Vec<String>,
    /// Whether more follow.
    pub has_more_streams: bool,
    /// Token for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Summaries for the same streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_summaries: Option<Vec<StreamSummary>>,
}

/// `ListShardsOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    /// Shards on this page.
    pub shards: Vec<Shard>,
    /// Token for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `PutRecordOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    /// Shard the record went to.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// `NONE` or `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

/// `PutRecordsResultEntry`: success (SequenceNumber + ShardId) or failure (ErrorCode +
/// ErrorMessage).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    /// Sequence number on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// Shard on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// `ProvisionedThroughputExceededException` or `InternalFailure` on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Failure detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl PutRecordsResultEntry {
    /// A successful entry.
    pub fn ok(shard_id: impl Into<String>, sequence_number: impl Into<String>) -> Self {
        PutRecordsResultEntry {
            sequence_number: Some(sequence_number.into()),
            shard_id: Some(shard_id.into()),
            ..Default::default()
        }
    }

    /// A failed entry carrying `err`'s type and message. The model: "An `ErrorCode` value of
    /// `InternalFailure` has the error message `"Internal Service Failure"`" (the cause is for
    /// the server's log, not the entry).
    pub fn failed(err: &crate::error::ApiError) -> Self {
        let message = match err.kind {
            crate::error::ErrorKind::InternalFailure => "Internal Service Failure".to_owned(),
            _ => err.message.clone(),
        };
        PutRecordsResultEntry {
            error_code: Some(err.type_name().to_owned()),
            error_message: Some(message),
            ..Default::default()
        }
    }
}

/// `PutRecordsOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    /// Number of failed entries (AWS always sends it, 0 included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_record_count: Option<i32>,
    /// One result per request entry, in order.
    pub records: Vec<PutRecordsResultEntry>,
    /// `NONE` or `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

/// `GetShardIteratorOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    /// The iterator.
    pub shard_iterator: String,
}

/// `Record` (GetRecords and SubscribeToShardEvent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// Sequence number.
    pub sequence_number: String,
    /// Arrival time (milliseconds).
    pub approximate_arrival_timestamp: Timestamp,
    /// Payload (base64 on the wire).
    #[serde(with = "crate::base64::blob")]
    pub data: Bytes,
    /// Partition key.
    pub partition_key: String,
    /// `NONE` or `KMS`; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<EncryptionType>,
}

/// `GetRecordsOutput`. `next_shard_iterator` is always serialized: `null` means the shard is
/// closed and fully read (then `child_shards` should be `Some`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    /// Records read.
    pub records: Vec<Record>,
    /// Where to continue, or `null` at the end of a closed shard.
    #[serde(default)]
    pub next_shard_iterator: Option<String>,
    /// Milliseconds behind the tip of the shard.
    pub millis_behind_latest: i64,
    /// Children of a closed shard, once its end is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

/// `Tag`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Tag {
    /// Tags from a key→value map, in key order.
    pub fn from_map(map: &BTreeMap<String, String>) -> Vec<Tag> {
        map.iter().map(|(k, v)| Tag { key: k.clone(), value: Some(v.clone()) }).collect()
    }
}

/// `ListTagsForStreamOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    /// Tags on this page.
    pub tags: Vec<Tag>,
    /// Whether more follow.
    pub has_more_tags: bool,
}

/// `ListTagsForResourceOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceOutput {
    /// All tags.
    pub tags: Vec<Tag>,
}

/// `DescribeLimitsOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    /// Shard quota.
    pub shard_limit: i32,
    /// Open shards in the account.
    pub open_shard_count: i32,
    /// On-demand streams in the account.
    pub on_demand_stream_count: i32,
    /// On-demand stream quota.
    pub on_demand_stream_count_limit: i32,
}

/// `UpdateShardCountOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Open shards before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_shard_count: Option<i32>,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_shard_count: Option<i32>,
    /// ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// `Consumer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// Name.
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    /// ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// Status.
    #[serde(rename = "ConsumerStatus")]
    pub consumer_status: ConsumerStatus,
    /// Registration time.
    #[serde(rename = "ConsumerCreationTimestamp")]
    pub consumer_creation_timestamp: Timestamp,
}

/// `ConsumerDescription`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerDescription {
    /// Name.
    #[serde(rename = "ConsumerName")]
    pub consumer_name: String,
    /// ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// Status.
    #[serde(rename = "ConsumerStatus")]
    pub consumer_status: ConsumerStatus,
    /// Registration time.
    #[serde(rename = "ConsumerCreationTimestamp")]
    pub consumer_creation_timestamp: Timestamp,
    /// The stream's ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

/// `RegisterStreamConsumerOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    /// The new consumer.
    pub consumer: Consumer,
}

/// `DescribeStreamConsumerOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    /// The consumer.
    pub consumer_description: ConsumerDescription,
}

/// `ListStreamConsumersOutput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    /// Consumers on this page.
    pub consumers: Vec<Consumer>,
    /// Token for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `SubscribeToShardEvent`: the payload of each `SubscribeToShardEvent` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    /// Records (same shape as GetRecords).
    pub records: Vec<Record>,
    /// Checkpoint: continue from here with AFTER_SEQUENCE_NUMBER. Absent from the last event of
    /// a closed shard (the one with `ChildShards`): the KCL and Flink's fan-out reader take a
    /// null continuation as the shard's end. Absent, not `null`: the AWS SDK for Rust reads an
    /// absent member as empty but fails on a `null` string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    /// Milliseconds behind the tip.
    pub millis_behind_latest: i64,
    /// Children, at the end of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &impl Serialize) -> String {
        String::from_utf8(to_json(v)).unwrap()
    }

    fn record() -> Record {
        Record {
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            approximate_arrival_timestamp: Timestamp(1_700_000_000_123),
            data: Bytes::from_static(b"hello"),
            partition_key: "pk".into(),
            encryption_type: None,
        }
    }

    #[test]
    fn get_records_open_shard() {
        let out = GetRecordsOutput {
            records: vec![record()],
            next_shard_iterator: Some("AAAA".into()),
            millis_behind_latest: 0,
            child_shards: None,
        };
        assert_eq!(
            s(&out),
            r#"{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk"}],"NextShardIterator":"AAAA","MillisBehindLatest":0}"#
        );
        let back: GetRecordsOutput = serde_json::from_slice(&to_json(&out)).unwrap();
        assert_eq!(back, out);
    }

    #[test]
    fn get_records_closed_shard_sends_null_iterator() {
        let out = GetRecordsOutput {
            records: vec![],
            next_shard_iterator: None,
            millis_behind_latest: 0,
            child_shards: Some(vec![ChildShard {
                shard_id: "shardId-000000000002".into(),
                parent_shards: vec!["shardId-000000000000".into(), "shardId-000000000001".into()],
                hash_key_range: HashKeyRange {
                    starting_hash_key: "0".into(),
                    ending_hash_key: "340282366920938463463374607431768211455".into(),
                },
            }]),
        };
        assert_eq!(
            s(&out),
            r#"{"Records":[],"NextShardIterator":null,"MillisBehindLatest":0,"ChildShards":[{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000","shardId-000000000001"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"}}]}"#
        );
        let back: GetRecordsOutput = serde_json::from_slice(&to_json(&out)).unwrap();
        assert_eq!(back, out);
    }

    #[test]
    fn describe_stream_shape() {
        let out = DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_name: "s".into(),
                stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
                stream_status: StreamStatus::Active,
                stream_mode_details: Some(StreamModeDetails {
                    stream_mode: crate::types::StreamMode::Provisioned,
                }),
                shards: vec![Shard {
                    shard_id: "shardId-000000000000".into(),
                    parent_shard_id: None,
                    adjacent_parent_shard_id: None,
                    hash_key_range: HashKeyRange {
                        starting_hash_key: "0".into(),
                        ending_hash_key: "340282366920938463463374607431768211455".into(),
                    },
                    sequence_number_range: SequenceNumberRange {
                        starting_sequence_number: "1".into(),
                        ending_sequence_number: None,
                    },
                }],
                has_more_shards: false,
                retention_period_hours: 24,
                stream_creation_timestamp: Timestamp(1_700_000_000_000),
                enhanced_monitoring: EnhancedMetrics::none(),
                encryption_type: Some(EncryptionType::None),
                key_id: None,
            },
        };
        assert_eq!(
            s(&out),
            r#"{"StreamDescription":{"StreamName":"s","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"PROVISIONED"},"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}],"HasMoreShards":false,"RetentionPeriodHours":24,"StreamCreationTimestamp":1700000000.0,"EnhancedMonitoring":[{"ShardLevelMetrics":[]}],"EncryptionType":"NONE"}}"#
        );
    }

    #[test]
    fn put_records_and_consumers() {
        let err = crate::error::ApiError::write_throughput_exceeded(
            "shardId-000000000001",
            "s",
            "111111111111",
        );
        let out = PutRecordsOutput {
            failed_record_count: Some(1),
            records: vec![
                PutRecordsResultEntry::ok("shardId-000000000000", "42"),
                PutRecordsResultEntry::failed(&err),
            ],
            encryption_type: None,
        };
        assert_eq!(
            s(&out),
            r#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"42","ShardId":"shardId-000000000000"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream s under account 111111111111."}]}"#
        );
        let c = RegisterStreamConsumerOutput {
            consumer: Consumer {
                consumer_name: "c".into(),
                consumer_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1".into(),
                consumer_status: ConsumerStatus::Creating,
                consumer_creation_timestamp: Timestamp(1000),
            },
        };
        assert_eq!(
            s(&c),
            r#"{"Consumer":{"ConsumerName":"c","ConsumerARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1","ConsumerStatus":"CREATING","ConsumerCreationTimestamp":1.0}}"#
        );
        let ev = SubscribeToShardEvent {
            records: vec![record()],
            continuation_sequence_number: Some("7".into()),
            millis_behind_latest: 5,
            child_shards: None,
        };
        assert_eq!(
            s(&ev),
            r#"{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk"}],"ContinuationSequenceNumber":"7","MillisBehindLatest":5}"#
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fast writers for record-heavy responses
// ---------------------------------------------------------------------------------------------

/// Appends `value` as JSON (serde's encoding) to `out`.
fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("serializing to a Vec cannot fail");
}

/// Appends `s` as a JSON string: copied as is when it is printable ASCII with nothing to escape
/// (sequence numbers and almost every partition key), else through serde (lossily if `s` is not
/// UTF-8).
fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    // No early exit, so the scan vectorises.
    let plain =
        s.iter().fold(true, |ok, &b| ok & ((0x20..0x7F).contains(&b) & (b != b'"') & (b != b'\\')));
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    } else {
        push_json(out, &String::from_utf8_lossy(s));
    }
}

/// Writes a record-heavy response (GetRecords, a SubscribeToShard event) straight into its
/// final buffer, record by record, with the same bytes serde would produce for the typed
/// output: the data blob's base64 goes in without an escaping scan, sequence numbers and plain
/// partition keys are copied, timestamps are printed from integer milliseconds, and nothing is
/// allocated per record.
pub struct RecordsWriter {
    out: Vec<u8>,
    records: usize,
}

impl std::fmt::Debug for RecordsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsWriter")
            .field("records", &self.records)
            .field("bytes", &self.out.len())
            .finish()
    }
}

impl RecordsWriter {
    /// Starts a response; `capacity` is a hint (see [`RecordsWriter::record_capacity`]).
    pub fn with_capacity(capacity: usize) -> RecordsWriter {
        let mut out = Vec::with_capacity(capacity.saturating_add(256));
        out.extend_from_slice(b"{\"Records\":[");
        RecordsWriter { out, records: 0 }
    }

    /// Reserves room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.out.reserve(additional);
    }

    /// Bytes one record with `data_len` bytes of data and a `key_len`-byte key usually takes.
    pub const fn record_capacity(data_len: usize, key_len: usize) -> usize {
        crate::base64::encoded_len(data_len) + key_len + 160
    }

    /// Appends a record. The sequence number is decimal digits; a partition key that is not
    /// UTF-8 (never stored by Spate, which takes keys from JSON strings) is written lossily.
    pub fn record(
        &mut self,
        sequence_number: &[u8],
        arrival: Timestamp,
        data: &[u8],
        partition_key: &[u8],
        encryption_type: Option<EncryptionType>,
    ) {
        let out = &mut self.out;
        if self.records > 0 {
            out.push(b',');
        }
        self.records += 1;
        out.extend_from_slice(b"{\"SequenceNumber\":");
        push_str(out, sequence_number);
        out.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
        push_timestamp(out, arrival);
        out.extend_from_slice(b",\"Data\":\"");
        crate::base64::encode_to_vec(data, out);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        push_str(out, partition_key);
        if let Some(encryption) = &encryption_type {
            out.extend_from_slice(b",\"EncryptionType\":");
            push_json(out, encryption);
        }
        out.push(b'}');
    }

    /// Ends a GetRecords response.
    pub fn finish_get_records(
        self,
        next_shard_iterator: Option<&str>,
        millis_behind_latest: i64,
        child_shards: Option<&[ChildShard]>,
    ) -> Vec<u8> {
        let first = Some((&b"NextShardIterator"[..], &next_shard_iterator));
        self.finish(first, millis_behind_latest, child_shards)
    }

    /// Ends a SubscribeToShard event.
    pub fn finish_subscribe_event(
        self,
        continuation_sequence_number: Option<&str>,
        millis_behind_latest: i64,
        child_shards: Option<&[ChildShard]>,
    ) -> Vec<u8> {
        let first = continuation_sequence_number.map(|c| (&b"ContinuationSequenceNumber"[..], c));
        self.finish(first, millis_behind_latest, child_shards)
    }

    /// Closes the records array and writes the members both responses end with (`first`, the
    /// iterator or continuation member, is left out when `None`).
    fn finish<T: Serialize + ?Sized>(
        mut self,
        first: Option<(&[u8], &T)>,
        millis_behind_latest: i64,
        child_shards: Option<&[ChildShard]>,
    ) -> Vec<u8> {
        let out = &mut self.out;
        out.push(b']');
        if let Some((name, value)) = first {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name);
            out.extend_from_slice(b"\":");
            push_json(out, value);
        }
        out.extend_from_slice(b",\"MillisBehindLatest\":");
        push_json(out, &millis_behind_latest);
        if let Some(children) = child_shards {
            out.extend_from_slice(b",\"ChildShards\":");
            push_json(out, children);
        }
        out.push(b'}');
        self.out
    }
}

/// Appends `t` as serde writes it (the shortest decimal of the `f64` seconds). For the range
/// arrival times live in (2001 to 2286), that is the exact decimal of the milliseconds with
/// trailing zeros trimmed and at least one fractional digit: 13 significant digits are well
/// inside an `f64`'s 15, so no shorter decimal rounds to the same `f64`.
fn push_timestamp(out: &mut Vec<u8>, t: Timestamp) {
    let ms = t.0;
    if !(1_000_000_000_000..10_000_000_000_000).contains(&ms) {
        push_json(out, &t);
        return;
    }
    let (secs, millis) = (ms / 1000, (ms % 1000) as u32);
    let mut digits = [0u8; 10];
    let mut n = secs;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'.');
    let frac =
        [b'0' + (millis / 100) as u8, b'0' + (millis / 10 % 10) as u8, b'0' + (millis % 10) as u8];
    let keep = if frac[2] != b'0' {
        3
    } else if frac[1] != b'0' {
        2
    } else {
        1
    };
    out.extend_from_slice(&frac[..keep]);
}

fn write_records(records: &[Record]) -> RecordsWriter {
    let capacity = records
        .iter()
        .map(|r| RecordsWriter::record_capacity(r.data.len(), r.partition_key.len()))
        .fold(0usize, usize::saturating_add);
    let mut writer = RecordsWriter::with_capacity(capacity);
    for r in records {
        writer.record(
            r.sequence_number.as_bytes(),
            r.approximate_arrival_timestamp,
            &r.data,
            r.partition_key.as_bytes(),
            r.encryption_type,
        );
    }
    writer
}

/// `to_json(output)`, faster (see [`RecordsWriter`]).
pub fn get_records_to_json(output: &GetRecordsOutput) -> Vec<u8> {
    write_records(&output.records).finish_get_records(
        output.next_shard_iterator.as_deref(),
        output.millis_behind_latest,
        output.child_shards.as_deref(),
    )
}

/// `to_json(event)`, faster (see [`RecordsWriter`]).
pub fn subscribe_event_to_json(event: &SubscribeToShardEvent) -> Vec<u8> {
    write_records(&event.records).finish_subscribe_event(
        event.continuation_sequence_number.as_deref(),
        event.millis_behind_latest,
        event.child_shards.as_deref(),
    )
}

#[cfg(test)]
mod fast_writer_tests {
    use super::*;

    fn sample(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                sequence_number: format!("{i:056}"),
                approximate_arrival_timestamp: Timestamp(1_700_000_000_000 + i as i64),
                data: Bytes::from((0..i).map(|b| b as u8).collect::<Vec<u8>>()),
                // Odd records take push_str's copy path, even ones its serde path.
                partition_key: if i % 2 == 1 {
                    format!("k{i}é~\u{7f}")
                } else {
                    format!("k\"{i}\\\u{1}é")
                },
                encryption_type: (i % 2 == 0).then_some(EncryptionType::None),
            })
            .collect()
    }

    #[test]
    fn timestamps_as_serde_writes_them() {
        let mut ms = 999_999_999_990i64;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let check = |ms: i64| {
            let mut fast = Vec::new();
            push_timestamp(&mut fast, Timestamp(ms));
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(to_json(&Timestamp(ms))).unwrap(),
                "{ms}"
            );
        };
        while ms < 1_000_000_000_020 {
            check(ms);
            ms += 1;
        }
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check((x % 9_000_000_000_000) as i64 + 1_000_000_000_000);
            check((x % 100_000) as i64 * 1000 + 1_700_000_000_000);
        }
        for ms in [-1, 0, 1, 9_999_999_999_999, 10_000_000_000_000, i64::MAX] {
            check(ms);
        }
    }

    #[test]
    fn same_bytes_as_serde() {
        for n in [0, 1, 2, 3, 7] {
            let output = GetRecordsOutput {
                records: sample(n),
                next_shard_iterator: (n % 2 == 0).then(|| "it".to_string()),
                millis_behind_latest: n as i64,
                child_shards: (n == 3).then(Vec::new),
            };
            assert_eq!(get_records_to_json(&output), to_json(&output));
            let event = SubscribeToShardEvent {
                records: sample(n),
                continuation_sequence_number: (n != 3).then(|| "5".to_string()),
                millis_behind_latest: 0,
                child_shards: (n == 3).then(Vec::new),
            };
            assert_eq!(subscribe_event_to_json(&event), to_json(&event));
        }
    }
}
