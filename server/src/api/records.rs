//! Writes and reads: PutRecord, PutRecords, GetShardIterator, GetRecords.
//!
//! A write is routed by its hash key to the open shard that covers it (this core's catalog
//! snapshot), then appended on the shard's owning core (`msg::DataMsg::Append`); PutRecord and
//! PutRecords share one implementation (`append_routed`), which also routes again the records
//! that hit a shard a reshard closed. Reads decode the iterator token and ask the owner for one
//! page (`msg::DataMsg::Read`), written as JSON on the owner.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use engine::{NewRecord, parse_position};
use futures_channel::oneshot;
use spate_proto::requests::{
    GetRecordsInput, GetShardIteratorInput, PutRecordInput, PutRecordsInput,
};
use spate_proto::responses as out;
use spate_proto::{ApiError, IteratorPosition, StreamRef};

use crate::catalog::{self, StreamMeta, StreamStatus};
use crate::core::Core;
use crate::iterator::{IteratorError, IteratorToken};
use crate::lookup::{
    ApiResult, check_not_future, find_shard, require_active, shard_error, stream_handle,
};
use crate::msg::{DataMsg, Msg, PositionQuery, ShardError};
use crate::wire::{child_shards, sequence_string};
use crate::{hash, placement};

fn parse_hash_key(value: &str) -> Result<u128, ApiError> {
    value.parse::<u128>().map_err(|_| ApiError::explicit_hash_key_out_of_range(value))
}

/// Attempts to route a write while a reshard closes its shard. Between attempts a writer
/// waits for this core to install a newer catalog (the reshard's commit, which names the
/// children), or at most 1, 2, 4, ... ms, capped at 500 ms: about 4 s in all, so a reshard
/// slowed by a busy disk is waited out rather than answered with an error.
const REROUTE_ATTEMPTS: u32 = 16;

const REROUTE_PAUSE_MAX_MS: u64 = 500;

/// Before attempt `attempt` (from 0), when the previous one routed with catalog version
/// `routed_version`.
async fn reroute_pause(core: &Core, attempt: u32, routed_version: u64) {
    if attempt == 0 || core.catalog().version > routed_version {
        return;
    }
    let pause = (1u64 << (attempt - 1).min(16)).min(REROUTE_PAUSE_MAX_MS);
    futures_lite::future::or(
        core.catalog_installed().wait(),
        glommio::timer::sleep(std::time::Duration::from_millis(pause)),
    )
    .await;
}

struct Routed {
    core: usize,
    incarnation: u64,
    shard: u32,
}

fn route(stream: &StreamMeta, hash_key: u128, cores: usize) -> Option<Routed> {
    stream.route(hash_key).map(|s| Routed {
        core: placement::owner(s, cores),
        incarnation: stream.incarnation,
        shard: s.index,
    })
}

pub async fn put_record(core: &Rc<Core>, r: PutRecordInput) -> ApiResult {
    let stream_ref = r.stream_ref()?;
    let hash_key = match &r.explicit_hash_key {
        Some(value) => parse_hash_key(value)?,
        None => hash::hash_key(r.partition_key.as_bytes()),
    };
    if let Some(seq) = &r.sequence_number_for_ordering
        && parse_position(seq).is_none()
    {
        return Err(ApiError::invalid_sequence_number_for_ordering(
            seq,
            stream_ref.name(),
            &core.config().account_id,
        ));
    }
    let record = NewRecord { partition_key: Bytes::from(r.partition_key), data: r.data };
    let mut results = append_routed(core, &stream_ref, &[hash_key], &[record]).await?;
    match results.pop().expect("one result per record") {
        Some(Ok(appended)) => Ok(spate_proto::to_json(&out::PutRecordOutput {
            shard_id: appended.shard_id,
            sequence_number: appended.sequence_number,
            encryption_type: None,
        })),
        Some(Err(error)) => Err(error),
        None => Err(ApiError::service_unavailable("The shard is being resharded; retry.")),
    }
}

