//! Every knob of `spated`, parsed and validated once into [`Config`].
//!
//! Settings come from command-line flags and, optionally, a TOML file (`--config FILE`) whose
//! keys are the flag names without the leading dashes (`data-dir = "/var/lib/spate"`). A flag
//! overrides the file; the file overrides the built-in default; unknown keys are an error.
//! Parsing happens in two steps, like ripgrep's low-level and high-level arguments: `Flags` and
//! `FileSettings` hold what the user wrote (all optional), and [`Config`] holds validated,
//! plain values with every default filled in. Nothing else in the server has a hidden default.
//! This module also sets up logging ([`init_logging`]), since the log level is a setting.

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Deserialize;
use spate_proto::limits::{
    CONSUMERS_PER_STREAM_MAX_DEFAULT, SHARD_READ_BYTES_PER_SECOND, SHARD_READ_CALLS_PER_SECOND,
    SHARD_WRITE_BYTES_PER_SECOND, SHARD_WRITE_RECORDS_PER_SECOND, SHARDS_MAX_DEFAULT,
    SHARDS_PER_STREAM_MAX_DEFAULT, SUBSCRIPTION_LIFETIME_SECS_MAX,
};

/// When an acknowledged write is made durable (fdatasync) on disk: the engine's own type.
pub use engine::Durability;

/// The validated configuration of one `spated` process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Directory holding stream data and metadata. Not created or checked here.
    pub data_dir: PathBuf,
    /// Address every core listens on (HTTP/1.1 and h2c on the same port).
    pub listen: SocketAddr,
    /// Number of executors (one per CPU), in `1..=online CPUs`.
    pub cores: usize,
    /// AWS region reported in ARNs.
    pub region: String,
    /// 12-digit AWS account id reported in ARNs.
    pub account_id: String,
    pub durability: Durability,
    /// Whether per-shard throughput quotas are enforced (ProvisionedThroughputExceeded).
    pub quotas_enabled: bool,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or `info,server=debug`.
    pub log_level: String,
    /// Bytes of glommio `io_memory` per executor (registered, locked DMA buffers).
    pub io_memory_bytes: usize,
    /// Segment size of every shard log (`--segment-bytes`).
    pub segment_bytes: u64,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long one SubscribeToShard event stream lasts (`--subscription-lifetime-secs`).
    pub subscription_lifetime: Duration,
    /// Most shards one stream may have open.
    pub shards_per_stream_max: u32,
    /// Most open shards across all streams (DescribeLimits' ShardLimit).
    pub shards_max: u32,
    /// Most enhanced fan-out consumers registered on one stream.
    pub consumers_per_stream_max: u32,
    /// Per-shard quota limits (AWS's by default); all ignored when `quotas_enabled` is false.
    pub shard_write_bytes_per_second: u64,
    pub shard_write_records_per_second: u64,
    pub shard_read_calls_per_second: u64,
    pub shard_read_bytes_per_second: u64,
    /// How often the on-demand autoscaler looks at shard load (its decision window).
    pub autoscale_interval: Duration,
    /// Fewest and most open shards the autoscaler keeps an ON_DEMAND stream at.
    pub on_demand_shards_min: u32,
    pub on_demand_shards_max: u32,
}

