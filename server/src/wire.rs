//! Catalog to wire: the `spate_proto::responses` shapes of the catalog's streams, shards and
//! consumers, and of records and sequence numbers. Pure functions, no lookups.

use engine::{SequenceNumber, shard_start};
use spate_proto::responses as out;
use spate_proto::types::{ConsumerStatus, StreamModeDetails, Timestamp};

use crate::catalog::{self, ConsumerMeta, ShardMeta, StreamMeta, StreamMode, StreamStatus};
use crate::config::Config;

pub fn sequence_string(incarnation: u64, shard: u32, offset: u64) -> String {
    SequenceNumber { incarnation, shard_index: shard, offset }.to_string()
}

pub fn wire_status(status: StreamStatus) -> spate_proto::types::StreamStatus {
    use spate_proto::types::StreamStatus as W;
    match status {
        StreamStatus::Creating => W::Creating,
        StreamStatus::Active => W::Active,
        StreamStatus::Updating => W::Updating,
        StreamStatus::Deleting => W::Deleting,
    }
}

pub fn wire_mode(mode: StreamMode) -> StreamModeDetails {
    use spate_proto::types::StreamMode as W;
    StreamModeDetails {
        stream_mode: match mode {
            StreamMode::Provisioned => W::Provisioned,
            StreamMode::OnDemand => W::OnDemand,
        },
    }
}

pub fn wire_shard(stream: &StreamMeta, shard: &ShardMeta) -> out::Shard {
    out::Shard {
        shard_id: shard.shard_id(),
        parent_shard_id: shard.parent.map(catalog::shard_id),
        adjacent_parent_shard_id: shard.adjacent_parent.map(catalog::shard_id),
        hash_key_range: out::HashKeyRange {
            starting_hash_key: shard.starting_hash_key.to_string(),
            ending_hash_key: shard.ending_hash_key.to_string(),
        },
        // The start sits before the first record (see `engine::sequence`), so AT and
        // AFTER_SEQUENCE_NUMBER with it both begin at the first record, as on Kinesis. A
        // closed shard ends at its last record, or at its start if it never had one.
        sequence_number_range: out::SequenceNumberRange {
            starting_sequence_number: shard_start(stream.incarnation, shard.index),
            ending_sequence_number: shard.ending_offset.map(|end| match end {
                0 => shard_start(stream.incarnation, shard.index),
                end => sequence_string(stream.incarnation, shard.index, end - 1),
            }),
        },
    }
}

pub fn child_shards(stream: &StreamMeta, index: u32) -> Vec<out::ChildShard> {
    stream
        .children_of(index)
        .into_iter()
        .map(|child| out::ChildShard {
            shard_id: child.shard_id(),
            parent_shards: [child.parent, child.adjacent_parent]
                .into_iter()
                .flatten()
                .map(catalog::shard_id)
                .collect(),
            hash_key_range: out::HashKeyRange {
                starting_hash_key: child.starting_hash_key.to_string(),
                ending_hash_key: child.ending_hash_key.to_string(),
            },
        })
        .collect()
}

pub fn wire_record(incarnation: u64, shard: u32, record: engine::Record) -> out::Record {
    out::Record {
        sequence_number: sequence_string(incarnation, shard, record.offset),
        approximate_arrival_timestamp: Timestamp::from_millis(record.arrival_ms),
        data: record.data,
        partition_key: String::from_utf8_lossy(&record.partition_key).into_owned(),
        encryption_type: None,
    }
}

pub fn consumer_status(status: &str) -> ConsumerStatus {
    match status {
        "CREATING" => ConsumerStatus::Creating,
        "DELETING" => ConsumerStatus::Deleting,
        _ => ConsumerStatus::Active,
    }
}

pub fn wire_consumer(config: &Config, stream: &StreamMeta, c: &ConsumerMeta) -> out::Consumer {
    out::Consumer {
        consumer_name: c.name.clone(),
        consumer_arn: stream.consumer_arn(&config.region, &config.account_id, c),
        consumer_status: consumer_status(&c.status),
        consumer_creation_timestamp: Timestamp::from_millis(c.creation_epoch_seconds * 1000),
    }
}
