use super::*;
use crate::error::ErrorKind;
use crate::types::{ShardIteratorType, StreamMode};

fn err(op: &str, body: &str) -> ApiError {
    match parse_request(op, body.as_bytes()) {
        Ok(r) => panic!("expected an error for {op} {body}, got {r:?}"),
        Err(e) => e,
    }
}

fn validation(op: &str, body: &str) -> String {
    let e = err(op, body);
    assert_eq!(e.kind, ErrorKind::ValidationException, "{e}");
    e.message
}

fn serialization(op: &str, body: &str) -> String {
    let e = err(op, body);
    assert_eq!(e.kind, ErrorKind::SerializationException, "{e}");
    e.message
}

// ----- envelope -----

#[test]
fn empty_malformed_and_unknown() {
    assert_eq!(err("PutRecord", ""), ApiError::serialization(""));
    assert_eq!(err("NoSuchThing", ""), ApiError::unknown_operation());
    assert_eq!(err("PutRecord", "{"), ApiError::serialization(""));
    assert_eq!(err("PutRecord", "[]"), ApiError::serialization(""));
    assert_eq!(err("PutRecord", "null"), ApiError::serialization(""));
    assert_eq!(err("PutRecord", "\"x\""), ApiError::serialization(""));
    assert_eq!(err("PutRecord", "{} trailing"), ApiError::serialization(""));
    assert_eq!(err("NoSuchThing", "{}"), ApiError::unknown_operation());
    assert_eq!(err("putRecord", "{}"), ApiError::unknown_operation());
    assert_eq!(err("NoSuchThing", "{"), ApiError::serialization(""));
    let deep = "[".repeat(100_000);
    assert_eq!(err("PutRecord", &deep), ApiError::serialization(""));
    assert_eq!(
        String::from_utf8(err("NoSuchThing", "{}").to_json()).unwrap(),
        r#"{"__type":"UnknownOperationException"}"#
    );
}

#[test]
fn describe_limits_accepts_anything_object() {
    assert_eq!(
        parse_request("DescribeLimits", b"{\"Junk\":[1,2,{}]}"),
        Ok(Request::DescribeLimits(DescribeLimitsInput {}))
    );
}

// ----- ValidationException messages (AWS wording, as recorded by kinesalite) -----