const DATA_DIR_DEFAULT: &str = "./spate-data";
const LISTEN_DEFAULT: &str = "127.0.0.1:4567";
const REGION_DEFAULT: &str = "us-east-1";
const ACCOUNT_ID_DEFAULT: &str = "000000000000";
const DURABILITY_INTERVAL_MS_DEFAULT: u64 = 5;
const DURABILITY_INTERVAL_MS_MAX: u64 = 60_000;
const LOG_LEVEL_DEFAULT: &str = "info";
const IO_MEMORY_BYTES_DEFAULT: usize = 1 << 20;
const IO_MEMORY_BYTES_MIN: usize = 64 << 10;
const IO_MEMORY_BYTES_MAX: usize = 1 << 30;
/// Smallest `--segment-bytes` (the engine allows less; a shard log of 4 KiB files is not an
/// operating point).
const SEGMENT_BYTES_FLAG_MIN: u64 = 1 << 20;
const SHUTDOWN_TIMEOUT_SECS_DEFAULT: u64 = 10;
const SHUTDOWN_TIMEOUT_SECS_MAX: u64 = 3600;
const SHARDS_LIMIT_MAX: u32 = 100_000;
const CONSUMERS_LIMIT_MAX: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DurabilityMode {
    Always,
    Interval,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Switch {
    On,
    Off,
}

/// The command line as written; `None` means "not given".
#[derive(Parser, Debug)]
#[command(
    name = "spated",
    version,
    about = "Spate: a single-node server for the Amazon Kinesis Data Streams API.",
    after_help = "A TOML file given with --config may set any flag above by its name without \
                  the dashes (e.g. data-dir = \"/var/lib/spate\"); flags override the file."
)]
struct Flags {
    /// Read settings from this TOML file; command-line flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for stream data and metadata [default: ./spate-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to serve HTTP/1.1 and HTTP/2 (h2c) on [default: 127.0.0.1:4567]
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// Number of cores (one executor thread each) [default: all online CPUs]
    #[arg(long, value_name = "N")]
    cores: Option<usize>,
    /// AWS region name used in ARNs [default: us-east-1]
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// 12-digit AWS account id used in ARNs [default: 000000000000]
    #[arg(long, value_name = "DIGITS")]
    account_id: Option<String>,
    /// Sync policy: before each ack (always), every N ms (interval), never [default: always]
    #[arg(long, value_name = "MODE")]
    durability: Option<DurabilityMode>,
    /// Sync period in milliseconds for --durability interval [default: 5]
    #[arg(long, value_name = "MS")]
    durability_interval_ms: Option<u64>,
    /// Enforce per-shard throughput quotas like Kinesis does [default: on]
    #[arg(long, value_name = "SWITCH")]
    quotas: Option<Switch>,
    /// Log filter: a level (error, warn, info, debug, trace) or target=level list [default: info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Locked io_uring buffer memory per core in bytes, or with KiB/MiB/GiB [default: 1MiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size)]
    io_memory: Option<usize>,
    /// Size at which a shard's log rolls to a new segment file; retention deletes whole
    /// segments (bytes, or with KiB/MiB/GiB; 1MiB..=1GiB) [default: 128MiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_size)]
    segment_bytes: Option<usize>,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT [default: 10]
    #[arg(long, value_name = "SECS")]
    shutdown_timeout_secs: Option<u64>,
    /// Seconds a SubscribeToShard event stream lasts before it ends and the consumer
    /// resubscribes; Kinesis uses 300, lower values are for testing clients [default: 300]
    #[arg(long, value_name = "SECS")]
    subscription_lifetime_secs: Option<u64>,
    /// Most open shards one stream may have [default: 500]
    #[arg(long, value_name = "N")]
    max_shards_per_stream: Option<u32>,
    /// Most open shards across all streams (reported by DescribeLimits) [default: 500]
    #[arg(long, value_name = "N")]
    max_shards: Option<u32>,
    /// Most enhanced fan-out consumers per stream [default: 20]
    #[arg(long, value_name = "N")]
    max_consumers_per_stream: Option<u32>,
    /// Per-shard write quota in bytes/s (data + partition key) [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    shard_write_bytes_per_second: Option<u64>,
    /// Per-shard write quota in records/s [default: 1000]
    #[arg(long, value_name = "N")]
    shard_write_records_per_second: Option<u64>,
    /// Per-shard GetRecords calls/s shared by polling consumers [default: 5]
    #[arg(long, value_name = "N")]
    shard_read_calls_per_second: Option<u64>,
    /// Per-shard GetRecords bytes/s shared by polling consumers [default: 2097152]
    #[arg(long, value_name = "BYTES")]
    shard_read_bytes_per_second: Option<u64>,
    /// Seconds between on-demand autoscaler decisions (its load window) [default: 60]
    #[arg(long, value_name = "SECS")]
    autoscale_interval_secs: Option<u64>,
    /// Fewest open shards of an ON_DEMAND stream (merges stop here) [default: 4]
    #[arg(long, value_name = "N")]
    on_demand_min_shards: Option<u32>,
    /// Most open shards of an ON_DEMAND stream (splits stop here) [default: 64]
    #[arg(long, value_name = "N")]
    on_demand_max_shards: Option<u32>,
}

