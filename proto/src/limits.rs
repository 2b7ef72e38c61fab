//! Every limit of the Kinesis Data Streams API, in one place, with compile-time checks on how
//! they relate: what the model (botocore's `kinesis/2013-12-02/service-2.json`) constrains,
//! what the service enforces beyond it (quotas, page sizes, lifetimes), and the defaults AWS
//! gives an account. Validation (`validate.rs`), the server and the tools read these; none of
//! them spells the numbers again.
//!
//! The engine keeps only storage bounds (`engine/src/limits.rs`). Where a storage bound must
//! cover one of these (a frame must hold the largest record), `server/src/lib.rs` asserts it at
//! compile time, so `engine` stays independent of `proto`.
//!
//! Lengths called `_LENGTH_` are in UTF-16 code units, as AWS (Java) counts them; `_BYTES_` are
//! bytes.

// ---- records ----

/// Largest record data blob, in bytes (the model's `Data` max: 1 MiB).
pub const RECORD_DATA_BYTES_MAX: usize = 1 << 20;
/// Longest partition key (the model's `PartitionKey` length: 1..=256).
pub const PARTITION_KEY_LENGTH_MAX: usize = 256;
/// Most UTF-8 bytes a partition key can take: a UTF-16 unit is at most 3 UTF-8 bytes (a
/// 4-byte character is 2 units).
pub const PARTITION_KEY_BYTES_MAX: usize = PARTITION_KEY_LENGTH_MAX * 3;
/// Decimal digits of the largest hash key (`0|([1-9]\d{0,38})`: 2^128 - 1 has 39).
pub const HASH_KEY_DIGITS_MAX: usize = 39;
/// Decimal digits of the largest sequence number (`0|([1-9]\d{0,128})`).
pub const SEQUENCE_NUMBER_DIGITS_MAX: usize = 129;

// ---- PutRecords and GetRecords ----

/// Records per PutRecords call.
pub const PUT_RECORDS_ENTRIES_MAX: usize = 500;
/// Bytes per PutRecords call (data plus partition keys): 5 MiB.
pub const PUT_RECORDS_BYTES_MAX: usize = 5 << 20;
/// Records one GetRecords call may return (the model's `Limit` max).
pub const GET_RECORDS_COUNT_MAX: usize = 10_000;
/// Bytes one GetRecords call may return: 10 MiB.
pub const GET_RECORDS_BYTES_MAX: usize = 10 << 20;

// ---- shard iterators and subscriptions ----

/// Longest shard iterator (the model's `ShardIterator` length).
pub const SHARD_ITERATOR_LENGTH_MAX: usize = 512;
/// A shard iterator expires this long after it was issued: 5 minutes.
pub const ITERATOR_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// A SubscribeToShard event stream lasts 5 minutes in Kinesis.
pub const SUBSCRIPTION_LIFETIME_SECS_MAX: u64 = 300;

// ---- per-shard throughput (AWS's quotas) ----

/// Write bytes per second per shard: 1 MiB.
pub const SHARD_WRITE_BYTES_PER_SECOND: u64 = 1 << 20;
/// Write records per second per shard.
pub const SHARD_WRITE_RECORDS_PER_SECOND: u64 = 1000;
/// GetRecords calls per second per shard.
pub const SHARD_READ_CALLS_PER_SECOND: u64 = 5;
/// GetRecords bytes per second per shard: 2 MiB.
pub const SHARD_READ_BYTES_PER_SECOND: u64 = 2 << 20;
/// GetShardIterator calls per second per shard.
pub const GET_SHARD_ITERATOR_CALLS_PER_SECOND: u64 = 5;

// ---- streams and retention ----

/// Longest stream name (the model's `StreamName` length; also `ShardId` and `ConsumerName`).
pub const STREAM_NAME_LENGTH_MAX: usize = 128;
/// Longest shard ID.
pub const SHARD_ID_LENGTH_MAX: usize = 128;
/// Longest ARN (stream, consumer or resource).
pub const ARN_LENGTH_MAX: usize = 2048;
/// Retention bounds, in hours: one day to 365 days.
pub const RETENTION_HOURS_MIN: u32 = 24;
pub const RETENTION_HOURS_MAX: u32 = 8760;
/// Retention of a new stream, in hours.
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
/// UpdateShardCount calls allowed per stream in a rolling 24 hours.
pub const SHARD_COUNT_UPDATES_PER_DAY_MAX: usize = 10;
/// Shards per stream and per account (AWS's default account quota).
pub const SHARDS_PER_STREAM_MAX_DEFAULT: u32 = 500;
pub const SHARDS_MAX_DEFAULT: u32 = 500;
/// ON_DEMAND streams per account (DescribeLimits' `OnDemandStreamCountLimit`).
pub const ON_DEMAND_STREAM_COUNT_LIMIT: u32 = 50;

