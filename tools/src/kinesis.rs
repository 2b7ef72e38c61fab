//! The Kinesis Data Streams client the CLI and the harness share: AWS JSON 1.1 calls over
//! [`crate::http`], error decoding (`{"__type", "message"}`), the typed requests and responses
//! the tools use, stream lifecycle helpers, and SubscribeToShard event streams.
//!
//! Requests carry a SigV4-*shaped* `Authorization` header with a dummy signature: Spate and the
//! local peers (kinesalite, kinesis-mock, ferrokinesis) do not verify signatures. Real AWS
//! Kinesis needs real SigV4 signing, which is out of scope for these tools.
//!
//! Base64, the event-stream codec, the target prefix, content types and limits are
//! `spate_proto`'s. The response types below are the client's own views, not
//! `spate_proto::responses`: they accept what the other peers send (timestamps as plain
//! numbers, statuses as free strings, members AWS always sends but peers may omit), keep
//! `Data` as base64 text or borrow it from the response buffer (the harness does not decode
//! megabytes it only counts), and print the CLI's `--output json` documents as they always
//! have (absent members as `null`).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spate_proto::responses::CONTENT_TYPE;
use spate_proto::{TARGET_PREFIX, base64, eventstream};

use crate::http::{self, Timeouts, Url};
use crate::timefmt;

pub const THROTTLED: &str = "ProvisionedThroughputExceededException";

#[derive(Debug)]
pub enum Error {
    /// The server answered with an error document.
    Api { status: u16, kind: String, message: String },
    /// The request did not complete: connect, read or write failed or timed out.
    Transport { url: String, source: io::Error },
    /// The server answered with something that is not the expected document.
    Protocol(String),
}