/// The TOML file as written; keys match the flag names.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    cores: Option<usize>,
    region: Option<String>,
    account_id: Option<String>,
    durability: Option<DurabilityMode>,
    durability_interval_ms: Option<u64>,
    quotas: Option<Switch>,
    log_level: Option<String>,
    #[serde(default, deserialize_with = "deserialize_byte_size")]
    io_memory: Option<usize>,
    #[serde(default, deserialize_with = "deserialize_byte_size")]
    segment_bytes: Option<usize>,
    shutdown_timeout_secs: Option<u64>,
    subscription_lifetime_secs: Option<u64>,
    max_shards_per_stream: Option<u32>,
    max_shards: Option<u32>,
    max_consumers_per_stream: Option<u32>,
    autoscale_interval_secs: Option<u64>,
    on_demand_min_shards: Option<u32>,
    on_demand_max_shards: Option<u32>,
    shard_write_bytes_per_second: Option<u64>,
    shard_write_records_per_second: Option<u64>,
    shard_read_calls_per_second: Option<u64>,
    shard_read_bytes_per_second: Option<u64>,
}

impl Config {
    /// Parses `std::env::args`. `--help`, `--version` and malformed flags print clap's
    /// message and exit the process (status 0 or 2); invalid values return `Err`.
    pub fn from_args() -> Result<Config, String> {
        let flags = Flags::try_parse().unwrap_or_else(|error| error.exit());
        Config::from_flags(flags)
    }

    /// Parses `args` (the first item is the program name). Every problem, including `--help`,
    /// is returned as `Err` with clap's or our message.
    #[allow(clippy::should_implement_trait, reason = "fallible; mirrors clap's try_parse_from")]
    pub fn from_iter<I, T>(args: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let flags = Flags::try_parse_from(args).map_err(|error| error.to_string())?;
        Config::from_flags(flags)
    }

    fn from_flags(flags: Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => read_file_settings(path)?,
            None => FileSettings::default(),
        };
        let cpus_online = glommio::CpuSet::online()
            .map(|cpus| cpus.len())
            .map_err(|error| format!("cannot list online CPUs: {error}"))?;
        validate(flags, file, cpus_online)
    }
}

fn read_file_settings(path: &Path) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read config file {}: {error}", path.display()))?;
    toml::from_str(&text).map_err(|error| format!("config file {}: {error}", path.display()))
}

