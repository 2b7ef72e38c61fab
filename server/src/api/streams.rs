//! Read-only catalog operations on streams and shards, from this core's catalog snapshot:
//! DescribeStream, DescribeStreamSummary, ListStreams, ListShards (with its filters and
//! NextToken), ListTagsForStream, ListTagsForResource, DescribeLimits.

use std::rc::Rc;

use spate_proto::limits::{
    DESCRIBE_STREAM_SHARDS_PAGE_MAX, LIST_SHARDS_PAGE_MAX, LIST_STREAMS_PAGE_MAX,
    LIST_TAGS_LIMIT_MAX, ON_DEMAND_STREAM_COUNT_LIMIT,
};
use spate_proto::requests::{
    ConsumerRef, DescribeStreamInput, DescribeStreamSummaryInput, ListShardsInput,
    ListStreamsInput, ListTagsForResourceInput, ListTagsForStreamInput, ResourceRef, ShardFilter,
};
use spate_proto::responses as out;
use spate_proto::types::{ShardFilterType, Timestamp};
use spate_proto::{ApiError, StreamRef};

use super::{check_token_age, decode_token, encode_token};
use crate::catalog::{self, ShardMeta, StreamMeta, StreamMode};
use crate::core::Core;
use crate::lookup::{ApiResult, StreamHandle, arn_ref, resolve_consumer, stream_handle};
use crate::wire::{wire_mode, wire_shard, wire_status};

pub fn describe_stream(core: &Rc<Core>, r: DescribeStreamInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    let config = core.config();
    // "If you specify a value greater than 100, at most 100 results are returned."
    let limit = r
        .limit
        .map_or(DESCRIBE_STREAM_SHARDS_PAGE_MAX, |l| l as usize)
        .min(DESCRIBE_STREAM_SHARDS_PAGE_MAX);
    let start_after = r.exclusive_start_shard_id.as_deref().and_then(catalog::parse_shard_id);
    // Closed shards whose records have all passed retention are gone, as in ListShards.
    let retention_start = stream.retention_start_ms(core.now_ms());
    let mut shards: Vec<&ShardMeta> = stream
        .shards
        .iter()
        .filter(|s| !s.expired(retention_start))
        .filter(|s| start_after.is_none_or(|after| s.index > after))
        .collect();
    shards.sort_by_key(|s| s.index);
    let has_more_shards = shards.len() > limit;
    shards.truncate(limit);
    Ok(spate_proto::to_json(&out::DescribeStreamOutput {
        stream_description: out::StreamDescription {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(&config.region, &config.account_id),
            stream_status: wire_status(stream.status),
            stream_mode_details: Some(wire_mode(stream.mode)),
            shards: shards.into_iter().map(|s| wire_shard(stream, s)).collect(),
            has_more_shards,
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_millis(stream.created_ms),
            enhanced_monitoring: out::EnhancedMetrics::none(),
            encryption_type: Some(spate_proto::types::EncryptionType::None),
            key_id: None,
        },
    }))
}

pub fn describe_stream_summary(core: &Core, r: DescribeStreamSummaryInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    Ok(describe_summary(core, &handle))
}

pub fn describe_summary(core: &Core, handle: &StreamHandle) -> Vec<u8> {
    let stream = handle.meta();
    let config = core.config();
    spate_proto::to_json(&out::DescribeStreamSummaryOutput {
        stream_description_summary: out::StreamDescriptionSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(&config.region, &config.account_id),
            stream_status: wire_status(stream.status),
            stream_mode_details: Some(wire_mode(stream.mode)),
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_millis(stream.created_ms),
            enhanced_monitoring: out::EnhancedMetrics::none(),
            encryption_type: Some(spate_proto::types::EncryptionType::None),
            key_id: None,
            open_shard_count: stream.open_shard_count() as i32,
            consumer_count: Some(stream.consumers.len() as i32),
        },
    })
}

pub fn list_streams(core: &Rc<Core>, r: ListStreamsInput) -> ApiResult {
    let catalog = core.catalog();
    let config = core.config();
    // "If you specify a value greater than 100, at most 100 results are returned."
    let limit = r.limit.map_or(LIST_STREAMS_PAGE_MAX, |l| l as usize).min(LIST_STREAMS_PAGE_MAX);
    let after = match &r.next_token {
        Some(token) => Some(decode_token(token).ok_or_else(ApiError::invalid_next_token)?),
        None => r.exclusive_start_stream_name.clone(),
    };
    let mut names: Vec<&StreamMeta> = catalog
        .streams
        .values()
        .filter(|s| after.as_ref().is_none_or(|a| s.name.as_str() > a.as_str()))
        .collect();
    let has_more_streams = names.len() > limit;
    names.truncate(limit);
    let next_token = has_more_streams.then(|| encode_token(&names.last().unwrap().name));
    Ok(spate_proto::to_json(&out::ListStreamsOutput {
        stream_names: names.iter().map(|s| s.name.clone()).collect(),
        has_more_streams,
        next_token,
        stream_summaries: Some(
            names
                .iter()
                .map(|s| out::StreamSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn(&config.region, &config.account_id),
                    stream_status: wire_status(s.status),
                    stream_mode_details: Some(wire_mode(s.mode)),
                    stream_creation_timestamp: Some(Timestamp::from_millis(s.created_ms)),
                })
                .collect(),
        ),
    }))
}