pub async fn put_records(core: &Rc<Core>, r: PutRecordsInput) -> ApiResult {
    let stream_ref = r.stream_ref()?;
    let total: usize = r.records.iter().map(|e| e.data.len() + e.partition_key.len()).sum();
    if total > spate_proto::limits::PUT_RECORDS_BYTES_MAX {
        return Err(ApiError::invalid_argument("Records size exceeds 5 MB limit"));
    }
    let mut hash_keys = Vec::with_capacity(r.records.len());
    let mut new_records = Vec::with_capacity(r.records.len());
    for entry in r.records {
        hash_keys.push(match &entry.explicit_hash_key {
            Some(value) => parse_hash_key(value)?,
            None => hash::hash_key(entry.partition_key.as_bytes()),
        });
        new_records
            .push(NewRecord { partition_key: Bytes::from(entry.partition_key), data: entry.data });
    }
    let results = append_routed(core, &stream_ref, &hash_keys, &new_records).await?;
    let records: Vec<out::PutRecordsResultEntry> = results
        .into_iter()
        .map(|result| match result {
            Some(Ok(appended)) => {
                out::PutRecordsResultEntry::ok(appended.shard_id, appended.sequence_number)
            }
            // The entries say only "Internal Service Failure", as Kinesis does.
            Some(Err(error)) if error.status() >= 500 => out::PutRecordsResultEntry::failed(
                &ApiError::new(spate_proto::ErrorKind::InternalFailure, error.message),
            ),
            Some(Err(error)) => out::PutRecordsResultEntry::failed(&error),
            None => out::PutRecordsResultEntry::failed(&ApiError::internal(
                "The shard is being resharded; retry.",
            )),
        })
        .collect();
    let failed = records.iter().filter(|r| r.error_code.is_some()).count() as i32;
    Ok(spate_proto::to_json(&out::PutRecordsOutput {
        failed_record_count: Some(failed),
        records,
        encryption_type: None,
    }))
}

/// Where a record was appended.
struct Appended {
    shard_id: String,
    sequence_number: String,
}