/// Merges flag over file over default and checks every value.
fn validate(flags: Flags, file: FileSettings, cpus_online: usize) -> Result<Config, String> {
    let data_dir = flags.data_dir.or(file.data_dir).unwrap_or_else(|| DATA_DIR_DEFAULT.into());
    if data_dir.as_os_str().is_empty() {
        return Err("--data-dir must not be empty".into());
    }

    let listen = match flags.listen.or(file.listen) {
        Some(listen) => listen,
        None => LISTEN_DEFAULT.parse().expect("default listen address parses"),
    };

    let cores = flags.cores.or(file.cores).unwrap_or(cpus_online);
    if cores == 0 || cores > cpus_online {
        return Err(format!(
            "--cores {cores} is out of range: this machine has {cpus_online} online CPU(s), \
             so use 1..={cpus_online}"
        ));
    }

    let region = flags.region.or(file.region).unwrap_or_else(|| REGION_DEFAULT.into());
    check_region(&region)?;

    let account_id =
        flags.account_id.or(file.account_id).unwrap_or_else(|| ACCOUNT_ID_DEFAULT.into());
    if account_id.len() != 12 || !account_id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("--account-id {account_id:?} must be exactly 12 digits"));
    }

    let interval_ms = flags
        .durability_interval_ms
        .or(file.durability_interval_ms)
        .unwrap_or(DURABILITY_INTERVAL_MS_DEFAULT);
    let durability = match flags.durability.or(file.durability).unwrap_or(DurabilityMode::Always) {
        DurabilityMode::Always => Durability::Always,
        DurabilityMode::Never => Durability::Never,
        DurabilityMode::Interval => {
            if !(1..=DURABILITY_INTERVAL_MS_MAX).contains(&interval_ms) {
                return Err(format!(
                    "--durability-interval-ms {interval_ms} is out of range \
                     1..={DURABILITY_INTERVAL_MS_MAX}"
                ));
            }
            Durability::Interval { interval_ms }
        }
    };

    let quotas_enabled = flags.quotas.or(file.quotas).unwrap_or(Switch::On) == Switch::On;

    let log_level = flags.log_level.or(file.log_level).unwrap_or_else(|| LOG_LEVEL_DEFAULT.into());
    check_log_level(&log_level)?;

    let io_memory_bytes = flags.io_memory.or(file.io_memory).unwrap_or(IO_MEMORY_BYTES_DEFAULT);
    if !(IO_MEMORY_BYTES_MIN..=IO_MEMORY_BYTES_MAX).contains(&io_memory_bytes) {
        return Err(format!(
            "--io-memory {io_memory_bytes} is out of range: use {IO_MEMORY_BYTES_MIN} (64KiB) \
             to {IO_MEMORY_BYTES_MAX} (1GiB) bytes"
        ));
    }

    let segment_bytes = flags
        .segment_bytes
        .or(file.segment_bytes)
        .map_or(engine::limits::SEGMENT_BYTES_DEFAULT, |b| b as u64);
    if !(SEGMENT_BYTES_FLAG_MIN..=engine::limits::SEGMENT_BYTES_MAX).contains(&segment_bytes) {
        return Err(format!(
            "--segment-bytes {segment_bytes} is out of range: use {SEGMENT_BYTES_FLAG_MIN} \
             (1MiB) to {} (1GiB) bytes",
            engine::limits::SEGMENT_BYTES_MAX
        ));
    }

    let subscription_lifetime_secs = flags
        .subscription_lifetime_secs
        .or(file.subscription_lifetime_secs)
        .unwrap_or(SUBSCRIPTION_LIFETIME_SECS_MAX);
    if !(1..=SUBSCRIPTION_LIFETIME_SECS_MAX).contains(&subscription_lifetime_secs) {
        return Err(format!(
            "--subscription-lifetime-secs {subscription_lifetime_secs} is out of range \
             1..={SUBSCRIPTION_LIFETIME_SECS_MAX}"
        ));
    }

    let shutdown_timeout_secs = flags
        .shutdown_timeout_secs
        .or(file.shutdown_timeout_secs)
        .unwrap_or(SHUTDOWN_TIMEOUT_SECS_DEFAULT);
    if shutdown_timeout_secs > SHUTDOWN_TIMEOUT_SECS_MAX {
        return Err(format!(
            "--shutdown-timeout-secs {shutdown_timeout_secs} is out of range \
             0..={SHUTDOWN_TIMEOUT_SECS_MAX}"
        ));
    }

    let shards_per_stream_max = check_count(
        "--max-shards-per-stream",
        flags.max_shards_per_stream.or(file.max_shards_per_stream),
        SHARDS_PER_STREAM_MAX_DEFAULT,
        SHARDS_LIMIT_MAX,
    )?;
    let shards_max = check_count(
        "--max-shards",
        flags.max_shards.or(file.max_shards),
        SHARDS_MAX_DEFAULT,
        SHARDS_LIMIT_MAX,
    )?;
    let consumers_per_stream_max = check_count(
        "--max-consumers-per-stream",
        flags.max_consumers_per_stream.or(file.max_consumers_per_stream),
        CONSUMERS_PER_STREAM_MAX_DEFAULT,
        CONSUMERS_LIMIT_MAX,
    )?;

    let autoscale_interval_secs =
        flags.autoscale_interval_secs.or(file.autoscale_interval_secs).unwrap_or(60);
    if !(1..=86_400).contains(&autoscale_interval_secs) {
        return Err(format!(
            "--autoscale-interval-secs {autoscale_interval_secs} is out of range 1..=86400"
        ));
    }
    let on_demand_shards_min = check_count(
        "--on-demand-min-shards",
        flags.on_demand_min_shards.or(file.on_demand_min_shards),
        4,
        SHARDS_LIMIT_MAX,
    )?;
    let on_demand_shards_max = check_count(
        "--on-demand-max-shards",
        flags.on_demand_max_shards.or(file.on_demand_max_shards),
        64,
        SHARDS_LIMIT_MAX,
    )?;
    if on_demand_shards_min > on_demand_shards_max {
        return Err(format!(
            "--on-demand-min-shards {on_demand_shards_min} exceeds --on-demand-max-shards \
             {on_demand_shards_max}"
        ));
    }

    let positive = |flag: &str, value: Option<u64>, default: u64| -> Result<u64, String> {
        let value = value.unwrap_or(default);
        if value == 0 || value > (1 << 40) {
            return Err(format!("{flag} {value} is out of range 1..=2^40"));
        }
        Ok(value)
    };
    let shard_write_bytes_per_second = positive(
        "--shard-write-bytes-per-second",
        flags.shard_write_bytes_per_second.or(file.shard_write_bytes_per_second),
        SHARD_WRITE_BYTES_PER_SECOND,
    )?;
    let shard_write_records_per_second = positive(
        "--shard-write-records-per-second",
        flags.shard_write_records_per_second.or(file.shard_write_records_per_second),
        SHARD_WRITE_RECORDS_PER_SECOND,
    )?;
    let shard_read_calls_per_second = positive(
        "--shard-read-calls-per-second",
        flags.shard_read_calls_per_second.or(file.shard_read_calls_per_second),
        SHARD_READ_CALLS_PER_SECOND,
    )?;
    let shard_read_bytes_per_second = positive(
        "--shard-read-bytes-per-second",
        flags.shard_read_bytes_per_second.or(file.shard_read_bytes_per_second),
        SHARD_READ_BYTES_PER_SECOND,
    )?;

    Ok(Config {
        data_dir,
        listen,
        cores,
        region,
        account_id,
        durability,
        quotas_enabled,
        log_level,
        io_memory_bytes,
        segment_bytes,
        shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
        subscription_lifetime: Duration::from_secs(subscription_lifetime_secs),
        shards_per_stream_max,
        shards_max,
        consumers_per_stream_max,
        shard_write_bytes_per_second,
        shard_write_records_per_second,
        shard_read_calls_per_second,
        shard_read_bytes_per_second,
        autoscale_interval: Duration::from_secs(autoscale_interval_secs),
        on_demand_shards_min,
        on_demand_shards_max,
    })
}

