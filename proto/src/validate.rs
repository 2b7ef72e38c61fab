//! Request parsing and validation, AWS style. [`parse_request`] is the single entry point: it
//! turns an operation name and untrusted body bytes into a typed [`Request`] or the
//! [`ApiError`] real Kinesis would return, in the same order AWS checks:
//!
//! 1. empty body: `SerializationException` (known operation) / `UnknownOperationException`;
//! 2. malformed JSON or a non-object body: `SerializationException` (no message);
//! 3. unknown operation: `UnknownOperationException`;
//! 4. JSON type errors against the model (string where an integer belongs, bad base64, ...):
//!    `SerializationException` with AWS's (Java/Coral-flavoured) messages;
//! 5. model constraints (required, length, pattern, range, enum): `ValidationException`
//!    `N validation error(s) detected: Value ... at 'path' failed to satisfy constraint: ...`
//!    (at most 10 listed, like AWS);
//! 6. cross-member rules (StreamName or StreamARN present, NextToken exclusivity, consumer
//!    addressing): `InvalidArgumentException`.
//!
//! The per-operation schemas below are transcribed from botocore's
//! `kinesis/2013-12-02/service-2.json`; members are listed in the order AWS reports them where
//! that order is known (from responses recorded by kinesalite's test suite).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::base64;
use crate::error::ApiError;
use crate::limits::*;
use crate::requests::*;
use crate::types::Timestamp;

/// AWS lists at most this many violations in one ValidationException.
pub const MAX_REPORTED_VIOLATIONS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Patterns (a tiny linear-time matcher for the model's few regular expressions)
// ---------------------------------------------------------------------------------------------

/// A model `pattern` constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `[a-zA-Z0-9_.-]+` (StreamName, ShardId, ConsumerName).
    Name,
    /// `0|([1-9]\d{0,38})` (HashKey).
    HashKey,
    /// `0|([1-9]\d{0,128})` (SequenceNumber).
    SequenceNumber,
    /// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+` (StreamARN).
    StreamArn,
    /// `arn:aws.*:kinesis:.*:\d{12}:.*stream/\S+` (ResourceARN).
    ResourceArn,
    /// `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`
    /// (ConsumerARN).
    ConsumerArn,
}