/// Appends `records` (routed by their `hash_keys`) on their shards' owning cores, for PutRecord
/// and PutRecords alike; answers one result per record, in request order. A record gets an
/// error if its shard refused it (write quota, disk full, ...), and `None` if a reshard kept
/// closing its shard for all [`REROUTE_ATTEMPTS`]. Errors for the whole request (unknown or
/// inactive stream) come back as `Err`.
///
/// Records are grouped by shard (request order kept within each group), every group is sent
/// before any reply is awaited (the owning cores work in parallel), and records that hit a
/// shard a reshard closed between lookup and append are routed again once this core has the
/// catalog that names the children.
async fn append_routed(
    core: &Rc<Core>,
    stream_ref: &StreamRef,
    hash_keys: &[u128],
    records: &[NewRecord],
) -> Result<Vec<Option<Result<Appended, ApiError>>>, ApiError> {
    let mut slots: Vec<Option<Result<Appended, ApiError>>> =
        std::iter::repeat_with(|| None).take(records.len()).collect();
    let account = core.config().account_id.clone();
    let mut routed_version = 0;
    for attempt in 0..REROUTE_ATTEMPTS {
        // Done: every record has its result. (Checked before the pause, which would otherwise
        // add a millisecond to every PutRecords.)
        if slots.iter().all(Option::is_some) {
            break;
        }
        reroute_pause(core, attempt, routed_version).await;
        routed_version = core.catalog().version;
        let handle = stream_handle(core, stream_ref)?;
        let stream = handle.meta();
        require_active(core, stream)?;
        // Group the still-pending records by shard, keeping request order within each group.
        let mut groups: Vec<(Routed, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<u32, usize> = HashMap::new();
        for (i, key) in hash_keys.iter().enumerate() {
            if slots[i].is_some() {
                continue;
            }
            let routed = route(stream, *key, core.cores())
                .ok_or_else(|| ApiError::internal("no open shard covers the hash key"))?;
            let g = *group_of.entry(routed.shard).or_insert_with(|| {
                groups.push((Routed { ..routed }, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        if groups.is_empty() {
            break;
        }
        // Send every group first, then collect: the owning cores work in parallel.
        let mut waiting = Vec::with_capacity(groups.len());
        for (routed, indexes) in &groups {
            let batch: Vec<NewRecord> = indexes.iter().map(|&i| records[i].clone()).collect();
            let (reply, rx) = oneshot::channel();
            core.send(
                routed.core,
                Msg::Data(DataMsg::Append {
                    incarnation: routed.incarnation,
                    shard: routed.shard,
                    records: batch,
                    reply,
                }),
            )
            .await;
            waiting.push(rx);
        }
        for ((routed, indexes), rx) in groups.iter().zip(waiting) {
            let shard_id = catalog::shard_id(routed.shard);
            match rx.await {
                Ok(Ok(outcome)) => {
                    let mut next = outcome.result.map(|r| r.first_offset);
                    let mut landed = outcome.result.map_or(0, |r| r.count);
                    // Accepted records past those that landed failed with `outcome.failed`.
                    let failed = outcome.failed.map(|e| {
                        let error =
                            shard_error(core, ShardError::Engine(e), &stream.name, &shard_id);
                        tracing::warn!(shard = %shard_id, cause = %error.message, "appends failed");
                        error
                    });
                    for (k, &i) in indexes.iter().enumerate() {
                        slots[i] = Some(if outcome.accepted[k] && landed == 0 {
                            Err(failed.clone().unwrap_or_else(|| {
                                ApiError::internal("an accepted record was not appended")
                            }))
                        } else if outcome.accepted[k] {
                            landed -= 1;
                            let offset = next.expect("accepted records were appended");
                            next = Some(offset + 1);
                            Ok(Appended {
                                shard_id: shard_id.clone(),
                                sequence_number: sequence_string(
                                    routed.incarnation,
                                    routed.shard,
                                    offset,
                                ),
                            })
                        } else {
                            Err(ApiError::write_throughput_exceeded(
                                &shard_id,
                                &stream.name,
                                &account,
                            ))
                        });
                    }
                }
                Ok(Err(ShardError::Engine(engine::Error::Sealed { .. })))
                | Ok(Err(ShardError::Missing)) => {} // re-routed on the next attempt
                Ok(Err(e)) => {
                    let error = shard_error(core, e, &stream.name, &shard_id);
                    if error.status() >= 500 {
                        tracing::warn!(shard = %shard_id, cause = %error.message, "appends failed");
                    }
                    for &i in indexes {
                        slots[i] = Some(Err(error.clone()));
                    }
                }
                Err(_) => {
                    for &i in indexes {
                        slots[i] = Some(Err(ApiError::internal("shard owner unavailable")));
                    }
                }
            }
        }
    }
    Ok(slots)
}

enum PositionKind {
    At,
    After,
}

pub async fn get_shard_iterator(core: &Rc<Core>, r: GetShardIteratorInput) -> ApiResult {
    let handle = stream_handle(core, &r.stream_ref()?)?;
    let stream = handle.meta();
    require_active(core, stream)?;
    let shard = find_shard(core, stream, &r.shard_id)?;
    let account = &core.config().account_id;
    let position = r.position()?;
    // The first offset an iterator at (or after) `seq` reads.
    let check_sequence = |seq: &str, after: bool| -> Result<u64, ApiError> {
        let invalid =
            || ApiError::invalid_starting_sequence_number(seq, &r.shard_id, &stream.name, account);
        let parsed = parse_position(seq).ok_or_else(invalid)?;
        if parsed.incarnation != stream.incarnation {
            return Err(ApiError::sequence_number_wrong_stream(
                seq,
                &r.shard_id,
                &stream.name,
                account,
            ));
        }
        if parsed.shard_index != shard.index {
            return Err(ApiError::sequence_number_wrong_shard(
                &catalog::shard_id(parsed.shard_index),
                &r.shard_id,
            ));
        }
        parsed.first_offset(after).ok_or_else(invalid)
    };
    let stream_name = stream.name.as_str();
    let query = |q: PositionQuery| {
        let (incarnation, index, owner) =
            (stream.incarnation, shard.index, placement::owner(shard, core.cores()));
        async move {
            core.call(owner, |reply| {
                Msg::Data(DataMsg::Position {
                    incarnation,
                    shard: index,
                    query: q,
                    charge_iterator: true,
                    reply,
                })
            })
            .await
            .ok_or_else(|| ApiError::internal("shard owner unavailable"))?
            .map_err(|e| shard_error(core, e, stream_name, &catalog::shard_id(index)))
        }
    };
    let position_kind = match position {
        IteratorPosition::AfterSequenceNumber(_) => PositionKind::After,
        _ => PositionKind::At,
    };
    let offset = match position {
        IteratorPosition::TrimHorizon => query(PositionQuery::TrimHorizon).await?,
        IteratorPosition::Latest => query(PositionQuery::Latest).await?,
        IteratorPosition::AtTimestamp(ts) => {
            check_not_future(ts.as_millis(), core.now_ms())?;
            query(PositionQuery::Timestamp(ts.as_millis())).await?
        }
        // A position past the shard's tip names a record that does not exist yet: reading
        // from it would silently skip every record written between the tip and it.
        IteratorPosition::AtSequenceNumber(seq) | IteratorPosition::AfterSequenceNumber(seq) => {
            let after = matches!(position_kind, PositionKind::After);
            let offset = check_sequence(&seq, after)?;
            let tip = query(PositionQuery::Latest).await?; // also charges the iterator quota
            if offset > tip {
                return Err(ApiError::invalid_starting_sequence_number(
                    &seq,
                    &r.shard_id,
                    &stream.name,
                    account,
                ));
            }
            offset
        }
    };
    let token = IteratorToken {
        incarnation: stream.incarnation,
        shard_index: shard.index,
        offset,
        issued_ms: core.now_ms(),
    };
    Ok(spate_proto::to_json(&out::GetShardIteratorOutput {
        shard_iterator: core.keys().encode(token),
    }))
}

pub async fn get_records(core: &Rc<Core>, r: GetRecordsInput) -> ApiResult {
    let now = core.now_ms();
    let token = match core.keys().decode(&r.shard_iterator, now) {
        Ok(token) => token,
        Err(IteratorError::Invalid) => return Err(ApiError::invalid_shard_iterator()),
        Err(IteratorError::Expired { issued_ms }) => {
            return Err(ApiError::expired_iterator(issued_ms, now));
        }
    };
    let catalog = core.catalog();
    let account = &core.config().account_id;
    let shard_id = catalog::shard_id(token.shard_index);
    let stream = catalog
        .stream_by_incarnation(token.incarnation)
        .filter(|s| s.status != StreamStatus::Deleting)
        .ok_or_else(|| {
            ApiError::resource_not_found(format!(
                "Shard {shard_id} in stream (deleted) under account {account} does not exist"
            ))
        })?;
    if let Some(arn) = &r.stream_arn
        && spate_proto::parse_stream_arn(arn).is_none_or(|a| a.name != stream.name)
    {
        return Err(ApiError::invalid_argument(format!(
            "StreamARN {arn} does not match the stream of the shard iterator."
        )));
    }
    let shard = stream
        .shard(token.shard_index)
        .ok_or_else(|| ApiError::shard_does_not_exist(&shard_id, &stream.name, account))?;
    let limit = r.limit.map_or(spate_proto::limits::GET_RECORDS_COUNT_MAX, |l| l as usize);
    let (incarnation, index, offset) = (token.incarnation, token.shard_index, token.offset);
    let reply = core
        .call(placement::owner(shard, core.cores()), |reply| {
            Msg::Data(DataMsg::Read { incarnation, shard: index, offset, limit, reply })
        })
        .await
        .ok_or_else(|| ApiError::internal("shard owner unavailable"))?;
    let reply = match reply {
        Ok(reply) => reply,
        Err(ShardError::Throttled) => {
            return Err(ApiError::throughput_exceeded(format!(
                "Rate exceeded for shard {shard_id} in stream {} under account {account}.",
                stream.name
            )));
        }
        Err(e) => return Err(shard_error(core, e, &stream.name, &shard_id)),
    };
    let last_arrival = reply.last_arrival_ms;
    let millis_behind_latest = if reply.next_offset >= reply.tip {
        0
    } else {
        (now - last_arrival.or(reply.tip_arrival_ms).unwrap_or(now)).max(0)
    };
    // A shard ends for readers only once the catalog says so: its log is sealed a moment
    // before the reshard's catalog commit names the children, and a reader told "closed" with
    // no children would be stuck. Until then it keeps getting an iterator.
    let at_end = shard.ending_offset.is_some_and(|end| reply.next_offset >= end);
    let next_shard_iterator = (!at_end).then(|| {
        core.keys().encode(IteratorToken {
            incarnation,
            shard_index: index,
            offset: reply.next_offset,
            issued_ms: now,
        })
    });
    let child_shards = at_end.then(|| child_shards(stream, index));
    core.metrics().shard(&stream.name, &shard_id, |c| c.iterator_age_ms = millis_behind_latest);
    Ok(reply.records.finish_get_records(
        next_shard_iterator.as_deref(),
        millis_behind_latest,
        child_shards.as_deref(),
    ))
}
