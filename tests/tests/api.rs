//! The Kinesis API of the real `spated`, driven by the official AWS SDK for Rust: every
//! operation (stream lifecycle, describing and listing with paging and every ShardFilter, puts
//! and every iterator type, retention, tags, limits, addressing by StreamARN only), the
//! validation and not-found errors as the SDK reports them, raw-HTTP protocol errors and request
//! ids, MD5 routing checked against the shard ranges, per-shard and per-key ordering, restart
//! persistence (graceful stop) and kill -9 persistence of every acknowledged record, and
//! iterators of a deleted-and-recreated stream, and wrong values in every member of every
//! operation (never a 500). Each test runs its own server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::operation::RequestId;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, Shard, ShardFilter, ShardFilterType, ShardIteratorType, StreamMode,
    StreamModeDetails, StreamStatus,
};
use tests::{
    Rng, Server, create_stream, error_code, hash_key, list_all_shards, open_shard_for, raw_request,
    read_from_iterator, read_shard, seq_cmp, wait_active,
};

const ACCOUNT: &str = "000000000000";

fn arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{stream}")
}

fn entry(key: &str, data: &[u8]) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data.to_vec()))
        .build()
        .expect("entry")
}

fn ids(shards: &[Shard]) -> Vec<String> {
    shards.iter().map(|s| s.shard_id().to_string()).collect()
}

fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

async fn tags_of(client: &Client, stream: &str) -> BTreeMap<String, String> {
    let out = client.list_tags_for_stream().stream_name(stream).send().await.expect("tags");
    assert!(!out.has_more_tags());
    out.tags().iter().map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string())).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// All records of every shard (from TRIM_HORIZON), by shard id, in read order.
async fn read_everything(
    client: &Client,
    stream: &str,
) -> BTreeMap<String, Vec<aws_sdk_kinesis::types::Record>> {
    let mut all = BTreeMap::new();
    for shard in list_all_shards(client, stream).await {
        let contents = read_shard(client, stream, shard.shard_id()).await;
        all.insert(shard.shard_id().to_string(), contents.records);
    }
    all
}