fn check_count(flag: &str, value: Option<u32>, default: u32, max: u32) -> Result<u32, String> {
    let value = value.unwrap_or(default);
    if !(1..=max).contains(&value) {
        return Err(format!("{flag} {value} is out of range 1..={max}"));
    }
    Ok(value)
}

/// Accepts names shaped like AWS regions: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`,
/// `us-isob-east-1`: a two-letter prefix, one or more lowercase words, and a final number.
fn check_region(region: &str) -> Result<(), String> {
    let error = || {
        format!(
            "--region {region:?} is not an AWS region name \
             (lowercase, like us-east-1 or ap-southeast-2)"
        )
    };
    let parts: Vec<&str> = region.split('-').collect();
    if region.len() > 32 || parts.len() < 3 {
        return Err(error());
    }
    let (prefix, rest) = parts.split_first().expect("at least three parts");
    let (number, words) = rest.split_last().expect("at least two parts");
    let is_word = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    let prefix_ok = prefix.len() == 2 && is_word(prefix);
    let words_ok = words.iter().all(is_word);
    let number_ok = (1..=2).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
    if prefix_ok && words_ok && number_ok { Ok(()) } else { Err(error()) }
}

const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// `EnvFilter` accepts any bare word as a target name, so `--log-level verbose` would silently
/// log nothing; require each directive to be a level or contain `target=level`.
fn check_log_level(log_level: &str) -> Result<(), String> {
    let error = |detail: String| {
        format!(
            "--log-level {log_level:?} is not a log filter ({detail}); use a level \
             (error, warn, info, debug, trace, off) or directives like info,server=debug"
        )
    };
    for directive in log_level.split(',').map(str::trim) {
        let is_level = LOG_LEVELS.iter().any(|level| directive.eq_ignore_ascii_case(level));
        if !is_level && !directive.contains('=') {
            return Err(error(format!("{directive:?} is neither a level nor target=level")));
        }
    }
    tracing_subscriber::EnvFilter::try_new(log_level).map_err(|e| error(e.to_string()))?;
    Ok(())
}