#[test]
fn put_records_empty_values() {
    assert_eq!(
        validation(
            "PutRecords",
            r#"{"StreamName":"","Records":[{"PartitionKey":"","Data":"","ExplicitHashKey":""}]}"#
        ),
        "4 validation errors detected: \
         Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: \
         Member must have length greater than or equal to 1; \
         Value '' at 'records.1.member.explicitHashKey' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
}

#[test]
fn put_records_long_values() {
    let name = "a".repeat(129);
    let pk = "a".repeat(257);
    let data = crate::base64::encode(&vec![0u8; RECORD_DATA_BYTES_MAX + 1]);
    let body = format!(
        r#"{{"StreamName":"{name}","Records":[{{"PartitionKey":"{pk}","Data":"{data}","ExplicitHashKey":""}}]}}"#
    );
    assert_eq!(
        validation("PutRecords", &body),
        format!(
            "4 validation errors detected: \
             Value '{pk}' at 'records.1.member.partitionKey' failed to satisfy constraint: \
             Member must have length less than or equal to 256; \
             Value '' at 'records.1.member.explicitHashKey' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}}); \
             Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at \
             'records.1.member.data' failed to satisfy constraint: \
             Member must have length less than or equal to 1048576; \
             Value '{name}' at 'streamName' failed to satisfy constraint: \
             Member must have length less than or equal to 128"
        )
    );
}

#[test]
fn put_records_too_many_records_caps_at_ten() {
    let records = vec![r#"{"PartitionKey":"","Data":""}"#; 501].join(",");
    let body = format!(r#"{{"StreamName":"","Records":[{records}]}}"#);
    let entries = vec!["com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@2"; 501].join(", ");
    let mut want = format!(
        "10 validation errors detected: Value '[{entries}]' at 'records' failed to satisfy \
         constraint: Member must have length less than or equal to 500"
    );
    for i in 1..=9 {
        want.push_str(&format!(
            "; Value '' at 'records.{i}.member.partitionKey' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        ));
    }
    assert_eq!(validation("PutRecords", &body), want);
}

#[test]
fn put_records_null_and_empty() {
    assert_eq!(
        validation("PutRecords", "{}"),
        "1 validation error detected: Value null at 'records' failed to satisfy constraint: \
         Member must not be null"
    );
    assert_eq!(
        validation("PutRecords", r#"{"StreamName":"s","Records":[]}"#),
        "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    assert_eq!(
        validation("PutRecords", r#"{"StreamName":"s","Records":[null,{"Data":""}]}"#),
        "2 validation errors detected: \
         Value null at 'records.1.member' failed to satisfy constraint: Member must not be null; \
         Value null at 'records.2.member.partitionKey' failed to satisfy constraint: \
         Member must not be null"
    );
}

#[test]
fn put_record_messages() {
    assert_eq!(
        validation("PutRecord", "{}"),
        "2 validation errors detected: \
         Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; \
         Value null at 'data' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        validation(
            "PutRecord",
            r#"{"StreamName":"","PartitionKey":"","Data":"","ExplicitHashKey":"","SequenceNumberForOrdering":""}"#
        ),
        "5 validation errors detected: \
         Value '' at 'sequenceNumberForOrdering' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128}); \
         Value '' at 'partitionKey' failed to satisfy constraint: \
         Member must have length greater than or equal to 1; \
         Value '' at 'explicitHashKey' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
}

#[test]
fn create_stream_messages() {
    assert_eq!(
        validation("CreateStream", "{}"),
        "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: \
         Member must not be null"
    );
    assert_eq!(
        validation("CreateStream", r#"{"StreamName":"","ShardCount":0}"#),
        "3 validation errors detected: \
         Value '0' at 'shardCount' failed to satisfy constraint: \
         Member must have value greater than or equal to 1; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let name = "a".repeat(129);
    assert_eq!(
        validation(
            "CreateStream",
            &format!(r#"{{"StreamName":"{name}","ShardCount":100000000000}}"#)
        ),
        format!(
            "1 validation error detected: Value '{name}' at 'streamName' failed to satisfy \
             constraint: Member must have length less than or equal to 128"
        )
    );
    assert_eq!(
        validation("CreateStream", r#"{"StreamName":"s","StreamModeDetails":{}}"#),
        "1 validation error detected: Value null at 'streamModeDetails.streamMode' failed to \
         satisfy constraint: Member must not be null"
    );
    assert_eq!(
        validation(
            "CreateStream",
            r#"{"StreamName":"s","StreamModeDetails":{"StreamMode":"FAST"}}"#
        ),
        "1 validation error detected: Value 'FAST' at 'streamModeDetails.streamMode' failed to \
         satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]"
    );
    assert_eq!(
        validation("CreateStream", r#"{"StreamName":"a b"}"#),
        "1 validation error detected: Value 'a b' at 'streamName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
}

#[test]
fn get_shard_iterator_messages() {
    assert_eq!(
        validation(
            "GetShardIterator",
            r#"{"StreamName":"s","ShardId":"shardId-0","ShardIteratorType":"NOPE"}"#
        ),
        "1 validation error detected: Value 'NOPE' at 'shardIteratorType' failed to satisfy \
         constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, \
         AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
    );
    assert_eq!(
        validation("GetShardIterator", "{}"),
        "2 validation errors detected: \
         Value null at 'shardId' failed to satisfy constraint: Member must not be null; \
         Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn tag_messages() {
    assert_eq!(
        validation("AddTagsToStream", r#"{"StreamName":"","Tags":{}}"#),
        "3 validation errors detected: \
         Value '{}' at 'tags' failed to satisfy constraint: \
         Member must have length greater than or equal to 1; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'streamName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let long = "k".repeat(129);
    assert_eq!(
        validation("AddTagsToStream", &format!(r#"{{"StreamName":"s","Tags":{{"{long}":"v"}}}}"#)),
        format!(
            "1 validation error detected: Value '{{{long}=v}}' at 'tags' failed to satisfy \
             constraint: Map keys must satisfy constraint: [Member must have length less than \
             or equal to 128, Member must have length greater than or equal to 1]"
        )
    );
    assert_eq!(
        validation("RemoveTagsFromStream", r#"{"StreamName":"s","TagKeys":["a",""]}"#),
        "1 validation error detected: Value '[a, ]' at 'tagKeys' failed to satisfy constraint: \
         Member must satisfy constraint: [Member must have length less than or equal to 128, \
         Member must have length greater than or equal to 1]"
    );
    assert_eq!(
        validation("TagResource", "{}"),
        "2 validation errors detected: \
         Value null at 'resourceARN' failed to satisfy constraint: Member must not be null; \
         Value null at 'tags' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn numeric_ranges() {
    assert_eq!(
        validation("GetRecords", r#"{"ShardIterator":"x","Limit":10001}"#),
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: \
         Member must have value less than or equal to 10000"
    );
    assert_eq!(
        validation("GetRecords", r#"{"ShardIterator":"","Limit":0}"#),
        "2 validation errors detected: \
         Value '0' at 'limit' failed to satisfy constraint: \
         Member must have value greater than or equal to 1; \
         Value '' at 'shardIterator' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let it = "i".repeat(513);
    assert!(
        validation("GetRecords", &format!(r#"{{"ShardIterator":"{it}"}}"#))
            .ends_with("Member must have length less than or equal to 512")
    );
    assert_eq!(
        validation("ListShards", r#"{"StreamName":"s","MaxResults":0}"#),
        "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: \
         Member must have value greater than or equal to 1"
    );
    assert_eq!(
        validation("ListTagsForStream", r#"{"StreamName":"s","Limit":51}"#),
        "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: \
         Member must have value less than or equal to 50"
    );
    assert_eq!(
        validation(
            "UpdateShardCount",
            r#"{"StreamName":"s","TargetShardCount":0,"ScalingType":"X"}"#
        ),
        "2 validation errors detected: \
         Value 'X' at 'scalingType' failed to satisfy constraint: \
         Member must satisfy enum value set: [UNIFORM_SCALING]; \
         Value '0' at 'targetShardCount' failed to satisfy constraint: \
         Member must have value greater than or equal to 1"
    );
    // Fractions are floored, huge values clamped to the Integer range.
    match parse_request("GetRecords", br#"{"ShardIterator":"x","Limit":2.9}"#) {
        Ok(Request::GetRecords(r)) => assert_eq!(r.limit, Some(2)),
        other => panic!("{other:?}"),
    }
    assert!(
        validation("GetRecords", r#"{"ShardIterator":"x","Limit":1e30}"#).contains("'2147483647'")
    );
    assert!(
        validation("GetRecords", r#"{"ShardIterator":"x","Limit":-99999999999}"#)
            .contains("'-2147483648'")
    );
}

#[test]
fn arn_and_consumer_patterns() {
    assert_eq!(
        validation("ListStreamConsumers", r#"{"StreamARN":"nope"}"#),
        "1 validation error detected: Value 'nope' at 'streamARN' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"
    );
    assert_eq!(
        validation(
            "SubscribeToShard",
            r#"{"ConsumerARN":"x","ShardId":"s","StartingPosition":{}}"#
        ),
        "2 validation errors detected: \
         Value 'x' at 'consumerARN' failed to satisfy constraint: Member must satisfy regular \
         expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+; \
         Value null at 'startingPosition.type' failed to satisfy constraint: Member must not be null"
    );
    assert!(
        validation("RegisterStreamConsumer", r#"{"StreamARN":"arn:aws:kinesis:r:123456789012:stream/s","ConsumerName":"a/b"}"#)
            .contains("at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    );
}

#[test]
fn pattern_matcher() {
    let p = Pattern::StreamArn;
    assert!(p.matches("arn:aws:kinesis:us-east-1:123456789012:stream/my-stream"));
    assert!(p.matches("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/x"));
    assert!(p.matches("arn:aws:kinesis::123456789012:stream/x"));
    assert!(p.matches("arn:aws:kinesis:a:b:123456789012:stream/x/y"));
    assert!(!p.matches("arn:aws:kinesis:us-east-1:12345678901:stream/x"));
    assert!(!p.matches("arn:aws:kinesis:us-east-1:123456789012:stream/"));
    assert!(!p.matches("arn:aws:kinesis:us-east-1:123456789012:stream/a b"));
    assert!(!p.matches("arn:aws:kinesis:us\neast:123456789012:stream/x"));
    assert!(!p.matches("arn:aws:kinesis:us\u{2028}:123456789012:stream/x"));
    assert!(p.matches("arn:aws:kinesis:üs:123456789012:stream/é"));
    assert!(!p.matches("xarn:aws:kinesis:us-east-1:123456789012:stream/x"));
    assert!(!p.matches("arn:aws:sqs:us-east-1:123456789012:stream/x"));

    let r = Pattern::ResourceArn;
    assert!(r.matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1"));
    assert!(r.matches("arn:aws:kinesis:us-east-1:123456789012:foostream/s"));
    assert!(!r.matches("arn:aws:kinesis:us-east-1:123456789012:table/s"));

    let c = Pattern::ConsumerArn;
    assert!(c.matches("arn:aws:kinesis:us-west-2:123456789012:stream/s1/consumer/c1:1532113838"));
    assert!(!c.matches("arn:aws:kinesis:us-west-2:123456789012:stream/s1/consumer/c1:"));
    assert!(!c.matches("arn:aws:kinesis:us-west-2:123456789012:stream/s1/consumer/c/1:5"));
    assert!(!c.matches("arn:aws:kinesis:us-west-2:123456789012:stream/s1"));

    assert!(Pattern::HashKey.matches("0"));
    assert!(Pattern::HashKey.matches("340282366920938463463374607431768211455"));
    assert!(Pattern::HashKey.matches(&format!("1{}", "0".repeat(38))));
    assert!(!Pattern::HashKey.matches(&format!("1{}", "0".repeat(39))));
    assert!(!Pattern::HashKey.matches("01"));
    assert!(!Pattern::HashKey.matches(""));
    assert!(!Pattern::HashKey.matches("-1"));
    assert!(Pattern::SequenceNumber.matches(&format!("9{}", "9".repeat(128))));
    assert!(!Pattern::SequenceNumber.matches(&format!("9{}", "9".repeat(129))));
    assert!(Pattern::Name.matches("a-Z_0.9"));
    assert!(!Pattern::Name.matches("a/b"));

    // Adversarial inputs stay linear: megabytes of near-misses complete quickly.
    let nasty = format!("arn:aws{}", ":kinesis::000000000000:".repeat(60_000));
    let start = std::time::Instant::now();
    assert!(!Pattern::ConsumerArn.matches(&nasty));
    assert!(!Pattern::ResourceArn.matches(&nasty));
    assert!(!Pattern::StreamArn.matches(&nasty));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

// ----- SerializationException messages -----

#[test]
fn string_member_type_errors() {
    let cases = [
        ("true", "class java.lang.Boolean can not be converted to an String"),
        (
            "23",
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted \
             to an String",
        ),
        (
            "34.56",
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        ("[]", "Start of list found where not expected"),
        ("{}", "Start of structure or map found where not expected."),
    ];
    for (v, msg) in cases {
        assert_eq!(serialization("DescribeStream", &format!(r#"{{"StreamName":{v}}}"#)), msg);
        assert_eq!(
            serialization("PutRecords", &format!(r#"{{"Records":[{{"PartitionKey":{v}}}]}}"#)),
            msg
        );
    }
}

#[test]
fn integer_member_type_errors() {
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":"s","ShardCount":"23"}"#),
        "class java.lang.String can not be converted to an Integer"
    );
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":"s","ShardCount":true}"#),
        "class java.lang.Boolean can not be converted to an Integer"
    );
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":"s","ShardCount":[]}"#),
        "Start of list found where not expected"
    );
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":"s","ShardCount":{}}"#),
        "Start of structure or map found where not expected."
    );
}

#[test]
fn blob_member_type_errors() {
    let cases = [
        ("true", "class java.lang.Boolean can not be converted to a Blob".to_owned()),
        (
            "23",
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted \
             to a Blob"
                .to_owned(),
        ),
        ("[]", "Start of list found where not expected".to_owned()),
        ("{}", "Start of structure or map found where not expected.".to_owned()),
        (
            "\"23456\"",
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a \
             multiple of 4 bytes but found: 5"
                .to_owned(),
        ),
        (
            "\"=+/=\"",
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='".to_owned(),
        ),
        (
            "\"+/+=\"",
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character \
             dectected"
                .to_owned(),
        ),
    ];
    for (v, msg) in cases {
        assert_eq!(
            serialization(
                "PutRecord",
                &format!(r#"{{"StreamName":"s","PartitionKey":"p","Data":{v}}}"#)
            ),
            msg
        );
    }
}

#[test]
fn container_type_errors() {
    for v in ["true", "23", "\"x\""] {
        assert_eq!(
            serialization("PutRecords", &format!(r#"{{"Records":{v}}}"#)),
            "Expected list or null"
        );
        assert_eq!(
            serialization("AddTagsToStream", &format!(r#"{{"Tags":{v}}}"#)),
            "Expected map or null"
        );
        assert_eq!(
            serialization("PutRecords", &format!(r#"{{"Records":[{v}]}}"#)),
            "Expected null"
        );
    }
    assert_eq!(
        serialization("PutRecords", r#"{"Records":{}}"#),
        "Start of structure or map found where not expected."
    );
    assert_eq!(
        serialization("AddTagsToStream", r#"{"Tags":[]}"#),
        "Start of list found where not expected"
    );
    assert_eq!(
        serialization("AddTagsToStream", r#"{"Tags":{"a":1}}"#),
        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to \
         an String"
    );
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":"s","StreamModeDetails":[]}"#),
        "Start of list found where not expected"
    );
}

#[test]
fn boolean_and_timestamp_members() {
    assert_eq!(
        serialization("DeleteStream", r#"{"StreamName":"s","EnforceConsumerDeletion":1}"#),
        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to \
         an Boolean"
    );
    assert_eq!(
        serialization("DeleteStream", r#"{"StreamName":"s","EnforceConsumerDeletion":"yes"}"#),
        "'YES' can not be converted to an Boolean"
    );
    match parse_request("DeleteStream", br#"{"StreamName":"s","EnforceConsumerDeletion":"TRUE"}"#) {
        Ok(Request::DeleteStream(r)) => assert_eq!(r.enforce_consumer_deletion, Some(true)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        serialization("ListShards", r#"{"StreamName":"s","StreamCreationTimestamp":true}"#),
        "class java.lang.Boolean can not be converted to milliseconds since epoch"
    );
    assert_eq!(
        serialization("ListShards", r#"{"StreamName":"s","StreamCreationTimestamp":"soon"}"#),
        "class java.lang.String can not be converted to milliseconds since epoch"
    );
    for (v, ms) in [
        ("1459799926.480", 1_459_799_926_480),
        ("1459799926", 1_459_799_926_000),
        ("\"1459799926.480\"", 1_459_799_926_480),
        ("\"2016-04-04T19:58:46.480-00:00\"", 1_459_799_926_480),
    ] {
        let body = format!(
            r#"{{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":{v}}}"#
        );
        match parse_request("GetShardIterator", body.as_bytes()) {
            Ok(Request::GetShardIterator(r)) => {
                assert_eq!(r.timestamp, Some(Timestamp(ms)));
                assert_eq!(r.shard_iterator_type, ShardIteratorType::AtTimestamp);
                assert_eq!(r.position(), Ok(IteratorPosition::AtTimestamp(Timestamp(ms))));
            }
            other => panic!("{v}: {other:?}"),
        }
    }
}

// ----- successful parses -----

#[test]
fn put_record_parses_and_decodes_data() {
    let body = br#"{"StreamName":"s","PartitionKey":"pk","Data":"aGVsbG8=","ExplicitHashKey":"42","Unknown":{"x":[1]},"StreamARN":null}"#;
    match parse_request("PutRecord", body) {
        Ok(Request::PutRecord(r)) => {
            assert_eq!(&r.data[..], b"hello");
            assert_eq!(r.partition_key, "pk");
            assert_eq!(r.explicit_hash_key.as_deref(), Some("42"));
            assert_eq!(r.stream_ref(), Ok(StreamRef::Name("s".into())));
        }
        other => panic!("{other:?}"),
    }
    let data = crate::base64::encode(&vec![7u8; RECORD_DATA_BYTES_MAX]);
    let body = format!(r#"{{"StreamName":"s","PartitionKey":"p","Data":"{data}"}}"#);
    match parse_request("PutRecord", body.as_bytes()) {
        Ok(Request::PutRecord(r)) => assert_eq!(r.data.len(), RECORD_DATA_BYTES_MAX),
        other => panic!("{other:?}"),
    }
}

#[test]
fn put_records_parses() {
    let body = br#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","Records":[{"PartitionKey":"a","Data":""},{"PartitionKey":"b","Data":"AA==","ExplicitHashKey":"0"}]}"#;
    match parse_request("PutRecords", body) {
        Ok(Request::PutRecords(r)) => {
            assert_eq!(r.records.len(), 2);
            assert!(r.records[0].data.is_empty());
            assert_eq!(&r.records[1].data[..], &[0u8]);
            assert_eq!(
                r.stream_ref(),
                Ok(StreamRef::Arn {
                    region: "us-east-1".into(),
                    account: "123456789012".into(),
                    name: "s".into()
                })
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_stream_parses() {
    let body = br#"{"StreamName":"s","ShardCount":3,"StreamModeDetails":{"StreamMode":"ON_DEMAND"},"Tags":{"k":"v","n":null}}"#;
    match parse_request("CreateStream", body) {
        Ok(Request::CreateStream(r)) => {
            assert_eq!(r.shard_count, Some(3));
            assert_eq!(r.stream_mode_details.map(|d| d.stream_mode), Some(StreamMode::OnDemand));
            let tags = r.tags.unwrap();
            assert_eq!(tags.get("k").map(String::as_str), Some("v"));
            assert_eq!(tags.get("n").map(String::as_str), Some(""));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_operation_parses_a_minimal_valid_body() {
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s";
    let carn = "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000";
    let bodies: Vec<(&str, String)> = vec![
        ("AddTagsToStream", r#"{"StreamName":"s","Tags":{"a":"b"}}"#.into()),
        ("CreateStream", r#"{"StreamName":"s","ShardCount":1}"#.into()),
        ("DecreaseStreamRetentionPeriod", r#"{"StreamName":"s","RetentionPeriodHours":24}"#.into()),
        ("DeleteStream", format!(r#"{{"StreamARN":"{arn}"}}"#)),
        ("DeregisterStreamConsumer", format!(r#"{{"ConsumerARN":"{carn}"}}"#)),
        ("DescribeLimits", "{}".into()),
        ("DescribeStream", r#"{"StreamName":"s","Limit":5}"#.into()),
        ("DescribeStreamConsumer", format!(r#"{{"StreamARN":"{arn}","ConsumerName":"c"}}"#)),
        ("DescribeStreamSummary", r#"{"StreamName":"s"}"#.into()),
        ("GetRecords", r#"{"ShardIterator":"abc"}"#.into()),
        (
            "GetShardIterator",
            r#"{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}"#
                .into(),
        ),
        ("IncreaseStreamRetentionPeriod", r#"{"StreamName":"s","RetentionPeriodHours":48}"#.into()),
        ("ListShards", r#"{"NextToken":"t"}"#.into()),
        ("ListStreamConsumers", format!(r#"{{"StreamARN":"{arn}"}}"#)),
        ("ListStreams", "{}".into()),
        ("ListTagsForResource", format!(r#"{{"ResourceARN":"{carn}"}}"#)),
        ("ListTagsForStream", r#"{"StreamName":"s"}"#.into()),
        (
            "MergeShards",
            r#"{"StreamName":"s","ShardToMerge":"shardId-0","AdjacentShardToMerge":"shardId-1"}"#
                .into(),
        ),
        ("PutRecord", r#"{"StreamName":"s","PartitionKey":"p","Data":""}"#.into()),
        ("PutRecords", r#"{"StreamName":"s","Records":[{"PartitionKey":"p","Data":""}]}"#.into()),
        ("RegisterStreamConsumer", format!(r#"{{"StreamARN":"{arn}","ConsumerName":"c"}}"#)),
        ("RemoveTagsFromStream", r#"{"StreamName":"s","TagKeys":["a"]}"#.into()),
        (
            "SplitShard",
            r#"{"StreamName":"s","ShardToSplit":"shardId-0","NewStartingHashKey":"1"}"#.into(),
        ),
        (
            "SubscribeToShard",
            format!(
                r#"{{"ConsumerARN":"{carn}","ShardId":"shardId-0","StartingPosition":{{"Type":"AT_SEQUENCE_NUMBER","SequenceNumber":"1"}}}}"#
            ),
        ),
        ("TagResource", format!(r#"{{"ResourceARN":"{arn}","Tags":{{"a":"b"}}}}"#)),
        ("UntagResource", format!(r#"{{"ResourceARN":"{arn}","TagKeys":["a"]}}"#)),
        (
            "UpdateShardCount",
            r#"{"StreamName":"s","TargetShardCount":2,"ScalingType":"UNIFORM_SCALING"}"#.into(),
        ),
        (
            "UpdateStreamMode",
            format!(
                r#"{{"StreamARN":"{arn}","StreamModeDetails":{{"StreamMode":"PROVISIONED"}}}}"#
            ),
        ),
    ];
    assert_eq!(bodies.len(), Operation::ALL.len());
    for (op, body) in &bodies {
        let r = parse_request(op, body.as_bytes()).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(r.operation().name(), *op);
        // Serializing the typed input and parsing it again yields the same request.
        let again = match &r {
            Request::PutRecord(x) => crate::to_json(x),
            Request::PutRecords(x) => crate::to_json(x),
            Request::SubscribeToShard(x) => crate::to_json(x),
            Request::CreateStream(x) => crate::to_json(x),
            _ => body.clone().into_bytes(),
        };
        assert_eq!(parse_request(op, &again).as_ref(), Ok(&r), "{op}");
    }
}

// ----- cross-member rules -----

#[test]
fn stream_addressing() {
    for op in ["DescribeStream", "DescribeStreamSummary", "DeleteStream", "ListTagsForStream"] {
        assert_eq!(err(op, "{}"), ApiError::stream_name_or_arn_required(), "{op}");
    }
    assert_eq!(
        err("PutRecord", r#"{"PartitionKey":"p","Data":""}"#),
        ApiError::stream_name_or_arn_required()
    );
    assert_eq!(
        err(
            "DescribeStream",
            r#"{"StreamName":"a","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/b"}"#
        )
        .kind,
        ErrorKind::InvalidArgumentException
    );
    assert!(
        parse_request(
            "DescribeStream",
            br#"{"StreamName":"b","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/b"}"#
        )
        .is_ok()
    );
}

#[test]
fn list_shards_rules() {
    assert_eq!(err("ListShards", "{}"), ApiError::next_token_or_stream_name_required());
    assert_eq!(
        err("ListShards", r#"{"StreamName":"s","NextToken":"t"}"#),
        ApiError::next_token_and_stream_name()
    );
    match parse_request(
        "ListShards",
        br#"{"StreamName":"s","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1.5}}"#,
    ) {
        Ok(Request::ListShards(r)) => {
            let f = r.shard_filter.unwrap();
            assert_eq!(f.r#type, crate::types::ShardFilterType::AtTimestamp);
            assert_eq!(f.timestamp, Some(Timestamp(1500)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        validation("ListShards", r#"{"StreamName":"s","ShardFilter":{"Type":"NOPE"}}"#),
        "1 validation error detected: Value 'NOPE' at 'shardFilter.type' failed to satisfy \
         constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, \
         FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]"
    );
}

#[test]
fn consumer_addressing() {
    assert_eq!(err("DescribeStreamConsumer", "{}"), ApiError::consumer_ref_required());
    assert_eq!(
        err(
            "DescribeStreamConsumer",
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s"}"#
        ),
        ApiError::consumer_ref_required()
    );
    let carn = "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1";
    assert_eq!(
        err("DescribeStreamConsumer", &format!(r#"{{"ConsumerARN":"{carn}","ConsumerName":"d"}}"#))
            .kind,
        ErrorKind::InvalidArgumentException
    );
    match parse_request(
        "DeregisterStreamConsumer",
        format!(r#"{{"ConsumerARN":"{carn}"}}"#).as_bytes(),
    ) {
        Ok(Request::DeregisterStreamConsumer(r)) => match r.consumer_ref() {
            Ok(ConsumerRef::Arn(a)) => {
                assert_eq!((a.stream_name.as_str(), a.consumer_name.as_str()), ("s", "c"))
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn subscribe_position_rules() {
    let carn = "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1";
    let body = format!(
        r#"{{"ConsumerARN":"{carn}","ShardId":"shardId-0","StartingPosition":{{"Type":"LATEST","SequenceNumber":"5"}}}}"#
    );
    match parse_request("SubscribeToShard", body.as_bytes()) {
        Ok(Request::SubscribeToShard(r)) => {
            assert_eq!(
                r.starting_position.position(),
                Err(ApiError::iterator_type_sequence_mismatch("LATEST", true))
            );
            assert_eq!(r.consumer().map(|c| c.creation_secs), Ok(1));
        }
        other => panic!("{other:?}"),
    }
}

// ----- robustness -----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_json(rng: &mut Rng, depth: u32) -> String {
    const KEYS: &[&str] = &[
        "StreamName",
        "StreamARN",
        "Records",
        "Data",
        "PartitionKey",
        "ExplicitHashKey",
        "ShardCount",
        "Tags",
        "TagKeys",
        "Limit",
        "ShardId",
        "ShardIteratorType",
        "Timestamp",
        "StartingPosition",
        "Type",
        "SequenceNumber",
        "ConsumerARN",
        "ConsumerName",
        "ShardFilter",
        "StreamModeDetails",
        "StreamMode",
        "ResourceARN",
        "NextToken",
        "MaxResults",
        "TargetShardCount",
        "ScalingType",
        "EnforceConsumerDeletion",
        "RetentionPeriodHours",
        "ShardIterator",
        "StreamCreationTimestamp",
    ];
    const SCALARS: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "1e300",
        "18446744073709551616",
        "\"\"",
        "\"s\"",
        "\"AAAA\"",
        "\"A===\"",
        "\"é😀\"",
        "\"LATEST\"",
        "\"AT_TIMESTAMP\"",
        "\"arn:aws:kinesis:us-east-1:123456789012:stream/s\"",
        "\"arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1\"",
        "\"2016-04-04T19:58:46.480Z\"",
        "\"ON_DEMAND\"",
        "\"UNIFORM_SCALING\"",
    ];
    match if depth == 0 { 0 } else { rng.below(4) } {
        0 | 1 => SCALARS[rng.below(SCALARS.len())].to_owned(),
        2 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| random_json(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let n = rng.below(6);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    format!("\"{}\":{}", KEYS[rng.below(KEYS.len())], random_json(rng, depth - 1))
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    for i in 0..20_000 {
        let op = Operation::ALL[i % Operation::ALL.len()].name();
        let body = random_json(&mut rng, 4);
        let _ = parse_request(op, body.as_bytes());
        // Also arbitrary bytes.
        let n = rng.below(40);
        let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let _ = parse_request(op, &junk);
    }
}

#[test]
fn shard_filter_and_retention_rules() {
    assert_eq!(
        err("ListShards", r#"{"StreamName":"s","ShardFilter":{"Type":"AFTER_SHARD_ID"}}"#).kind,
        ErrorKind::InvalidArgumentException
    );
    assert_eq!(
        err("ListShards", r#"{"StreamName":"s","ShardFilter":{"Type":"FROM_TIMESTAMP"}}"#).kind,
        ErrorKind::InvalidArgumentException
    );
    assert!(
        parse_request("ListShards", br#"{"StreamName":"s","ShardFilter":{"Type":"AT_LATEST"}}"#)
            .is_ok()
    );
    let parse = |h: i32| match parse_request(
        "IncreaseStreamRetentionPeriod",
        format!(r#"{{"StreamName":"s","RetentionPeriodHours":{h}}}"#).as_bytes(),
    ) {
        Ok(Request::IncreaseStreamRetentionPeriod(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(parse(24).check_bounds(), Ok(()));
    assert_eq!(parse(8760).check_bounds(), Ok(()));
    assert_eq!(
        parse(23).check_bounds().unwrap_err().message,
        "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is \
         too short."
    );
    assert_eq!(
        parse(8761).check_bounds().unwrap_err().message,
        "Maximum allowed retention period is 8760 hours. Requested retention period (8761 \
         hours) is too long."
    );
}

#[test]
fn json_values_are_counted_outside_strings_and_bounded() {
    assert!(json_elements_within(br#"{"a":[1,2,"x,y:{["]}"#, 5));
    assert!(!json_elements_within(br#"{"a":[1,2,"x,y:{["]}"#, 4));
    assert!(
        json_elements_within(br#"{"a":"\"[,{"}"#, 2),
        "an escaped quote does not end the string"
    );
    assert!(!json_elements_within(br#"{"a":"\\",[,{]}"#, 3), "an escaped backslash does");

    // A body of many tiny values is refused before it is built into a `Value`.
    let zeros = vec!["0"; 20_000].join(",");
    let body = format!(r#"{{"Limit":[{zeros}]}}"#);
    assert!(!json_elements_within(body.as_bytes(), JSON_ELEMENTS_MAX));
    assert_eq!(serialization("ListStreams", &body), "");
    let objects = vec!["{}"; 20_000].join(",");
    assert_eq!(serialization("Frobnicate", &format!("[{objects}]")), "");

    // The largest valid request still takes the general path: 500 entries with an extra
    // member the fast path declines.
    let entry = r#"{"Data":"AA==","PartitionKey":"k","ExplicitHashKey":"1","Extra":1}"#;
    let records = vec![entry; 500].join(",");
    let body = format!(r#"{{"StreamName":"s","Records":[{records}]}}"#);
    match parse_request("PutRecords", body.as_bytes()) {
        Ok(Request::PutRecords(r)) => assert_eq!(r.records.len(), 500),
        other => panic!("{other:?}"),
    }
}
