//! `spate bench` and `spate bench compare`: flags, their translation into
//! [`crate::bench::result::Settings`], and writing the JSON and HTML reports.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use crate::bench::result::{self, RunResult, Settings};
use crate::bench::{self, html};
use crate::cli::output::write_stdout;
use crate::cli::{Context, OutputFormat, StreamMode, parse_duration};

/// The long help of `spate bench`.
pub const LONG_ABOUT: &str = "Measure an endpoint: producers put records (closed loop as fast \
        as responses \
        return, or open loop at --rate records/s with latency measured from each request's \
        intended send time), readers consume them (polling GetRecords and/or enhanced fan-out), \
        and the run reports records/s, MB/s of payload, put and end-to-end latency percentiles, \
        throttling and failures by error type, and the harness's own CPU use.\n\n\
        End-to-end latency is measured from the put's acknowledgement to consumption, exactly, \
        because producers and readers share this process; the same figure from the send time \
        carried in each record's header is reported too. After the producers stop, readers \
        drain until every acknowledged record was read, and the run verifies that each reader \
        saw each acknowledged record exactly once.\n\n\
        Without --stream a new stream spate-bench-<ms> is created (never deleted).";

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub compare: Option<BenchSubcommand>,
    #[command(flatten)]
    pub run: BenchArgs,
}

#[derive(Subcommand, Debug)]
pub enum BenchSubcommand {
    /// Compare runs from --json files: two side by side with ratios, more as a table.
    Compare {
        /// Result files (a file from --vs holds several runs).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print a markdown table, one row per run.
        #[arg(long)]
        markdown: bool,
        /// Also write an HTML report of these runs.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Api {
    PutRecords,
    PutRecord,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Use this existing stream instead of creating one (readers start at LATEST).
    #[arg(long)]
    pub stream: Option<String>,
    /// Shards of the created stream.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Capacity mode of the created stream.
    #[arg(long, value_enum, default_value_t = StreamMode::Provisioned)]
    pub mode: StreamMode,
    /// Producer call.
    #[arg(long, value_enum, default_value_t = Api::PutRecords)]
    pub api: Api,
    /// Records per PutRecords call [default: 500; 1 with --api put-record].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Record payload size: fixed (1024, 1KiB) or uniform:LOW-HIGH. At least 24 bytes.
    #[arg(long, default_value = "1024")]
    pub record_size: String,
    /// Partition keys: uniform (random per record), zipf:S (over --key-count keys), single.
    #[arg(long, default_value = "uniform")]
    pub keys: String,
    /// Distinct keys for zipf.
    #[arg(long, default_value_t = 1000)]
    pub key_count: usize,
    /// Producer threads, each with one keep-alive connection.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Open loop: total target in records per second (requests/s = rate / batch size), spread
    /// evenly over the connections. Without it: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long producers run (e.g. 10s, 2m, 1m30s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Polling readers, each reading every shard with GetRecords.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Enhanced fan-out readers (RegisterStreamConsumer + SubscribeToShard); skipped with a
    /// note when the endpoint does not support them.
    #[arg(long, default_value_t = 0)]
    pub efo_consumers: usize,
    /// Pause of a polling reader after a pass over its shards returned nothing.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,
    /// Limit of each GetRecords call.
    #[arg(long, default_value_t = 10_000)]
    pub get_records_limit: u32,
    /// Longest wait, after producers stop, for readers to consume every acknowledged record.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Seed for record sizes, keys and filler.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A name for this run in reports.
    #[arg(long)]
    pub label: Option<String>,
    /// Write the full result (settings, environment, figures, timeline) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Also run against this endpoint, alternating A B A B, and print B/A ratios per pair.
    #[arg(long, value_name = "ENDPOINT")]
    pub vs: Option<String>,
    /// Pairs of runs with --vs.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

fn settings(context: &Context, endpoint: &str, args: &BenchArgs) -> Settings {
    let put_records = args.api == Api::PutRecords;
    Settings {
        endpoint: endpoint.to_string(),
        region: context.region.clone(),
        stream: args.stream.clone(),
        shards: args.shards,
        mode: args.mode.as_str().to_string(),
        api: if put_records { "PutRecords" } else { "PutRecord" }.to_string(),
        batch_size: args.batch_size.unwrap_or(if put_records { 500 } else { 1 }),
        record_size: args.record_size.clone(),
        keys: args.keys.clone(),
        key_count: args.key_count,
        connections: args.connections,
        rate_records_per_second: args.rate,
        duration_seconds: args.duration.as_secs_f64(),
        consumers: args.consumers,
        efo_consumers: args.efo_consumers,
        poll_interval_ms: args.poll_interval.as_secs_f64() * 1000.0,
        get_records_limit: args.get_records_limit,
        drain_timeout_seconds: args.drain_timeout.as_secs_f64(),
        request_timeout_seconds: context.timeouts.io.as_secs_f64(),
        seed: args.seed,
        label: args.label.clone(),
    }
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Reads runs from result files: one object per file, or an array from `--vs`.
pub fn load_runs(files: &[PathBuf]) -> Result<Vec<RunResult>, String> {
    let mut runs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = match value {
            serde_json::Value::Array(items) => {
                items.into_iter().map(serde_json::from_value).collect::<Result<Vec<RunResult>, _>>()
            }
            other => serde_json::from_value(other).map(|r| vec![r]),
        };
        runs.extend(parsed.map_err(|e| format!("{}: not a bench result: {e}", file.display()))?);
    }
    Ok(runs)
}

pub fn run(context: &Context, endpoint: &str, command: BenchCommand) -> Result<(), String> {
    if let Some(BenchSubcommand::Compare { files, markdown, report }) = command.compare {
        let runs = load_runs(&files)?;
        if let Some(path) = &report {
            write_file(path, html::report(&runs).as_bytes())?;
        }
        if context.output == OutputFormat::Json {
            return crate::cli::output::print_json(&runs);
        }
        let text = if runs.len() == 2 && !markdown {
            result::compare(&runs[0], &runs[1])
        } else {
            result::markdown(&runs)
        };
        return write_stdout(text.as_bytes());
    }
    let args = command.run;
    let settings = settings(context, endpoint, &args);
    bench::validate(&settings)?;
    let show_progress = !args.quiet;
    let runs = match &args.vs {
        Some(other) => {
            if args.rounds == 0 {
                return Err("--rounds must be at least 1".into());
            }
            bench::run_vs(&settings, other, args.rounds, show_progress)?
        }
        None => vec![bench::run(&settings, show_progress)?],
    };
    if let Some(path) = &args.json {
        let text = if runs.len() == 1 {
            serde_json::to_string_pretty(&runs[0])
        } else {
            serde_json::to_string_pretty(&runs)
        }
        .map_err(|e| e.to_string())?;
        write_file(path, text.as_bytes())?;
    }
    if let Some(path) = &args.report {
        write_file(path, html::report(&runs).as_bytes())?;
    }
    if args.vs.is_none() {
        if context.output == OutputFormat::Json {
            crate::cli::output::print_json(&runs[0])?;
        } else {
            write_stdout(result::summary(&runs[0]).as_bytes())?;
        }
    }
    Ok(())
}
