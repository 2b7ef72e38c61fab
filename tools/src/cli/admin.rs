//! The control-plane verbs: `spate stream create|delete|list|describe|scale` and
//! `spate consumer register|list|deregister`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::output::{pairs, print_json, table, write_stdout};
use crate::cli::{ConsumerCommand, Context, OutputFormat, StreamCommand, StreamMode};
use crate::kinesis::{Shard, StreamSummary};
use crate::timefmt;

const WAIT_TIMEOUT: Duration = Duration::from_secs(120);
/// `stream list` describes each stream for its table, up to this many; beyond, names only.
const LIST_DESCRIBE_MAX: usize = 100;

fn summary_pairs(summary: &StreamSummary) -> Vec<(&'static str, String)> {
    let optional = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    vec![
        ("stream", summary.stream_name.clone()),
        ("arn", summary.stream_arn.clone()),
        ("status", summary.stream_status.clone()),
        ("mode", summary.mode()),
        ("open shards", optional(summary.open_shard_count)),
        ("retention hours", optional(summary.retention_period_hours)),
        ("consumers", optional(summary.consumer_count)),
        (
            "created",
            summary
                .stream_creation_timestamp
                .map(|t| timefmt::rfc3339(t as u64))
                .unwrap_or_else(|| "-".into()),
        ),
    ]
}

fn shard_rows(shards: &[Shard]) -> Vec<Vec<String>> {
    shards
        .iter()
        .map(|s| {
            let parents: Vec<&str> = s.parents().collect();
            vec![
                s.shard_id.clone(),
                if s.is_open() { "open".into() } else { "closed".into() },
                if parents.is_empty() { "-".into() } else { parents.join(",") },
                s.hash_key_range.starting_hash_key.clone(),
                s.hash_key_range.ending_hash_key.clone(),
                s.sequence_number_range.starting_sequence_number.clone(),
            ]
        })
        .collect()
}

const SHARD_HEADERS: [&str; 6] =
    ["SHARD", "STATE", "PARENTS", "HASH KEY START", "HASH KEY END", "FIRST SEQUENCE NUMBER"];

pub fn stream(context: &Context, command: StreamCommand) -> Result<(), String> {
    let mut client = context.client();
    let json = context.output == OutputFormat::Json;
    match command {
        StreamCommand::Create { name, shards, mode, no_wait } => {
            let on_demand = mode == StreamMode::OnDemand;
            client
                .create_stream(&name, (!on_demand).then_some(shards), on_demand)
                .map_err(|e| e.to_string())?;
            let status = if no_wait {
                "CREATING".to_string()
            } else {
                client.wait_active(&name, WAIT_TIMEOUT).map_err(|e| e.to_string())?.stream_status
            };
            if json {
                print_json(&json!({ "StreamName": name, "StreamStatus": status }))
            } else {
                write_stdout(format!("stream {name} {status}\n").as_bytes())
            }
        }
        StreamCommand::Delete { name, force } => {
            client.delete_stream(&name, force).map_err(|e| e.to_string())?;
            if json {
                print_json(&json!({ "StreamName": name, "StreamStatus": "DELETING" }))
            } else {
                write_stdout(format!("stream {name} DELETING\n").as_bytes())
            }
        }
        StreamCommand::List => {
            let names = client.list_streams().map_err(|e| e.to_string())?;
            if json {
                return print_json(&json!({ "StreamNames": names }));
            }
            let mut rows = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let row = if i < LIST_DESCRIBE_MAX {
                    match client.describe_stream_summary(name) {
                        Ok(s) => vec![
                            name.clone(),
                            s.stream_status.clone(),
                            s.mode(),
                            s.open_shard_count.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
                        ],
                        Err(_) => vec![name.clone(), "-".into(), "-".into(), "-".into()],
                    }
                } else {
                    vec![name.clone(), "-".into(), "-".into(), "-".into()]
                };
                rows.push(row);
            }
            write_stdout(table(&["STREAM", "STATUS", "MODE", "OPEN SHARDS"], &rows).as_bytes())
        }
        StreamCommand::Describe { name } => {
            let summary = client.describe_stream_summary(&name).map_err(|e| e.to_string())?;
            let shards = client.list_shards(&name).map_err(|e| e.to_string())?;
            if json {
                return print_json(&json!({
                    "StreamDescriptionSummary": summary,
                    "Shards": shards,
                }));
            }
            let mut text = pairs(&summary_pairs(&summary));
            text.push('\n');
            text.push_str(&table(&SHARD_HEADERS, &shard_rows(&shards)));
            write_stdout(text.as_bytes())
        }
        StreamCommand::Scale { name, shards, no_wait } => {
            let output: Value =
                client.update_shard_count(&name, shards).map_err(|e| e.to_string())?;
            let status = if no_wait {
                "UPDATING".to_string()
            } else {
                client.wait_active(&name, WAIT_TIMEOUT).map_err(|e| e.to_string())?.stream_status
            };
            if json {
                let mut output = output;
                output["StreamStatus"] = json!(status);
                print_json(&output)
            } else {
                write_stdout(
                    format!("stream {name} scaling to {shards} open shards: {status}\n").as_bytes(),
                )
            }
        }
    }
}

pub fn consumer(context: &Context, command: ConsumerCommand) -> Result<(), String> {
    let mut client = context.client();
    let json = context.output == OutputFormat::Json;
    let arn_of = |client: &mut crate::kinesis::Client, stream: &str| {
        client.describe_stream_summary(stream).map(|s| s.stream_arn).map_err(|e| e.to_string())
    };
    match command {
        ConsumerCommand::Register { stream, name } => {
            let arn = arn_of(&mut client, &stream)?;
            client.register_stream_consumer(&arn, &name).map_err(|e| e.to_string())?;
            let consumer =
                client.ensure_consumer(&arn, &name, WAIT_TIMEOUT).map_err(|e| e.to_string())?;
            if json {
                print_json(&consumer)
            } else {
                write_stdout(
                    format!(
                        "consumer {} {} {}\n",
                        consumer.consumer_name, consumer.consumer_status, consumer.consumer_arn
                    )
                    .as_bytes(),
                )
            }
        }
        ConsumerCommand::List { stream } => {
            let arn = arn_of(&mut client, &stream)?;
            let consumers = client.list_stream_consumers(&arn).map_err(|e| e.to_string())?;
            if json {
                return print_json(&json!({ "Consumers": consumers }));
            }
            let rows: Vec<Vec<String>> = consumers
                .iter()
                .map(|c| {
                    vec![
                        c.consumer_name.clone(),
                        c.consumer_status.clone(),
                        c.consumer_creation_timestamp
                            .map(|t| timefmt::rfc3339(t as u64))
                            .unwrap_or_else(|| "-".into()),
                        c.consumer_arn.clone(),
                    ]
                })
                .collect();
            write_stdout(table(&["CONSUMER", "STATUS", "CREATED", "ARN"], &rows).as_bytes())
        }
        ConsumerCommand::Deregister { stream, name } => {
            let arn = arn_of(&mut client, &stream)?;
            client.deregister_stream_consumer(&arn, &name).map_err(|e| e.to_string())?;
            if json {
                print_json(&json!({ "ConsumerName": name, "ConsumerStatus": "DELETING" }))
            } else {
                write_stdout(format!("consumer {name} DELETING\n").as_bytes())
            }
        }
    }
}
