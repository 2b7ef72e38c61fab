//! Integration test support: a [`Server`] guard that runs the real `spated` binary on a fresh
//! data directory and a free loopback port, an AWS SDK client pointed at it, and small helpers
//! shared by the tests in `tests/tests/` (error codes, reading whole shards, MD5 routing, a raw
//! HTTP/1.1 client, a seeded random generator).
//!
//! Every wait here is bounded in time; every server is killed when its guard drops.

use std::cmp::Ordering;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::{Record, Shard, ShardIteratorType, StreamStatus};

/// How long a server may take to answer `GET /health` after it was started.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop (SIGTERM) may take before the guard gives up.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Finding (and if needed building) the binary.

/// The binary, or why it could not be built (remembered so that every test fails fast).
static BUILD: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Newest modification time of any file under `dir` (recursively).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if let Ok(m) = meta.modified() {
                newest = Some(newest.map_or(m, |n: SystemTime| n.max(m)));
            }
        }
    }
    newest
}

/// The `spated` binary: `$SPATED_BIN` if set, else `target/debug/spated` next to this test
/// executable's `deps/` directory. It is built (`cargo build -p server --bin spated`, once per
/// process) when it is missing or older than the server, engine or proto sources, so a test run
/// never silently exercises a stale server.
pub fn spated_binary() -> PathBuf {
    let mut cached = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let result = cached.get_or_insert_with(find_or_build_spated).clone();
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn find_or_build_spated() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SPATED_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let target_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("the test executable should live in target/<profile>/deps")?
        .to_path_buf();
    let binary = target_dir.join("spated");
    let root = workspace_root();
    let binary_time = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let sources = ["server", "engine", "proto"]
        .iter()
        .filter_map(|c| newest_mtime(&root.join(c).join("src")))
        .max();
    let stale = match (binary_time, sources) {
        (None, _) => true,
        (Some(b), Some(s)) => s > b,
        (Some(_), None) => false,
    };
    if stale {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building spated (missing or older than its sources) ...");
        let status = Command::new(cargo)
            .args(["build", "-p", "server", "--bin", "spated"])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("running cargo build -p server: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build -p server --bin spated failed ({status})"));
        }
    }
    if !binary.exists() {
        return Err(format!("{} does not exist after building", binary.display()));
    }
    Ok(binary)
}