fn assert_strictly_increasing(shard: &str, records: &[aws_sdk_kinesis::types::Record]) {
    for pair in records.windows(2) {
        assert_eq!(
            seq_cmp(pair[0].sequence_number(), pair[1].sequence_number()),
            std::cmp::Ordering::Less,
            "sequence numbers of {shard} are not strictly increasing: {} then {}",
            pair[0].sequence_number(),
            pair[1].sequence_number()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_lifecycle_describe_list_retention_tags_limits() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();

    // CreateStream with ShardCount and Tags; a duplicate name is ResourceInUse.
    client
        .create_stream()
        .stream_name("alpha")
        .shard_count(5)
        .tags("env", "test")
        .send()
        .await
        .expect("CreateStream alpha");
    wait_active(&client, "alpha").await;
    let duplicate = client.create_stream().stream_name("alpha").shard_count(1).send().await;
    assert_eq!(error_code(duplicate), "ResourceInUseException");
    create_stream(&client, "beta", 1).await;
    client
        .create_stream()
        .stream_name("gamma")
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .send()
        .await
        .expect("CreateStream gamma ON_DEMAND");
    wait_active(&client, "gamma").await;

    // DescribeStream pages with Limit and ExclusiveStartShardId.
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 5, "DescribeStream paging does not end");
        let mut request = client.describe_stream().stream_name("alpha").limit(2);
        if let Some(s) = &start {
            request = request.exclusive_start_shard_id(s);
        }
        let out = request.send().await.expect("DescribeStream");
        let d = out.stream_description().expect("StreamDescription");
        assert_eq!(d.stream_name(), "alpha");
        assert_eq!(d.stream_arn(), arn("alpha"));
        assert_eq!(d.stream_status(), &StreamStatus::Active);
        assert_eq!(d.retention_period_hours(), 24);
        assert!(d.shards().len() <= 2, "Limit 2 returned {} shards", d.shards().len());
        seen.extend(ids(d.shards()));
        if !d.has_more_shards() {
            break;
        }
        start = seen.last().cloned();
    }
    assert_eq!(pages, 3, "5 shards with Limit 2 take 3 pages");
    assert_eq!(seen, (0..5).map(shard_id).collect::<Vec<_>>());

    // DescribeStreamSummary.
    let summary = client.describe_stream_summary().stream_name("alpha").send().await.unwrap();
    let s = summary.stream_description_summary().unwrap();
    assert_eq!(s.stream_name(), "alpha");
    assert_eq!(s.stream_arn(), arn("alpha"));
    assert_eq!(s.stream_status(), &StreamStatus::Active);
    assert_eq!(s.open_shard_count(), 5);
    assert_eq!(s.retention_period_hours(), 24);
    assert_eq!(s.consumer_count(), Some(0));
    assert_eq!(s.stream_mode_details().map(|m| m.stream_mode()), Some(&StreamMode::Provisioned));
    let gamma = client.describe_stream_summary().stream_name("gamma").send().await.unwrap();
    let g = gamma.stream_description_summary().unwrap();
    assert_eq!(g.stream_mode_details().map(|m| m.stream_mode()), Some(&StreamMode::OnDemand));
    assert_eq!(g.open_shard_count(), 4, "an ON_DEMAND stream starts with 4 shards");

    // ListStreams pages with Limit and NextToken, with StreamSummaries.
    let first = client.list_streams().limit(2).send().await.expect("ListStreams");
    assert_eq!(first.stream_names(), ["alpha", "beta"]);
    assert!(first.has_more_streams());
    let token = first.next_token().expect("NextToken with more streams").to_string();
    let summaries: Vec<&str> = first.stream_summaries().iter().map(|s| s.stream_name()).collect();
    assert_eq!(summaries, ["alpha", "beta"]);
    assert_eq!(first.stream_summaries()[0].stream_arn(), arn("alpha"));
    let second = client.list_streams().next_token(token).send().await.expect("ListStreams 2");
    assert_eq!(second.stream_names(), ["gamma"]);
    assert!(!second.has_more_streams());
    assert_eq!(second.next_token(), None);
    let gamma_summary = &second.stream_summaries()[0];
    assert_eq!(gamma_summary.stream_status(), &StreamStatus::Active);
    assert_eq!(
        gamma_summary.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );

    // Retention: increase, decrease, and the errors.
    client
        .increase_stream_retention_period()
        .stream_name("alpha")
        .retention_period_hours(48)
        .send()
        .await
        .expect("IncreaseStreamRetentionPeriod");
    let hours = |c: Client| async move {
        c.describe_stream_summary()
            .stream_name("alpha")
            .send()
            .await
            .unwrap()
            .stream_description_summary()
            .unwrap()
            .retention_period_hours()
    };
    assert_eq!(hours(client.clone()).await, 48);
    client
        .decrease_stream_retention_period()
        .stream_name("alpha")
        .retention_period_hours(36)
        .send()
        .await
        .expect("DecreaseStreamRetentionPeriod");
    assert_eq!(hours(client.clone()).await, 36);
    for (increase, value) in [(true, 30), (false, 40), (true, 10), (true, 9000), (false, 12)] {
        let code = if increase {
            error_code(
                client
                    .increase_stream_retention_period()
                    .stream_name("alpha")
                    .retention_period_hours(value)
                    .send()
                    .await,
            )
        } else {
            error_code(
                client
                    .decrease_stream_retention_period()
                    .stream_name("alpha")
                    .retention_period_hours(value)
                    .send()
                    .await,
            )
        };
        assert_eq!(code, "InvalidArgumentException", "retention {value} (increase: {increase})");
    }
    assert_eq!(hours(client.clone()).await, 36, "failed retention changes changed nothing");

    // Tags through the stream operations and the resource (ARN) operations.
    assert_eq!(tags_of(&client, "alpha").await, map(&[("env", "test")]));
    client
        .add_tags_to_stream()
        .stream_name("alpha")
        .tags("team", "a")
        .tags("tier", "gold")
        .send()
        .await
        .expect("AddTagsToStream");
    assert_eq!(
        tags_of(&client, "alpha").await,
        map(&[("env", "test"), ("team", "a"), ("tier", "gold")])
    );
    // Tag characters AWS refuses (a control character, `!`), through both tag operations.
    let bad = client.add_tags_to_stream().stream_name("alpha").tags("bad!", "x").send().await;
    assert_eq!(error_code(bad), "InvalidArgumentException");
    let bad = client.tag_resource().resource_arn(arn("alpha")).tags("k", "a\tb").send().await;
    assert_eq!(error_code(bad), "InvalidArgumentException");
    let bad = client.remove_tags_from_stream().stream_name("alpha").tag_keys("bad!").send().await;
    assert_eq!(error_code(bad), "InvalidArgumentException");
    let bad = client.untag_resource().resource_arn(arn("alpha")).tag_keys("a\tb").send().await;
    assert_eq!(error_code(bad), "InvalidArgumentException");
    let page = client.list_tags_for_stream().stream_name("alpha").limit(1).send().await.unwrap();
    assert_eq!(page.tags().len(), 1);
    assert_eq!(page.tags()[0].key(), "env");
    assert!(page.has_more_tags());
    let rest = client
        .list_tags_for_stream()
        .stream_name("alpha")
        .exclusive_start_tag_key("env")
        .send()
        .await
        .unwrap();
    let rest_keys: Vec<&str> = rest.tags().iter().map(|t| t.key()).collect();
    assert_eq!(rest_keys, ["team", "tier"]);
    client
        .remove_tags_from_stream()
        .stream_name("alpha")
        .tag_keys("team")
        .send()
        .await
        .expect("RemoveTagsFromStream");
    client
        .tag_resource()
        .resource_arn(arn("alpha"))
        .tags("owner", "me")
        .send()
        .await
        .expect("TagResource");
    client
        .untag_resource()
        .resource_arn(arn("alpha"))
        .tag_keys("tier")
        .send()
        .await
        .expect("UntagResource");
    let by_arn = client.list_tags_for_resource().resource_arn(arn("alpha")).send().await.unwrap();
    let by_arn: BTreeMap<String, String> = by_arn
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
        .collect();
    let expected = map(&[("env", "test"), ("owner", "me")]);
    assert_eq!(by_arn, expected);
    assert_eq!(tags_of(&client, "alpha").await, expected);

    // DescribeLimits: 5 + 1 + 4 open shards, one ON_DEMAND stream.
    let limits = client.describe_limits().send().await.expect("DescribeLimits");
    assert_eq!(limits.shard_limit(), 500);
    assert_eq!(limits.open_shard_count(), 10);
    assert_eq!(limits.on_demand_stream_count(), 1);
    assert!(limits.on_demand_stream_count_limit() >= 1);

    // Addressing by StreamARN only.
    let by_arn =
        client.describe_stream_summary().stream_arn(arn("beta")).send().await.expect("by ARN");
    assert_eq!(by_arn.stream_description_summary().unwrap().stream_name(), "beta");
    let other_account = "arn:aws:kinesis:us-east-1:111111111111:stream/beta";
    let foreign = client.describe_stream_summary().stream_arn(other_account).send().await;
    assert_eq!(error_code(foreign), "ResourceNotFoundException");
    client
        .add_tags_to_stream()
        .stream_arn(arn("beta"))
        .tags("k", "v")
        .send()
        .await
        .expect("AddTagsToStream by ARN");
    assert_eq!(tags_of(&client, "beta").await, map(&[("k", "v")]));
    client
        .increase_stream_retention_period()
        .stream_arn(arn("beta"))
        .retention_period_hours(25)
        .send()
        .await
        .expect("retention by ARN");

    // DeleteStream (by ARN and by name), then the stream is gone.
    client.delete_stream().stream_arn(arn("beta")).send().await.expect("DeleteStream by ARN");
    let gone = client.describe_stream_summary().stream_name("beta").send().await;
    assert_eq!(error_code(gone), "ResourceNotFoundException");
    client
        .delete_stream()
        .stream_name("gamma")
        .enforce_consumer_deletion(false)
        .send()
        .await
        .expect("DeleteStream gamma");
    let names = client.list_streams().send().await.unwrap();
    assert_eq!(names.stream_names(), ["alpha"]);
    let limits = client.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 5, "deleted streams' shards no longer count");
    assert_eq!(limits.on_demand_stream_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_pages_and_every_shard_filter() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 2).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let before_split = DateTime::from(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(60)).await;
    // Split shard 0 (range [0, 2^127)) in its middle: 0 closes, 2 and 3 open.
    client
        .split_shard()
        .stream_name("s")
        .shard_to_split(shard_id(0))
        .new_starting_hash_key((1u128 << 126).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, "s").await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let after_split = DateTime::from(std::time::SystemTime::now());

    // MaxResults + NextToken (the token alone names the stream).
    let first = client.list_shards().stream_name("s").max_results(3).send().await.unwrap();
    assert_eq!(ids(first.shards()), [shard_id(0), shard_id(1), shard_id(2)]);
    let token = first.next_token().expect("more shards").to_string();
    let second = client.list_shards().next_token(token).send().await.unwrap();
    assert_eq!(ids(second.shards()), [shard_id(3)]);
    assert_eq!(second.next_token(), None);
    let all = list_all_shards(&client, "s").await;
    assert_eq!(ids(&all), (0..4).map(shard_id).collect::<Vec<_>>());
    assert!(all[0].sequence_number_range().unwrap().ending_sequence_number().is_some());
    for child in &all[2..] {
        assert_eq!(child.parent_shard_id(), Some(shard_id(0).as_str()));
        assert_eq!(child.adjacent_parent_shard_id(), None);
    }

    // A continuation with only the token keeps the first call's filter (unfiltered, the
    // children 2 and 3 would follow).
    let horizon = ShardFilter::builder().r#type(ShardFilterType::AtTrimHorizon).build().unwrap();
    let mut page =
        client.list_shards().stream_name("s").shard_filter(horizon).max_results(1).send().await;
    let mut pages = Vec::new();
    while let Some(token) = {
        let out = page.unwrap();
        pages.push(ids(out.shards()));
        out.next_token().map(str::to_string)
    } {
        page = client.list_shards().next_token(token).max_results(1).send().await;
    }
    assert_eq!(pages, [[shard_id(0)], [shard_id(1)]]);
    // NextToken cannot go with ExclusiveStartShardId.
    let both = client
        .list_shards()
        .next_token(first.next_token().unwrap())
        .exclusive_start_shard_id(shard_id(0))
        .send()
        .await;
    assert_eq!(error_code(both), "InvalidArgumentException");

    let filtered = |kind: ShardFilterType, shard: Option<String>, at: Option<DateTime>| {
        let client = client.clone();
        async move {
            let mut filter = ShardFilter::builder().r#type(kind.clone());
            if let Some(s) = shard {
                filter = filter.shard_id(s);
            }
            if let Some(t) = at {
                filter = filter.timestamp(t);
            }
            let out = client
                .list_shards()
                .stream_name("s")
                .shard_filter(filter.build().unwrap())
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListShards {kind:?}: {e:?}"));
            ids(out.shards())
        }
    };
    let want = |v: &[u32]| v.iter().map(|&i| shard_id(i)).collect::<Vec<_>>();
    assert_eq!(
        filtered(ShardFilterType::AfterShardId, Some(shard_id(1)), None).await,
        want(&[2, 3])
    );
    assert_eq!(filtered(ShardFilterType::AtLatest, None, None).await, want(&[1, 2, 3]));
    assert_eq!(filtered(ShardFilterType::AtTrimHorizon, None, None).await, want(&[0, 1]));
    assert_eq!(filtered(ShardFilterType::FromTrimHorizon, None, None).await, want(&[0, 1, 2, 3]));
    assert_eq!(
        filtered(ShardFilterType::AtTimestamp, None, Some(before_split)).await,
        want(&[0, 1])
    );
    assert_eq!(
        filtered(ShardFilterType::AtTimestamp, None, Some(after_split)).await,
        want(&[1, 2, 3])
    );
    assert_eq!(
        filtered(ShardFilterType::FromTimestamp, None, Some(before_split)).await,
        want(&[0, 1, 2, 3])
    );
    assert_eq!(
        filtered(ShardFilterType::FromTimestamp, None, Some(after_split)).await,
        want(&[1, 2, 3])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_and_every_iterator_type() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 2).await;

    // ExplicitHashKey overrides the partition key's hash.
    let low = client
        .put_record()
        .stream_name("s")
        .partition_key("any")
        .explicit_hash_key("0")
        .data(Blob::new("low"))
        .send()
        .await
        .expect("PutRecord EHK 0");
    assert_eq!(low.shard_id(), shard_id(0));
    assert!(low.request_id().is_some_and(|id| !id.is_empty()), "x-amzn-RequestId reaches the SDK");
    let high = client
        .put_record()
        .stream_name("s")
        .partition_key("any")
        .explicit_hash_key((1u128 << 127).to_string())
        .data(Blob::new("high"))
        .send()
        .await
        .expect("PutRecord EHK 2^127");
    assert_eq!(high.shard_id(), shard_id(1));

    // Records 0..10 in shard 1, each ordered after the previous (SequenceNumberForOrdering).
    let mut seqs = vec![high.sequence_number().to_string()];
    for i in 1..10 {
        let out = client
            .put_record()
            .stream_name("s")
            .partition_key("k")
            .explicit_hash_key(u128::MAX.to_string())
            .sequence_number_for_ordering(seqs.last().unwrap())
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .expect("PutRecord with SequenceNumberForOrdering");
        assert_eq!(out.shard_id(), shard_id(1));
        assert_eq!(seq_cmp(seqs.last().unwrap(), out.sequence_number()), std::cmp::Ordering::Less);
        seqs.push(out.sequence_number().to_string());
    }
    let data_at = |i: usize| if i == 0 { "high".to_string() } else { format!("r{i}") };

    let iterator = |kind: ShardIteratorType, seq: Option<&str>, at: Option<DateTime>| {
        let client = client.clone();
        let seq = seq.map(str::to_string);
        async move {
            let mut request = client
                .get_shard_iterator()
                .stream_name("s")
                .shard_id(shard_id(1))
                .shard_iterator_type(kind);
            if let Some(s) = seq {
                request = request.starting_sequence_number(s);
            }
            if let Some(t) = at {
                request = request.timestamp(t);
            }
            request.send().await.expect("GetShardIterator").shard_iterator().unwrap().to_string()
        }
    };
    let records = |it: String, limit: Option<i32>| {
        let client = client.clone();
        async move {
            let mut request = client.get_records().shard_iterator(it);
            if let Some(l) = limit {
                request = request.limit(l);
            }
            request.send().await.expect("GetRecords")
        }
    };
    let datas = |out: &aws_sdk_kinesis::operation::get_records::GetRecordsOutput| {
        out.records()
            .iter()
            .map(|r| String::from_utf8(r.data().as_ref().to_vec()).unwrap())
            .collect::<Vec<_>>()
    };

    // TRIM_HORIZON with Limit, then NextShardIterator; MillisBehindLatest while behind.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = records(iterator(ShardIteratorType::TrimHorizon, None, None).await, Some(3)).await;
    assert_eq!(datas(&first), [data_at(0), data_at(1), data_at(2)]);
    assert_eq!(first.records()[0].sequence_number(), seqs[0]);
    assert_eq!(first.records()[0].partition_key(), Some("any"));
    let behind = first.millis_behind_latest().expect("MillisBehindLatest");
    assert!(behind >= 100, "3 of 10 records read 200 ms after the puts: {behind} ms behind");
    let next = first.next_shard_iterator().expect("an open shard has a next iterator");
    let rest = records(next.to_string(), None).await;
    assert_eq!(datas(&rest), (3..10).map(data_at).collect::<Vec<_>>());
    assert_eq!(rest.millis_behind_latest(), Some(0), "caught up");
    let tail = rest.next_shard_iterator().unwrap().to_string();
    assert!(records(tail.clone(), None).await.records().is_empty());

    // AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
    let at =
        records(iterator(ShardIteratorType::AtSequenceNumber, Some(&seqs[4]), None).await, None)
            .await;
    assert_eq!(datas(&at), (4..10).map(data_at).collect::<Vec<_>>());
    let after =
        records(iterator(ShardIteratorType::AfterSequenceNumber, Some(&seqs[4]), None).await, None)
            .await;
    assert_eq!(datas(&after), (5..10).map(data_at).collect::<Vec<_>>());
    // The shard's StartingSequenceNumber sits before its first record, as on Kinesis: AT and
    // AFTER it both begin at the first record, and it sorts below that record's number.
    let shards = list_all_shards(&client, "s").await;
    let start = shards[1].sequence_number_range().unwrap().starting_sequence_number().to_string();
    assert_eq!(seq_cmp(&start, &seqs[0]), std::cmp::Ordering::Less);
    for kind in [ShardIteratorType::AtSequenceNumber, ShardIteratorType::AfterSequenceNumber] {
        let from_start = records(iterator(kind.clone(), Some(&start), None).await, None).await;
        assert_eq!(datas(&from_start), (0..10).map(data_at).collect::<Vec<_>>(), "{kind:?}");
    }
    // The largest offset a number can name: nothing comes after it, refused rather than wrapped.
    let last_possible = format!("{}{}", &seqs[0][..36], u64::MAX);
    let past_everything = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(1))
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number(&last_possible)
        .send()
        .await;
    assert_eq!(error_code(past_everything), "InvalidArgumentException");
    // A number past the shard's tip names a record that does not exist yet: refused, or the
    // reader would silently skip everything written up to it. The tip itself (AT the next
    // number, AFTER the last one) is fine and reads the next record.
    let last_offset: u64 = seqs[9][36..].parse().unwrap();
    let at_offset = |offset: u64| format!("{}{offset:020}", &seqs[9][..36]);
    for (kind, offset, ok) in [
        (ShardIteratorType::AtSequenceNumber, last_offset + 1, true),
        (ShardIteratorType::AfterSequenceNumber, last_offset, true),
        (ShardIteratorType::AtSequenceNumber, last_offset + 2, false),
        (ShardIteratorType::AfterSequenceNumber, last_offset + 1, false),
        (ShardIteratorType::AtSequenceNumber, last_offset + 1000, false),
    ] {
        let answer = client
            .get_shard_iterator()
            .stream_name("s")
            .shard_id(shard_id(1))
            .shard_iterator_type(kind.clone())
            .starting_sequence_number(at_offset(offset))
            .send()
            .await;
        if ok {
            let it = answer.unwrap().shard_iterator.unwrap();
            assert!(records(it, None).await.records().is_empty(), "{kind:?} {offset}");
        } else {
            assert_eq!(error_code(answer), "InvalidArgumentException", "{kind:?} {offset}");
        }
    }
    // AT_TIMESTAMP in the future is refused with Kinesis's message.
    let tomorrow =
        DateTime::from_secs(DateTime::from(std::time::SystemTime::now()).secs() + 86_400);
    let future = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(1))
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(tomorrow)
        .send()
        .await
        .expect_err("AT_TIMESTAMP tomorrow");
    let future = future.into_service_error();
    assert!(future.is_invalid_argument_exception(), "{future:?}");
    assert!(
        future.meta().message().unwrap_or("").starts_with(
            "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis."
        ),
        "{future:?}"
    );
    // A sequence number of shard 0 is refused on shard 1.
    let wrong_shard = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(1))
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(low.sequence_number())
        .send()
        .await;
    assert_eq!(error_code(wrong_shard), "InvalidArgumentException");

    // LATEST sees only what comes after it.
    let latest = iterator(ShardIteratorType::Latest, None, None).await;
    let empty = records(latest, None).await;
    assert!(empty.records().is_empty(), "LATEST starts after the existing records");
    let after_latest = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new("after-latest"))
        .send()
        .await
        .unwrap();
    let got = records(empty.next_shard_iterator().unwrap().to_string(), None).await;
    assert_eq!(datas(&got), ["after-latest"]);
    assert_eq!(got.records()[0].sequence_number(), after_latest.sequence_number());
    // The tail iterator taken before the put sees it too.
    assert_eq!(datas(&records(tail, None).await), ["after-latest"]);

    // AT_TIMESTAMP: the first record at or after the timestamp.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mark = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(30)).await;
    for i in 0..3 {
        client
            .put_record()
            .stream_name("s")
            .partition_key("k")
            .explicit_hash_key(u128::MAX.to_string())
            .data(Blob::new(format!("late{i}")))
            .send()
            .await
            .unwrap();
    }
    let by_time = records(
        iterator(ShardIteratorType::AtTimestamp, None, Some(DateTime::from(mark))).await,
        None,
    )
    .await;
    assert_eq!(datas(&by_time), ["late0", "late1", "late2"]);
    let arrival = by_time.records()[0].approximate_arrival_timestamp().expect("arrival time");
    assert!(arrival.to_millis().unwrap() >= DateTime::from(mark).to_millis().unwrap());

    // StreamARN-only addressing on the data path.
    let by_arn = client
        .put_record()
        .stream_arn(arn("s"))
        .partition_key("arn-key")
        .data(Blob::new("via-arn"))
        .send()
        .await
        .expect("PutRecord by ARN");
    let it = client
        .get_shard_iterator()
        .stream_arn(arn("s"))
        .shard_id(by_arn.shard_id())
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(by_arn.sequence_number())
        .send()
        .await
        .expect("GetShardIterator by ARN");
    let got = client
        .get_records()
        .stream_arn(arn("s"))
        .shard_iterator(it.shard_iterator().unwrap())
        .limit(1)
        .send()
        .await
        .expect("GetRecords with StreamARN");
    assert_eq!(got.records()[0].data().as_ref(), b"via-arn");
    let batch = client
        .put_records()
        .stream_arn(arn("s"))
        .records(entry("arn-batch", b"via-arn-batch"))
        .send()
        .await
        .expect("PutRecords by ARN");
    assert_eq!(batch.failed_record_count(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_records_500_entries_keep_request_order() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 3).await;
    let shards = list_all_shards(&client, "s").await;
    let mut rng = Rng::new();
    // Few keys, so many entries share a shard and a key.
    let keys: Vec<String> = (0..7).map(|_| rng.key()).collect();
    let entries: Vec<(String, Vec<u8>)> = (0..500)
        .map(|i| {
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            let mut data = format!("entry-{i:03}-").into_bytes();
            let len = rng.below(300) as usize;
            data.extend(rng.bytes(len));
            (key, data)
        })
        .collect();
    let out = client
        .put_records()
        .stream_name("s")
        .set_records(Some(entries.iter().map(|(k, d)| entry(k, d)).collect()))
        .send()
        .await
        .expect("PutRecords 500");
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), 500);
    for (result, (key, _)) in out.records().iter().zip(&entries) {
        assert_eq!(result.error_code(), None);
        assert_eq!(result.shard_id(), Some(open_shard_for(&shards, hash_key(key)).as_str()));
    }
    // Each result's sequence number holds exactly that entry.
    let stored: HashMap<String, (String, Vec<u8>)> = read_everything(&client, "s")
        .await
        .into_values()
        .flatten()
        .map(|r| {
            let key = r.partition_key().unwrap_or("").to_string();
            (r.sequence_number().to_string(), (key, r.data().as_ref().to_vec()))
        })
        .collect();
    assert_eq!(stored.len(), 500);
    for (i, (result, expected)) in out.records().iter().zip(&entries).enumerate() {
        let seq = result.sequence_number().expect("sequence number");
        assert_eq!(stored.get(seq), Some(expected), "entry {i} is not at its sequence number");
    }
    // Within a shard, request order is sequence order.
    let mut last_per_shard: HashMap<&str, &str> = HashMap::new();
    for result in out.records() {
        let (shard, seq) = (result.shard_id().unwrap(), result.sequence_number().unwrap());
        if let Some(prev) = last_per_shard.insert(shard, seq) {
            assert_eq!(seq_cmp(prev, seq), std::cmp::Ordering::Less, "order within {shard}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_and_not_found_errors() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;

    // Not found.
    assert_eq!(
        error_code(client.describe_stream().stream_name("missing").send().await),
        "ResourceNotFoundException"
    );
    // A well-formed shard id that is not in the stream, as AWS words it.
    let missing_shard = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(7))
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    let missing_shard = missing_shard.as_service_error().expect("a service error");
    assert_eq!(missing_shard.meta().code(), Some("ResourceNotFoundException"));
    assert_eq!(
        missing_shard.meta().message(),
        Some("Shard shardId-000000000007 in stream s under account 000000000000 does not exist")
    );
    assert_eq!(
        error_code(client.describe_stream_summary().stream_name("missing").send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        error_code(client.delete_stream().stream_name("missing").send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        error_code(
            client
                .put_record()
                .stream_name("missing")
                .partition_key("k")
                .data(Blob::new("x"))
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        error_code(
            client
                .get_shard_iterator()
                .stream_name("missing")
                .shard_id(shard_id(0))
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        error_code(
            client
                .get_shard_iterator()
                .stream_name("s")
                .shard_id(shard_id(7))
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
        ),
        "ResourceNotFoundException",
        "a shard the stream does not have"
    );
    assert_eq!(
        error_code(client.list_shards().stream_name("missing").send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        error_code(client.add_tags_to_stream().stream_name("missing").tags("a", "b").send().await),
        "ResourceNotFoundException"
    );

    // Duplicate.
    assert_eq!(
        error_code(client.create_stream().stream_name("s").shard_count(1).send().await),
        "ResourceInUseException"
    );

    // Model validation: names, counts, hash keys.
    for bad in ["bad name!", "", &"x".repeat(129)] {
        let code = error_code(client.create_stream().stream_name(bad).shard_count(1).send().await);
        assert_eq!(code, "ValidationException", "stream name {bad:?}");
    }
    assert_eq!(
        error_code(client.create_stream().stream_name("zero").shard_count(0).send().await),
        "ValidationException"
    );
    assert_eq!(
        error_code(
            client
                .put_record()
                .stream_name("s")
                .partition_key("k")
                .explicit_hash_key("not-a-number")
                .data(Blob::new("x"))
                .send()
                .await
        ),
        "ValidationException",
        "an ExplicitHashKey that is not decimal breaks the model's pattern"
    );
    assert_eq!(
        error_code(
            client
                .put_record()
                .stream_name("s")
                .partition_key("k")
                .explicit_hash_key("340282366920938463463374607431768211456")
                .data(Blob::new("x"))
                .send()
                .await
        ),
        "InvalidArgumentException",
        "an ExplicitHashKey of 2^128 is out of range"
    );
    assert_eq!(
        error_code(
            client
                .put_records()
                .stream_name("s")
                .records(
                    PutRecordsRequestEntry::builder()
                        .partition_key("k")
                        .explicit_hash_key("340282366920938463463374607431768211456")
                        .data(Blob::new("x"))
                        .build()
                        .unwrap()
                )
                .send()
                .await
        ),
        "InvalidArgumentException",
        "PutRecords with an ExplicitHashKey of 2^128"
    );
    assert_eq!(
        error_code(
            client
                .increase_stream_retention_period()
                .stream_name("s")
                .retention_period_hours(8761)
                .send()
                .await
        ),
        "InvalidArgumentException"
    );
    assert_eq!(
        error_code(
            client
                .get_shard_iterator()
                .stream_name("s")
                .shard_id(shard_id(0))
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .send()
                .await
        ),
        "InvalidArgumentException",
        "AT_SEQUENCE_NUMBER without a StartingSequenceNumber"
    );
    // Nothing was written by the failed puts.
    let contents = read_shard(&client, "s", &shard_id(0)).await;
    assert!(contents.records.is_empty(), "failed puts wrote {:?}", contents.records);

    // Invalid shard iterators: garbage, and a real one with a byte changed.
    assert_eq!(
        error_code(client.get_records().shard_iterator("garbage").send().await),
        "InvalidArgumentException"
    );
    let real = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(0))
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    let mut tampered = real.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        error_code(client.get_records().shard_iterator(tampered).send().await),
        "InvalidArgumentException"
    );
    client.get_records().shard_iterator(real).send().await.expect("the untouched iterator works");
}

#[test]
fn raw_http_protocol_errors_and_request_ids() {
    let server = Server::start(&["--cores", "1"]);
    let addr = server.addr();
    let json = [("Content-Type", "application/x-amz-json-1.1")];
    let target = |op: &str| format!("Kinesis_20131202.{op}");
    let mut request_ids = HashSet::new();
    let mut check_id = |response: &tests::RawResponse| {
        let id = response.header("x-amzn-RequestId").expect("x-amzn-RequestId header");
        assert!(!id.is_empty());
        assert!(request_ids.insert(id.to_string()), "request id {id} repeated");
    };

    let list = target("ListStreams");
    let headers = [json[0], ("X-Amz-Target", list.as_str())];
    let malformed = raw_request(addr, "POST", "/", &headers, b"{\"Limit\": 1,").unwrap();
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["__type"], "SerializationException");
    check_id(&malformed);

    let not_object = raw_request(addr, "POST", "/", &headers, b"[1,2]").unwrap();
    assert_eq!(not_object.status, 400);
    assert_eq!(not_object.json()["__type"], "SerializationException");
    check_id(&not_object);

    let unknown = target("FrobnicateStream");
    let headers_unknown = [json[0], ("X-Amz-Target", unknown.as_str())];
    let response = raw_request(addr, "POST", "/", &headers_unknown, b"{}").unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "UnknownOperationException");
    check_id(&response);

    let no_target = raw_request(addr, "POST", "/", &json, b"{}").unwrap();
    assert_eq!(no_target.status, 400);
    assert_eq!(no_target.json()["__type"], "UnknownOperationException");
    check_id(&no_target);

    // A CBOR body (the AWS SDK for Java's default) is refused with what to do about it.
    let cbor = [("Content-Type", "application/x-amz-cbor-1.1"), ("X-Amz-Target", list.as_str())];
    let refused = raw_request(addr, "POST", "/", &cbor, &[0xa0]).unwrap();
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["__type"], "SerializationException");
    // AWS names a SerializationException's message member `Message`.
    assert!(refused.json()["Message"].as_str().unwrap().contains("AWS_CBOR_DISABLE"));
    check_id(&refused);

    let ok = raw_request(addr, "POST", "/", &headers, b"{}").unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["StreamNames"], serde_json::json!([]));
    check_id(&ok);

    let describe = target("DescribeStream");
    let headers_describe = [json[0], ("X-Amz-Target", describe.as_str())];
    let missing =
        raw_request(addr, "POST", "/", &headers_describe, br#"{"StreamName":"nope"}"#).unwrap();
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["__type"], "ResourceNotFoundException");
    check_id(&missing);

    // A forged ListShards token whose issue time is i64::MIN: expired, not an overflow.
    let list_shards = target("ListShards");
    let headers_shards = [json[0], ("X-Amz-Target", list_shards.as_str())];
    let forged = base64_of(b"s\n1\n0\n-9223372036854775808\n");
    let body = format!(r#"{{"NextToken":"{forged}"}}"#);
    let expired = raw_request(addr, "POST", "/", &headers_shards, body.as_bytes()).unwrap();
    assert_eq!(expired.status, 400);
    assert_eq!(expired.json()["__type"], "ExpiredNextTokenException");
    check_id(&expired);

    let health = raw_request(addr, "GET", "/health", &[], b"").unwrap();
    assert_eq!(health.status, 200);
    check_id(&health);
    let elsewhere = raw_request(addr, "GET", "/nothing-here", &[], b"").unwrap();
    assert_eq!(elsewhere.status, 404);
    check_id(&elsewhere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_matches_md5_and_shard_ranges() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    // Three shards (ranges not powers of two), then a split at a random point of the middle
    // half of shard 1's range: uneven ranges, each child at least 1/12 of the key space, so
    // 200 random keys miss a shard with probability (11/12)^200 < 1e-7. (A split point
    // anywhere in the range left a sliver child that 200 keys missed in about 3% of runs.)
    create_stream(&client, "s", 3).await;
    let mut rng = Rng::new();
    let third = u128::MAX / 3;
    let split_at = third + third / 4 + (rng.next_u64() as u128) * ((third / 2) / u64::MAX as u128);
    client
        .split_shard()
        .stream_name("s")
        .shard_to_split(shard_id(1))
        .new_starting_hash_key(split_at.to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, "s").await;
    let shards = list_all_shards(&client, "s").await;
    assert_eq!(shards.len(), 5);

    let keys: Vec<String> = (0..200).map(|_| rng.key()).collect();
    let mut used = HashSet::new();
    for key in &keys {
        let out = client
            .put_record()
            .stream_name("s")
            .partition_key(key)
            .data(Blob::new(key.as_bytes().to_vec()))
            .send()
            .await
            .expect("PutRecord");
        let expected = open_shard_for(&shards, hash_key(key));
        assert_eq!(out.shard_id(), expected, "key {key:?} (hash {})", hash_key(key));
        used.insert(expected);
    }
    assert_eq!(used.len(), 4, "200 random keys reach every open shard");
    // PutRecords routes the same way.
    let out = client
        .put_records()
        .stream_name("s")
        .set_records(Some(keys.iter().map(|k| entry(k, k.as_bytes())).collect()))
        .send()
        .await
        .expect("PutRecords");
    for (result, key) in out.records().iter().zip(&keys) {
        let expected = open_shard_for(&shards, hash_key(key));
        assert_eq!(result.shard_id(), Some(expected.as_str()), "PutRecords key {key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_shard_and_per_key_ordering() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 3).await;
    // Four concurrent producers, each owning three keys, putting sequentially: each key's put
    // order is its producer's order.
    let mut tasks = Vec::new();
    for producer in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let keys: Vec<String> = (0..3).map(|k| format!("p{producer}-k{k}")).collect();
            let mut counters = [0u32; 3];
            let mut put = 0;
            for round in 0..30 {
                if round % 2 == 0 {
                    let mut batch = Vec::new();
                    for j in 0..12 {
                        let k = (j * 7 + round) % 3;
                        batch.push(entry(
                            &keys[k],
                            format!("{}#{}", keys[k], counters[k]).as_bytes(),
                        ));
                        counters[k] += 1;
                    }
                    let out = client
                        .put_records()
                        .stream_name("s")
                        .set_records(Some(batch))
                        .send()
                        .await
                        .expect("PutRecords");
                    assert_eq!(out.failed_record_count(), Some(0));
                    put += 12;
                } else {
                    let k = round % 3;
                    client
                        .put_record()
                        .stream_name("s")
                        .partition_key(&keys[k])
                        .data(Blob::new(format!("{}#{}", keys[k], counters[k])))
                        .send()
                        .await
                        .expect("PutRecord");
                    counters[k] += 1;
                    put += 1;
                }
            }
            (keys, counters, put)
        }));
    }
    let mut expected_counts: HashMap<String, u32> = HashMap::new();
    let mut total = 0;
    for task in tasks {
        let (keys, counters, put) = task.await.expect("producer");
        for (k, c) in keys.into_iter().zip(counters) {
            expected_counts.insert(k, c);
        }
        total += put;
    }

    let all = read_everything(&client, "s").await;
    let mut read = 0;
    let mut next_per_key: HashMap<String, u32> = HashMap::new();
    let mut shard_of_key: HashMap<String, String> = HashMap::new();
    for (shard, records) in &all {
        assert_strictly_increasing(shard, records);
        for r in records {
            read += 1;
            let text = String::from_utf8(r.data().as_ref().to_vec()).unwrap();
            let (key, n) = text.split_once('#').unwrap();
            assert_eq!(r.partition_key(), Some(key));
            let n: u32 = n.parse().unwrap();
            let next = next_per_key.entry(key.to_string()).or_insert(0);
            assert_eq!(n, *next, "key {key}: read #{n} where #{next} was put next");
            *next += 1;
            let first_shard = shard_of_key.entry(key.to_string()).or_insert(shard.clone());
            assert_eq!(first_shard, shard, "key {key} in two shards");
        }
    }
    assert_eq!(read, total, "every put record is read once");
    assert_eq!(next_per_key, expected_counts);
}