/// Parses a byte count: plain digits, or digits with a binary suffix (`K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB`, case-insensitive; powers of 1024).
fn parse_byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let error = || format!("{text:?} is not a byte count (like 1048576, 512KiB or 1MiB)");
    let value: u64 = digits.parse().map_err(|_| error())?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(error()),
    };
    value
        .checked_mul(1 << shift)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// In TOML, `io-memory` may be an integer (bytes) or a string with a suffix (`"1MiB"`).
fn deserialize_byte_size<'de, D>(deserializer: D) -> Result<Option<usize>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct ByteSizeVisitor;

    impl serde::de::Visitor<'_> for ByteSizeVisitor {
        type Value = usize;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a byte count: an integer or a string like \"1MiB\"")
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<usize, E> {
            usize::try_from(value).map_err(|_| E::custom(format!("{value} is not a byte count")))
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<usize, E> {
            usize::try_from(value).map_err(|_| E::custom(format!("{value} is too large")))
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<usize, E> {
            parse_byte_size(value).map_err(E::custom)
        }
    }

    deserializer.deserialize_any(ByteSizeVisitor).map(Some)
}

/// Installs the global `tracing` subscriber: human-readable lines on stderr (colour only on a
/// terminal), filtered by `level` (an `EnvFilter` directive; invalid input falls back to
/// `info`). glommio's `probing iopoll support` error, harmless on devices without polled
/// queues, is filtered out; note that glommio logs through the `log` crate, which reaches
/// `tracing` only if tracing-subscriber's `tracing-log` feature is enabled. Calling it twice
/// keeps the first subscriber.
pub fn init_logging(level: &str) {
    // glommio::reactor logs only that one message.
    const QUIET_DIRECTIVES: &str = "glommio::reactor=off";
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},{QUIET_DIRECTIVES}"))
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{LOG_LEVEL_DEFAULT},{QUIET_DIRECTIVES}"))
        });
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let flags = Flags::try_parse_from(std::iter::once("spated").chain(args.iter().copied()))
            .map_err(|error| error.to_string())?;
        let file = match &flags.config {
            Some(path) => read_file_settings(path)?,
            None => FileSettings::default(),
        };
        validate(flags, file, 4)
    }

    fn parse_error(args: &[&str]) -> String {
        parse(args).expect_err("expected an error")
    }

    /// A TOML file under the target directory, removed on drop.
    struct TempToml(PathBuf);

    impl TempToml {
        fn new(name: &str, text: &str) -> TempToml {
            let directory =
                std::env::temp_dir().join(format!("spate-config-{}", std::process::id()));
            std::fs::create_dir_all(&directory).expect("create temp dir");
            let path = directory.join(name);
            std::fs::write(&path, text).expect("write temp file");
            TempToml(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 path")
        }
    }

    impl Drop for TempToml {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(
            config,
            Config {
                data_dir: PathBuf::from("./spate-data"),
                listen: "127.0.0.1:4567".parse().unwrap(),
                cores: 4,
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
                durability: Durability::Always,
                quotas_enabled: true,
                log_level: "info".into(),
                io_memory_bytes: 1 << 20,
                segment_bytes: 128 << 20,
                shutdown_timeout: Duration::from_secs(10),
                subscription_lifetime: Duration::from_secs(300),
                shards_per_stream_max: 500,
                shards_max: 500,
                shard_write_bytes_per_second: 1 << 20,
                shard_write_records_per_second: 1000,
                shard_read_calls_per_second: 5,
                shard_read_bytes_per_second: 2 << 20,
                autoscale_interval: Duration::from_secs(60),
                on_demand_shards_min: 4,
                on_demand_shards_max: 64,
                consumers_per_stream_max: 20,
            }
        );
    }

    #[test]
    fn public_entry_point_uses_online_cpus() {
        let config = Config::from_iter(["spated"]).expect("defaults are valid");
        assert_eq!(config.cores, glommio::CpuSet::online().unwrap().len());
        assert!(Config::from_iter(["spated", "--help"]).unwrap_err().contains("--data-dir"));
    }

    #[test]
    fn flags() {
        let config = parse(&[
            "--data-dir=/tmp/x",
            "--listen=127.0.0.1:9000",
            "--cores=2",
            "--region=ap-southeast-2",
            "--account-id=123456789012",
            "--durability=interval",
            "--durability-interval-ms=20",
            "--quotas=off",
            "--log-level=info,server=debug",
            "--io-memory=512KiB",
            "--shutdown-timeout-secs=0",
            "--max-shards-per-stream=10",
            "--max-shards=100",
            "--max-consumers-per-stream=5",
        ])
        .expect("valid flags");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.cores, 2);
        assert_eq!(config.region, "ap-southeast-2");
        assert_eq!(config.account_id, "123456789012");
        assert_eq!(config.durability, Durability::Interval { interval_ms: 20 });
        assert!(!config.quotas_enabled);
        assert_eq!(config.log_level, "info,server=debug");
        assert_eq!(config.io_memory_bytes, 512 << 10);
        assert_eq!(config.shutdown_timeout, Duration::ZERO);
        assert_eq!(config.shards_per_stream_max, 10);
        assert_eq!(config.shards_max, 100);
        assert_eq!(config.consumers_per_stream_max, 5);
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let file = TempToml::new(
            "layered.toml",
            r#"
                data-dir = "/var/lib/spate"
                listen = "127.0.0.1:5000"
                region = "eu-west-1"
                durability = "interval"
                durability-interval-ms = 50
                quotas = "off"
                io-memory = "2MiB"
                segment-bytes = "64MiB"
                max-shards = 1000
            "#,
        );
        let from_file = parse(&["--config", file.path()]).expect("valid file");
        assert_eq!(from_file.data_dir, PathBuf::from("/var/lib/spate"));
        assert_eq!(from_file.listen.port(), 5000);
        assert_eq!(from_file.region, "eu-west-1");
        assert_eq!(from_file.durability, Durability::Interval { interval_ms: 50 });
        assert!(!from_file.quotas_enabled);
        assert_eq!(from_file.io_memory_bytes, 2 << 20);
        assert_eq!(from_file.segment_bytes, 64 << 20);
        assert_eq!(from_file.shards_max, 1000);
        assert_eq!(from_file.shards_per_stream_max, 500, "untouched keys keep defaults");

        let overridden = parse(&[
            "--config",
            file.path(),
            "--listen",
            "127.0.0.1:6000",
            "--durability",
            "always",
            "--quotas",
            "on",
        ])
        .expect("valid flags");
        assert_eq!(overridden.listen.port(), 6000);
        assert_eq!(overridden.durability, Durability::Always);
        assert!(overridden.quotas_enabled);
        assert_eq!(overridden.region, "eu-west-1", "the file still applies");
    }

    #[test]
    fn file_errors() {
        let unknown = TempToml::new("unknown.toml", "data-dir = \"/x\"\nlisten-port = 1\n");
        let error = parse_error(&["--config", unknown.path()]);
        assert!(error.contains("unknown field `listen-port`"), "{error}");

        let mistyped = TempToml::new("mistyped.toml", "cores = \"two\"\n");
        let error = parse_error(&["--config", mistyped.path()]);
        assert!(error.contains("cores"), "{error}");

        let error = parse_error(&["--config", "/nonexistent/spate.toml"]);
        assert!(error.contains("cannot read config file /nonexistent/spate.toml"), "{error}");

        let empty = TempToml::new("empty-dir.toml", "data-dir = \"\"\n");
        let error = parse_error(&["--config", empty.path()]);
        assert!(error.contains("--data-dir must not be empty"), "{error}");

        let bad_value = TempToml::new("bad-value.toml", "account-id = \"12\"\n");
        let error = parse_error(&["--config", bad_value.path()]);
        assert!(error.contains("12 digits"), "{error}");
    }

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&[&str], &str)] = &[
            (&["--cores=0"], "--cores 0 is out of range"),
            (&["--cores=5"], "4 online CPU(s), so use 1..=4"),
            (&["--listen=localhost"], "invalid socket address"),
            (&["--region=US-EAST-1"], "not an AWS region name"),
            (&["--region=useast1"], "not an AWS region name"),
            (&["--region=us-east-x"], "not an AWS region name"),
            (&["--account-id=12345678901"], "exactly 12 digits"),
            (&["--account-id=12345678901x"], "exactly 12 digits"),
            (&["--durability=sometimes"], "invalid value 'sometimes'"),
            (&["--durability=interval", "--durability-interval-ms=0"], "out of range 1..=60000"),
            (&["--quotas=maybe"], "invalid value 'maybe'"),
            (&["--log-level=verbose"], "neither a level nor target=level"),
            (&["--log-level=server=loud"], "not a log filter"),
            (&["--io-memory=1TB"], "not a byte count"),
            (&["--io-memory=1K"], "out of range"),
            (&["--shutdown-timeout-secs=100000"], "out of range"),
            (&["--subscription-lifetime-secs=0"], "out of range 1..=300"),
            (&["--subscription-lifetime-secs=301"], "out of range 1..=300"),
            (&["--segment-bytes=64KiB"], "--segment-bytes 65536 is out of range"),
            (&["--segment-bytes=2GiB"], "out of range"),
            (&["--max-shards=0"], "--max-shards 0 is out of range"),
            (&["--max-consumers-per-stream=0"], "out of range"),
            (&["--data-dir="], "a value is required"),
            (&["--no-such-flag"], "unexpected argument"),
        ];
        for (args, expected) in cases {
            let error = parse_error(args);
            assert!(error.contains(expected), "{args:?}: {error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn accepts_region_shapes() {
        for region in
            ["us-east-1", "ap-southeast-2", "us-gov-west-1", "us-isob-east-1", "eu-central-12"]
        {
            check_region(region).unwrap_or_else(|error| panic!("{error}"));
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_byte_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_byte_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("2g"), Ok(2 << 30));
        assert!(parse_byte_size("").is_err());
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("99999999999999999999").is_err());
    }

    #[test]
    fn help_has_one_line_per_flag() {
        use clap::CommandFactory;
        let help = Flags::command().render_help().to_string();
        for flag in [
            "--config",
            "--data-dir",
            "--listen",
            "--cores",
            "--region",
            "--account-id",
            "--durability ",
            "--durability-interval-ms",
            "--quotas",
            "--log-level",
            "--io-memory",
            "--segment-bytes",
            "--shutdown-timeout-secs",
            "--subscription-lifetime-secs",
            "--max-shards-per-stream",
            "--max-shards ",
            "--max-consumers-per-stream",
        ] {
            assert!(help.contains(flag), "help lacks {flag}:\n{help}");
        }
    }
}
