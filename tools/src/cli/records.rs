//! The data-plane verbs: `spate put` (one record, or one per stdin line in PutRecords batches
//! with retries of failed entries), `spate get` (one shard from a position) and `spate tail`
//! (every shard, following children after a reshard, by polling or enhanced fan-out).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use spate_proto::limits::{
    GET_RECORDS_COUNT_MAX, PARTITION_KEY_LENGTH_MAX, PUT_RECORDS_BYTES_MAX,
    PUT_RECORDS_ENTRIES_MAX, RECORD_DATA_BYTES_MAX,
};

use crate::cli::output::{format_record, print_json, write_stdout};
use crate::cli::{Context, GetArgs, OutputFormat, PutArgs, RecordFormat, TailArgs};
use crate::kinesis::{
    self, ChildShard, Client, Event, Position, PutEntry, Record, Shard, normalize_shard_id,
};

/// Attempts for a PutRecords entry that keeps failing (throttling, internal errors).
const PUT_ATTEMPTS_MAX: u32 = 8;
/// `get` stops after this many empty responses in a row while the shard is not caught up.
const EMPTY_READS_MAX: u32 = 100;

fn partition_key(args: &PutArgs, n: u64, line: &str) -> Result<String, String> {
    let key = match &args.key {
        Some(key) => key.clone(),
        None => args.key_template.replace("{n}", &n.to_string()).replace("{line}", line),
    };
    if key.is_empty() || key.chars().count() > PARTITION_KEY_LENGTH_MAX {
        return Err(format!(
            "partition key for record {n} must be 1..={PARTITION_KEY_LENGTH_MAX} characters"
        ));
    }
    Ok(key)
}

fn print_put(
    context: &Context,
    n: u64,
    shard_id: &str,
    sequence_number: &str,
) -> Result<(), String> {
    if context.output == OutputFormat::Json {
        let line = json!({ "n": n, "ShardId": shard_id, "SequenceNumber": sequence_number });
        write_stdout(format!("{line}\n").as_bytes())
    } else {
        write_stdout(format!("{n}  {shard_id}  {sequence_number}\n").as_bytes())
    }
}