// ---------------------------------------------------------------------------------------------
// The server guard.

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A running `spated` on `127.0.0.1:<port>` with its own data directory; stopped (SIGTERM, then
/// SIGKILL after [`STOP_TIMEOUT`]) and its directory removed when dropped.
pub struct Server {
    child: Option<Child>,
    /// Holds `data/` (the server's data directory) and `spated.log`.
    root: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    args: Vec<String>,
    /// Environment for the next launch (test hooks such as `SPATE_TEST_CLOCK_OFFSET_MS`).
    env: Vec<(String, String)>,
}

/// A `Send + Copy` handle that can SIGKILL the server from another task or thread.
#[derive(Clone, Copy, Debug)]
pub struct Killer {
    pid: i32,
}

impl Killer {
    /// Sends SIGKILL (the guard's [`Server::kill9`] reaps the process afterwards).
    pub fn kill9(self) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

impl Server {
    /// Starts `spated --cores 2` plus `args` (which may override `--cores`).
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with environment variables (test hooks such as `SPATE_FAILPOINT`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let id = NEXT_ID.fetch_add(1, AtomicOrdering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let root =
            std::env::temp_dir().join(format!("spate-it-{}-{id}-{nanos:x}", std::process::id()));
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir).expect("creating the test directory");
        let mut server = Server {
            child: None,
            log_path: root.join("spated.log"),
            root,
            data_dir,
            port: 0,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let mut last_error = String::new();
        for _attempt in 0..5 {
            server.port = free_port();
            match server.launch() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("spated did not start after 5 attempts: {last_error}\n{}", server.log_tail());
    }

    fn command_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
        ];
        if !self.args.iter().any(|a| a == "--cores") {
            args.extend(["--cores".to_string(), "2".to_string()]);
        }
        if !self.args.iter().any(|a| a == "--log-level") {
            args.extend(["--log-level".to_string(), "warn".to_string()]);
        }
        args.extend(self.args.iter().cloned());
        args
    }

    /// Starts the process and waits for `/health`; on failure the process is gone.
    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("opening the log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new(spated_binary())
            .args(self.command_args())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("spawning spated: {e}"))?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("spated exited during startup with {status}"));
            }
            if let Ok(response) = raw_request(self.addr(), "GET", "/health", &[], b"")
                && response.status == 200
            {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no healthy answer within {STARTUP_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server with SIGTERM and waits (bounded) until it exited by itself.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "spated exited with {status} on SIGTERM");
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "spated did not stop within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                        self.log_tail()
                    );
                }
            }
        }
    }

    /// Graceful stop (SIGTERM, wait for exit), then start again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// SIGKILL the server (if still running) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and port (after [`Server::stop`]
    /// or [`Server::kill9`]). Retries briefly if the port is still held.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again while the server runs");
        let mut last_error = String::new();
        for _attempt in 0..5 {
            match self.launch() {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("spated did not start again: {last_error}\n{}", self.log_tail());
    }

    /// Sets an environment variable for the next start (see [`Server::start_again`]).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_string(), value.to_string()));
    }

    /// A handle that can SIGKILL this server from another task.
    pub fn killer(&self) -> Killer {
        Killer { pid: self.child.as_ref().expect("server running").id() as i32 }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server's anonymous resident memory in KiB (RssAnon in /proc: heap and stacks, not
    /// the mapped segment files).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// An SDK client for this server: dummy static credentials, us-east-1, the SDK's standard
    /// retry policy (3 attempts).
    pub fn client(&self) -> Client {
        self.client_with_retries(RetryConfig::standard())
    }

    /// An SDK client with a given retry policy (e.g. `RetryConfig::disabled()`).
    pub fn client_with_retries(&self, retry: RetryConfig) -> Client {
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("A", "s", None, None, "static"))
            .retry_config(retry)
            .build();
        Client::from_conf(config)
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("--- spated log ({}) ---\n{}", self.log_path.display(), lines[start..].join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut exited = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !exited {
                eprintln!("spated still running 5 s after SIGTERM; sending SIGKILL");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if std::env::var_os("SPATE_KEEP_TEST_DATA").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SDK helpers.

/// The service error code (`__type`) of an SDK error; panics (with the error) if the call did
/// not fail with a service error, e.g. on a transport failure.
pub fn error_code<E, R>(result: Result<impl std::fmt::Debug, SdkError<E, R>>) -> String
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(output) => panic!("expected a service error, got success: {output:?}"),
        Err(err) => match err.as_service_error() {
            Some(service) => service.code().unwrap_or("<no code>").to_string(),
            None => panic!("expected a service error, got {err:?}"),
        },
    }
}

/// Polls DescribeStreamSummary until the stream is ACTIVE (bounded: 20 s).
pub async fn wait_active(client: &Client, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let status = summary.stream_description_summary().map(|s| s.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return;
        }
        assert!(Instant::now() < deadline, "stream {stream} not ACTIVE within 20 s: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a provisioned stream with `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, stream: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {stream}: {e:?}"));
    wait_active(client, stream).await;
}

/// Every shard of the stream (ListShards, following NextToken; bounded).
pub async fn list_all_shards(client: &Client, stream: &str) -> Vec<Shard> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    for _page in 0..100 {
        let request = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let page = request.send().await.expect("ListShards");
        shards.extend(page.shards().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return shards;
        }
    }
    panic!("ListShards did not end within 100 pages");
}