#[derive(Clone, Copy)]
enum Tok {
    /// An ASCII literal.
    Lit(&'static str),
    /// `.*` (Java: any char except line terminators).
    Any,
    /// A byte class repeated `min..=max` times (`usize::MAX` = unbounded).
    Rep(fn(u8) -> bool, usize, usize),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Java `\S`: anything but `[ \t\n\x0B\f\r]` (non-ASCII bytes are parts of non-space chars).
fn is_non_space(b: u8) -> bool {
    !matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

const STREAM_ARN_TOKS: &[Tok] = &[
    Tok::Lit("arn:aws"),
    Tok::Any,
    Tok::Lit(":kinesis:"),
    Tok::Any,
    Tok::Lit(":"),
    Tok::Rep(is_digit, 12, 12),
    Tok::Lit(":stream/"),
    Tok::Rep(is_non_space, 1, usize::MAX),
];

const RESOURCE_ARN_TOKS: &[Tok] = &[
    Tok::Lit("arn:aws"),
    Tok::Any,
    Tok::Lit(":kinesis:"),
    Tok::Any,
    Tok::Lit(":"),
    Tok::Rep(is_digit, 12, 12),
    Tok::Lit(":"),
    Tok::Any,
    Tok::Lit("stream/"),
    Tok::Rep(is_non_space, 1, usize::MAX),
];

const CONSUMER_ARN_TOKS: &[Tok] = &[
    Tok::Lit("arn:aws"),
    Tok::Any,
    Tok::Lit(":kinesis:"),
    Tok::Any,
    Tok::Lit(":"),
    Tok::Rep(is_digit, 12, 12),
    Tok::Lit(":"),
    Tok::Any,
    Tok::Lit("stream/"),
    Tok::Rep(is_name_byte, 1, usize::MAX),
    Tok::Lit("/consumer/"),
    Tok::Rep(is_name_byte, 1, usize::MAX),
    Tok::Lit(":"),
    Tok::Rep(is_digit, 1, usize::MAX),
];

/// Length of the Java line terminator starting at `b[p]`, if any.
fn line_terminator_at(b: &[u8], p: usize) -> bool {
    match b[p] {
        b'\n' | b'\r' => true,
        0xC2 => b.get(p + 1) == Some(&0x85),
        0xE2 => b.get(p + 1) == Some(&0x80) && matches!(b.get(p + 2), Some(0xA8 | 0xA9)),
        _ => false,
    }
}

/// Whole-string match by simulating the token sequence over sets of byte positions: linear in
/// the input per token, so adversarial inputs cannot cause backtracking blow-ups.
fn match_tokens(toks: &[Tok], s: &str) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    let mut next = vec![false; n + 1];
    for tok in toks {
        next.iter_mut().for_each(|x| *x = false);
        let mut any = false;
        match *tok {
            Tok::Lit(lit) => {
                let l = lit.as_bytes();
                for p in 0..=n {
                    if cur[p] && b[p..].starts_with(l) {
                        next[p + l.len()] = true;
                        any = true;
                    }
                }
            }
            Tok::Any => {
                let mut active = false;
                for p in 0..=n {
                    active |= cur[p];
                    if active {
                        next[p] = true;
                        any = true;
                    }
                    if p < n && line_terminator_at(b, p) {
                        active = false;
                    }
                }
            }
            Tok::Rep(class, min, max) if max == usize::MAX && min <= 1 => {
                // reach: some start q < p with cur[q] and b[q..p] all in class.
                let mut reach = false;
                for p in 0..=n {
                    if reach || (min == 0 && cur[p]) {
                        next[p] = true;
                        any = true;
                    }
                    if p < n {
                        reach = class(b[p]) && (reach || cur[p]);
                    }
                }
            }
            Tok::Rep(class, min, max) => {
                for p in 0..=n {
                    if !cur[p] {
                        continue;
                    }
                    let mut k = 0;
                    loop {
                        if k >= min {
                            next[p + k] = true;
                            any = true;
                        }
                        if k == max || p + k >= n || !class(b[p + k]) {
                            break;
                        }
                        k += 1;
                    }
                }
            }
        }
        if !any {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur[n]
}

fn is_decimal_key(s: &str, max_digits: usize) -> bool {
    let b = s.as_bytes();
    s == "0"
        || (matches!(b.first(), Some(b'1'..=b'9'))
            && b.len() <= max_digits
            && b.iter().all(u8::is_ascii_digit))
}

impl Pattern {
    /// The pattern as AWS prints it in ValidationException messages.
    pub const fn source(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::HashKey => "0|([1-9]\\d{0,38})",
            Pattern::SequenceNumber => "0|([1-9]\\d{0,128})",
            Pattern::StreamArn => "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            Pattern::ResourceArn => "arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+",
            Pattern::ConsumerArn => {
                "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
            }
        }
    }

    /// Whether the whole of `s` matches (Java `String#matches` semantics).
    pub fn matches(self, s: &str) -> bool {
        match self {
            Pattern::Name => !s.is_empty() && s.bytes().all(is_name_byte),
            Pattern::HashKey => is_decimal_key(s, HASH_KEY_DIGITS_MAX),
            Pattern::SequenceNumber => is_decimal_key(s, SEQUENCE_NUMBER_DIGITS_MAX),
            Pattern::StreamArn => match_tokens(STREAM_ARN_TOKS, s),
            Pattern::ResourceArn => match_tokens(RESOURCE_ARN_TOKS, s),
            Pattern::ConsumerArn => match_tokens(CONSUMER_ARN_TOKS, s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

/// A structure member.
struct Member {
    name: &'static str,
    shape: &'static Shape,
    required: bool,
}

/// A model shape with its constraints.
enum Shape {
    Str {
        min: Option<usize>,
        max: Option<usize>,
        pattern: Option<Pattern>,
        enums: Option<&'static [&'static str]>,
    },
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    Blob {
        max: Option<usize>,
    },
    Timestamp,
    List {
        member: &'static Shape,
        min: Option<usize>,
        max: Option<usize>,
        /// How AWS prints each element of this list in a message (Java `toString`).
        member_str: Option<&'static str>,
        /// Element length bounds, reported on the list itself like AWS does.
        child_lengths: Option<(usize, usize)>,
    },
    /// String-to-string map.
    Map {
        min: Option<usize>,
        max: Option<usize>,
        key_lengths: Option<(usize, usize)>,
        value_lengths: Option<(usize, usize)>,
    },
    Struct(&'static [Member]),
}

const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member { name, shape, required: true }
}

const fn opt(name: &'static str, shape: &'static Shape) -> Member {
    Member { name, shape, required: false }
}

const fn string(min: Option<usize>, max: Option<usize>, pattern: Option<Pattern>) -> Shape {
    Shape::Str { min, max, pattern, enums: None }
}

const fn enumeration(values: &'static [&'static str]) -> Shape {
    Shape::Str { min: None, max: None, pattern: None, enums: Some(values) }
}

static STREAM_NAME: Shape = string(Some(1), Some(STREAM_NAME_LENGTH_MAX), Some(Pattern::Name));
static STREAM_ARN: Shape = string(Some(1), Some(ARN_LENGTH_MAX), Some(Pattern::StreamArn));
static SHARD_ID: Shape = string(Some(1), Some(SHARD_ID_LENGTH_MAX), Some(Pattern::Name));
static HASH_KEY: Shape = string(None, None, Some(Pattern::HashKey));
static SEQUENCE_NUMBER: Shape = string(None, None, Some(Pattern::SequenceNumber));
static PARTITION_KEY: Shape = string(Some(1), Some(PARTITION_KEY_LENGTH_MAX), None);
static SHARD_ITERATOR: Shape = string(Some(1), Some(SHARD_ITERATOR_LENGTH_MAX), None);
static NEXT_TOKEN: Shape = string(Some(1), Some(NEXT_TOKEN_LENGTH_MAX), None);
static TAG_KEY: Shape = string(Some(1), Some(TAG_KEY_LENGTH_MAX), None);
static PLAIN_STRING: Shape = string(None, None, None);
static CONSUMER_NAME: Shape = string(Some(1), Some(CONSUMER_NAME_LENGTH_MAX), Some(Pattern::Name));
static CONSUMER_ARN: Shape = string(Some(1), Some(ARN_LENGTH_MAX), Some(Pattern::ConsumerArn));
static RESOURCE_ARN: Shape = string(Some(1), Some(ARN_LENGTH_MAX), Some(Pattern::ResourceArn));
static DATA: Shape = Shape::Blob { max: Some(RECORD_DATA_BYTES_MAX) };
static POSITIVE_INT: Shape = Shape::Int { min: Some(1), max: None };
static ANY_INT: Shape = Shape::Int { min: None, max: None };
static GET_RECORDS_LIMIT: Shape =
    Shape::Int { min: Some(1), max: Some(GET_RECORDS_COUNT_MAX as i64) };
static LIST_LIMIT: Shape = Shape::Int { min: Some(1), max: Some(LIST_LIMIT_MAX as i64) };
static LIST_TAGS_LIMIT: Shape = Shape::Int { min: Some(1), max: Some(LIST_TAGS_LIMIT_MAX as i64) };
static BOOLEAN: Shape = Shape::Bool;
static TIMESTAMP: Shape = Shape::Timestamp;

/// AWS prints this enum set in the order below (recorded from live responses).
static SHARD_ITERATOR_TYPE: Shape = enumeration(&[
    "AFTER_SEQUENCE_NUMBER",
    "LATEST",
    "AT_TIMESTAMP",
    "AT_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
]);
static STREAM_MODE: Shape = enumeration(&["PROVISIONED", "ON_DEMAND"]);
static SCALING_TYPE: Shape = enumeration(&["UNIFORM_SCALING"]);
static SHARD_FILTER_TYPE: Shape = enumeration(&[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
]);

static STREAM_MODE_DETAILS: Shape = Shape::Struct(&[req("StreamMode", &STREAM_MODE)]);

static TAG_MAP: Shape = Shape::Map {
    min: Some(1),
    max: Some(TAGS_PER_CALL_MAX),
    key_lengths: Some((1, TAG_KEY_LENGTH_MAX)),
    value_lengths: Some((0, TAG_VALUE_LENGTH_MAX)),
};

static TAG_KEY_LIST: Shape = Shape::List {
    member: &PLAIN_STRING,
    min: Some(1),
    max: Some(TAG_KEYS_PER_CALL_MAX),
    member_str: None,
    child_lengths: Some((1, TAG_KEY_LENGTH_MAX)),
};

static SHARD_FILTER: Shape = Shape::Struct(&[
    req("Type", &SHARD_FILTER_TYPE),
    opt("ShardId", &SHARD_ID),
    opt("Timestamp", &TIMESTAMP),
]);

static STARTING_POSITION: Shape = Shape::Struct(&[
    req("Type", &SHARD_ITERATOR_TYPE),
    opt("SequenceNumber", &SEQUENCE_NUMBER),
    opt("Timestamp", &TIMESTAMP),
]);

static PUT_RECORDS_ENTRY: Shape = Shape::Struct(&[
    req("PartitionKey", &PARTITION_KEY),
    opt("ExplicitHashKey", &HASH_KEY),
    req("Data", &DATA),
]);

static PUT_RECORDS_LIST: Shape = Shape::List {
    member: &PUT_RECORDS_ENTRY,
    min: Some(1),
    max: Some(PUT_RECORDS_ENTRIES_MAX),
    member_str: Some("com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@2"),
    child_lengths: None,
};

static ADD_TAGS_TO_STREAM: &[Member] =
    &[req("Tags", &TAG_MAP), opt("StreamName", &STREAM_NAME), opt("StreamARN", &STREAM_ARN)];
static CREATE_STREAM: &[Member] = &[
    opt("ShardCount", &POSITIVE_INT),
    opt("StreamModeDetails", &STREAM_MODE_DETAILS),
    req("StreamName", &STREAM_NAME),
    opt("Tags", &TAG_MAP),
];
static RETENTION_PERIOD: &[Member] = &[
    req("RetentionPeriodHours", &ANY_INT),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static DELETE_STREAM: &[Member] = &[
    opt("EnforceConsumerDeletion", &BOOLEAN),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static CONSUMER: &[Member] = &[
    opt("ConsumerARN", &CONSUMER_ARN),
    opt("ConsumerName", &CONSUMER_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static DESCRIBE_LIMITS: &[Member] = &[];
static DESCRIBE_STREAM: &[Member] = &[
    opt("ExclusiveStartShardId", &SHARD_ID),
    opt("Limit", &LIST_LIMIT),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static DESCRIBE_STREAM_SUMMARY: &[Member] =
    &[opt("StreamName", &STREAM_NAME), opt("StreamARN", &STREAM_ARN)];
static GET_RECORDS: &[Member] = &[
    opt("Limit", &GET_RECORDS_LIMIT),
    req("ShardIterator", &SHARD_ITERATOR),
    opt("StreamARN", &STREAM_ARN),
];
static GET_SHARD_ITERATOR: &[Member] = &[
    req("ShardId", &SHARD_ID),
    req("ShardIteratorType", &SHARD_ITERATOR_TYPE),
    opt("StartingSequenceNumber", &SEQUENCE_NUMBER),
    opt("StreamName", &STREAM_NAME),
    opt("Timestamp", &TIMESTAMP),
    opt("StreamARN", &STREAM_ARN),
];
static LIST_SHARDS: &[Member] = &[
    opt("ExclusiveStartShardId", &SHARD_ID),
    opt("MaxResults", &LIST_LIMIT),
    opt("NextToken", &NEXT_TOKEN),
    opt("ShardFilter", &SHARD_FILTER),
    opt("StreamCreationTimestamp", &TIMESTAMP),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static LIST_STREAM_CONSUMERS: &[Member] = &[
    opt("MaxResults", &LIST_LIMIT),
    opt("NextToken", &NEXT_TOKEN),
    req("StreamARN", &STREAM_ARN),
    opt("StreamCreationTimestamp", &TIMESTAMP),
];
static LIST_STREAMS: &[Member] = &[
    opt("ExclusiveStartStreamName", &STREAM_NAME),
    opt("Limit", &LIST_LIMIT),
    opt("NextToken", &NEXT_TOKEN),
];
static LIST_TAGS_FOR_RESOURCE: &[Member] = &[req("ResourceARN", &RESOURCE_ARN)];
static LIST_TAGS_FOR_STREAM: &[Member] = &[
    opt("ExclusiveStartTagKey", &TAG_KEY),
    opt("Limit", &LIST_TAGS_LIMIT),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static MERGE_SHARDS: &[Member] = &[
    req("AdjacentShardToMerge", &SHARD_ID),
    req("ShardToMerge", &SHARD_ID),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static PUT_RECORD: &[Member] = &[
    opt("SequenceNumberForOrdering", &SEQUENCE_NUMBER),
    req("PartitionKey", &PARTITION_KEY),
    opt("ExplicitHashKey", &HASH_KEY),
    req("Data", &DATA),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static PUT_RECORDS: &[Member] = &[
    req("Records", &PUT_RECORDS_LIST),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static REGISTER_STREAM_CONSUMER: &[Member] =
    &[req("ConsumerName", &CONSUMER_NAME), req("StreamARN", &STREAM_ARN), opt("Tags", &TAG_MAP)];
static REMOVE_TAGS_FROM_STREAM: &[Member] = &[
    req("TagKeys", &TAG_KEY_LIST),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static SPLIT_SHARD: &[Member] = &[
    req("NewStartingHashKey", &HASH_KEY),
    req("ShardToSplit", &SHARD_ID),
    opt("StreamName", &STREAM_NAME),
    opt("StreamARN", &STREAM_ARN),
];
static SUBSCRIBE_TO_SHARD: &[Member] = &[
    req("ConsumerARN", &CONSUMER_ARN),
    req("ShardId", &SHARD_ID),
    req("StartingPosition", &STARTING_POSITION),
];
static TAG_RESOURCE: &[Member] = &[req("ResourceARN", &RESOURCE_ARN), req("Tags", &TAG_MAP)];
static UNTAG_RESOURCE: &[Member] =
    &[req("ResourceARN", &RESOURCE_ARN), req("TagKeys", &TAG_KEY_LIST)];
static UPDATE_SHARD_COUNT: &[Member] = &[
    req("ScalingType", &SCALING_TYPE),
    opt("StreamName", &STREAM_NAME),
    req("TargetShardCount", &POSITIVE_INT),
    opt("StreamARN", &STREAM_ARN),
];
static UPDATE_STREAM_MODE: &[Member] =
    &[req("StreamARN", &STREAM_ARN), req("StreamModeDetails", &STREAM_MODE_DETAILS)];

// ---------------------------------------------------------------------------------------------
// Phase 1: JSON types (SerializationException)
// ---------------------------------------------------------------------------------------------

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";
const LIST_FOUND: &str = "Start of list found where not expected";
const STRUCT_FOUND: &str = "Start of structure or map found where not expected.";

fn ser(msg: impl Into<String>) -> ApiError {
    ApiError::serialization(msg)
}

/// Checks `v` (never `Null`) against `shape` and normalizes it: unknown members and null
/// members dropped, numbers floored/clamped for integers, boolean strings converted, timestamp
/// strings converted to epoch-second numbers, map null values to "".
fn coerce(v: Value, shape: &Shape) -> Result<Value, ApiError> {
    match shape {
        Shape::Str { .. } => match v {
            Value::String(_) => Ok(v),
            Value::Bool(_) => Err(ser("class java.lang.Boolean can not be converted to an String")),
            Value::Number(_) => {
                Err(ser(format!("{NUMBER_CLASS} can not be converted to an String")))
            }
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser(STRUCT_FOUND)),
        },
        Shape::Int { .. } => match v {
            Value::Number(n) => {
                let i = if let Some(i) = n.as_i64() {
                    i
                } else if n.as_u64().is_some() {
                    i64::MAX
                } else {
                    // Saturating float-to-int cast; JSON numbers are never NaN.
                    n.as_f64().unwrap_or(0.0).floor() as i64
                };
                Ok(Value::from(i.clamp(i64::from(i32::MIN), i64::from(i32::MAX))))
            }
            Value::String(_) => {
                Err(ser("class java.lang.String can not be converted to an Integer"))
            }
            Value::Bool(_) => {
                Err(ser("class java.lang.Boolean can not be converted to an Integer"))
            }
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser(STRUCT_FOUND)),
        },
        Shape::Bool => match v {
            Value::Bool(_) => Ok(v),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(ser(format!("'{}' can not be converted to an Boolean", s.to_uppercase()))),
            },
            Value::Number(_) => {
                Err(ser(format!("{NUMBER_CLASS} can not be converted to an Boolean")))
            }
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser(STRUCT_FOUND)),
        },
        Shape::Blob { .. } => match v {
            Value::String(s) => match base64::decode_check(&s) {
                Ok(()) => Ok(Value::String(s)),
                Err(e) => Err(ser(e.aws_message(&s))),
            },
            Value::Bool(_) => Err(ser("class java.lang.Boolean can not be converted to a Blob")),
            Value::Number(_) => Err(ser(format!("{NUMBER_CLASS} can not be converted to a Blob"))),
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser(STRUCT_FOUND)),
        },
        Shape::Timestamp => match v {
            Value::Number(n) => {
                let secs = n.as_f64().unwrap_or(0.0);
                Ok(Value::from(Timestamp::from_secs_f64(secs).as_secs_f64()))
            }
            Value::String(s) => {
                Timestamp::parse_str(&s).map(|t| Value::from(t.as_secs_f64())).ok_or_else(|| {
                    ser("class java.lang.String can not be converted to milliseconds since epoch")
                })
            }
            Value::Bool(_) => {
                Err(ser("class java.lang.Boolean can not be converted to milliseconds since epoch"))
            }
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser(STRUCT_FOUND)),
        },
        Shape::List { member, .. } => match v {
            Value::Array(items) => items
                .into_iter()
                .map(|item| if item.is_null() { Ok(item) } else { coerce(item, member) })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(_) => Err(ser(STRUCT_FOUND)),
            _ => Err(ser("Expected list or null")),
        },
        Shape::Map { .. } => match v {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, val) in map {
                    let val = match val {
                        Value::Null => Value::String(String::new()),
                        other => coerce(other, &PLAIN_STRING)?,
                    };
                    out.insert(k, val);
                }
                Ok(Value::Object(out))
            }
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser("Expected map or null")),
        },
        Shape::Struct(members) => match v {
            Value::Object(map) => coerce_struct(map, members).map(Value::Object),
            Value::Array(_) => Err(ser(LIST_FOUND)),
            _ => Err(ser("Expected null")),
        },
    }
}

fn coerce_struct(
    mut map: Map<String, Value>,
    members: &[Member],
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for m in members {
        match map.remove(m.name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                out.insert(m.name.to_owned(), coerce(v, m.shape)?);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Phase 2: constraints (ValidationException)
// ---------------------------------------------------------------------------------------------

struct Violations(Vec<String>);

impl Violations {
    fn full(&self) -> bool {
        self.0.len() >= MAX_REPORTED_VIOLATIONS
    }

    /// Records `Value '<repr>' at '<path>' failed to satisfy constraint: <constraint>`; `repr`
    /// is computed only when the violation is actually recorded.
    fn add(&mut self, repr: impl FnOnce() -> Option<String>, path: &str, constraint: &str) {
        if self.full() {
            return;
        }
        let value = match repr() {
            Some(r) => format!("'{r}'"),
            None => "null".to_owned(),
        };
        self.0
            .push(format!("Value {value} at '{path}' failed to satisfy constraint: {constraint}"));
    }

    fn into_error(self) -> Option<ApiError> {
        let n = self.0.len();
        (n > 0).then(|| {
            ApiError::validation(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.0.join("; ")
            ))
        })
    }
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn join_path(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") }
}

/// How AWS prints a value in a message (Java `toString` of the unmarshalled object).
fn repr(v: &Value, shape: &Shape) -> String {
    match (shape, v) {
        (Shape::Blob { .. }, Value::String(s)) => {
            let n = base64::decoded_len(s);
            format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")
        }
        (Shape::List { member, member_str, .. }, Value::Array(items)) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match (member_str, item) {
                    (_, Value::Null) => "null".to_owned(),
                    (Some(s), _) => (*s).to_owned(),
                    (None, item) => repr(item, member),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
        (Shape::Map { .. }, Value::Object(map)) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        (_, Value::String(s)) => s.clone(),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::Number(n)) => n.to_string(),
        (_, other) => other.to_string(),
    }
}

fn length_bounds_message(lo: usize, hi: usize) -> String {
    format!(
        "[Member must have length less than or equal to {hi}, Member must have length greater \
         than or equal to {lo}]"
    )
}

fn check_value(v: &Value, shape: &Shape, path: &str, errs: &mut Violations) {
    if errs.full() {
        return;
    }
    match shape {
        Shape::Str { min, max, pattern, enums } => {
            let Some(s) = v.as_str() else { return };
            if let Some(p) = pattern
                && !p.matches(s)
            {
                let c = format!("Member must satisfy regular expression pattern: {}", p.source());
                errs.add(|| Some(s.to_owned()), path, &c);
            }
            let len = base64::utf16_len(s);
            if let Some(min) = *min
                && len < min
            {
                let c = format!("Member must have length greater than or equal to {min}");
                errs.add(|| Some(s.to_owned()), path, &c);
            }
            if let Some(max) = *max
                && len > max
            {
                let c = format!("Member must have length less than or equal to {max}");
                errs.add(|| Some(s.to_owned()), path, &c);
            }
            if let Some(values) = enums
                && !values.contains(&s)
            {
                let c = format!("Member must satisfy enum value set: [{}]", values.join(", "));
                errs.add(|| Some(s.to_owned()), path, &c);
            }
        }
        Shape::Int { min, max } => {
            let Some(i) = v.as_i64() else { return };
            if let Some(min) = *min
                && i < min
            {
                let c = format!("Member must have value greater than or equal to {min}");
                errs.add(|| Some(i.to_string()), path, &c);
            }
            if let Some(max) = *max
                && i > max
            {
                let c = format!("Member must have value less than or equal to {max}");
                errs.add(|| Some(i.to_string()), path, &c);
            }
        }
        Shape::Blob { max } => {
            let Some(s) = v.as_str() else { return };
            let len = base64::decoded_len(s);
            if let Some(max) = *max
                && len > max
            {
                let c = format!("Member must have length less than or equal to {max}");
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
        }
        Shape::Bool | Shape::Timestamp => {}
        Shape::List { member, min, max, child_lengths, .. } => {
            let Some(items) = v.as_array() else { return };
            if let Some(min) = *min
                && items.len() < min
            {
                let c = format!("Member must have length greater than or equal to {min}");
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            if let Some(max) = *max
                && items.len() > max
            {
                let c = format!("Member must have length less than or equal to {max}");
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            if let Some((lo, hi)) = *child_lengths
                && items
                    .iter()
                    .any(|x| x.as_str().is_some_and(|s| !(lo..=hi).contains(&base64::utf16_len(s))))
            {
                let c =
                    format!("Member must satisfy constraint: {}", length_bounds_message(lo, hi));
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            for (i, item) in items.iter().enumerate() {
                if errs.full() {
                    return;
                }
                let item_path = format!("{path}.{}.member", i + 1);
                if item.is_null() {
                    errs.add(|| None, &item_path, "Member must not be null");
                } else {
                    check_value(item, member, &item_path, errs);
                }
            }
        }
        Shape::Map { min, max, key_lengths, value_lengths } => {
            let Some(map) = v.as_object() else { return };
            if let Some(min) = *min
                && map.len() < min
            {
                let c = format!("Member must have length greater than or equal to {min}");
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            if let Some(max) = *max
                && map.len() > max
            {
                let c = format!("Member must have length less than or equal to {max}");
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            if let Some((lo, hi)) = *key_lengths
                && map.keys().any(|k| !(lo..=hi).contains(&base64::utf16_len(k)))
            {
                let c =
                    format!("Map keys must satisfy constraint: {}", length_bounds_message(lo, hi));
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
            if let Some((lo, hi)) = *value_lengths
                && map.values().any(|x| {
                    !(lo..=hi).contains(&base64::utf16_len(x.as_str().unwrap_or_default()))
                })
            {
                let c =
                    format!("Map value must satisfy constraint: {}", length_bounds_message(lo, hi));
                errs.add(|| Some(repr(v, shape)), path, &c);
            }
        }
        Shape::Struct(members) => {
            if let Some(map) = v.as_object() {
                check_struct(map, members, path, errs);
            }
        }
    }
}

fn check_struct(map: &Map<String, Value>, members: &[Member], parent: &str, errs: &mut Violations) {
    for m in members {
        if errs.full() {
            return;
        }
        let path = join_path(parent, &lower_first(m.name));
        match map.get(m.name) {
            None | Some(Value::Null) => {
                if m.required {
                    errs.add(|| None, &path, "Member must not be null");
                }
            }
            Some(v) => check_value(v, m.shape, &path, errs),
        }
    }
}

/// Type-checks, validates and deserializes one operation's input object.
fn parse_input<T: DeserializeOwned>(
    body: Map<String, Value>,
    members: &'static [Member],
) -> Result<T, ApiError> {
    let coerced = coerce_struct(body, members)?;
    let mut errs = Violations(Vec::new());
    check_struct(&coerced, members, "", &mut errs);
    if let Some(e) = errs.into_error() {
        return Err(e);
    }
    serde_json::from_value(Value::Object(coerced)).map_err(|e| ser(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// Most JSON values (objects, arrays and the members and elements in them) a request may hold
/// to be parsed into a `serde_json::Value`. The largest valid request, PutRecords with 500
/// entries of three members each, has about 3,000.
pub const JSON_ELEMENTS_MAX: usize = 16_384;

/// Whether `body` has at most `max` values, counting `{`, `[`, `,` and `:` outside strings
/// (an over-count of nothing: every element but the first of a container follows a comma).
/// One pass, no allocation; malformed JSON is left to the parser.
pub fn json_elements_within(body: &[u8], max: usize) -> bool {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' | b',' | b':' => {
                    count += 1;
                    if count > max {
                        return false;
                    }
                }
                _ => {}
            }
        }
    }
    true
}

/// Parses and validates a request body for `operation` (the part of `X-Amz-Target` after
/// `Kinesis_20131202.`). Never panics; every malformed input yields the `ApiError` AWS would
/// send. See the module docs for the order of checks.
pub fn parse_request(operation: &str, body: &[u8]) -> Result<Request, ApiError> {
    let op = Operation::from_name(operation);
    if body.is_empty() {
        return Err(match op {
            Some(_) => ser(""),
            None => ApiError::unknown_operation(),
        });
    }
    if let Some(request) = op.and_then(|op| fast_path(op, body)) {
        return Ok(request);
    }
    // A `Value` costs tens of bytes per element: bound the elements before building one, so a
    // 16 MiB body of `[0,0,...]` or `[{},{},...]` cannot take gigabytes.
    // Refused as AWS refuses a body it cannot parse: a bare SerializationException.
    if !json_elements_within(body, JSON_ELEMENTS_MAX) {
        return Err(ser(""));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(ser(""));
    };
    let Some(op) = op else {
        return Err(ApiError::unknown_operation());
    };
    let request = match op {
        Operation::AddTagsToStream => {
            Request::AddTagsToStream(parse_input(map, ADD_TAGS_TO_STREAM)?)
        }
        Operation::CreateStream => Request::CreateStream(parse_input(map, CREATE_STREAM)?),
        Operation::DecreaseStreamRetentionPeriod => {
            Request::DecreaseStreamRetentionPeriod(parse_input(map, RETENTION_PERIOD)?)
        }
        Operation::DeleteStream => Request::DeleteStream(parse_input(map, DELETE_STREAM)?),
        Operation::DeregisterStreamConsumer => {
            Request::DeregisterStreamConsumer(parse_input(map, CONSUMER)?)
        }
        Operation::DescribeLimits => Request::DescribeLimits(parse_input(map, DESCRIBE_LIMITS)?),
        Operation::DescribeStream => Request::DescribeStream(parse_input(map, DESCRIBE_STREAM)?),
        Operation::DescribeStreamConsumer => {
            Request::DescribeStreamConsumer(parse_input(map, CONSUMER)?)
        }
        Operation::DescribeStreamSummary => {
            Request::DescribeStreamSummary(parse_input(map, DESCRIBE_STREAM_SUMMARY)?)
        }
        Operation::GetRecords => Request::GetRecords(parse_input(map, GET_RECORDS)?),
        Operation::GetShardIterator => {
            Request::GetShardIterator(parse_input(map, GET_SHARD_ITERATOR)?)
        }
        Operation::IncreaseStreamRetentionPeriod => {
            Request::IncreaseStreamRetentionPeriod(parse_input(map, RETENTION_PERIOD)?)
        }
        Operation::ListShards => Request::ListShards(parse_input(map, LIST_SHARDS)?),
        Operation::ListStreamConsumers => {
            Request::ListStreamConsumers(parse_input(map, LIST_STREAM_CONSUMERS)?)
        }
        Operation::ListStreams => Request::ListStreams(parse_input(map, LIST_STREAMS)?),
        Operation::ListTagsForResource => {
            Request::ListTagsForResource(parse_input(map, LIST_TAGS_FOR_RESOURCE)?)
        }
        Operation::ListTagsForStream => {
            Request::ListTagsForStream(parse_input(map, LIST_TAGS_FOR_STREAM)?)
        }
        Operation::MergeShards => Request::MergeShards(parse_input(map, MERGE_SHARDS)?),
        Operation::PutRecord => Request::PutRecord(parse_input(map, PUT_RECORD)?),
        Operation::PutRecords => Request::PutRecords(parse_input(map, PUT_RECORDS)?),
        Operation::RegisterStreamConsumer => {
            Request::RegisterStreamConsumer(parse_input(map, REGISTER_STREAM_CONSUMER)?)
        }
        Operation::RemoveTagsFromStream => {
            Request::RemoveTagsFromStream(parse_input(map, REMOVE_TAGS_FROM_STREAM)?)
        }
        Operation::SplitShard => Request::SplitShard(parse_input(map, SPLIT_SHARD)?),
        Operation::SubscribeToShard => {
            Request::SubscribeToShard(parse_input(map, SUBSCRIBE_TO_SHARD)?)
        }
        Operation::TagResource => Request::TagResource(parse_input(map, TAG_RESOURCE)?),
        Operation::UntagResource => Request::UntagResource(parse_input(map, UNTAG_RESOURCE)?),
        Operation::UpdateShardCount => {
            Request::UpdateShardCount(parse_input(map, UPDATE_SHARD_COUNT)?)
        }
        Operation::UpdateStreamMode => {
            Request::UpdateStreamMode(parse_input(map, UPDATE_STREAM_MODE)?)
        }
    };
    check_addressing(&request)?;
    Ok(request)
}

/// Cross-member rules: every stream-addressed request names a stream (consistently), consumer
/// requests name a consumer, ARN-only inputs carry parseable ARNs.
fn check_addressing(request: &Request) -> Result<(), ApiError> {
    if let Some(r) = request.stream_ref() {
        r?;
    }
    match request {
        Request::DeregisterStreamConsumer(r) | Request::DescribeStreamConsumer(r) => {
            r.consumer_ref().map(drop)
        }
        Request::RegisterStreamConsumer(r) => r.stream().map(drop),
        Request::ListStreamConsumers(r) => r.stream().map(drop),
        Request::UpdateStreamMode(r) => r.stream().map(drop),
        Request::SubscribeToShard(r) => r.consumer().map(drop),
        Request::ListShards(r) => r.shard_filter.as_ref().map_or(Ok(()), ShardFilter::check),
        Request::TagResource(r) => r.resource_ref().map(drop),
        Request::UntagResource(r) => r.resource_ref().map(drop),
        Request::ListTagsForResource(r) => r.resource_ref().map(drop),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------------------------
// Fast path for the data plane
// ---------------------------------------------------------------------------------------------

/// PutRecord, PutRecords and GetRecords parsed straight into their typed inputs, for requests
/// that are plainly valid. Anything unusual (an ARN, a value near a limit, a type mismatch)
/// returns `None` and takes the general path above, which produces AWS's exact errors. The
/// checks here are a strict subset of the model's constraints, so both paths accept the same
/// requests.
fn fast_path(op: Operation, body: &[u8]) -> Option<Request> {
    fn name_ok(name: &Option<String>) -> bool {
        name.as_ref().is_some_and(|n| {
            (1..=STREAM_NAME_LENGTH_MAX).contains(&n.len()) && n.bytes().all(is_name_byte)
        })
    }
    fn key_ok(key: &str) -> bool {
        // Bytes bound UTF-16 units from above, so 1..=256 bytes is within 1..=256 units.
        !key.is_empty() && key.len() <= PARTITION_KEY_LENGTH_MAX
    }
    fn hash_key_ok(key: &Option<String>) -> bool {
        key.as_ref().is_none_or(|k| {
            (1..=HASH_KEY_DIGITS_MAX).contains(&k.len())
                && k.bytes().all(|b| b.is_ascii_digit())
                && (k == "0" || !k.starts_with('0'))
        })
    }
    match op {
        Operation::PutRecords => {
            let r: PutRecordsInput = serde_json::from_slice(body).ok()?;
            let ok = r.stream_arn.is_none()
                && name_ok(&r.stream_name)
                && (1..=PUT_RECORDS_ENTRIES_MAX).contains(&r.records.len())
                && r.records.iter().all(|e| {
                    key_ok(&e.partition_key)
                        && e.data.len() <= RECORD_DATA_BYTES_MAX
                        && hash_key_ok(&e.explicit_hash_key)
                });
            ok.then_some(Request::PutRecords(r))
        }
        Operation::PutRecord => {
            let r: PutRecordInput = serde_json::from_slice(body).ok()?;
            let ok = r.stream_arn.is_none()
                && name_ok(&r.stream_name)
                && key_ok(&r.partition_key)
                && r.data.len() <= RECORD_DATA_BYTES_MAX
                && hash_key_ok(&r.explicit_hash_key)
                && r.sequence_number_for_ordering.is_none();
            ok.then_some(Request::PutRecord(r))
        }
        Operation::GetRecords => {
            let r: GetRecordsInput = serde_json::from_slice(body).ok()?;
            let ok = r.stream_arn.is_none()
                && (1..=SHARD_ITERATOR_LENGTH_MAX).contains(&r.shard_iterator.len())
                && r.limit.is_none_or(|l| (1..=GET_RECORDS_COUNT_MAX as i32).contains(&l));
            ok.then_some(Request::GetRecords(r))
        }
        _ => None,
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// The fast path and the general path agree on valid requests, and the fast path declines
    /// anything it does not fully check.
    #[test]
    fn agrees_with_the_general_path() {
        let valid = br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"},{"Data":"","PartitionKey":"k2","ExplicitHashKey":"123"}]}"#;
        let fast = fast_path(Operation::PutRecords, valid).expect("fast path takes it");
        let Value::Object(map) = serde_json::from_slice::<Value>(valid).unwrap() else { panic!() };
        let general = Request::PutRecords(parse_input(map, PUT_RECORDS).unwrap());
        assert_eq!(fast, general);
        for declined in [
            &br#"{"StreamName":"s","Records":[]}"#[..],
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":""}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"01"}]}"#,
            br#"{"StreamName":"bad name","Records":[{"Data":"aGk=","PartitionKey":"k"}]}"#,
            br#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","Records":[{"Data":"aGk=","PartitionKey":"k"}]}"#,
            br#"{"StreamName":"s","Records":[{"Data":"!!","PartitionKey":"k"}]}"#,
        ] {
            assert!(fast_path(Operation::PutRecords, declined).is_none(), "{}", String::from_utf8_lossy(declined));
        }
        let put = br#"{"StreamName":"s","Data":"aGk=","PartitionKey":"k"}"#;
        assert!(fast_path(Operation::PutRecord, put).is_some());
        assert!(parse_request("PutRecord", put).is_ok());
    }
}