/// Sends `batch` with PutRecords, retrying failed entries with backoff; prints each result.
fn flush(
    context: &Context,
    client: &mut Client,
    stream: &str,
    batch: &mut Vec<(u64, PutEntry)>,
) -> Result<(), String> {
    let mut pending = std::mem::take(batch);
    let mut attempt = 0;
    while !pending.is_empty() {
        attempt += 1;
        let entries: Vec<PutEntry> = pending
            .iter()
            .map(|(_, e)| PutEntry {
                partition_key: e.partition_key.clone(),
                data: e.data.clone(),
                explicit_hash_key: e.explicit_hash_key.clone(),
            })
            .collect();
        let output = match client.put_records(stream, &entries) {
            Ok(output) => output,
            Err(e) if e.is_api(kinesis::THROTTLED) && attempt < PUT_ATTEMPTS_MAX => {
                std::thread::sleep(Duration::from_millis(50 << attempt));
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        if output.records.len() != pending.len() {
            return Err(format!(
                "PutRecords answered {} results for {} records",
                output.records.len(),
                pending.len()
            ));
        }
        let mut retry = Vec::new();
        let mut last_error = String::new();
        for ((n, entry), result) in pending.into_iter().zip(output.records) {
            match (result.shard_id, result.sequence_number) {
                (Some(shard), Some(sequence)) => print_put(context, n, &shard, &sequence)?,
                _ => {
                    last_error = format!(
                        "{}: {}",
                        result.error_code.unwrap_or_default(),
                        result.error_message.unwrap_or_default()
                    );
                    retry.push((n, entry));
                }
            }
        }
        if !retry.is_empty() && attempt >= PUT_ATTEMPTS_MAX {
            return Err(format!(
                "{} records still failing after {attempt} attempts; last error {last_error}",
                retry.len()
            ));
        }
        if !retry.is_empty() {
            std::thread::sleep(Duration::from_millis(50 << attempt));
        }
        pending = retry;
    }
    Ok(())
}

pub fn put(context: &Context, args: PutArgs) -> Result<(), String> {
    let mut client = context.client();
    if let Some(data) = &args.data {
        let key = partition_key(&args, 0, data)?;
        let output = client
            .put_record(&args.stream, &key, data.as_bytes(), args.explicit_hash_key.as_deref())
            .map_err(|e| e.to_string())?;
        return print_put(context, 0, &output.shard_id, &output.sequence_number);
    }
    if args.batch_size == 0 || args.batch_size > PUT_RECORDS_ENTRIES_MAX {
        return Err(format!("--batch-size must be 1..={PUT_RECORDS_ENTRIES_MAX}"));
    }
    let stdin = std::io::stdin();
    let mut batch: Vec<(u64, PutEntry)> = Vec::new();
    let mut batch_bytes = 0;
    let mut n = 0u64;
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(|e| format!("reading stdin: {e}"))? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.is_empty() {
            continue;
        }
        let key = partition_key(&args, n, &String::from_utf8_lossy(&line))?;
        let size = line.len() + key.len();
        if size > RECORD_DATA_BYTES_MAX {
            return Err(format!("line {} is larger than the 1 MiB record limit", n + 1));
        }
        if batch.len() == args.batch_size || batch_bytes + size > PUT_RECORDS_BYTES_MAX {
            flush(context, &mut client, &args.stream, &mut batch)?;
            batch_bytes = 0;
        }
        batch_bytes += size;
        batch.push((
            n,
            PutEntry {
                partition_key: key,
                data: line.clone(),
                explicit_hash_key: args.explicit_hash_key.clone(),
            },
        ));
        n += 1;
    }
    flush(context, &mut client, &args.stream, &mut batch)?;
    if context.output == OutputFormat::Text {
        eprintln!("{n} records put to {}", args.stream);
    }
    Ok(())
}

pub fn get(context: &Context, args: GetArgs) -> Result<(), String> {
    let mut client = context.client();
    let format = context.record_format(args.format);
    let position = Position::parse(&args.from)?;
    let shard_id = normalize_shard_id(&args.shard);
    let mut iterator =
        client.get_shard_iterator(&args.stream, &shard_id, &position).map_err(|e| e.to_string())?;
    let mut printed = 0u64;
    let mut collected: Vec<serde_json::Value> = Vec::new();
    let mut empty_reads = 0;
    let as_document = context.output == OutputFormat::Json && args.format.is_none();
    while printed < args.limit {
        let limit = (args.limit - printed).min(GET_RECORDS_COUNT_MAX as u64) as u32;
        let output = client.get_records(&iterator, limit).map_err(|e| e.to_string())?;
        for record in &output.records {
            if as_document {
                collected.push(json!({
                    "SequenceNumber": record.sequence_number,
                    "PartitionKey": record.partition_key,
                    "ApproximateArrivalTimestamp": record.approximate_arrival_timestamp,
                    "Data": record.data,
                }));
            } else {
                write_stdout(&format_record(&shard_id, record, format))?;
            }
        }
        printed += output.records.len() as u64;
        let caught_up = output.millis_behind_latest.is_none_or(|behind| behind == 0);
        if output.records.is_empty() {
            empty_reads += 1;
            if caught_up || empty_reads >= EMPTY_READS_MAX {
                break;
            }
        } else {
            empty_reads = 0;
        }
        match output.next_shard_iterator {
            Some(next) => iterator = next,
            None => break, // Closed shard, read to its end.
        }
    }
    if as_document {
        print_json(&json!({ "ShardId": shard_id, "Records": collected }))?;
    }
    Ok(())
}

/// Which shards to read, in lineage order: parents before children.
struct Lineage {
    parents: HashMap<String, Vec<String>>,
    started: HashSet<String>,
    finished: HashSet<String>,
}

impl Lineage {
    fn new(shards: &[Shard]) -> Lineage {
        Lineage {
            parents: shards
                .iter()
                .map(|s| (s.shard_id.clone(), s.parents().map(str::to_string).collect()))
                .collect(),
            started: HashSet::new(),
            finished: HashSet::new(),
        }
    }

    /// Shards to start with: lineage roots (from a past position) or open shards (latest).
    fn initial(&mut self, shards: &[Shard], position: &Position) -> Vec<String> {
        let chosen: Vec<String> = shards
            .iter()
            .filter(|s| match position {
                Position::Latest => s.is_open(),
                _ => s.parents().all(|p| !self.parents.contains_key(p)),
            })
            .map(|s| s.shard_id.clone())
            .collect();
        self.started.extend(chosen.iter().cloned());
        chosen
    }

    /// `shard_id` was read to its end; returns the children now ready to start.
    fn finish(&mut self, shard_id: &str, children: &[ChildShard]) -> Vec<String> {
        self.finished.insert(shard_id.to_string());
        for child in children {
            self.parents
                .entry(child.shard_id.clone())
                .or_insert_with(|| child.parent_shards.clone());
        }
        let mut ready = Vec::new();
        for child in children {
            let parents = &self.parents[&child.shard_id];
            let parents_done =
                parents.iter().all(|p| self.finished.contains(p) || !self.started.contains(p));
            if parents_done && self.started.insert(child.shard_id.clone()) {
                ready.push(child.shard_id.clone());
            }
        }
        ready
    }
}

fn children_of(
    client: &mut Client,
    stream: &str,
    shard_id: &str,
) -> Result<Vec<ChildShard>, String> {
    let shards = client.list_shards(stream).map_err(|e| e.to_string())?;
    Ok(shards
        .iter()
        .filter(|s| s.parents().any(|p| p == shard_id))
        .map(|s| ChildShard {
            shard_id: s.shard_id.clone(),
            parent_shards: s.parents().map(str::to_string).collect(),
        })
        .collect())
}

/// Counts printed records against `--limit`.
struct Printer {
    format: RecordFormat,
    printed: u64,
    limit: Option<u64>,
}

impl Printer {
    /// Prints what the limit allows; returns false once the limit is reached.
    fn print(&mut self, shard_id: &str, records: &[Record]) -> Result<bool, String> {
        let mut out = Vec::new();
        for record in records {
            if self.limit.is_some_and(|limit| self.printed >= limit) {
                break;
            }
            out.extend(format_record(shard_id, record, self.format));
            self.printed += 1;
        }
        write_stdout(&out)?;
        Ok(self.limit.is_none_or(|limit| self.printed < limit))
    }
}

pub fn tail(context: &Context, args: TailArgs) -> Result<(), String> {
    let mut client = context.client();
    let position = Position::parse(&args.from)?;
    let shards = client.list_shards(&args.stream).map_err(|e| e.to_string())?;
    let mut lineage = Lineage::new(&shards);
    let initial = lineage.initial(&shards, &position);
    let mut printer =
        Printer { format: context.record_format(args.format), printed: 0, limit: args.limit };
    if args.limit == Some(0) {
        return Ok(());
    }
    let start = TailStart { lineage, initial, position };
    match &args.efo {
        None => tail_polling(&args, &mut client, start, &mut printer),
        Some(consumer) => tail_efo(context, &args, consumer, &mut client, start, &mut printer),
    }
}

fn tail_polling(
    args: &TailArgs,
    client: &mut Client,
    start: TailStart,
    printer: &mut Printer,
) -> Result<(), String> {
    let TailStart { mut lineage, initial, position } = start;
    struct Cursor {
        shard_id: String,
        iterator: String,
        last_sequence: Option<String>,
        start: Position,
    }
    let mut cursors = VecDeque::new();
    for shard_id in initial {
        let iterator = client
            .get_shard_iterator(&args.stream, &shard_id, &position)
            .map_err(|e| e.to_string())?;
        cursors.push_back(Cursor {
            shard_id,
            iterator,
            last_sequence: None,
            start: position.clone(),
        });
    }
    loop {
        if cursors.is_empty() {
            return Ok(()); // Every shard closed and read (the stream was deleted or merged away).
        }
        let mut received = 0;
        let mut index = 0;
        while index < cursors.len() {
            let cursor = &mut cursors[index];
            let output = match client.get_records(&cursor.iterator, GET_RECORDS_COUNT_MAX as u32) {
                Ok(output) => output,
                Err(e) if e.is_api("ExpiredIteratorException") => {
                    let position = match &cursor.last_sequence {
                        Some(s) => Position::AfterSequence(s.clone()),
                        None => cursor.start.clone(),
                    };
                    cursor.iterator = client
                        .get_shard_iterator(&args.stream, &cursor.shard_id, &position)
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                Err(e) if e.is_api(kinesis::THROTTLED) => {
                    index += 1;
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            received += output.records.len();
            if let Some(last) = output.records.last() {
                cursor.last_sequence = Some(last.sequence_number.clone());
            }
            if !printer.print(&cursor.shard_id, &output.records)? {
                return Ok(());
            }
            match output.next_shard_iterator {
                Some(next) => {
                    cursor.iterator = next;
                    index += 1;
                }
                None => {
                    let shard_id = cursor.shard_id.clone();
                    let children = match output.child_shards {
                        Some(children) if !children.is_empty() => children,
                        _ => children_of(client, &args.stream, &shard_id)?,
                    };
                    cursors.remove(index);
                    for child in lineage.finish(&shard_id, &children) {
                        let start = Position::TrimHorizon;
                        let iterator = client
                            .get_shard_iterator(&args.stream, &child, &start)
                            .map_err(|e| e.to_string())?;
                        cursors.push_back(Cursor {
                            shard_id: child,
                            iterator,
                            last_sequence: None,
                            start,
                        });
                    }
                }
            }
        }
        if received == 0 {
            std::thread::sleep(args.poll_interval);
        }
    }
}

enum EfoMessage {
    Records(String, Vec<Record>),
    Closed(String, Vec<ChildShard>),
    Failed(String),
}

/// Where an enhanced fan-out shard thread subscribes.
#[derive(Clone)]
struct EfoTarget {
    url: crate::http::Url,
    region: String,
    timeouts: crate::http::Timeouts,
    stream: String,
    consumer_arn: String,
}

/// One enhanced fan-out subscription loop for one shard, resubscribing when a subscription ends.
fn efo_shard(
    target: EfoTarget,
    shard_id: String,
    mut position: Position,
    sender: mpsc::Sender<EfoMessage>,
) {
    let EfoTarget { url, region, timeouts, stream, consumer_arn } = target;
    let mut client = Client::new(&url, &region, timeouts);
    let mut failures = 0;
    loop {
        let mut subscription = match client.subscribe_to_shard(
            &consumer_arn,
            &shard_id,
            &position,
            Duration::from_secs(60),
        ) {
            Ok(s) => s,
            Err(e) => {
                failures += 1;
                if failures >= 5 || e.is_unsupported() {
                    let _ = sender
                        .send(EfoMessage::Failed(format!("SubscribeToShard {shard_id}: {e}")));
                    return;
                }
                std::thread::sleep(Duration::from_millis(200 << failures));
                continue;
            }
        };
        loop {
            match subscription.next_event() {
                Ok(Some(Event::InitialResponse)) => failures = 0,
                Ok(Some(Event::Shard(event))) => {
                    if !event.records.is_empty()
                        && sender
                            .send(EfoMessage::Records(shard_id.clone(), event.records))
                            .is_err()
                    {
                        return;
                    }
                    match event.continuation_sequence_number {
                        Some(continuation) => position = Position::AfterSequence(continuation),
                        None => {
                            let children = match event.child_shards {
                                Some(children) if !children.is_empty() => children,
                                _ => {
                                    children_of(&mut client, &stream, &shard_id).unwrap_or_default()
                                }
                            };
                            let _ = sender.send(EfoMessage::Closed(shard_id.clone(), children));
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failures += 1;
                    if failures >= 5 {
                        let _ = sender.send(EfoMessage::Failed(format!("{shard_id}: {e}")));
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// The state `tail` hands to either reading mode.
struct TailStart {
    lineage: Lineage,
    initial: Vec<String>,
    position: Position,
}

fn tail_efo(
    context: &Context,
    args: &TailArgs,
    consumer_name: &str,
    client: &mut Client,
    start: TailStart,
    printer: &mut Printer,
) -> Result<(), String> {
    let TailStart { mut lineage, initial, position } = start;
    let arn = client.describe_stream_summary(&args.stream).map_err(|e| e.to_string())?.stream_arn;
    let consumer = match client.describe_stream_consumer(&arn, consumer_name) {
        Ok(c) if c.consumer_status == "ACTIVE" => c,
        Ok(_) | Err(_) => {
            let started = Instant::now();
            let c = client.ensure_consumer(&arn, consumer_name, Duration::from_secs(120)).map_err(
                |e| {
                    if e.is_unsupported() {
                        format!("{e} (enhanced fan-out is not supported by {})", context.url)
                    } else {
                        e.to_string()
                    }
                },
            )?;
            eprintln!(
                "consumer {consumer_name} ready after {:.1} s ({})",
                started.elapsed().as_secs_f64(),
                c.consumer_arn
            );
            c
        }
    };
    let (sender, receiver) = mpsc::channel();
    let target = EfoTarget {
        url: context.url.clone(),
        region: context.region.clone(),
        timeouts: context.timeouts,
        stream: args.stream.clone(),
        consumer_arn: consumer.consumer_arn.clone(),
    };
    let spawn = |shard_id: String, position: Position| {
        let (target, sender) = (target.clone(), sender.clone());
        std::thread::spawn(move || efo_shard(target, shard_id, position, sender));
    };
    let mut active = 0usize;
    for shard_id in initial {
        spawn(shard_id, position.clone());
        active += 1;
    }
    while active > 0 {
        let Ok(message) = receiver.recv() else { break };
        match message {
            EfoMessage::Records(shard_id, records) => {
                if !printer.print(&shard_id, &records)? {
                    return Ok(());
                }
            }
            EfoMessage::Closed(shard_id, children) => {
                active -= 1;
                for child in lineage.finish(&shard_id, &children) {
                    spawn(child, Position::TrimHorizon);
                    active += 1;
                }
            }
            EfoMessage::Failed(message) => return Err(message),
        }
    }
    Ok(())
}
