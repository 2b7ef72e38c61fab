//! The `spate` command line: clap definitions, global options (`--endpoint`, `--region`,
//! `--output`), dispatch to the verbs, and the error convention (one `error: ...` line on
//! stderr, exit code 1; usage errors exit 2 through clap).

mod admin;
mod bench;
mod offline;
mod output;
mod records;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::http::{Timeouts, Url};
use crate::kinesis::Client;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4567";

#[derive(Parser, Debug)]
#[command(
    name = "spate",
    version,
    about = "Operate and benchmark Spate and other Kinesis Data Streams endpoints",
    long_about = "Operate and benchmark Spate and other Kinesis Data Streams endpoints.\n\n\
        Requests carry a dummy SigV4-shaped Authorization header: Spate and the local \
        Kinesis emulators do not verify signatures. Real AWS endpoints need SigV4 signing, \
        which these tools do not do."
)]
pub struct Cli {
    /// Kinesis endpoint URL (http only).
    #[arg(long, global = true, env = "SPATE_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Region used in the credential scope of requests.
    #[arg(long, global = true, env = "SPATE_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Output style: human tables, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Per-request socket timeout.
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// Shard, sequence number, partition key and data (as text when it is UTF-8).
    Text,
    /// One JSON object per record, Data in base64.
    Json,
    /// The record data bytes, one record per line.
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "provisioned",
            StreamMode::OnDemand => "on-demand",
        }
    }
}

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::timefmt::parse_duration(text)
}

// One `Command` is parsed per process and moved once: boxing the large variant saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, delete, list, describe and reshard streams.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Put one record from an argument, or one record per line of stdin.
    Put(PutArgs),
    /// Read records from one shard.
    Get(GetArgs),
    /// Follow every shard of a stream, including the children of resharded shards.
    Tail(TailArgs),
    /// Register, list and deregister enhanced fan-out consumers.
    #[command(subcommand)]
    Consumer(ConsumerCommand),
    /// Measure throughput and latency of an endpoint (see `spate bench --help`).
    #[command(long_about = bench::LONG_ABOUT)]
    Bench(bench::BenchCommand),
    /// Verify every segment and index of a stopped server's data directory (offline).
    Check {
        /// The data directory (spated --data-dir).
        data_dir: std::path::PathBuf,
    },
    /// Print the frames of one segment file (offline).
    Dump {
        /// A segment file: <data-dir>/streams/<incarnation>/<shard>/<offset>.log
        segment: std::path::PathBuf,
        /// Print at most this many frames.
        #[arg(long)]
        limit: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Create a stream and wait until it is ACTIVE.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        shards: u32,
        #[arg(long, value_enum, default_value_t = StreamMode::Provisioned)]
        mode: StreamMode,
        /// Return without waiting for ACTIVE.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete a stream.
    Delete {
        name: String,
        /// Also delete its registered consumers (EnforceConsumerDeletion).
        #[arg(long)]
        force: bool,
    },
    /// List streams.
    List,
    /// Show a stream's summary and shards.
    Describe { name: String },
    /// Change the number of open shards (UpdateShardCount, UNIFORM_SCALING).
    Scale {
        name: String,
        #[arg(long)]
        shards: u32,
        /// Return without waiting for ACTIVE.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Args, Debug)]
pub struct PutArgs {
    pub stream: String,
    /// Record data. Without it, each non-empty line of stdin becomes a record.
    pub data: Option<String>,
    /// Partition key (overrides --key-template).
    #[arg(long)]
    pub key: Option<String>,
    /// Partition key template: `{line}` is the record's data; the record number (from 0)
    /// replaces n in curly braces (the default is `key-` followed by the number).
    #[arg(long, default_value = "key-{n}")]
    pub key_template: String,
    /// Explicit hash key (decimal 128-bit), overriding the key's MD5 for shard placement.
    #[arg(long)]
    pub explicit_hash_key: Option<String>,
    /// Records per PutRecords call when reading stdin.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    pub stream: String,
    /// Shard id, or its number (`3` is `shardId-000000000003`).
    #[arg(long)]
    pub shard: String,
    /// trim-horizon, latest, at:SEQ, after:SEQ or ts:EPOCH_SECONDS.
    #[arg(long, default_value = "trim-horizon")]
    pub from: String,
    /// Most records to print.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Record format (default: json with --output json, text otherwise).
    #[arg(long, value_enum)]
    pub format: Option<RecordFormat>,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    pub stream: String,
    /// latest, trim-horizon, at:SEQ, after:SEQ or ts:EPOCH_SECONDS (applied to every shard).
    #[arg(long, default_value = "latest")]
    pub from: String,
    /// Read with enhanced fan-out as this consumer (registered if it does not exist).
    #[arg(long, value_name = "CONSUMER")]
    pub efo: Option<String>,
    /// Record format (default: json with --output json, text otherwise).
    #[arg(long, value_enum)]
    pub format: Option<RecordFormat>,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Pause between polls of an idle shard (polling mode).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum ConsumerCommand {
    /// Register an enhanced fan-out consumer and wait until it is ACTIVE.
    Register { stream: String, name: String },
    /// List a stream's consumers.
    List { stream: String },
    /// Deregister a consumer.
    Deregister { stream: String, name: String },
}

/// What the verbs share: the parsed global options.
pub struct Context {
    pub url: Url,
    pub region: String,
    pub output: OutputFormat,
    pub timeouts: Timeouts,
}

impl Context {
    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.region, self.timeouts)
    }

    pub fn record_format(&self, chosen: Option<RecordFormat>) -> RecordFormat {
        chosen.unwrap_or(match self.output {
            OutputFormat::Json => RecordFormat::Json,
            OutputFormat::Text => RecordFormat::Text,
        })
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            1
        }
    }
}

pub fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Check { data_dir } => return offline::check(data_dir, cli.output),
        Command::Dump { segment, limit } => return offline::dump(segment, *limit, cli.output),
        _ => {}
    }
    let url = Url::parse(&cli.endpoint)?;
    let context = Context {
        url,
        region: cli.region.clone(),
        output: cli.output,
        timeouts: Timeouts { connect: std::time::Duration::from_secs(5), io: cli.timeout },
    };
    match cli.command {
        Command::Stream(command) => admin::stream(&context, command),
        Command::Consumer(command) => admin::consumer(&context, command),
        Command::Put(args) => records::put(&context, args),
        Command::Get(args) => records::get(&context, args),
        Command::Tail(args) => records::tail(&context, args),
        Command::Bench(command) => bench::run(&context, &cli.endpoint, command),
        Command::Check { .. } | Command::Dump { .. } => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from([
            "spate",
            "bench",
            "--endpoint",
            "http://127.0.0.1:14567",
            "--duration",
            "10s",
            "--json",
            "out.json",
        ])
        .unwrap();
        assert_eq!(cli.endpoint, "http://127.0.0.1:14567");
        let cli = Cli::try_parse_from(["spate", "bench", "compare", "a.json", "b.json"]).unwrap();
        assert!(matches!(cli.command, Command::Bench(_)));
        let cli = Cli::try_parse_from([
            "spate", "tail", "s", "--efo", "c", "--format", "raw", "--limit", "5",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Tail(TailArgs { limit: Some(5), .. })));
        assert!(Cli::try_parse_from(["spate", "stream", "scale", "s", "--shards", "8"]).is_ok());
        assert!(Cli::try_parse_from(["spate", "bench", "--duration", "ten"]).is_err());
    }
}