pub fn list_shards(core: &Rc<Core>, r: ListShardsInput) -> ApiResult {
    // NextToken: "<stream name>\n<incarnation>\n<last shard index>\n<issued ms>\n<filter>",
    // the filter as JSON or empty: a continuation sends only the token and gets the same
    // filtered listing.
    let (handle, start_after, token_filter) = match r.stream_ref()? {
        Some(stream) => {
            let after = r.exclusive_start_shard_id.as_deref().and_then(catalog::parse_shard_id);
            (stream_handle(core, &stream)?, after, None)
        }
        None => {
            let token = r.next_token.as_deref().unwrap_or_default();
            let text = decode_token(token).ok_or_else(ApiError::invalid_next_token)?;
            let parts: Vec<&str> = text.split('\n').collect();
            let [name, incarnation, last, issued, filter] = parts[..] else {
                return Err(ApiError::invalid_next_token());
            };
            check_token_age(core, token, issued)?;
            let filter: Option<ShardFilter> = match filter {
                "" => None,
                json => {
                    Some(serde_json::from_str(json).map_err(|_| ApiError::invalid_next_token())?)
                }
            };
            let handle = stream_handle(core, &StreamRef::Name(name.to_string()))?;
            if handle.meta().incarnation.to_string() != incarnation {
                return Err(ApiError::invalid_next_token());
            }
            (handle, last.parse::<u32>().ok(), filter)
        }
    };
    let filter = r.shard_filter.as_ref().or(token_filter.as_ref());
    if let Some(filter) = filter {
        filter.check()?;
    }
    let stream = handle.meta();
    // "If you specify a value greater than 1000, at most 1000 results are returned."
    let limit =
        r.max_results.map_or(LIST_SHARDS_PAGE_MAX, |m| m as usize).min(LIST_SHARDS_PAGE_MAX);
    let now = core.now_ms();
    let mut selected: Vec<&ShardMeta> = listed_shards(stream, filter, now)
        .into_iter()
        .filter(|s| start_after.is_none_or(|a| s.index > a))
        .collect();
    let more = selected.len() > limit;
    selected.truncate(limit);
    let next_token = more.then(|| {
        let filter = filter.map(|f| String::from_utf8(spate_proto::to_json(f)).expect("JSON"));
        encode_token(&format!(
            "{}\n{}\n{}\n{}\n{}",
            stream.name,
            stream.incarnation,
            selected.last().unwrap().index,
            now,
            filter.unwrap_or_default()
        ))
    });
    Ok(spate_proto::to_json(&out::ListShardsOutput {
        shards: selected.into_iter().map(|s| wire_shard(stream, s)).collect(),
        next_token,
    }))
}

/// The shards ListShards returns for `filter` at `now_ms`, by index: never the expired ones
/// (closed and past retention), and of the rest those the filter keeps.
fn listed_shards<'a>(
    stream: &'a StreamMeta,
    filter: Option<&ShardFilter>,
    now_ms: i64,
) -> Vec<&'a ShardMeta> {
    let retention_start = stream.retention_start_ms(now_ms);
    let mut shards: Vec<&ShardMeta> =
        stream.shards.iter().filter(|s| !s.expired(retention_start)).collect();
    shards.sort_by_key(|s| s.index);
    let listed: Vec<u32> = shards.iter().map(|s| s.index).collect();
    let keep = |s: &ShardMeta| -> bool {
        let Some(filter) = filter else { return true };
        match filter.r#type {
            ShardFilterType::AfterShardId => {
                let after = filter.shard_id.as_deref().and_then(catalog::parse_shard_id);
                after.is_none_or(|a| s.index > a)
            }
            ShardFilterType::AtLatest => s.is_open(),
            // The shards open at the trim horizon: those whose parents have all expired.
            ShardFilterType::AtTrimHorizon => {
                ![s.parent, s.adjacent_parent].into_iter().flatten().any(|p| listed.contains(&p))
            }
            ShardFilterType::FromTrimHorizon => true,
            // Started at or before the timestamp, and ended at or after it or still open.
            ShardFilterType::AtTimestamp => {
                let t = filter.timestamp.map_or(now_ms, |t| t.as_millis());
                (s.created_ms <= t && s.closed_ms.is_none_or(|c| c >= t))
                    || (t < stream.created_ms && s.parent.is_none())
            }
            // Closed at or after the timestamp (moved up to the trim horizon), or open.
            ShardFilterType::FromTimestamp => {
                let t = filter.timestamp.map_or(now_ms, |t| t.as_millis()).max(retention_start);
                s.closed_ms.is_none_or(|c| c >= t)
            }
        }
    };
    shards.retain(|s| keep(s));
    shards
}