/// Everything a shard holds, read from TRIM_HORIZON: GetRecords until the shard is closed
/// (NextShardIterator absent) or a call returns nothing while the reader is at the tip
/// (MillisBehindLatest 0). Bounded by `max_calls`. Returns the records and whether the shard
/// ended (closed), plus the ChildShards of the last call.
pub async fn read_shard(client: &Client, stream: &str, shard_id: &str) -> ShardContents {
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator {shard_id}: {e:?}"))
        .shard_iterator()
        .expect("a shard iterator")
        .to_string();
    read_from_iterator(client, iterator, 1000).await
}

pub struct ShardContents {
    pub records: Vec<Record>,
    /// True when the last GetRecords had no NextShardIterator (closed and fully read).
    pub closed: bool,
    /// ChildShards of the final GetRecords of a closed shard.
    pub child_shards: Vec<aws_sdk_kinesis::types::ChildShard>,
}

/// GetRecords from `iterator` until the end of a closed shard or an empty answer at the tip.
pub async fn read_from_iterator(
    client: &Client,
    mut iterator: String,
    max_calls: usize,
) -> ShardContents {
    let mut records = Vec::new();
    for _call in 0..max_calls {
        let output = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords: {e:?}"));
        let got = output.records().len();
        records.extend(output.records().iter().cloned());
        match output.next_shard_iterator() {
            None => {
                return ShardContents {
                    records,
                    closed: true,
                    child_shards: output.child_shards().to_vec(),
                };
            }
            Some(next) => iterator = next.to_string(),
        }
        if got == 0 && output.millis_behind_latest() == Some(0) {
            return ShardContents { records, closed: false, child_shards: Vec::new() };
        }
    }
    panic!("shard not read to its end within {max_calls} GetRecords calls");
}

/// Compares two decimal sequence numbers numerically.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The hash key of a partition key: MD5 read as a big-endian 128-bit integer.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(md5::compute(partition_key.as_bytes()).0)
}

/// The shard whose HashKeyRange holds `hash` among `shards` that are still open (no ending
/// sequence number). Panics unless exactly one does.
pub fn open_shard_for(shards: &[Shard], hash: u128) -> String {
    let holders: Vec<&Shard> = shards
        .iter()
        .filter(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
        .filter(|s| {
            let range = s.hash_key_range().expect("HashKeyRange");
            let start: u128 = range.starting_hash_key().parse().expect("decimal start");
            let end: u128 = range.ending_hash_key().parse().expect("decimal end");
            start <= hash && hash <= end
        })
        .collect();
    assert_eq!(holders.len(), 1, "open shards holding hash key {hash}: {holders:?}");
    holders[0].shard_id().to_string()
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over loopback.

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("response body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
        })
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole response (5 s timeouts).
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    parse_response(&bytes)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP response"))
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or read-to-close body).
pub fn parse_response(bytes: &[u8]) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &bytes[end + 4..];
    let chunked =
        headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { decode_chunked(rest).0 } else { rest.to_vec() };
    Some(RawResponse { status, headers, body })
}

/// Decodes as much of a chunked body as is complete; returns the bytes and whether the final
/// (zero-length) chunk was seen.
pub fn decode_chunked(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return (body, false) };
        if size == 0 {
            return (body, true);
        }
        let start = line_end + 2;
        if rest.len() < start + size + 2 {
            return (body, false);
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness without a crate.

/// SplitMix64: small, fast, seedable. Tests print their seed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `$SPATE_TEST_SEED` or the clock.
    pub fn new() -> Rng {
        let seed = std::env::var("SPATE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
            });
        eprintln!("random seed: {seed} (replay with SPATE_TEST_SEED={seed})");
        Rng(seed)
    }

    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A random printable partition key of 1..=32 characters.
    pub fn key(&mut self) -> String {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
        let len = 1 + self.below(32) as usize;
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char).collect()
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Whether a server answers `GET /health` with 200 on this loopback port.
pub fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}