/// `--segment-bytes` sets where shard logs roll: 4 MB into one shard with 1 MiB segments
/// leaves several segment files, and every record reads back in order across them, also after
/// a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_bytes_flag_rolls_segments() {
    fn segment_files(dir: &std::path::Path) -> usize {
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                count += segment_files(&path);
            } else if path.extension().is_some_and(|e| e == "log") {
                count += 1;
            }
        }
        count
    }
    let mut server = Server::start(&["--quotas", "off", "--segment-bytes", "1MiB"]);
    let client = server.client();
    create_stream(&client, "seg", 1).await;
    let mut sent = Vec::new();
    for batch in 0..8u32 {
        let entries: Vec<_> = (0..500u32)
            .map(|i| {
                let data: Vec<u8> = (0..1000u32).map(|b| (b + i + batch) as u8).collect();
                sent.push(data.clone());
                entry(&format!("k{batch}-{i}"), &data)
            })
            .collect();
        let out = client
            .put_records()
            .stream_name("seg")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
    }
    let files = segment_files(server.data_dir());
    assert!(files >= 4, "4 MB in 1 MiB segments left {files} segment file(s)");
    for round in 0..2 {
        let got = read_shard(&client, "seg", &shard_id(0)).await.records;
        let got: Vec<Vec<u8>> = got.iter().map(|r| r.data().as_ref().to_vec()).collect();
        assert_eq!(got.len(), sent.len(), "round {round}");
        assert!(got == sent, "round {round}: records differ");
        if round == 0 {
            server.restart();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_records_and_metadata() {
    let mut server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    client
        .create_stream()
        .stream_name("s")
        .shard_count(3)
        .tags("team", "spate")
        .send()
        .await
        .unwrap();
    wait_active(&client, "s").await;
    create_stream(&client, "other", 1).await;
    client
        .increase_stream_retention_period()
        .stream_name("s")
        .retention_period_hours(72)
        .send()
        .await
        .unwrap();
    let mut rng = Rng::new();
    let put_batch = |rng: &mut Rng, n: usize| {
        (0..n)
            .map(|i| {
                let len = 1 + rng.below(2000) as usize;
                entry(&format!("{}-{i}", rng.key()), &rng.bytes(len))
            })
            .collect::<Vec<_>>()
    };
    for _ in 0..3 {
        let out = client
            .put_records()
            .stream_name("s")
            .set_records(Some(put_batch(&mut rng, 200)))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
    }
    // A closed shard (with an ending sequence number) must survive the restart too.
    client
        .split_shard()
        .stream_name("s")
        .shard_to_split(shard_id(0))
        .new_starting_hash_key((u128::MAX / 6).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, "s").await;
    let out = client
        .put_records()
        .stream_name("s")
        .set_records(Some(put_batch(&mut rng, 200)))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));

    let records_before = read_everything(&client, "s").await;
    let count: usize = records_before.values().map(Vec::len).sum();
    assert_eq!(count, 800);
    let shards_before = list_all_shards(&client, "s").await;
    let description_before = client.describe_stream().stream_name("s").send().await.unwrap();
    let tags_before = tags_of(&client, "s").await;
    let streams_before = client.list_streams().send().await.unwrap().stream_names().to_vec();

    server.restart();
    let client = server.client();

    let records_after = read_everything(&client, "s").await;
    assert_eq!(records_after.keys().collect::<Vec<_>>(), records_before.keys().collect::<Vec<_>>());
    for (shard, before) in &records_before {
        let after = &records_after[shard];
        assert_eq!(after.len(), before.len(), "{shard}: record count after restart");
        for (a, b) in after.iter().zip(before) {
            assert_eq!(a.sequence_number(), b.sequence_number(), "{shard}");
            assert_eq!(a.partition_key(), b.partition_key(), "{shard} {}", b.sequence_number());
            assert_eq!(a.data(), b.data(), "{shard} {}", b.sequence_number());
            assert_eq!(
                a.approximate_arrival_timestamp(),
                b.approximate_arrival_timestamp(),
                "{shard} {}",
                b.sequence_number()
            );
        }
    }
    assert_eq!(list_all_shards(&client, "s").await, shards_before);
    let description_after = client.describe_stream().stream_name("s").send().await.unwrap();
    assert_eq!(description_after.stream_description(), description_before.stream_description());
    let summary = client.describe_stream_summary().stream_name("s").send().await.unwrap();
    assert_eq!(summary.stream_description_summary().unwrap().retention_period_hours(), 72);
    assert_eq!(tags_of(&client, "s").await, tags_before);
    assert_eq!(tags_before, map(&[("team", "spate")]));
    assert_eq!(client.list_streams().send().await.unwrap().stream_names(), streams_before);

    // Writes continue after the old tip of each open shard.
    for shard in shards_before
        .iter()
        .filter(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
    {
        let start: u128 = shard.hash_key_range().unwrap().starting_hash_key().parse().unwrap();
        let out = client
            .put_record()
            .stream_name("s")
            .partition_key("after-restart")
            .explicit_hash_key(start.to_string())
            .data(Blob::new("after-restart"))
            .send()
            .await
            .expect("PutRecord after restart");
        assert_eq!(out.shard_id(), shard.shard_id());
        if let Some(last) = records_before[shard.shard_id()].last() {
            assert_eq!(
                seq_cmp(last.sequence_number(), out.sequence_number()),
                std::cmp::Ordering::Less,
                "{}: a new record after restart sorts after the old ones",
                shard.shard_id()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_keeps_every_acknowledged_record() {
    let mut server = Server::start(&["--quotas", "off", "--durability", "always"]);
    // No retries: a call either got its acknowledgement from this server process or failed.
    let client = server.client_with_retries(RetryConfig::disabled());
    create_stream(&client, "s", 2).await;

    type Acked = Vec<(String, String, Vec<u8>)>; // (sequence number, key, data)
    let acked: Arc<Mutex<Acked>> = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for producer in 0..3u64 {
        let (client, acked, count, stop) =
            (client.clone(), acked.clone(), count.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut rng = Rng::with_seed(producer * 7919 + 1);
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && calls < 100_000 {
                calls += 1;
                if calls % 2 == 0 {
                    let entries: Vec<(String, Vec<u8>)> = (0..20)
                        .map(|_| {
                            let len = 10 + rng.below(500) as usize;
                            (rng.key(), rng.bytes(len))
                        })
                        .collect();
                    let result = client
                        .put_records()
                        .stream_name("s")
                        .set_records(Some(entries.iter().map(|(k, d)| entry(k, d)).collect()))
                        .send()
                        .await;
                    let Ok(out) = result else { break };
                    let mut acked = acked.lock().unwrap();
                    for (result, (key, data)) in out.records().iter().zip(entries) {
                        if let Some(seq) = result.sequence_number() {
                            acked.push((seq.to_string(), key, data));
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    let len = 1 + rng.below(2000) as usize;
                    let (key, data) = (rng.key(), rng.bytes(len));
                    let result = client
                        .put_record()
                        .stream_name("s")
                        .partition_key(&key)
                        .data(Blob::new(data.clone()))
                        .send()
                        .await;
                    let Ok(out) = result else { break };
                    acked.lock().unwrap().push((out.sequence_number().to_string(), key, data));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // The killer: SIGKILL once enough is acknowledged, while the producers keep putting.
    let killer = server.killer();
    let watcher = count.clone();
    let kill = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while watcher.load(Ordering::Relaxed) < 1500 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        killer.kill9();
    });
    kill.await.unwrap();
    for producer in producers {
        tokio::time::timeout(Duration::from_secs(20), producer)
            .await
            .expect("producers stop once the server is gone")
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    server.kill9();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 100, "only {} records acknowledged before the kill", acked.len());

    server.start_again();
    let client = server.client();
    let all = read_everything(&client, "s").await;
    let mut stored: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for (shard, records) in &all {
        assert_strictly_increasing(shard, records);
        for r in records {
            let value = (r.partition_key().unwrap_or("").to_string(), r.data().as_ref().to_vec());
            assert!(stored.insert(r.sequence_number().to_string(), value).is_none());
        }
    }
    let mut lost = 0;
    for (seq, key, data) in &acked {
        match stored.get(seq) {
            Some((k, d)) => {
                assert_eq!(k, key, "{seq}: partition key differs after kill -9");
                assert_eq!(d, data, "{seq}: data differs after kill -9");
            }
            None => lost += 1,
        }
    }
    assert_eq!(lost, 0, "{lost} of {} acknowledged records are missing after kill -9", acked.len());
    eprintln!("{} acknowledged, {} stored after kill -9", acked.len(), stored.len());
    // The stream still takes writes.
    client
        .put_record()
        .stream_name("s")
        .partition_key("after")
        .data(Blob::new("after"))
        .send()
        .await
        .expect("PutRecord after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterator_of_deleted_and_recreated_stream_fails() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 1).await;
    client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new("old"))
        .send()
        .await
        .unwrap();
    let old = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(0))
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    client.delete_stream().stream_name("s").send().await.unwrap();
    let deleted = client.get_records().shard_iterator(&old).send().await;
    assert_eq!(error_code(deleted), "ResourceNotFoundException", "iterator of a deleted stream");

    create_stream(&client, "s", 1).await;
    client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new("new"))
        .send()
        .await
        .unwrap();
    let reused = client.get_records().shard_iterator(&old).send().await;
    assert_eq!(
        error_code(reused),
        "ResourceNotFoundException",
        "an iterator of the old stream must not read the new stream of the same name"
    );
    // The new stream holds only its own record.
    let fresh = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id(shard_id(0))
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_string();
    let contents = read_from_iterator(&client, fresh, 10).await;
    let data: Vec<&[u8]> = contents.records.iter().map(|r| r.data().as_ref()).collect();
    assert_eq!(data, [b"new".as_slice()]);
}

/// SIGTERM under PutRecords load on two cores: every request either completes or fails at the
/// connection; none is answered InternalFailure because a peer core closed its logs while this
/// core still had requests routed to them; and every acknowledged record is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_request_inside_the_server() {
    let mut server = Server::start(&["--cores", "2", "--quotas", "off"]);
    let client = server.client_with_retries(RetryConfig::disabled());
    create_stream(&client, "s", 4).await;
    type Acked = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let internal = Arc::new(AtomicUsize::new(0));
    let mut producers = Vec::new();
    for producer in 0..4u64 {
        let (client, acked, internal) = (client.clone(), acked.clone(), internal.clone());
        producers.push(tokio::spawn(async move {
            let mut rng = Rng::with_seed(producer + 11);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let entries: Vec<(String, Vec<u8>)> =
                    (0..500).map(|_| (rng.key(), rng.bytes(1000))).collect();
                let result = client
                    .put_records()
                    .stream_name("s")
                    .set_records(Some(entries.iter().map(|(k, d)| entry(k, d)).collect()))
                    .send()
                    .await;
                match result {
                    Ok(out) => {
                        let mut acked = acked.lock().unwrap();
                        for (result, (_, data)) in out.records().iter().zip(entries) {
                            match result.sequence_number() {
                                Some(seq) => acked.push((seq.to_string(), data)),
                                None => {
                                    assert_ne!(result.error_code(), Some("InternalFailure"));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        if e.as_service_error().is_some() {
                            internal.fetch_add(1, Ordering::Relaxed);
                            eprintln!("service error during shutdown: {e:?}");
                        }
                        break;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Graceful stop: SIGTERM, and the guard asserts spated exits 0 within its bound.
    tokio::task::block_in_place(|| server.stop());
    for producer in producers {
        tokio::time::timeout(Duration::from_secs(30), producer).await.unwrap().unwrap();
    }
    assert_eq!(internal.load(Ordering::Relaxed), 0, "requests failed inside the server");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 100, "only {} records acknowledged", acked.len());
    server.start_again();
    let all = read_everything(&server.client(), "s").await;
    let stored: HashMap<String, Vec<u8>> = all
        .values()
        .flatten()
        .map(|r| (r.sequence_number().to_string(), r.data().as_ref().to_vec()))
        .collect();
    for (seq, data) in &acked {
        assert_eq!(stored.get(seq), Some(data), "{seq} acknowledged before SIGTERM, then lost");
    }
}

/// One keep-alive HTTP/1.1 connection for many small JSON requests.
struct KeepAlive {
    addr: std::net::SocketAddr,
    stream: Option<std::net::TcpStream>,
}

impl KeepAlive {
    /// Sends one Kinesis JSON request; the response must come back on this connection.
    fn call(&mut self, operation: &str, body: &[u8]) -> tests::RawResponse {
        use std::io::{BufRead, BufReader, Read, Write};
        let stream = self.stream.get_or_insert_with(|| {
            let s = std::net::TcpStream::connect(self.addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.set_nodelay(true).unwrap();
            s
        });
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: Kinesis_20131202.{operation}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(body).expect("send body");
        let mut reader = BufReader::new(&*stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("read status line");
        assert!(
            !status_line.is_empty(),
            "{operation} {}: connection closed without a response",
            String::from_utf8_lossy(body)
        );
        let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        let mut headers = Vec::new();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                length = value.parse().expect("content-length");
            }
            if name == "connection" && value.eq_ignore_ascii_case("close") {
                close = true;
            }
            headers.push((name, value));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("read body");
        assert!(reader.buffer().is_empty(), "bytes after the response");
        if close {
            self.stream = None;
        }
        tests::RawResponse { status, headers, body }
    }
}

/// Every operation Kinesis defines, every request member of the API, and wrong JSON values for
/// each (wrong types, out-of-range numbers, empty and oversized strings, nesting): each answer
/// is a 200 (when the value happens to be acceptable) or a Kinesis-shaped 400 with `__type`,
/// never a 500, a dropped connection or a panic; afterwards the server still serves the stream.
#[test]
fn wrong_values_in_every_member_get_kinesis_errors_never_a_failure_inside() {
    let server = Server::start(&["--quotas", "off"]);
    let mut http = KeepAlive { addr: server.addr(), stream: None };
    let created = http.call("CreateStream", br#"{"StreamName":"fz","ShardCount":2}"#);
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.body));
    let deadline = Instant::now() + Duration::from_secs(10);
    while http.call("DescribeStreamSummary", br#"{"StreamName":"fz"}"#).json()["StreamDescriptionSummary"]
        ["StreamStatus"]
        != "ACTIVE"
    {
        assert!(Instant::now() < deadline, "stream fz never became ACTIVE");
        std::thread::sleep(Duration::from_millis(20));
    }

    // botocore's kinesis 2013-12-02 operations, including the ones Spate does not implement.
    let operations = [
        "AddTagsToStream",
        "CreateStream",
        "DecreaseStreamRetentionPeriod",
        "DeleteResourcePolicy",
        "DeleteStream",
        "DeregisterStreamConsumer",
        "DescribeLimits",
        "DescribeStream",
        "DescribeStreamConsumer",
        "DescribeStreamSummary",
        "DisableEnhancedMonitoring",
        "EnableEnhancedMonitoring",
        "GetRecords",
        "GetResourcePolicy",
        "GetShardIterator",
        "IncreaseStreamRetentionPeriod",
        "ListShards",
        "ListStreamConsumers",
        "ListStreams",
        "ListTagsForResource",
        "ListTagsForStream",
        "MergeShards",
        "PutRecord",
        "PutRecords",
        "PutResourcePolicy",
        "RegisterStreamConsumer",
        "RemoveTagsFromStream",
        "SplitShard",
        "StartStreamEncryption",
        "StopStreamEncryption",
        "SubscribeToShard",
        "TagResource",
        "UntagResource",
        "UpdateShardCount",
        "UpdateStreamMode",
    ];
    // Every member of every request shape in the model.
    let members = [
        "StreamName",
        "StreamARN",
        "ShardCount",
        "StreamModeDetails",
        "Tags",
        "TagKeys",
        "RetentionPeriodHours",
        "EnforceConsumerDeletion",
        "ConsumerName",
        "ConsumerARN",
        "ExclusiveStartShardId",
        "Limit",
        "ShardIterator",
        "ShardId",
        "ShardIteratorType",
        "StartingSequenceNumber",
        "Timestamp",
        "NextToken",
        "MaxResults",
        "ShardFilter",
        "StreamCreationTimestamp",
        "Type",
        "ExclusiveStartStreamName",
        "ExclusiveStartTagKey",
        "ShardToMerge",
        "AdjacentShardToMerge",
        "Data",
        "PartitionKey",
        "ExplicitHashKey",
        "SequenceNumberForOrdering",
        "Records",
        "ResourceARN",
        "Policy",
        "ShardToSplit",
        "NewStartingHashKey",
        "EncryptionType",
        "KeyId",
        "StartingPosition",
        "TargetShardCount",
        "ScalingType",
        "ShardLevelMetrics",
        "StreamMode",
        "WarmThroughputMiBps",
        "MaxRecordSizeInKiB",
    ];
    let long = format!("\"{}\"", "x".repeat(300));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let values = [
        "null",
        "true",
        "0",
        "-1",
        "1.5",
        "1e999",
        "123456789012345678901234567890",
        "\"\"",
        long.as_str(),
        "[]",
        "{}",
        "[\"a\",1]",
        "{\"a\":{\"b\":[]}}",
        "\"\\u0000\"",
        "\"shardId-000000000000\"",
        "\"AT_SEQUENCE_NUMBER\"",
        deep.as_str(),
    ];
    // Operations whose plain `{"StreamName":"fz"}` would change the stream under test.
    let destructive = ["DeleteStream", "StartStreamEncryption", "StopStreamEncryption"];
    let mut answered = HashMap::<u16, usize>::new();
    for operation in operations {
        for base in ["", "\"StreamName\":\"fz\","] {
            if !base.is_empty() && destructive.contains(&operation) {
                continue;
            }
            for member in members {
                for value in values {
                    let body = format!("{{{base}\"{member}\":{value}}}");
                    let response = http.call(operation, body.as_bytes());
                    *answered.entry(response.status).or_default() += 1;
                    let text = String::from_utf8_lossy(&response.body);
                    assert!(
                        response.status == 200 || response.status == 400,
                        "{operation} {body}: status {} {text}",
                        response.status
                    );
                    assert!(response.header("x-amzn-RequestId").is_some());
                    if response.status == 400 {
                        let error: serde_json::Value = serde_json::from_slice(&response.body)
                            .unwrap_or_else(|_| panic!("{operation} {body}: not JSON: {text}"));
                        let kind = error["__type"].as_str().unwrap_or("");
                        assert!(!kind.is_empty(), "{operation} {body}: no __type: {text}");
                        assert!(
                            error.get("message").is_none_or(|m| m.is_string()),
                            "{operation} {body}: {text}"
                        );
                    }
                }
            }
        }
    }
    assert!(answered[&400] > answered.get(&200).copied().unwrap_or(0), "{answered:?}");

    // The server is whole: the stream takes and returns a record on both shards.
    for key in ["a", "b", "c", "d"] {
        let body = format!(r#"{{"StreamName":"fz","PartitionKey":"{key}","Data":"AAEC"}}"#);
        let put = http.call("PutRecord", body.as_bytes());
        assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    }
    let log = server.log_tail();
    assert!(!log.contains("panicked"), "{log}");
}

/// Standard base64 with padding (test-side, independent of the server's encoder).
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// AWS resolves a ShardId by the number after its last hyphen: `shardId-1`,
/// `shardId-000000000001` and `anything-1` name the same shard. A missing shard's message names
/// the id as the client wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_shard_ids_name_the_shard_after_the_last_hyphen() {
    let server = Server::start(&["--quotas", "off"]);
    let client = server.client();
    create_stream(&client, "s", 2).await;
    let put = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new("high"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.shard_id(), "shardId-000000000001");
    for id in ["shardId-000000000001", "shardId-1", "anything-1", "shardId-0001"] {
        let it = client
            .get_shard_iterator()
            .stream_name("s")
            .shard_id(id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        let page = client.get_records().shard_iterator(it.shard_iterator().unwrap()).send().await;
        let page = page.unwrap();
        assert_eq!(page.records().len(), 1, "{id}");
        assert_eq!(page.records()[0].data().as_ref(), b"high", "{id}");
    }
    let missing = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-7")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect_err("no shard 7");
    let missing = missing.into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert!(missing.meta().message().unwrap_or("").contains("shardId-7"), "{missing:?}");
}