pub fn list_tags_for_stream(core: &Rc<Core>, r: ListTagsForStreamInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    let limit = r.limit.map_or(LIST_TAGS_LIMIT_MAX, |l| l as usize);
    let mut tags: Vec<(&String, &String)> = stream
        .tags
        .iter()
        .filter(|(k, _)| r.exclusive_start_tag_key.as_ref().is_none_or(|s| k.as_str() > s.as_str()))
        .collect();
    let has_more_tags = tags.len() > limit;
    tags.truncate(limit);
    Ok(spate_proto::to_json(&out::ListTagsForStreamOutput {
        tags: tags
            .into_iter()
            .map(|(k, v)| out::Tag { key: k.clone(), value: Some(v.clone()) })
            .collect(),
        has_more_tags,
    }))
}

pub fn describe_limits(core: &Rc<Core>) -> Vec<u8> {
    let catalog = core.catalog();
    let on_demand = catalog.streams.values().filter(|s| s.mode == StreamMode::OnDemand).count();
    spate_proto::to_json(&out::DescribeLimitsOutput {
        shard_limit: core.config().shards_max as i32,
        open_shard_count: catalog.shard_count_total() as i32,
        on_demand_stream_count: on_demand as i32,
        on_demand_stream_count_limit: ON_DEMAND_STREAM_COUNT_LIMIT as i32,
    })
}

pub fn list_tags_for_resource(core: &Rc<Core>, r: ListTagsForResourceInput) -> ApiResult {
    match r.resource_ref()? {
        ResourceRef::Stream(arn) => {
            let handle = stream_handle(core, &arn_ref(arn))?;
            Ok(spate_proto::to_json(&out::ListTagsForResourceOutput {
                tags: out::Tag::from_map(&handle.meta().tags),
            }))
        }
        ResourceRef::Consumer(arn) => {
            let (_, consumer) = resolve_consumer(core, &ConsumerRef::Arn(arn))?;
            Ok(spate_proto::to_json(&out::ListTagsForResourceOutput {
                tags: out::Tag::from_map(&consumer.tags),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::catalog::StreamStatus;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn shard(
        index: u32,
        parent: Option<u32>,
        created_ms: i64,
        closed_ms: Option<i64>,
    ) -> ShardMeta {
        ShardMeta {
            index,
            starting_hash_key: 0,
            ending_hash_key: u128::MAX,
            parent,
            adjacent_parent: None,
            core: 0,
            created_ms,
            ending_offset: closed_ms.map(|_| 10),
            closed_ms,
        }
    }

    /// Shards 0 and 1 created at 0; shard 0 split at 1 h into 2 and 3; 24 h retention.
    fn split_stream() -> StreamMeta {
        StreamMeta {
            name: "s".into(),
            incarnation: 1,
            created_ms: 0,
            status: StreamStatus::Active,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            tags: BTreeMap::new(),
            shards: vec![
                shard(0, None, 0, Some(HOUR)),
                shard(1, None, 0, None),
                shard(2, Some(0), HOUR, None),
                shard(3, Some(0), HOUR, None),
            ],
            next_shard_index: 4,
            consumers: vec![],
            shard_count_updates_ms: vec![],
        }
    }

    fn listed(
        stream: &StreamMeta,
        kind: Option<ShardFilterType>,
        at: Option<i64>,
        now: i64,
    ) -> Vec<u32> {
        let filter = kind.map(|r#type| ShardFilter {
            r#type,
            shard_id: None,
            timestamp: at.map(Timestamp::from_millis),
        });
        listed_shards(stream, filter.as_ref(), now).iter().map(|s| s.index).collect()
    }

    #[test]
    fn list_shards_filters_within_retention() {
        let stream = split_stream();
        let now = 2 * HOUR;
        assert_eq!(listed(&stream, None, None, now), [0, 1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [0, 1]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtLatest), None, now), [1, 2, 3]);
        // AT_TIMESTAMP includes a shard that ended exactly at the timestamp.
        assert_eq!(
            listed(&stream, Some(ShardFilterType::AtTimestamp), Some(HOUR), now),
            [0, 1, 2, 3]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::AtTimestamp), Some(HOUR - 1), now),
            [0, 1]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::FromTimestamp), Some(HOUR), now),
            [0, 1, 2, 3]
        );
        assert_eq!(
            listed(&stream, Some(ShardFilterType::FromTimestamp), Some(HOUR + 1), now),
            [1, 2, 3]
        );
    }

    #[test]
    fn list_shards_drops_expired_shards_and_their_trim_horizon_moves_on() {
        let stream = split_stream();
        // Shard 0 closed at 1 h; its records expire once 24 h have passed since.
        let now = 25 * HOUR + 1;
        assert_eq!(listed(&stream, None, None, now), [1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [1, 2, 3]);
        assert_eq!(listed(&stream, Some(ShardFilterType::FromTrimHorizon), None, now), [1, 2, 3]);
        // FROM_TIMESTAMP before the trim horizon is moved up to it.
        assert_eq!(listed(&stream, Some(ShardFilterType::FromTimestamp), Some(0), now), [1, 2, 3]);
        // One millisecond earlier shard 0 still holds records within retention.
        let now = 25 * HOUR - 1;
        assert_eq!(listed(&stream, Some(ShardFilterType::AtTrimHorizon), None, now), [0, 1]);
    }
}