// ---- consumers ----

/// Longest consumer name.
pub const CONSUMER_NAME_LENGTH_MAX: usize = 128;
/// Registered consumers per stream (AWS's default quota).
pub const CONSUMERS_PER_STREAM_MAX_DEFAULT: u32 = 20;

// ---- tags ----

/// Tags a stream may carry in total.
pub const TAGS_PER_STREAM_MAX: usize = 50;
/// Tags one AddTagsToStream, CreateStream or TagResource call may carry (the model's `TagMap`).
pub const TAGS_PER_CALL_MAX: usize = 200;
/// Tag keys one RemoveTagsFromStream or UntagResource call may name (the model's `TagKeyList`).
pub const TAG_KEYS_PER_CALL_MAX: usize = 50;
/// Tag key and value lengths.
pub const TAG_KEY_LENGTH_MAX: usize = 128;
pub const TAG_VALUE_LENGTH_MAX: usize = 256;
/// ListTagsForStream's `Limit` max, and the page size when it is absent.
pub const LIST_TAGS_LIMIT_MAX: usize = 50;

// ---- list pages ----

/// The model's bound on `Limit` and `MaxResults` of DescribeStream, ListStreams, ListShards and
/// ListStreamConsumers; the service returns fewer (below).
pub const LIST_LIMIT_MAX: usize = 10_000;
/// Shards one DescribeStream page holds, and streams one ListStreams page holds.
pub const DESCRIBE_STREAM_SHARDS_PAGE_MAX: usize = 100;
pub const LIST_STREAMS_PAGE_MAX: usize = 100;
/// Shards one ListShards page holds.
pub const LIST_SHARDS_PAGE_MAX: usize = 1000;
/// Consumers one ListStreamConsumers page holds.
pub const LIST_STREAM_CONSUMERS_PAGE_MAX: usize = 100;
/// Longest `NextToken` (the model's length: 1 MiB).
pub const NEXT_TOKEN_LENGTH_MAX: usize = 1 << 20;

// ---- how they relate ----

const _: () = assert!(PARTITION_KEY_BYTES_MAX >= PARTITION_KEY_LENGTH_MAX);
// One largest record fits a PutRecords call, and one fits a GetRecords response.
const _: () = assert!(RECORD_DATA_BYTES_MAX + PARTITION_KEY_BYTES_MAX <= PUT_RECORDS_BYTES_MAX);
const _: () = assert!(RECORD_DATA_BYTES_MAX + PARTITION_KEY_BYTES_MAX <= GET_RECORDS_BYTES_MAX);
// A full PutRecords batch can be read back by one GetRecords call.
const _: () = assert!(PUT_RECORDS_ENTRIES_MAX <= GET_RECORDS_COUNT_MAX);
const _: () = assert!(PUT_RECORDS_BYTES_MAX <= GET_RECORDS_BYTES_MAX);
// The largest record fits one second of a shard's write and read quotas.
const _: () = assert!(RECORD_DATA_BYTES_MAX as u64 <= SHARD_WRITE_BYTES_PER_SECOND);
const _: () = assert!(SHARD_WRITE_BYTES_PER_SECOND <= SHARD_READ_BYTES_PER_SECOND);
const _: () = assert!(RETENTION_HOURS_MIN <= RETENTION_HOURS_DEFAULT);
const _: () = assert!(RETENTION_HOURS_DEFAULT <= RETENTION_HOURS_MAX);
const _: () = assert!(RETENTION_HOURS_MAX <= i32::MAX as u32);
const _: () = assert!(TAG_KEYS_PER_CALL_MAX <= TAGS_PER_CALL_MAX);
const _: () = assert!(TAGS_PER_STREAM_MAX <= TAGS_PER_CALL_MAX);
const _: () = assert!(LIST_TAGS_LIMIT_MAX <= TAGS_PER_STREAM_MAX);
const _: () = assert!(SHARDS_PER_STREAM_MAX_DEFAULT <= SHARDS_MAX_DEFAULT);
const _: () = assert!(DESCRIBE_STREAM_SHARDS_PAGE_MAX <= LIST_LIMIT_MAX);
const _: () = assert!(LIST_STREAMS_PAGE_MAX <= LIST_LIMIT_MAX);
const _: () = assert!(LIST_SHARDS_PAGE_MAX <= LIST_LIMIT_MAX);
const _: () = assert!(LIST_STREAM_CONSUMERS_PAGE_MAX <= LIST_LIMIT_MAX);
// `Limit`, `MaxResults` and retention hours are Java ints on the wire.
const _: () = assert!(LIST_LIMIT_MAX <= i32::MAX as usize);