impl Error {
    /// The Kinesis error type, or a stable name for transport and protocol failures, used to
    /// count failures by type.
    pub fn kind(&self) -> String {
        match self {
            Error::Api { kind, .. } => kind.clone(),
            Error::Transport { source, .. } => match source.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "Timeout".into(),
                io::ErrorKind::ConnectionRefused => "ConnectionRefused".into(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                    "ConnectionReset".into()
                }
                io::ErrorKind::UnexpectedEof => "ConnectionClosed".into(),
                _ => "TransportError".into(),
            },
            Error::Protocol(_) => "ProtocolError".into(),
        }
    }

    pub fn is_api(&self, kind: &str) -> bool {
        matches!(self, Error::Api { kind: k, .. } if k == kind)
    }

    /// The operation is unknown to the server (e.g. enhanced fan-out on kinesalite).
    pub fn is_unsupported(&self) -> bool {
        match self {
            Error::Api { status, kind, .. } => {
                kind == "UnknownOperationException"
                    || kind == "InvalidAction"
                    || kind == "NotImplemented"
                    || *status == 404
                    || *status == 501
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api { kind, message, .. } if message.is_empty() => f.write_str(kind),
            Error::Api { kind, message, .. } => write!(f, "{kind}: {message}"),
            Error::Transport { url, source } => write!(f, "cannot reach {url}: {source}"),
            Error::Protocol(message) => write!(f, "unexpected response: {message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Decodes a non-2xx response into [`Error::Api`].
fn api_error(response: &http::Response) -> Error {
    #[derive(Deserialize)]
    struct Document {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let document: Option<Document> = serde_json::from_slice(&response.body).ok();
    let kind = document
        .as_ref()
        .and_then(|d| d.kind.clone())
        .or_else(|| response.header("x-amzn-ErrorType").map(str::to_string))
        .unwrap_or_else(|| format!("HTTP{}", response.status));
    // `com.amazonaws.kinesis#ResourceNotFoundException` and `Kind:http://...` both name `Kind`.
    let kind = kind.rsplit('#').next().unwrap_or(&kind);
    let kind = kind.split(':').next().unwrap_or(kind).to_string();
    let message = match document {
        Some(d) => d.message.unwrap_or_default(),
        None => String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
            .trim()
            .to_string(),
    };
    Error::Api { status: response.status, kind, message }
}

fn request_headers<'a>(
    date: &'a (u64, String, String),
    target: &'a str,
) -> [(&'a str, &'a str); 4] {
    [
        ("X-Amz-Target", target),
        ("Content-Type", CONTENT_TYPE),
        ("X-Amz-Date", &date.1),
        ("Authorization", &date.2),
    ]
}

/// A connection to one Kinesis endpoint. Not shared between threads: each worker owns one.
pub struct Client {
    http: http::Client,
    region: String,
    date: (u64, String, String),
}

impl Client {
    pub fn new(url: &Url, region: &str, timeouts: Timeouts) -> Client {
        Client {
            http: http::Client::new(url.clone(), timeouts),
            region: region.to_string(),
            date: (u64::MAX, String::new(), String::new()),
        }
    }

    pub fn url(&self) -> &Url {
        self.http.url()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn transport(&self, source: io::Error) -> Error {
        Error::Transport { url: self.http.url().to_string(), source }
    }

    /// Refreshes the `X-Amz-Date` and `Authorization` values once a second.
    fn signing_headers(&mut self) {
        let now = timefmt::epoch_seconds_now();
        if self.date.0 != now {
            let amz_date = timefmt::amz_date(now);
            let authorization = format!(
                "AWS4-HMAC-SHA256 Credential=SPATEDUMMYKEY/{}/{}/kinesis/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
                &amz_date[..8],
                self.region,
                "0".repeat(64)
            );
            self.date = (now, amz_date, authorization);
        }
    }

    /// Sends a raw JSON body for `operation` and returns the raw JSON response body.
    pub fn call_raw(&mut self, operation: &str, body: &[u8]) -> Result<Vec<u8>> {
        self.signing_headers();
        let target = format!("{TARGET_PREFIX}.{operation}");
        let headers = request_headers(&self.date, &target);
        let response = self.http.post(&headers, body);
        let response = response.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&response.status) {
            return Err(api_error(&response));
        }
        Ok(response.body)
    }

    pub fn call<T: DeserializeOwned>(&mut self, operation: &str, request: &Value) -> Result<T> {
        let body = serde_json::to_vec(request).expect("a JSON value serializes");
        let response = self.call_raw(operation, &body)?;
        let response = if response.is_empty() { b"{}".to_vec() } else { response };
        serde_json::from_slice(&response)
            .map_err(|e| Error::Protocol(format!("{operation} response: {e}")))
    }

    // ---- streams ----

    pub fn create_stream(
        &mut self,
        name: &str,
        shards: Option<u32>,
        on_demand: bool,
    ) -> Result<()> {
        let mut request = json!({ "StreamName": name });
        if let Some(shards) = shards {
            request["ShardCount"] = json!(shards);
        }
        if on_demand {
            request["StreamModeDetails"] = json!({ "StreamMode": "ON_DEMAND" });
        }
        self.call::<Value>("CreateStream", &request).map(drop)
    }

    pub fn delete_stream(&mut self, name: &str, enforce_consumer_deletion: bool) -> Result<()> {
        let mut request = json!({ "StreamName": name });
        if enforce_consumer_deletion {
            request["EnforceConsumerDeletion"] = json!(true);
        }
        self.call::<Value>("DeleteStream", &request).map(drop)
    }

    pub fn list_streams(&mut self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            stream_names: Vec<String>,
            #[serde(default)]
            has_more_streams: bool,
        }
        let mut names: Vec<String> = Vec::new();
        loop {
            let mut request = json!({ "Limit": 100 });
            if let Some(last) = names.last() {
                request["ExclusiveStartStreamName"] = json!(last);
            }
            let page: Page = self.call("ListStreams", &request)?;
            let empty = page.stream_names.is_empty();
            names.extend(page.stream_names);
            if !page.has_more_streams || empty {
                return Ok(names);
            }
        }
    }

    pub fn describe_stream_summary(&mut self, name: &str) -> Result<StreamSummary> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output {
            stream_description_summary: StreamSummary,
        }
        let output: Output = self.call("DescribeStreamSummary", &json!({ "StreamName": name }))?;
        Ok(output.stream_description_summary)
    }

    /// Polls until the stream is ACTIVE (after create or reshard).
    pub fn wait_active(&mut self, name: &str, timeout: Duration) -> Result<StreamSummary> {
        let deadline = Instant::now() + timeout;
        loop {
            let summary = self.describe_stream_summary(name)?;
            if summary.stream_status == "ACTIVE" {
                return Ok(summary);
            }
            if Instant::now() >= deadline {
                return Err(Error::Protocol(format!(
                    "stream {name} still {} after {timeout:?}",
                    summary.stream_status
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn list_shards(&mut self, stream: &str) -> Result<Vec<Shard>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            shards: Vec<Shard>,
            next_token: Option<String>,
        }
        let mut shards = Vec::new();
        let mut request = json!({ "StreamName": stream });
        loop {
            let page: Page = self.call("ListShards", &request)?;
            shards.extend(page.shards);
            match page.next_token {
                Some(token) if !token.is_empty() => request = json!({ "NextToken": token }),
                _ => return Ok(shards),
            }
        }
    }

    pub fn update_shard_count(&mut self, stream: &str, target: u32) -> Result<Value> {
        self.call(
            "UpdateShardCount",
            &json!({ "StreamName": stream, "TargetShardCount": target,
                     "ScalingType": "UNIFORM_SCALING" }),
        )
    }

    // ---- records ----

    pub fn put_record(
        &mut self,
        stream: &str,
        partition_key: &str,
        data: &[u8],
        explicit_hash_key: Option<&str>,
    ) -> Result<PutRecordOutput> {
        let mut request = json!({
            "StreamName": stream,
            "PartitionKey": partition_key,
            "Data": base64::encode(data),
        });
        if let Some(hash) = explicit_hash_key {
            request["ExplicitHashKey"] = json!(hash);
        }
        self.call("PutRecord", &request)
    }

    pub fn put_records(&mut self, stream: &str, entries: &[PutEntry]) -> Result<PutRecordsOutput> {
        let records: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "PartitionKey": e.partition_key,
                    "Data": base64::encode(&e.data),
                });
                if let Some(hash) = &e.explicit_hash_key {
                    v["ExplicitHashKey"] = json!(hash);
                }
                v
            })
            .collect();
        self.call("PutRecords", &json!({ "StreamName": stream, "Records": records }))
    }

    pub fn get_shard_iterator(
        &mut self,
        stream: &str,
        shard_id: &str,
        position: &Position,
    ) -> Result<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output {
            shard_iterator: String,
        }
        let mut request = json!({
            "StreamName": stream,
            "ShardId": shard_id,
            "ShardIteratorType": position.iterator_type(),
        });
        match position {
            Position::AtSequence(s) | Position::AfterSequence(s) => {
                request["StartingSequenceNumber"] = json!(s);
            }
            Position::AtTimestamp(t) => request["Timestamp"] = json!(t),
            Position::TrimHorizon | Position::Latest => {}
        }
        let output: Output = self.call("GetShardIterator", &request)?;
        Ok(output.shard_iterator)
    }

    /// GetRecords with the response borrowed from `buffer` (the harness decodes only the
    /// fields it needs, without copying record data).
    pub fn get_records_raw(&mut self, iterator: &str, limit: u32) -> Result<Vec<u8>> {
        let request = json!({ "ShardIterator": iterator, "Limit": limit });
        self.call_raw("GetRecords", &serde_json::to_vec(&request).expect("serializes"))
    }

    pub fn get_records(&mut self, iterator: &str, limit: u32) -> Result<GetRecordsOutput> {
        let body = self.get_records_raw(iterator, limit)?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("GetRecords: {e}")))
    }

    // ---- enhanced fan-out ----

    pub fn register_stream_consumer(&mut self, stream_arn: &str, name: &str) -> Result<Consumer> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output {
            consumer: Consumer,
        }
        let output: Output = self.call(
            "RegisterStreamConsumer",
            &json!({ "StreamARN": stream_arn, "ConsumerName": name }),
        )?;
        Ok(output.consumer)
    }

    pub fn describe_stream_consumer(&mut self, stream_arn: &str, name: &str) -> Result<Consumer> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output {
            consumer_description: Consumer,
        }
        let output: Output = self.call(
            "DescribeStreamConsumer",
            &json!({ "StreamARN": stream_arn, "ConsumerName": name }),
        )?;
        Ok(output.consumer_description)
    }

    pub fn list_stream_consumers(&mut self, stream_arn: &str) -> Result<Vec<Consumer>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            consumers: Vec<Consumer>,
            next_token: Option<String>,
        }
        let mut consumers = Vec::new();
        let mut request = json!({ "StreamARN": stream_arn });
        loop {
            let page: Page = self.call("ListStreamConsumers", &request)?;
            consumers.extend(page.consumers);
            match page.next_token {
                Some(token) if !token.is_empty() => {
                    request = json!({ "StreamARN": stream_arn, "NextToken": token })
                }
                _ => return Ok(consumers),
            }
        }
    }

    pub fn deregister_stream_consumer(&mut self, stream_arn: &str, name: &str) -> Result<()> {
        self.call::<Value>(
            "DeregisterStreamConsumer",
            &json!({ "StreamARN": stream_arn, "ConsumerName": name }),
        )
        .map(drop)
    }

    /// Registers `name` unless it exists, then waits until it is ACTIVE.
    pub fn ensure_consumer(
        &mut self,
        stream_arn: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Consumer> {
        match self.describe_stream_consumer(stream_arn, name) {
            Ok(_) => {}
            Err(e) if e.is_api("ResourceNotFoundException") => {
                self.register_stream_consumer(stream_arn, name)?;
            }
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + timeout;
        loop {
            let consumer = self.describe_stream_consumer(stream_arn, name)?;
            if consumer.consumer_status == "ACTIVE" {
                return Ok(consumer);
            }
            if Instant::now() >= deadline {
                return Err(Error::Protocol(format!(
                    "consumer {name} still {} after {timeout:?}",
                    consumer.consumer_status
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens a SubscribeToShard event stream. The first event is `initial-response`; an error
    /// before the stream starts comes back as an ordinary JSON error document.
    pub fn subscribe_to_shard(
        &mut self,
        consumer_arn: &str,
        shard_id: &str,
        position: &Position,
        read_timeout: Duration,
    ) -> Result<Subscription> {
        let mut starting = json!({ "Type": position.iterator_type() });
        match position {
            Position::AtSequence(s) | Position::AfterSequence(s) => {
                starting["SequenceNumber"] = json!(s)
            }
            Position::AtTimestamp(t) => starting["Timestamp"] = json!(t),
            Position::TrimHorizon | Position::Latest => {}
        }
        let request = json!({
            "ConsumerARN": consumer_arn,
            "ShardId": shard_id,
            "StartingPosition": starting,
        });
        let body = serde_json::to_vec(&request).expect("serializes");
        self.signing_headers();
        let target = format!("{TARGET_PREFIX}.SubscribeToShard");
        let headers = request_headers(&self.date, &target);
        let opened = self.http.post_streaming(&headers, &body, read_timeout);
        let (head, mut stream) = opened.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&head.status) {
            let mut bytes = Vec::new();
            stream.read_to_end(&mut bytes).map_err(|e| self.transport(e))?;
            let response =
                http::Response { status: head.status, headers: head.headers, body: bytes };
            return Err(api_error(&response));
        }
        let content_type = head.header("content-type").unwrap_or("");
        if !content_type.starts_with(eventstream::CONTENT_TYPE) {
            return Err(Error::Protocol(format!(
                "SubscribeToShard answered {content_type:?}, not {}",
                eventstream::CONTENT_TYPE
            )));
        }
        Ok(Subscription {
            url: self.http.url().to_string(),
            body: stream,
            decoder: eventstream::Decoder::new(),
            scratch: Vec::new(),
            pending: None,
        })
    }
}

/// A starting position in a shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Position {
    TrimHorizon,
    Latest,
    AtSequence(String),
    AfterSequence(String),
    /// Epoch seconds.
    AtTimestamp(f64),
}

impl Position {
    /// Parses `trim-horizon`, `latest`, `at:SEQ`, `after:SEQ` or `ts:EPOCH_SECONDS`.
    pub fn parse(text: &str) -> std::result::Result<Position, String> {
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "trim-horizon" | "trim_horizon" | "oldest" => return Ok(Position::TrimHorizon),
            "latest" | "now" => return Ok(Position::Latest),
            _ => {}
        }
        if let Some(s) = text.strip_prefix("at:") {
            return Ok(Position::AtSequence(s.to_string()));
        }
        if let Some(s) = text.strip_prefix("after:") {
            return Ok(Position::AfterSequence(s.to_string()));
        }
        if let Some(t) = text.strip_prefix("ts:") {
            return t.parse::<f64>().map(Position::AtTimestamp).map_err(|_| {
                format!("bad position {text:?}: ts: takes epoch seconds, e.g. ts:1700000000")
            });
        }
        Err(format!(
            "bad position {text:?}: use trim-horizon, latest, at:SEQ, after:SEQ or ts:EPOCH"
        ))
    }

    pub fn iterator_type(&self) -> &'static str {
        match self {
            Position::TrimHorizon => "TRIM_HORIZON",
            Position::Latest => "LATEST",
            Position::AtSequence(_) => "AT_SEQUENCE_NUMBER",
            Position::AfterSequence(_) => "AFTER_SEQUENCE_NUMBER",
            Position::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: String,
    #[serde(default)]
    pub stream_mode_details: Option<Value>,
    #[serde(default)]
    pub retention_period_hours: Option<u64>,
    #[serde(default)]
    pub stream_creation_timestamp: Option<f64>,
    #[serde(default)]
    pub open_shard_count: Option<u64>,
    #[serde(default)]
    pub consumer_count: Option<u64>,
    #[serde(default)]
    pub encryption_type: Option<String>,
}

impl StreamSummary {
    pub fn mode(&self) -> String {
        self.stream_mode_details
            .as_ref()
            .and_then(|m| m.get("StreamMode"))
            .and_then(Value::as_str)
            .unwrap_or("PROVISIONED")
            .to_string()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    pub starting_sequence_number: String,
    #[serde(default)]
    pub ending_sequence_number: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    pub shard_id: String,
    #[serde(default)]
    pub parent_shard_id: Option<String>,
    #[serde(default)]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRange,
    pub sequence_number_range: SequenceNumberRange,
}

impl Shard {
    pub fn is_open(&self) -> bool {
        self.sequence_number_range.ending_sequence_number.is_none()
    }

    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id.iter().chain(&self.adjacent_parent_shard_id).map(String::as_str)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub shard_id: String,
    pub sequence_number: String,
}

pub struct PutEntry {
    pub partition_key: String,
    pub data: Vec<u8>,
    pub explicit_hash_key: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    #[serde(default)]
    pub shard_id: Option<String>,
    #[serde(default)]
    pub sequence_number: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    #[serde(default)]
    pub failed_record_count: u64,
    pub records: Vec<PutRecordsResultEntry>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub sequence_number: String,
    pub partition_key: String,
    /// Base64, as on the wire.
    pub data: String,
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<f64>,
}

/// A record whose strings borrow from the response buffer where JSON escaping allows.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordRef<'a> {
    #[serde(borrow)]
    pub sequence_number: Cow<'a, str>,
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    pub shard_id: String,
    #[serde(default)]
    pub parent_shards: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    pub records: Vec<Record>,
    #[serde(default)]
    pub next_shard_iterator: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
    #[serde(default)]
    pub child_shards: Option<Vec<ChildShard>>,
}

/// The harness's view of a GetRecords response: no copies of record data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsRef<'a> {
    #[serde(borrow)]
    pub records: Vec<RecordRef<'a>>,
    #[serde(default)]
    pub next_shard_iterator: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
    #[serde(default)]
    pub child_shards: Option<Vec<ChildShard>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Consumer {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: String,
    #[serde(default)]
    pub consumer_creation_timestamp: Option<f64>,
}

/// A `SubscribeToShardEvent` payload.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardEvent {
    #[serde(default)]
    pub records: Vec<Record>,
    #[serde(default)]
    pub continuation_sequence_number: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
    #[serde(default)]
    pub child_shards: Option<Vec<ChildShard>>,
}

pub enum Event {
    InitialResponse,
    Shard(ShardEvent),
}

/// An open SubscribeToShard response.
pub struct Subscription {
    url: String,
    body: http::Body<TcpStream>,
    decoder: eventstream::Decoder,
    scratch: Vec<u8>,
    pending: Option<Event>,
}

impl Subscription {
    /// Returns `event` again from the next [`Subscription::next_event`] call.
    pub fn push_back(&mut self, event: Event) {
        assert!(self.pending.is_none(), "one event of push-back");
        self.pending = Some(event);
    }

    /// The next event; `Ok(None)` when the server ends the subscription (after ~5 minutes on
    /// AWS), after which the caller resubscribes from the continuation sequence number.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        if let Some(event) = self.pending.take() {
            return Ok(Some(event));
        }
        loop {
            let message = self
                .decoder
                .next_message()
                .map_err(|e| Error::Protocol(format!("SubscribeToShard stream: {e}")))?;
            if let Some(message) = message {
                match message.header_str(":message-type") {
                    Some("exception") | Some("error") => {
                        let kind = message
                            .header_str(":exception-type")
                            .or_else(|| message.header_str(":error-code"))
                            .unwrap_or("UnknownException")
                            .to_string();
                        #[derive(Deserialize)]
                        struct Payload {
                            #[serde(alias = "Message")]
                            message: Option<String>,
                        }
                        let text = serde_json::from_slice::<Payload>(&message.payload)
                            .ok()
                            .and_then(|p| p.message)
                            .or_else(|| message.header_str(":error-message").map(str::to_string))
                            .unwrap_or_default();
                        return Err(Error::Api { status: 200, kind, message: text });
                    }
                    _ => {}
                }
                match message.header_str(":event-type") {
                    Some("initial-response") => return Ok(Some(Event::InitialResponse)),
                    Some("SubscribeToShardEvent") => {
                        let event: ShardEvent = serde_json::from_slice(&message.payload)
                            .map_err(|e| Error::Protocol(format!("SubscribeToShardEvent: {e}")))?;
                        return Ok(Some(Event::Shard(event)));
                    }
                    _ => continue, // Unknown event types are skipped, as the SDKs do.
                }
            }
            self.scratch.clear();
            let n = self
                .body
                .read_some(&mut self.scratch)
                .map_err(|source| Error::Transport { url: self.url.clone(), source })?;
            if n == 0 {
                if self.decoder.buffered_len() > 0 {
                    return Err(Error::Protocol("event stream ended inside a message".into()));
                }
                return Ok(None);
            }
            self.decoder.push(&self.scratch);
        }
    }
}

/// Hex-free shard naming: `3` and `shardId-000000000003` both name shard 3.
pub fn normalize_shard_id(text: &str) -> String {
    match text.parse::<u64>() {
        Ok(n) => format!("shardId-{n:012}"),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(Position::parse("trim-horizon"), Ok(Position::TrimHorizon));
        assert_eq!(Position::parse("LATEST"), Ok(Position::Latest));
        assert_eq!(Position::parse("at:4968"), Ok(Position::AtSequence("4968".into())));
        assert_eq!(Position::parse("after:4968"), Ok(Position::AfterSequence("4968".into())));
        assert_eq!(Position::parse("ts:1700000000.5"), Ok(Position::AtTimestamp(1_700_000_000.5)));
        assert!(Position::parse("ts:yesterday").is_err());
        assert!(Position::parse("middle").is_err());
    }

    #[test]
    fn error_documents() {
        let response = |status, body: &str| http::Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let e = api_error(&response(
            400,
            concat!(
                r#"{"__type":"ResourceNotFoundException","#,
                r#""message":"Stream foo under account 000000000000 not found."}"#
            ),
        ));
        assert_eq!(
            e.to_string(),
            "ResourceNotFoundException: Stream foo under account 000000000000 not found."
        );
        let e = api_error(&response(
            400,
            r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#,
        ));
        assert_eq!(e.to_string(), "UnknownOperationException");
        assert!(e.is_unsupported());
        let e = api_error(&response(500, "oops"));
        assert_eq!(e.kind(), "HTTP500");
    }

    /// Serves one SubscribeToShard over HTTP/1.1 chunked event-stream, in awkward chunk sizes.
    fn event_stream_server(messages: Vec<Vec<u8>>) -> (Url, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Headers, then the Content-Length body.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            while request.len() < head_end + length {
                let n = stream.read(&mut buffer).unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n\
                      Transfer-Encoding: chunked\r\n\r\n",
                )
                .unwrap();
            let all: Vec<u8> = messages.concat();
            for piece in all.chunks(37) {
                write!(stream, "{:x}\r\n", piece.len()).unwrap();
                stream.write_all(piece).unwrap();
                stream.write_all(b"\r\n").unwrap();
                stream.flush().unwrap();
            }
            stream.write_all(b"0\r\n\r\n").unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (url, server)
    }

    fn event(event_type: &str, payload: &str) -> Vec<u8> {
        eventstream::encode_event(event_type, payload.as_bytes()).to_vec()
    }

    #[test]
    fn subscribe_to_shard_decodes_events_over_chunked_http() {
        let (url, server) = event_stream_server(vec![
            event("initial-response", "{}"),
            event(
                "SubscribeToShardEvent",
                r#"{"Records":[{"SequenceNumber":"7","PartitionKey":"k","Data":"aGk=",
                    "ApproximateArrivalTimestamp":1700000000.5}],
                    "ContinuationSequenceNumber":"7","MillisBehindLatest":0}"#,
            ),
            event(
                "SubscribeToShardEvent",
                r#"{"Records":[],"MillisBehindLatest":0,
                    "ChildShards":[{"ShardId":"shardId-000000000002",
                    "ParentShards":["shardId-000000000000"]}]}"#,
            ),
        ]);
        let mut client = Client::new(&url, "us-east-1", Timeouts::default());
        let mut subscription = client
            .subscribe_to_shard(
                "arn:c",
                "shardId-000000000000",
                &Position::Latest,
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(matches!(subscription.next_event().unwrap(), Some(Event::InitialResponse)));
        let Some(Event::Shard(first)) = subscription.next_event().unwrap() else { panic!() };
        assert_eq!(first.records.len(), 1);
        assert_eq!(first.records[0].data, "aGk=");
        assert_eq!(first.continuation_sequence_number.as_deref(), Some("7"));
        let Some(Event::Shard(last)) = subscription.next_event().unwrap() else { panic!() };
        assert!(last.continuation_sequence_number.is_none());
        assert_eq!(last.child_shards.unwrap()[0].shard_id, "shardId-000000000002");
        assert!(subscription.next_event().unwrap().is_none(), "stream ended");
        let request = server.join().unwrap();
        assert!(request.contains("X-Amz-Target: Kinesis_20131202.SubscribeToShard"));
        assert!(request.contains(r#""StartingPosition":{"Type":"LATEST"}"#));
    }

    #[test]
    fn subscribe_to_shard_reports_exception_events() {
        let exception = eventstream::encode_exception(
            "ResourceInUseException",
            br#"{"message":"another subscription is active"}"#,
        )
        .to_vec();
        let (url, server) = event_stream_server(vec![event("initial-response", "{}"), exception]);
        let mut client = Client::new(&url, "us-east-1", Timeouts::default());
        let mut subscription = client
            .subscribe_to_shard(
                "arn:c",
                "shardId-000000000000",
                &Position::TrimHorizon,
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(matches!(subscription.next_event().unwrap(), Some(Event::InitialResponse)));
        let error = subscription.next_event().err().unwrap();
        assert_eq!(error.to_string(), "ResourceInUseException: another subscription is active");
        server.join().unwrap();
    }

    #[test]
    fn shard_ids() {
        assert_eq!(normalize_shard_id("3"), "shardId-000000000003");
        assert_eq!(normalize_shard_id("shardId-000000000003"), "shardId-000000000003");
    }
}
